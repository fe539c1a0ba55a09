package syncapi

import (
	"testing"

	"github.com/aula-chat/aula/storage"
)

func eventAt(roomID string, pos int64) storage.Change {
	return storage.Change{Pos: pos, Kind: storage.ChangeEvent, RoomID: roomID,
		Event: &storage.Event{StreamPos: pos, RoomID: roomID, Type: "m.room.message", JSON: []byte(`{"content":{}}`)}}
}

// The recent lists of all rooms together hold at most recentHorizon
// positions: older entries go, and asking for them sends /sync to the
// database instead of returning an incomplete answer as complete.
func TestRecentListsAreTrimmedBehindTheHorizon(t *testing.T) {
	n := NewNotifier(0)
	n.OnChange(1, []storage.Change{eventAt("!quiet:x", 1)})
	const last = recentHorizon + 3*trimEvery
	for p := int64(2); p <= last; p++ {
		n.OnChange(p, []storage.Change{eventAt("!busy:x", p)})
	}

	// The quiet room's only event is far behind: its list is empty now.
	if q := n.rooms["!quiet:x"].recent; len(q.events) != 0 || q.events != nil {
		t.Errorf("quiet room still holds %d events", len(q.events))
	}
	if _, _, ok := n.recentAfter("!quiet:x", 0, last); ok {
		t.Error("quiet room: a /sync from before its event was answered from memory")
	}
	if evs, _, ok := n.recentAfter("!quiet:x", last-10, last); !ok || len(evs) != 0 {
		t.Errorf("quiet room, recent since: %d events, complete %v; want 0, true", len(evs), ok)
	}

	// The busy room keeps its newest maxRecent events.
	evs, _, ok := n.recentAfter("!busy:x", last-5, last)
	if !ok || len(evs) != 5 || evs[4].ev.StreamPos != last {
		t.Fatalf("busy room: %d events, complete %v", len(evs), ok)
	}
	if _, _, ok := n.recentAfter("!busy:x", 10, last); ok {
		t.Error("busy room: a /sync from far behind was answered from memory")
	}

	held := 0
	for _, r := range n.rooms {
		held += len(r.recent.events) + len(r.recent.receipts)
	}
	if held > maxRecent {
		t.Errorf("%d entries held", held)
	}
}

func TestTrimKeepsEntriesAfterTheHorizon(t *testing.T) {
	r := &recent{}
	for p := int64(1); p <= 10; p++ {
		r.addEvent(eventAt("!r:x", p))
		r.addReceipt(storage.Receipt{StreamPos: p})
	}
	r.trim(6)
	if r.complete != 6 || len(r.events) != 4 || r.events[0].ev.StreamPos != 7 || len(r.receipts) != 4 || r.receipts[0].StreamPos != 7 {
		t.Fatalf("after trim(6): complete %d, %d events, %d receipts", r.complete, len(r.events), len(r.receipts))
	}
	r.trim(3) // an older horizon changes nothing
	if r.complete != 6 || len(r.events) != 4 {
		t.Errorf("trim(3) changed the list: complete %d, %d events", r.complete, len(r.events))
	}
	if _, _, ok := r.after(5, 10); ok {
		t.Error("after(5) answered from a list complete only after 6")
	}
}

func TestRecentEventRelationsAndRedactions(t *testing.T) {
	r := &recent{}
	add := func(pos int64, typ, json string) {
		r.addEvent(storage.Change{Pos: pos, Kind: storage.ChangeEvent, RoomID: "!r:x",
			Event: &storage.Event{StreamPos: pos, EventID: "$" + string(rune('a'+pos)), Type: typ, JSON: []byte(json)}})
	}
	add(1, "m.room.message", `{"content":{"body":"x"}}`)
	add(2, "m.room.message", `{"content":{"m.relates_to":{"rel_type":"m.replace","event_id":"$b"}}}`)
	add(3, "m.room.message", `{"content":{"m.relates_to":{"rel_type":"m.annotation","event_id":"$b"}}}`)
	add(4, "m.room.message", `{"content":{"m.relates_to":{"rel_type":"m.thread","event_id":7}}}`)
	add(5, "m.room.redaction", `{"redacts":"$b","content":{}}`)             // room versions before 11
	add(6, "m.room.redaction", `{"content":{"redacts":"$d","reason":"x"}}`) // room version 11
	want := []struct {
		relatesTo string
		redacted  bool
	}{{"", false}, {"", true}, {"$b", false}, {"", true}, {"", false}, {"", false}, {"", false}}
	for i, e := range r.events {
		if e.relatesTo != want[i+1].relatesTo || e.redacted != want[i+1].redacted {
			t.Errorf("event %d: relatesTo %q redacted %v; want %+v", i+1, e.relatesTo, e.redacted, want[i+1])
		}
	}
}
