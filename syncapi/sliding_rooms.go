package syncapi

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/aula-chat/aula/roomserver"
	"github.com/aula-chat/aula/storage"
)

// bumpTypes are the event types that move a room up the list (Synapse's
// default bump event types).
var bumpTypes = []string{
	"m.room.create", "m.room.message", "m.room.encrypted", "m.sticker", "m.call.invite",
	"org.matrix.msc3381.poll.start", "m.poll.start", "org.matrix.msc3672.beacon_info", "m.beacon_info",
}

// candidate is a room that may appear in the lists.
type candidate struct {
	id   string
	m    Membership
	bump int64
}

// roomConfig is what the lists and subscriptions ask of one room, merged.
type roomConfig struct {
	timeline int
	pairs    [][2]string
	key      string // canonical form of pairs, to notice changes
}

func (c *roomConfig) merge(in SlidingRoomConfig) {
	c.timeline = max(c.timeline, in.TimelineLimit)
	for _, p := range in.RequiredState {
		pair := [2]string{p[0], p[1]}
		if !slices.Contains(c.pairs, pair) {
			c.pairs = append(c.pairs, pair)
		}
	}
}

func (c *roomConfig) finish() {
	sort.Slice(c.pairs, func(i, j int) bool {
		if c.pairs[i][0] != c.pairs[j][0] {
			return c.pairs[i][0] < c.pairs[j][0]
		}
		return c.pairs[i][1] < c.pairs[j][1]
	})
	var b strings.Builder
	for _, p := range c.pairs {
		b.WriteString(p[0] + "\x00" + p[1] + "\x01")
	}
	c.key = b.String()
}

// allMembers reports whether every member event is asked for.
func (c *roomConfig) allMembers() bool {
	for _, p := range c.pairs {
		if (p[0] == "m.room.member" || p[0] == "*") && p[1] == "*" {
			return true
		}
	}
	return false
}

// explicitMembers returns the users whose member events are named.
func (c *roomConfig) explicitMembers() []string {
	var out []string
	for _, p := range c.pairs {
		if p[0] == "m.room.member" && p[1] != "*" && !strings.HasPrefix(p[1], "$") {
			out = append(out, p[1])
		}
	}
	return out
}

// wants reports whether a state event is required.
func (c *roomConfig) wants(ev roomserver.ClientEvent, userID string) bool {
	if ev.StateKey == nil {
		return false
	}
	key := *ev.StateKey
	for _, p := range c.pairs {
		if p[0] != "*" && p[0] != ev.Type {
			continue
		}
		switch p[1] {
		case "*", key:
			return true
		case "$ME":
			if key == userID {
				return true
			}
		case "$LAZY":
			if ev.Type == "m.room.member" {
				return true
			}
		}
	}
	return false
}

// bumpCache remembers rooms' bump stamps while nothing happens in them.
type bumpCache struct {
	mu sync.Mutex
	m  map[string]bumpEntry
}

type bumpEntry struct {
	roomPos int64 // the notifier's position of the room when read
	bump    int64
}

// maxBumpCache bounds the cache.
const maxBumpCache = 100000

// roomPos is the notifier's last change of a room (0: none since start).
func (n *Notifier) roomPos(id string) int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if r := n.rooms[id]; r != nil {
		return r.pos
	}
	return 0
}

// bumpStamp returns the stream position of the room's latest bump event.
func (sl *Sliding) bumpStamp(ctx context.Context, roomID string) (int64, error) {
	rp := sl.s.notifier.roomPos(roomID)
	c := sl.bumps
	c.mu.Lock()
	e, ok := c.m[roomID]
	c.mu.Unlock()
	if ok && e.roomPos == rp {
		return e.bump, nil
	}
	bump, err := sl.s.db.LatestEventOfTypes(ctx, roomID, bumpTypes)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	if len(c.m) >= maxBumpCache {
		clear(c.m)
	}
	c.m[roomID] = bumpEntry{roomPos: rp, bump: bump}
	c.mu.Unlock()
	return bump, nil
}

// directRooms returns the rooms the user's m.direct names.
func (sl *Sliding) directRooms(ctx context.Context, userID string) (map[string]bool, error) {
	raw, err := sl.s.db.AccountData(ctx, userID, "", "m.direct")
	if errors.Is(err, storage.ErrNotFound) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	var direct map[string][]string
	_ = json.Unmarshal(raw, &direct) // a malformed m.direct names no rooms
	out := map[string]bool{}
	for _, rooms := range direct {
		for _, id := range rooms {
			out[id] = true
		}
	}
	return out, nil
}

// listInfo caches per-room facts filters need.
type listInfo struct {
	sl       *Sliding
	userID   string
	dms      map[string]bool
	typ      map[string]*string
	enc      map[string]bool
	invDM    map[string]bool
	children map[string]map[string]bool
}

