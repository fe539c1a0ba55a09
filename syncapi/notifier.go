package syncapi

import (
	"context"
	"sync"
	"time"

	"github.com/aula-chat/aula/storage"
)

// Notifier knows, in memory, when each room, user and device last changed,
// and wakes the long-polling /sync requests a change concerns. It learns
// about every write from storage's change feed (storage.DB.OnChange) and
// about typing from the typing tracker. See docs/sync.md.
//
// A parked /sync registers one waiter under its user and under each room
// the user is joined to; a change wakes exactly the waiters of its room or
// user by closing their channels. Nothing here touches the database, so a
// message to a room of thousands wakes all of their requests at once, and
// a /sync for a user with nothing new runs no query at all.
type Notifier struct {
	mu    sync.Mutex
	pos   int64 // every change at or below pos has been applied
	start int64 // nothing is known about changes at or below start
	// presenceAll and devicesAll are the last presence and device-list
	// changes of users whose rooms were not loaded: every user may share
	// a room with them.
	presenceAll int64
	devicesAll  int64
	presence    recentPresence // the latest presence changes (recent.go)
	sinceTrim   int            // changes applied since the recent lists were last trimmed
	rooms       map[string]*roomWatch
	users       map[string]*userWatch
}

// roomWatch is what the notifier knows of one room.
type roomWatch struct {
	pos    int64 // the room's last event or receipt
	typing int64 // the typing serial of its last typing change
	// presence and devices are the last presence and device-list changes
	// of the room's joined members.
	presence int64
	devices  int64
	waiters  map[*waiter]struct{}
	recent   *recent                  // the latest events and receipts (recent.go)
	members  map[string]storage.Event // member events looked up for /sync, kept current
}

// userWatch is what the notifier knows of one user.
type userWatch struct {
	pos     int64            // the last change of the user's own data (membership, account data)
	devices map[string]int64 // the last to-device message for each device
	// rooms holds the user's membership in every room they have one in
	// (not forgotten); nil until loaded. While loading, changes are kept
	// in pending and applied once the load is installed.
	rooms   map[string]Membership
	loading bool
	pending []storage.Change
	waiters map[*waiter]struct{}
	// ignored is the user's m.ignored_user_list, nil until loaded.
	ignored map[string]bool
	// keyCounts are the devices' one-time and fallback key counts read
	// for /sync; keyGen counts the changes that dropped them.
	keyCounts map[string]storage.KeyCounts
	keyGen    int64
}

// Membership is a user's membership in a room and the stream position of
// the member event that set it.
type Membership struct {
	Membership string
	Pos        int64
}

// waiter is one parked /sync: ch is closed when something it watches
// changes.
type waiter struct {
	ch     chan struct{}
	closed bool
}

// NewNotifier returns a notifier that starts at stream position pos: it
// knows nothing about earlier changes.
func NewNotifier(pos int64) *Notifier {
	return &Notifier{pos: pos, start: pos, rooms: map[string]*roomWatch{}, users: map[string]*userWatch{},
		presence: recentPresence{complete: pos}}
}

// Position returns the stream position up to which every change has been
// applied: what /sync may read up to without missing a wake-up.
func (n *Notifier) Position() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pos
}

func (n *Notifier) room(id string) *roomWatch {
	r := n.rooms[id]
	if r == nil {
		r = &roomWatch{}
		n.rooms[id] = r
	}
	return r
}

func (n *Notifier) user(id string) *userWatch {
	u := n.users[id]
	if u == nil {
		u = &userWatch{}
		n.users[id] = u
	}
	return u
}

