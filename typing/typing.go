// Package typing keeps who is typing in which room, and until when. It is
// memory only: typing notifications are ephemeral and never reach the
// database. Every change (a user starts typing, stops, or times out) takes
// the next serial number, so /sync can ask what changed since the serial it
// last saw, and the notify function passed to New learns of each change.
// Time comes from a Clock, so tests can move it; expiry runs lazily on
// every call and from one timer for the whole tracker, never from a
// goroutine per user.
package typing

import (
	"slices"
	"sync"
	"time"
)

// Timeouts of one typing request, as Synapse applies them: a client that
// gives none types for DefaultTimeout, and none types for longer than
// MaxTimeout without sending another request.
const (
	DefaultTimeout = 30 * time.Second
	MaxTimeout     = 120 * time.Second
)

// forgetAfter is how long a room nobody types in any more keeps the serial
// of its last change. After that the room is dropped and the tracker's
// floor rises past its serial (see ChangedSince).
const forgetAfter = 10 * time.Minute

// Clock is the tracker's source of time.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a call scheduled by Clock.AfterFunc.
type Timer interface {
	// Stop cancels the call; it reports whether the call was still pending.
	Stop() bool
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc is time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Tracker records the typing users of every room. It is safe for
// concurrent use.
type Tracker struct {
	clock  Clock
	notify func(roomID string, serial int64)

	mu     sync.Mutex
	serial int64 // the serial of the latest change
	// floor is the highest serial whose change may no longer be recorded:
	// the tracker's start (changes of an earlier run are lost) or the last
	// change of a room dropped after forgetAfter.
	floor     int64
	rooms     map[string]*room
	active    map[string]*room // the rooms someone types in
	next      time.Time        // the earliest typing deadline (zero: nobody types)
	nextPrune time.Time
	timer     Timer
	timerAt   time.Time
	timerGen  int // tells the current timer from stopped ones that fire anyway
}

// room is the typing state of one room.
type room struct {
	until   map[string]time.Time // typing user → when their typing ends
	serial  int64                // the serial of the room's last change
	changed time.Time            // when that change happened
}

// change is one room's change, reported to notify after the lock is released.
type change struct {
	roomID string
	serial int64
}

// New returns an empty tracker. clock nil means SystemClock. notify, if not
// nil, is called (never with the tracker's lock held) after every change,
// including timeouts, with the room and the change's serial: /sync's
// notifier uses it to wake exactly the long-polls of that room's members.
//
// Serials start at the start time in milliseconds, so a serial handed out
// before a restart is lower than every serial after it (ChangedSince then
// reports every room).
func New(clock Clock, notify func(roomID string, serial int64)) *Tracker {
	if clock == nil {
		clock = SystemClock{}
	}
	now := clock.Now()
	start := now.UnixMilli()
	return &Tracker{
		clock: clock, notify: notify,
		serial: start, floor: start,
		rooms: map[string]*room{}, active: map[string]*room{},
		nextPrune: now.Add(forgetAfter),
	}
}

// Set records that the user is typing in the room for timeout (capped at
// MaxTimeout), or, when typing is false or timeout is not positive, that
// they stopped. Only changes to who is typing take a serial: a user who
// types on merely gets a later deadline.
func (t *Tracker) Set(roomID, userID string, typing bool, timeout time.Duration) {
	t.mu.Lock()
	now := t.clock.Now()
	changes := t.expire(now)
	r := t.rooms[roomID]
	if typing && timeout > 0 {
		until := now.Add(min(timeout, MaxTimeout))
		if r == nil {
			r = &room{until: map[string]time.Time{}}
			t.rooms[roomID] = r
		}
		_, was := r.until[userID]
		r.until[userID] = until
		t.active[roomID] = r
		if !was {
			changes = append(changes, t.changed(roomID, r, now))
		}
		if t.next.IsZero() || until.Before(t.next) {
			t.next = until
		}
	} else if r != nil {
		if _, was := r.until[userID]; was {
			delete(r.until, userID)
			if len(r.until) == 0 {
				delete(t.active, roomID)
			}
			changes = append(changes, t.changed(roomID, r, now))
			// t.next may now be early; expire recomputes it when it comes.
		}
	}
	t.arm(now)
	t.mu.Unlock()
	t.deliver(changes)
}

// Typing returns the users typing in the room, sorted (empty, not nil,
// when nobody is).
func (t *Tracker) Typing(roomID string) []string {
	t.mu.Lock()
	changes := t.expire(t.clock.Now())
	users := typingIn(t.rooms[roomID])
	t.mu.Unlock()
	t.deliver(changes)
	return users
}

// Serial returns the serial of the latest change.
func (t *Tracker) Serial() int64 {
	t.mu.Lock()
	changes := t.expire(t.clock.Now())
	s := t.serial
	t.mu.Unlock()
	t.deliver(changes)
	return s
}

// ChangedSince returns, for the rooms among roomIDs whose typing users
// changed after serial since, the users typing there now (an empty list
// when nobody types any more: the client must clear its list), and the
// serial the answer is current to. since 0 means the client knows nothing
// yet: only rooms where someone types are returned. A serial older than the
// tracker's memory (from before a restart, or older than forgetAfter) or
// newer than its latest (from another run) reports every room in roomIDs.
func (t *Tracker) ChangedSince(since int64, roomIDs []string) (map[string][]string, int64) {
	t.mu.Lock()
	changes := t.expire(t.clock.Now())
	out := map[string][]string{}
	all := since != 0 && (since < t.floor || since > t.serial)
	for _, id := range roomIDs {
		r := t.rooms[id]
		switch {
		case all:
			out[id] = typingIn(r)
		case r == nil:
		case since == 0 && len(r.until) > 0, since != 0 && r.serial > since:
			out[id] = typingIn(r)
		}
	}
	s := t.serial
	t.mu.Unlock()
	t.deliver(changes)
	return out, s
}

// Close stops the expiry timer. Typing users then only expire when the
// tracker is next called.
func (t *Tracker) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.timer != nil {
		t.timer.Stop()
		t.timer, t.timerAt = nil, time.Time{}
	}
}

