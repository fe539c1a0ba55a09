package push

import (
	"context"
	"time"
)

// maxUnread bounds what is remembered per user and room: the newest
// notifying events after the read receipt. Counts above it saturate.
const maxUnread = 1000

// Counts are the notification and highlight counts of a room or thread.
type Counts struct {
	Notifications int
	Highlights    int
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
// event depths) and the notifying events after the unthreaded one. Counts
// are derived from both when asked for; nothing is stored per event.
type unread struct {
	unthreaded int64            // depth of the newest unthreaded m.read / m.read.private
	threads    map[string]int64 // thread ("main" or root) → depth of its threaded receipt
	entries    []unreadEntry    // notifying events after unthreaded, by depth
}

type unreadEntry struct {
	depth     int64
	thread    string
	highlight bool
}

// add records a notifying event.
func (u *unread) add(e unreadEntry) {
	if e.depth <= u.unthreaded {
		return
	}
	u.entries = append(u.entries, e)
	if len(u.entries) > maxUnread {
		u.entries = append(u.entries[:0], u.entries[len(u.entries)-maxUnread:]...)
	}
}

// receipt moves a receipt forwards; thread is "" for an unthreaded one.
func (u *unread) receipt(thread string, depth int64) {
	if thread == "" {
		if depth <= u.unthreaded {
			return
		}
		u.unthreaded = depth
		keep := u.entries[:0]
		for _, e := range u.entries {
			if e.depth > depth {
				keep = append(keep, e)
			}
		}
		u.entries = keep
		for t, d := range u.threads {
			if d <= depth {
				delete(u.threads, t)
			}
		}
		return
	}
	if depth <= u.threads[thread] || depth <= u.unthreaded {
		return
	}
	if u.threads == nil {
		u.threads = map[string]int64{}
	}
	u.threads[thread] = depth
}

// counts derives the counts: an event is unread when it comes after both
// the unthreaded receipt and its thread's receipt.
func (u *unread) counts() RoomCounts {
	var rc RoomCounts
	for _, e := range u.entries {
		if e.depth <= u.threads[e.thread] {
			continue
		}
		c := Counts{Notifications: 1}
		if e.highlight {
			c.Highlights = 1
		}
		rc.Total.Notifications += c.Notifications
		rc.Total.Highlights += c.Highlights
		if e.thread == ThreadMain {
			rc.Main.Notifications += c.Notifications
			rc.Main.Highlights += c.Highlights
			continue
		}
		if rc.Threads == nil {
			rc.Threads = map[string]Counts{}
		}
		t := rc.Threads[e.thread]
		t.Notifications += c.Notifications
		t.Highlights += c.Highlights
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
