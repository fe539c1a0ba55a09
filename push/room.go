package push

import (
	"encoding/json"

	"github.com/aula-chat/aula/storage"
)

// roomInfo is the part of a room's current state that evaluation needs,
// kept up to date from the events the worker applies.
type roomInfo struct {
	members   map[string]string // joined user → display name
	joinDepth map[string]int64  // joined user → depth of their join
	name      string
	creator   string
	hasLevels bool
	users     map[string]int64
	usersDef  int64
	notif     map[string]int64
}

func newRoomInfo() *roomInfo {
	return &roomInfo{members: map[string]string{}, joinDepth: map[string]int64{}}
}

// apply updates the room from a state event.
func (r *roomInfo) apply(ev storage.Event) {
	if ev.StateKey == nil || ev.RedactedBy != "" {
		return
	}
	var pdu struct {
		Content json.RawMessage `json:"content"`
	}
	if json.Unmarshal(ev.JSON, &pdu) != nil {
		return
	}
	switch ev.Type {
	case "m.room.create":
		r.creator = ev.Sender
	case "m.room.name":
		var c struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(pdu.Content, &c)
		r.name = c.Name
	case "m.room.member":
		var c struct {
			Membership  string `json:"membership"`
			DisplayName string `json:"displayname"`
		}
		_ = json.Unmarshal(pdu.Content, &c)
		if c.Membership == "join" {
			if _, was := r.members[*ev.StateKey]; !was {
				r.joinDepth[*ev.StateKey] = ev.Depth
			}
			r.members[*ev.StateKey] = c.DisplayName
		} else {
			delete(r.members, *ev.StateKey)
			delete(r.joinDepth, *ev.StateKey)
		}
	case "m.room.power_levels":
		if *ev.StateKey != "" {
			return
		}
		var c struct {
			Users         map[string]json.Number `json:"users"`
			UsersDefault  json.Number            `json:"users_default"`
			Notifications map[string]json.Number `json:"notifications"`
		}
		_ = json.Unmarshal(pdu.Content, &c)
		r.hasLevels = true
		r.users, r.notif = map[string]int64{}, map[string]int64{}
		for u, n := range c.Users {
			r.users[u] = numberValue(n)
		}
		for k, n := range c.Notifications {
			r.notif[k] = numberValue(n)
		}
		r.usersDef = numberValue(c.UsersDefault)
	}
}

// context returns the evaluation context for an event of sender.
func (r *roomInfo) context(sender string) Room { return r.contextN(sender, len(r.members)) }

// contextN is context with the member count given (GET /notifications
// knows only the room's count, not its members).
func (r *roomInfo) contextN(sender string, memberCount int) Room {
	rc := Room{MemberCount: memberCount, NotificationLevels: r.notif}
	switch {
	case !r.hasLevels:
		if sender == r.creator {
			rc.SenderLevel = 100
		}
	default:
		lvl, ok := r.users[sender]
		switch {
		case ok:
		case sender == r.creator:
			lvl = 1 << 53 // room v12: creators have unlimited power and are not listed
		default:
			lvl = r.usersDef
		}
		rc.SenderLevel = lvl
	}
	return rc
}

// numberValue reads a power level, which older rooms may give as a string.
func numberValue(n json.Number) int64 {
	if v, err := n.Int64(); err == nil {
		return v
	}
	if f, err := n.Float64(); err == nil {
		return int64(f)
	}
	return 0
}

// membershipOf returns content.membership of a member event.
func membershipOf(eventJSON []byte) string {
	var pdu struct {
		Content struct {
			Membership string `json:"membership"`
		} `json:"content"`
	}
	_ = json.Unmarshal(eventJSON, &pdu)
	return pdu.Content.Membership
}
