package syncapi

import (
	"encoding/json"
	"strings"

	"github.com/aula-chat/aula/roomserver"
)

// Response is the body of a /sync answer. Empty sections are left out, as
// Synapse does; clients treat a missing section as empty.
type Response struct {
	NextBatch   string       `json:"next_batch"`
	Rooms       *Rooms       `json:"rooms,omitempty"`
	AccountData *EventList   `json:"account_data,omitempty"`
	Presence    *EventList   `json:"presence,omitempty"`
	ToDevice    *EventList   `json:"to_device,omitempty"`
	DeviceLists *DeviceLists `json:"device_lists,omitempty"`
	// OneTimeKeysCount and UnusedFallbackKeyTypes are the syncing
	// device's key counts, sent on every answer (an empty list of
	// fallback key types tells clients the server supports them).
	OneTimeKeysCount       map[string]int `json:"device_one_time_keys_count,omitzero"`
	UnusedFallbackKeyTypes []string       `json:"device_unused_fallback_key_types,omitzero"`
}

// empty reports whether the response tells the client nothing new.
func (r *Response) empty() bool {
	return r.Rooms == nil && r.AccountData == nil && r.Presence == nil && r.ToDevice == nil && r.DeviceLists == nil
}

// EventList is a list of events under "events".
type EventList struct {
	Events []any `json:"events"`
}

// DeviceLists names the users whose devices changed, and those who no
// longer share a room with the syncing user.
type DeviceLists struct {
	Changed []string `json:"changed,omitempty"`
	Left    []string `json:"left,omitempty"`
}

// Rooms holds the room sections.
type Rooms struct {
	Join   map[string]*JoinedRoom  `json:"join,omitempty"`
	Invite map[string]*InvitedRoom `json:"invite,omitempty"`
	Leave  map[string]*LeftRoom    `json:"leave,omitempty"`
	Knock  map[string]*KnockedRoom `json:"knock,omitempty"`
}

// Timeline is a room's timeline in /sync.
type Timeline struct {
	Events    []any  `json:"events"`
	Limited   bool   `json:"limited"`
	PrevBatch string `json:"prev_batch,omitempty"`
}

// roomState carries a room's state under the key the client asked for:
// "state", or (MSC4222) "state_after" or its unstable name.
type roomState struct {
	State         *EventList `json:"state,omitempty"`
	StateAfter    *EventList `json:"state_after,omitempty"`
	StateAfterMSC *EventList `json:"org.matrix.msc4222.state_after,omitempty"`
}

// JoinedRoom is a room in rooms.join.
type JoinedRoom struct {
	Timeline Timeline `json:"timeline"`
	roomState
	Ephemeral    EventList               `json:"ephemeral"`
	AccountData  EventList               `json:"account_data"`
	Summary      *roomserver.SyncSummary `json:"summary,omitempty"`
	Unread       *UnreadCounts           `json:"unread_notifications,omitempty"`
	UnreadThread map[string]UnreadCounts `json:"unread_thread_notifications,omitempty"`
}

// UnreadCounts are a room's or thread's notification counts.
type UnreadCounts struct {
	Notifications int `json:"notification_count"`
	Highlights    int `json:"highlight_count"`
}

// LeftRoom is a room in rooms.leave.
type LeftRoom struct {
	Timeline Timeline `json:"timeline"`
	roomState
	AccountData EventList `json:"account_data"`
}

// InvitedRoom is a room in rooms.invite.
type InvitedRoom struct {
	InviteState StrippedList `json:"invite_state"`
}

// KnockedRoom is a room in rooms.knock.
type KnockedRoom struct {
	KnockState StrippedList `json:"knock_state"`
}

// StrippedList is a list of stripped state events.
type StrippedList struct {
	Events []roomserver.StrippedEvent `json:"events"`
}

// set puts state events under the key the request asked for.
func (rs *roomState) set(key string, evs []any) {
	l := &EventList{Events: evs}
	switch key {
	case stateAfterKey:
		rs.StateAfter = l
	case stateAfterMSCKey:
		rs.StateAfterMSC = l
	default:
		rs.State = l
	}
}

// The keys a room's state can go under.
const (
	stateKey         = "state"
	stateAfterKey    = "state_after"
	stateAfterMSCKey = "org.matrix.msc4222.state_after"
)

// format turns a room event into what the filter asks for: the client
// format without room_id, or the stored PDU for event_format federation,
// cut down to event_fields when given.
func (f *Filter) format(ev roomserver.ClientEvent) any {
	if f.EventFormat == EventFormatFederation {
		if len(f.EventFields) == 0 {
			return json.RawMessage(ev.PDU)
		}
		var m map[string]any
		if json.Unmarshal(ev.PDU, &m) != nil {
			return json.RawMessage(ev.PDU)
		}
		return pickFields(m, f.EventFields)
	}
	ev.RoomID = ""
	if len(f.EventFields) == 0 {
		return ev
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		return ev
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return ev
	}
	return pickFields(m, f.EventFields)
}

// pickFields keeps only the given dot-separated paths of an event (spec:
// Filter.event_fields; a literal dot in a key is escaped as "\.").
func pickFields(ev map[string]any, fields []string) map[string]any {
	out := map[string]any{}
	for _, field := range fields {
		path := splitFieldPath(field)
		var v any = ev
		for _, key := range path {
			m, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			if v, ok = m[key]; !ok {
				break
			}
		}
		if v == nil {
			continue
		}
		dst := out
		for _, key := range path[:len(path)-1] {
			sub, ok := dst[key].(map[string]any)
			if !ok {
				sub = map[string]any{}
				dst[key] = sub
			}
			dst = sub
		}
		dst[path[len(path)-1]] = v
	}
	return out
}

// splitFieldPath splits an event_fields entry at the dots that are not
// escaped with a backslash.
func splitFieldPath(field string) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(field); i++ {
		switch {
		case field[i] == '\\' && i+1 < len(field) && (field[i+1] == '.' || field[i+1] == '\\'):
			cur.WriteByte(field[i+1])
			i++
		case field[i] == '.':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(field[i])
		}
	}
	return append(parts, cur.String())
}
