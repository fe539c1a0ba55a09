package push

import (
	"context"
	"time"
)

// ringSize bounds the notifying events remembered one by one per user and
// room; older ones are only counted (overflow), so counts stay exact with
// bounded memory.
const ringSize = 32

// Counts are the notification and highlight counts of a room or thread.
type Counts struct {
	Notifications int
	Highlights    int
}

func (c *Counts) plus(e unreadEntry, sign int) {
	c.Notifications += sign
	if e.highlight {
		c.Highlights += sign
	}
}

// RoomCounts are a user's unread counts in one room.
type RoomCounts struct {
	// Total counts every thread, for clients that do not ask for
	// per-thread counts.
	Total Counts
	// Main counts the main timeline only.
	Main Counts
	// Threads counts each thread (by root event ID) with unread
	// notifications.
	Threads map[string]Counts
}

// unread is what a user has not read in a room: the read receipts (as
// event depths), the newest unread notifying events (at most ringSize,
// by depth) and exact counts of the older unread ones (overflow). An
// entry is unread when it comes after both the unthreaded receipt and its
// thread's receipt; read entries are dropped at once. Nothing is stored
// per event.
type unread struct {
	unthreaded int64            // depth of the newest unthreaded m.read / m.read.private
	threads    map[string]int64 // thread ("main" or root) → depth of its threaded receipt
	entries    []unreadEntry    // the newest unread notifying events, by depth
	over       overflow
}

// overflow counts the unread notifying events that fell off the ring.
type overflow struct {
	total   Counts
	threads map[string]Counts // per thread, "main" included
	newest  int64             // depth of the newest of them (0: none)
}

type unreadEntry struct {
	depth     int64
	thread    string
	highlight bool
}

// add records a notifying event, newer than every one added before.
func (u *unread) add(e unreadEntry) {
	if e.depth <= u.unthreaded || e.depth <= u.threads[e.thread] {
		return
	}
	if n := len(u.entries); n < ringSize {
		if n == cap(u.entries) { // grow, but never past ringSize
			u.entries = append(make([]unreadEntry, 0, min(max(4, 2*n), ringSize)), u.entries...)
		}
		u.entries = append(u.entries, e)
		return
	}
	old := u.entries[0]
	copy(u.entries, u.entries[1:])
	u.entries[len(u.entries)-1] = e
	u.over.total.plus(old, 1)
	if u.over.threads == nil {
		u.over.threads = map[string]Counts{}
	}
	t := u.over.threads[old.thread]
	t.plus(old, 1)
	u.over.threads[old.thread] = t
	u.over.newest = max(u.over.newest, old.depth)
}

// receipt moves a receipt forwards; thread is "" for an unthreaded one.
// It returns false when the state can no longer be known from memory: the
// receipt falls before notifications that were only counted, so which of
// them it covers is unknown (the caller drops the state and reads it
// again from the database).
func (u *unread) receipt(thread string, depth int64) bool {
	if thread == "" {
		if depth <= u.unthreaded {
			return true
		}
		if u.over.total.Notifications > 0 && depth < u.over.newest {
			return false
		}
		u.unthreaded = depth
		u.over = overflow{}
		u.drop(func(e unreadEntry) bool { return e.depth <= depth })
		for t, d := range u.threads {
			if d <= depth {
				delete(u.threads, t)
			}
		}
		return true
	}
	if depth <= u.threads[thread] || depth <= u.unthreaded {
		return true
	}
	if o, ok := u.over.threads[thread]; ok {
		if depth < u.over.newest {
			return false
		}
		u.over.total.Notifications -= o.Notifications
		u.over.total.Highlights -= o.Highlights
		delete(u.over.threads, thread)
		if len(u.over.threads) == 0 {
			u.over = overflow{}
		}
	}
	if u.threads == nil {
		u.threads = map[string]int64{}
	}
	u.threads[thread] = depth
	u.drop(func(e unreadEntry) bool { return e.thread == thread && e.depth <= depth })
	return true
}

// drop removes the ring entries read is true for.
func (u *unread) drop(read func(unreadEntry) bool) {
	keep := u.entries[:0]
	for _, e := range u.entries {
		if !read(e) {
			keep = append(keep, e)
		}
	}
	clear(u.entries[len(keep):]) // no references to thread IDs beyond the end
	u.entries = keep
}

// counts derives the counts from the ring and the overflow.
func (u *unread) counts() RoomCounts {
	rc := RoomCounts{Total: u.over.total, Main: u.over.threads[ThreadMain]}
	for t, c := range u.over.threads {
		if t == ThreadMain {
			continue
		}
		if rc.Threads == nil {
			rc.Threads = map[string]Counts{}
		}
		rc.Threads[t] = c
	}
	for _, e := range u.entries {
		rc.Total.plus(e, 1)
		if e.thread == ThreadMain {
			rc.Main.plus(e, 1)
			continue
		}
		if rc.Threads == nil {
			rc.Threads = map[string]Counts{}
		}
		t := rc.Threads[e.thread]
		t.plus(e, 1)
		rc.Threads[e.thread] = t
	}
	return rc
}

// countsWait bounds how long Counts waits for evaluation to catch up.
const countsWait = 5 * time.Second

// Counts returns the user's unread counts in the given rooms, as of at
// least stream position upto: it first waits until every event up to upto
// has been evaluated, so a /sync woken by an event reports counts that
// include it. It returns nil when evaluation is not running.
func (s *Service) Counts(ctx context.Context, userID string, roomIDs []string, upto int64) (map[string]RoomCounts, error) {
	w := s.worker
	if w == nil || len(roomIDs) == 0 {
		return nil, nil
	}
	if err := w.waitFor(ctx, upto, countsWait); err != nil {
		return nil, err
	}
	out := make(map[string]RoomCounts, len(roomIDs))
	var missing []string
	w.cmu.RLock()
	for _, id := range roomIDs {
		if u := w.unread[unreadKey(id, userID)]; u != nil {
			out[id] = u.counts()
		} else {
			missing = append(missing, id)
		}
	}
	w.cmu.RUnlock()
	if len(missing) == 0 {
		return out, nil
	}
	req := loadRequest{userID: userID, roomIDs: missing, done: make(chan struct{})}
	select {
	case w.loads <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-w.stopped:
		return out, nil
	}
	select {
	case <-req.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-w.stopped:
		return out, nil
	}
	w.cmu.RLock()
	defer w.cmu.RUnlock()
	for _, id := range missing {
		if u := w.unread[unreadKey(id, userID)]; u != nil {
			out[id] = u.counts()
		}
	}
	return out, nil
}

// unreadID identifies a user's unread state in a room.
type unreadID struct{ room, user string }

func unreadKey(roomID, userID string) unreadID { return unreadID{room: roomID, user: userID} }
