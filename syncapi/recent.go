package syncapi

import (
	"github.com/tidwall/gjson"

	"github.com/aula-chat/aula/storage"
)

// maxRecent is how many of a room's latest events and receipts the
// notifier keeps in memory: enough for every woken /sync of a busy room to
// find what it missed without a query.
const maxRecent = 64

// recentHorizon bounds the notifier's memory across rooms: entries more
// than this many stream positions behind the newest are dropped from every
// room's list (every trimEvery changes), so at most this many events and
// receipts are held in all, however many rooms have been active. A /sync
// from further back reads the database, as it would after a restart.
const (
	recentHorizon = 20000
	trimEvery     = 1024
)

// recentEvent is an event of a room's recent list.
type recentEvent struct {
	ev  storage.Event
	txn storage.Txn
	// redacted is set when a later redaction removed the event's content:
	// the copy here predates it.
	redacted bool
	// relatesTo is the event a relation that clients see bundled
	// (m.replace, m.thread, m.reference) points at, or "".
	relatesTo string
}

// recent is a room's latest events and receipts since the notifier
// started. Every event and receipt of the room after complete is in the
// lists, oldest first.
type recent struct {
	complete int64
	events   []recentEvent
	receipts []storage.Receipt
}

// addEvent appends an event, dropping the oldest beyond maxRecent.
func (r *recent) addEvent(c storage.Change) {
	re := recentEvent{ev: *c.Event, txn: c.Txn}
	// gjson picks the few fields out without decoding the whole event,
	// which matters because every event sent passes here.
	f := gjson.GetManyBytes(c.Event.JSON, "content.m\\.relates_to.rel_type", "content.m\\.relates_to.event_id",
		"redacts", "content.redacts")
	switch f[0].Str {
	case "m.replace", "m.thread", "m.reference":
		if f[1].Type == gjson.String {
			re.relatesTo = f[1].Str
		}
	}
	if c.Event.Type == "m.room.redaction" {
		target := f[2].Str
		if target == "" {
			target = f[3].Str
		}
		for i := range r.events {
			if r.events[i].ev.EventID == target {
				r.events[i].redacted = true
			}
		}
	}
	if len(r.events) == maxRecent {
		r.complete = max(r.complete, r.events[0].ev.StreamPos)
		r.events = append(r.events[:0], r.events[1:]...)
	}
	r.events = append(r.events, re)
}

// addReceipt appends a receipt, dropping the oldest beyond maxRecent.
func (r *recent) addReceipt(rc storage.Receipt) {
	if len(r.receipts) == maxRecent {
		r.complete = max(r.complete, r.receipts[0].StreamPos)
		r.receipts = append(r.receipts[:0], r.receipts[1:]...)
	}
	r.receipts = append(r.receipts, rc)
}

// trim drops the entries at or below horizon. The list is then complete
// only after horizon.
func (r *recent) trim(horizon int64) {
	if r.complete >= horizon {
		return
	}
	r.complete = horizon
	r.events = trimmed(r.events, func(e recentEvent) bool { return e.ev.StreamPos <= horizon })
	r.receipts = trimmed(r.receipts, func(rc storage.Receipt) bool { return rc.StreamPos <= horizon })
}

// trimmed removes the leading entries old reports true for (the lists are
// oldest first), releasing the list's memory when nothing is left.
func trimmed[T any](list []T, old func(T) bool) []T {
	n := 0
	for n < len(list) && old(list[n]) {
		n++
	}
	if n == len(list) {
		return nil
	}
	if n == 0 {
		return list
	}
	return append(list[:0], list[n:]...)
}

// after returns copies of the events and receipts after since up to upto,
// and whether the lists are complete for that range.
func (r *recent) after(since, upto int64) ([]recentEvent, []storage.Receipt, bool) {
	if r == nil {
		return nil, nil, true
	}
	if r.complete > since {
		return nil, nil, false
	}
	var evs []recentEvent
	for _, e := range r.events {
		if e.ev.StreamPos > since && e.ev.StreamPos <= upto {
			evs = append(evs, e)
		}
	}
	var rcs []storage.Receipt
	for _, rc := range r.receipts {
		if rc.StreamPos > since && rc.StreamPos <= upto {
			rcs = append(rcs, rc)
		}
	}
	return evs, rcs, true
}

// recentAfter returns copies of a room's events and receipts after since
// up to upto from the notifier's memory, and whether memory holds all of
// them (it knows nothing from before the notifier started).
func (n *Notifier) recentAfter(roomID string, since, upto int64) ([]recentEvent, []storage.Receipt, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if since < n.start {
		return nil, nil, false
	}
	var r *recent
	if w := n.rooms[roomID]; w != nil {
		r = w.recent
	}
	return r.after(since, upto)
}

// maxRecentPresence is how many of the latest presence changes (of all
// users) the notifier keeps in memory.
const maxRecentPresence = 1024

// recentPresence is the latest presence changes since the notifier
// started: every change after complete is in the list, oldest first.
type recentPresence struct {
	complete int64
	list     []storage.Presence
}

func (r *recentPresence) add(p storage.Presence) {
	if len(r.list) == maxRecentPresence {
		r.complete = max(r.complete, r.list[0].StreamPos)
		r.list = append(r.list[:0], r.list[1:]...)
	}
	r.list = append(r.list, p)
}