// typingIn lists a room's typing users, sorted.
func typingIn(r *room) []string {
	users := []string{}
	if r == nil {
		return users
	}
	for u := range r.until {
		users = append(users, u)
	}
	slices.Sort(users)
	return users
}

// changed gives room r the next serial, for notify. The caller holds t.mu.
func (t *Tracker) changed(roomID string, r *room, now time.Time) change {
	t.serial++
	r.serial, r.changed = t.serial, now
	return change{roomID: roomID, serial: t.serial}
}

// expire ends the typing whose deadline has passed, and from time to time
// drops rooms nobody has typed in for forgetAfter. It costs nothing until
// the earliest deadline. The caller holds t.mu.
func (t *Tracker) expire(now time.Time) []change {
	var changes []change
	if !t.next.IsZero() && !now.Before(t.next) {
		t.next = time.Time{}
		for id, r := range t.active {
			var ended bool
			for u, until := range r.until {
				if !now.Before(until) {
					delete(r.until, u)
					ended = true
				} else if t.next.IsZero() || until.Before(t.next) {
					t.next = until
				}
			}
			if ended {
				changes = append(changes, t.changed(id, r, now))
			}
			if len(r.until) == 0 {
				delete(t.active, id)
			}
		}
	}
	if !now.Before(t.nextPrune) {
		for id, r := range t.rooms {
			if len(r.until) == 0 && now.Sub(r.changed) >= forgetAfter {
				delete(t.rooms, id)
				t.floor = max(t.floor, r.serial)
			}
		}
		t.nextPrune = now.Add(forgetAfter / 2)
	}
	return changes
}

// arm points the one timer at the earliest deadline. The caller holds t.mu.
func (t *Tracker) arm(now time.Time) {
	if t.next.IsZero() || t.timer != nil && t.timerAt.Equal(t.next) {
		return
	}
	if t.timer != nil {
		t.timer.Stop()
	}
	t.timerGen++
	gen := t.timerGen
	t.timerAt = t.next
	t.timer = t.clock.AfterFunc(t.next.Sub(now), func() { t.fire(gen) })
}

// fire runs when a timer is due: it expires what is due and, if it is the
// current timer, arms the next one. After expire, t.next is zero or later
// than now, so the timer never spins.
func (t *Tracker) fire(gen int) {
	t.mu.Lock()
	now := t.clock.Now()
	if gen == t.timerGen {
		t.timer, t.timerAt = nil, time.Time{}
	}
	changes := t.expire(now)
	t.arm(now)
	t.mu.Unlock()
	t.deliver(changes)
}

// deliver reports changes to notify, outside the lock.
func (t *Tracker) deliver(changes []change) {
	if t.notify == nil {
		return
	}
	for _, c := range changes {
		t.notify(c.roomID, c.serial)
	}
}