// OnChange applies committed changes (storage.DB.OnChange's listener).
func (n *Notifier) OnChange(pos int64, changes []storage.Change) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range changes {
		switch c.Kind {
		case storage.ChangeEvent, storage.ChangeReceipt:
			r := n.room(c.RoomID)
			r.pos = max(r.pos, c.Pos)
			if r.recent == nil {
				r.recent = &recent{complete: n.start}
			}
			switch {
			case c.Event != nil:
				r.recent.addEvent(c)
			case c.Receipt != nil:
				r.recent.addReceipt(*c.Receipt)
			default:
				r.recent.complete = c.Pos // nothing to keep: the list misses this change
			}
			wakeAll(r.waiters)
			if c.Kind == storage.ChangeEvent && c.Membership != "" {
				if r.members != nil && c.Event != nil {
					r.members[c.UserID] = *c.Event
				}
				n.userChanged(c)
			}
		case storage.ChangeAccountData, storage.ChangeForget:
			if c.Type == "m.ignored_user_list" && c.RoomID == "" {
				n.user(c.UserID).ignored = nil
			}
			n.userChanged(c)
		case storage.ChangePresence, storage.ChangeDeviceList:
			if c.Presence != nil {
				n.presence.add(*c.Presence)
			} else if c.Kind == storage.ChangePresence {
				n.presence.complete = c.Pos // the list misses this change
			}
			n.userChanged(c)
			n.sharedChanged(c)
		case storage.ChangeKeyCounts:
			u := n.user(c.UserID)
			delete(u.keyCounts, c.DeviceID)
			u.keyGen++
		case storage.ChangeToDevice:
			u := n.user(c.UserID)
			if u.devices == nil {
				u.devices = map[string]int64{}
			}
			u.devices[c.DeviceID] = max(u.devices[c.DeviceID], c.Pos)
			wakeAll(u.waiters)
		}
	}
	n.pos = max(n.pos, pos)
	if n.sinceTrim += len(changes); n.sinceTrim >= trimEvery {
		n.sinceTrim = 0
		n.trimRecent()
	}
}

// trimRecent drops what the rooms' recent lists hold from more than
// recentHorizon positions ago (recent.go).
func (n *Notifier) trimRecent() {
	horizon := n.pos - recentHorizon
	if horizon <= n.start {
		return
	}
	for _, r := range n.rooms {
		if r.recent != nil {
			r.recent.trim(horizon)
		}
	}
}

// userChanged records a change of the user's own data and wakes them.
func (n *Notifier) userChanged(c storage.Change) {
	u := n.user(c.UserID)
	u.pos = max(u.pos, c.Pos)
	if u.loading {
		u.pending = append(u.pending, c)
	} else {
		u.applyMembership(c)
	}
	wakeAll(u.waiters)
}

// sharedChanged records a presence or device-list change in every room
// the user is joined to, and wakes the requests parked there.
func (n *Notifier) sharedChanged(c storage.Change) {
	u := n.users[c.UserID]
	if u == nil || u.rooms == nil {
		if c.Kind == storage.ChangePresence {
			n.presenceAll = max(n.presenceAll, c.Pos)
		} else {
			n.devicesAll = max(n.devicesAll, c.Pos)
		}
		return
	}
	for id, m := range u.rooms {
		if m.Membership != "join" {
			continue
		}
		r := n.room(id)
		if c.Kind == storage.ChangePresence {
			r.presence = max(r.presence, c.Pos)
		} else {
			r.devices = max(r.devices, c.Pos)
		}
		wakeAll(r.waiters)
	}
}

// applyMembership keeps the loaded membership list up to date.
func (u *userWatch) applyMembership(c storage.Change) {
	if u.rooms == nil {
		return
	}
	switch {
	case c.Kind == storage.ChangeForget:
		if u.rooms[c.RoomID].Membership != "join" {
			delete(u.rooms, c.RoomID)
		}
	case c.Kind == storage.ChangeEvent && c.Membership != "":
		u.rooms[c.RoomID] = Membership{Membership: c.Membership, Pos: c.Pos}
	}
}

// presenceSince returns the latest presence of each user among the
// changes after since up to upto whom the user shares a joined room with
// (or who is the user), oldest first, and ok false when memory cannot
// tell: the list does not reach back to since, or a changed user's rooms
// are not known.
func (n *Notifier) presenceSince(userID string, rooms map[string]Membership, since, upto int64) ([]storage.Presence, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if since < n.presence.complete {
		return nil, false
	}
	latest := map[string]int{}
	var out []storage.Presence
	for _, p := range n.presence.list {
		if p.StreamPos <= since || p.StreamPos > upto {
			continue
		}
		if p.UserID != userID {
			u := n.users[p.UserID]
			if u == nil || u.rooms == nil {
				return nil, false
			}
			shared := false
			for id, m := range u.rooms {
				if m.Membership == "join" && rooms[id].Membership == "join" {
					shared = true
					break
				}
			}
			if !shared {
				continue
			}
		}
		if i, ok := latest[p.UserID]; ok {
			out[i].StreamPos = -1 // superseded
		}
		latest[p.UserID] = len(out)
		out = append(out, p)
	}
	kept := out[:0]
	for _, p := range out {
		if p.StreamPos >= 0 {
			kept = append(kept, p)
		}
	}
	return kept, true
}