// isDM reports whether a room is a direct chat: named in m.direct, or an
// invite marked is_direct.
func (li *listInfo) isDM(ctx context.Context, c candidate) (bool, error) {
	if li.dms[c.id] {
		return true, nil
	}
	if c.m.Membership != "invite" {
		return false, nil
	}
	if v, ok := li.invDM[c.id]; ok {
		return v, nil
	}
	ev, err := li.sl.s.db.StateEventAt(ctx, c.id, "m.room.member", li.userID, 0)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return false, err
	}
	var content struct {
		IsDirect bool `json:"is_direct"`
	}
	if err == nil {
		_ = json.Unmarshal(roomserver.ToClientEvent(ev, nil).Content, &content)
	}
	li.invDM[c.id] = content.IsDirect
	return content.IsDirect, nil
}

// roomType returns the room's type (nil: none) and whether it is
// encrypted.
func (li *listInfo) roomType(ctx context.Context, id string) (*string, bool, error) {
	if t, ok := li.typ[id]; ok {
		return t, li.enc[id], nil
	}
	var t *string
	ev, err := li.sl.s.db.StateEventAt(ctx, id, "m.room.create", "", 0)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, false, err
	}
	if err == nil {
		var c struct {
			Type *string `json:"type"`
		}
		_ = json.Unmarshal(roomserver.ToClientEvent(ev, nil).Content, &c)
		t = c.Type
	}
	_, err = li.sl.s.db.StateEventAt(ctx, id, "m.room.encryption", "", 0)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, false, err
	}
	li.typ[id], li.enc[id] = t, err == nil
	return t, err == nil, nil
}

// spaceChildren returns the rooms a space names as children.
func (li *listInfo) spaceChildren(ctx context.Context, space string) (map[string]bool, error) {
	if c, ok := li.children[space]; ok {
		return c, nil
	}
	evs, err := li.sl.s.db.CurrentState(ctx, space)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, ev := range evs {
		if ev.Type != "m.space.child" || ev.StateKey == nil {
			continue
		}
		var c struct {
			Via []string `json:"via"`
		}
		_ = json.Unmarshal(roomserver.ToClientEvent(ev, nil).Content, &c)
		if len(c.Via) > 0 {
			out[*ev.StateKey] = true
		}
	}
	li.children[space] = out
	return out, nil
}

// keep reports whether a room passes a list's filters.
func (li *listInfo) keep(ctx context.Context, c candidate, f *SlidingFilters) (bool, error) {
	if f == nil {
		return true, nil
	}
	if f.IsInvite != nil && *f.IsInvite != (c.m.Membership == "invite") {
		return false, nil
	}
	if f.IsDM != nil {
		dm, err := li.isDM(ctx, c)
		if err != nil || dm != *f.IsDM {
			return false, err
		}
	}
	if f.IsEncrypted != nil || f.RoomTypes != nil || f.NotRoomTypes != nil {
		t, enc, err := li.roomType(ctx, c.id)
		if err != nil {
			return false, err
		}
		if f.IsEncrypted != nil && enc != *f.IsEncrypted {
			return false, nil
		}
		same := func(x *string) bool { return (x == nil && t == nil) || (x != nil && t != nil && *x == *t) }
		if f.RoomTypes != nil && !slices.ContainsFunc(f.RoomTypes, same) {
			return false, nil
		}
		if slices.ContainsFunc(f.NotRoomTypes, same) {
			return false, nil
		}
	}
	if len(f.Spaces) > 0 {
		in := false
		for _, sp := range f.Spaces {
			children, err := li.spaceChildren(ctx, sp)
			if err != nil {
				return false, err
			}
			if children[c.id] {
				in = true
				break
			}
		}
		if !in {
			return false, nil
		}
	}
	return true, nil
}

// candidates returns the rooms the lists show, most recent first: those
// the user is joined to, invited to, knocking on or banned from, and
// those they left since the connection last sent them (so that the client
// sees the leave).
func (sl *Sliding) candidates(ctx context.Context, prev *connState, ms map[string]Membership) ([]candidate, error) {
	var out []candidate
	for id, m := range ms {
		switch m.Membership {
		case "join", "invite", "knock", "ban":
		case "leave":
			if prev == nil || m.Pos <= prev.tok.Pos {
				continue
			}
			if sent, ok := prev.rooms[id]; !ok || sent.membership == "leave" {
				continue
			}
		default:
			continue
		}
		c := candidate{id: id, m: m, bump: m.Pos}
		if m.Membership == "join" {
			b, err := sl.bumpStamp(ctx, id)
			if err != nil {
				return nil, err
			}
			c.bump = max(b, 1)
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].bump != out[j].bump {
			return out[i].bump > out[j].bump
		}
		return out[i].id < out[j].id
	})
	return out, nil
}