// TypingChanged records a typing change (the typing tracker's notify).
func (n *Notifier) TypingChanged(roomID string, serial int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	r := n.room(roomID)
	r.typing = max(r.typing, serial)
	wakeAll(r.waiters)
}

func wakeAll(ws map[*waiter]struct{}) {
	for w := range ws {
		if !w.closed {
			w.closed = true
			close(w.ch)
		}
		delete(ws, w)
	}
}

// memberships returns a copy of the user's memberships if they are
// loaded. Otherwise it marks them as loading and returns ok false: the
// caller loads them and calls installMemberships.
func (n *Notifier) memberships(userID string) (map[string]Membership, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	u := n.user(userID)
	if u.rooms == nil {
		if !u.loading {
			u.loading, u.pending = true, nil
		}
		return nil, false
	}
	out := make(map[string]Membership, len(u.rooms))
	for r, m := range u.rooms {
		out[r] = m
	}
	return out, true
}

// installMemberships stores memberships loaded from the database (read
// after memberships returned false) and applies the changes that arrived
// meanwhile, which are at least as new.
func (n *Notifier) installMemberships(userID string, rooms map[string]Membership) {
	n.mu.Lock()
	defer n.mu.Unlock()
	u := n.user(userID)
	if u.rooms != nil {
		return
	}
	u.rooms = rooms
	for _, c := range u.pending {
		u.applyMembership(c)
	}
	u.loading, u.pending = false, nil
}

// watchRequest is what one /sync request watches.
type watchRequest struct {
	userID   string
	deviceID string
	since    Token
	rooms    []string // the rooms the user is joined to
}

// plan says which parts of a /sync response need computing.
type plan struct {
	all      bool     // everything (initial or full-state sync, or a since from before the notifier)
	user     bool     // the user's own data or device inbox changed
	rooms    []string // joined rooms with new events, receipts or typing
	presence bool     // someone sharing a room changed presence
	devices  bool     // someone sharing a room changed devices
}

func (p plan) any() bool { return p.all || p.user || len(p.rooms) > 0 || p.presence || p.devices }

// presenceOnly reports whether presence is all that changed.
func (p plan) presenceOnly() bool {
	return p.presence && !p.all && !p.user && len(p.rooms) == 0 && !p.devices
}

// changes reports what changed after since for the request, up to the
// notifier's position. With park set and nothing changed (or, with
// holdPresence, only presence), it registers a waiter and returns it;
// the caller must call unpark when done with it.
func (n *Notifier) changes(req watchRequest, park, holdPresence bool) (p plan, w *waiter) {
	n.mu.Lock()
	defer n.mu.Unlock()
	since := req.since.Pos
	p.all = since < n.start
	u := n.user(req.userID)
	p.user = u.pos > since || u.devices[req.deviceID] > since
	p.presence = n.presenceAll > since
	p.devices = n.devicesAll > since
	for _, id := range req.rooms {
		r := n.rooms[id]
		if r == nil {
			continue
		}
		if r.pos > since || r.typing > req.since.Typing {
			p.rooms = append(p.rooms, id)
		}
		p.presence = p.presence || r.presence > since
		p.devices = p.devices || r.devices > since
	}
	if (p.any() && !(holdPresence && p.presenceOnly())) || !park {
		return p, nil
	}
	w = &waiter{ch: make(chan struct{})}
	if u.waiters == nil {
		u.waiters = map[*waiter]struct{}{}
	}
	u.waiters[w] = struct{}{}
	for _, id := range req.rooms {
		r := n.room(id)
		if r.waiters == nil {
			r.waiters = map[*waiter]struct{}{}
		}
		r.waiters[w] = struct{}{}
	}
	return p, w
}

// wait blocks until w is woken, until passes or ctx ends, then unparks
// w; it returns ctx's error if ctx ended.
func (n *Notifier) wait(ctx context.Context, req watchRequest, w *waiter, until time.Time) error {
	timer := time.NewTimer(time.Until(until))
	select {
	case <-w.ch:
	case <-timer.C:
	case <-ctx.Done():
	}
	timer.Stop()
	n.unpark(req, w)
	return ctx.Err()
}

// unpark removes a waiter that was not woken.
func (n *Notifier) unpark(req watchRequest, w *waiter) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	if u := n.users[req.userID]; u != nil {
		delete(u.waiters, w)
	}
	for _, id := range req.rooms {
		if r := n.rooms[id]; r != nil {
			delete(r.waiters, w)
		}
	}
}
