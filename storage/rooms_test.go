package storage_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

// rtRoom appends made-up events to one room, as the room server
// would: consecutive depths, one PersistEvents call per event.
type rtRoom struct {
	t      *testing.T
	db     *storage.DB
	roomID string
	depth  int64
	ids    []string // by depth - 1
}

func rtNewRoom(t *testing.T, db *storage.DB, roomID string) *rtRoom {
	t.Helper()
	b := &rtRoom{t: t, db: db, roomID: roomID}
	b.add(true, "m.room.create", rtPtr(""), "@alice:x", map[string]any{"room_version": "11"}, nil)
	return b
}

func rtPtr(s string) *string { return &s }

// add persists one event and returns its ID.
func (b *rtRoom) add(first bool, typ string, stateKey *string, sender string, content map[string]any, mod func(*storage.NewEvent)) string {
	b.t.Helper()
	b.depth++
	id := fmt.Sprintf("$%s-%d", b.roomID[1:3], b.depth)
	raw, _ := json.Marshal(map[string]any{"type": typ, "state_key": stateKey, "sender": sender, "content": content, "depth": b.depth})
	ev := storage.NewEvent{EventID: id, RoomID: b.roomID, Type: typ, StateKey: stateKey, Sender: sender, Depth: b.depth, JSON: raw}
	if m, ok := content["membership"].(string); ok && typ == "m.room.member" {
		ev.Membership = m
	}
	if mod != nil {
		mod(&ev)
	}
	var room *storage.NewRoom
	if first {
		room = &storage.NewRoom{RoomID: b.roomID, Version: "11", Creator: sender}
	}
	if _, err := b.db.PersistEvents(b.t.Context(), room, []storage.NewEvent{ev}); err != nil {
		b.t.Fatalf("persist %s: %v", id, err)
	}
	b.ids = append(b.ids, id)
	return id
}

func (b *rtRoom) message(sender, body string) string {
	b.t.Helper()
	return b.add(false, "m.room.message", nil, sender, map[string]any{"body": body}, nil)
}

func (b *rtRoom) member(userID, membership string) string {
	b.t.Helper()
	return b.add(false, "m.room.member", &userID, userID, map[string]any{"membership": membership}, nil)
}

func (b *rtRoom) state(typ, key string, content map[string]any) string {
	b.t.Helper()
	return b.add(false, typ, &key, "@alice:x", content, nil)
}

func rtEventIDs(evs []storage.Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.EventID)
	}
	return out
}

func rtWantIDs(t *testing.T, what string, got []storage.Event, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if g := rtEventIDs(got); !slices.Equal(g, want) {
		t.Errorf("%s = %v, want %v", what, g, want)
	}
}

func TestRoomEventsAndState(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		r := rtNewRoom(t, db, "!aa:x")                                        // 1 create
		r.member("@alice:x", "join")                                          // 2
		topic1 := r.state("m.room.topic", "", map[string]any{"topic": "one"}) // 3
		m4 := r.message("@alice:x", "four")                                   // 4
		r.member("@bob:x", "join")                                            // 5
		topic2 := r.state("m.room.topic", "", map[string]any{"topic": "two"}) // 6
		m7 := r.message("@bob:x", "seven")                                    // 7
		r.member("@bob:x", "leave")                                           // 8
		other := rtNewRoom(t, db, "!bb:x")                                    // another room, interleaved
		other.message("@alice:x", "elsewhere")

		info, err := db.Room(ctx, "!aa:x")
		if err != nil || info.LatestDepth != 8 || info.LatestEventID != r.ids[7] || info.Version != "11" {
			t.Fatalf("Room = %+v, %v", info, err)
		}
		if _, err := db.Room(ctx, "!zz:x"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("unknown room: %v", err)
		}

		// RoomEvents: the open interval (after, before), either way.
		ev, err := db.RoomEvents(ctx, "!aa:x", 3, 7, false, 10)
		rtWantIDs(t, "(3,7) forwards", ev, r.ids[3:6]...)
		if err != nil {
			t.Fatal(err)
		}
		ev, _ = db.RoomEvents(ctx, "!aa:x", 3, 7, true, 2)
		rtWantIDs(t, "(3,7) backwards, 2", ev, r.ids[5], r.ids[4])
		ev, _ = db.RoomEvents(ctx, "!aa:x", 6, 0, false, 10)
		rtWantIDs(t, "after 6", ev, r.ids[6:]...)
		ev, _ = db.RoomEvents(ctx, "!aa:x", 0, 0, true, 3)
		rtWantIDs(t, "newest 3", ev, r.ids[7], r.ids[6], r.ids[5])
		ev, _ = db.RoomEvents(ctx, "!aa:x", 0, 0, false, 0)
		rtWantIDs(t, "limit 0", ev)

		// State at a depth, and now.
		st, _ := db.StateAt(ctx, "!aa:x", 4)
		rtWantIDs(t, "state at 4", st, r.ids[0], r.ids[1], topic1)
		st, _ = db.StateAt(ctx, "!aa:x", 6)
		rtWantIDs(t, "state at 6", st, r.ids[0], r.ids[1], r.ids[4], topic2)
		st, _ = db.CurrentState(ctx, "!aa:x")
		rtWantIDs(t, "current state", st, r.ids[0], r.ids[1], topic2, r.ids[7])
		for d, want := range map[int64]string{3: topic1, 5: topic1, 6: topic2, 8: topic2, 0: topic2} {
			e, err := db.StateEventAt(ctx, "!aa:x", "m.room.topic", "", d)
			if err != nil || e.EventID != want {
				t.Errorf("StateEventAt(topic, %d) = %s, %v; want %s", d, e.EventID, err, want)
			}
		}
		if _, err := db.StateEventAt(ctx, "!aa:x", "m.room.topic", "", 2); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("topic before it was set: %v", err)
		}
		// StateEventsAt: several keys of one type at once.
		st, _ = db.StateEventsAt(ctx, "!aa:x", "m.room.member", []string{"@alice:x", "@bob:x", "@nobody:x"}, 7)
		rtWantIDs(t, "members at 7", st, r.ids[1], r.ids[4])
		st, _ = db.StateEventsAt(ctx, "!aa:x", "m.room.member", []string{"@bob:x"}, 0)
		rtWantIDs(t, "bob now", st, r.ids[7])
		st, _ = db.StateEventsAt(ctx, "!aa:x", "m.room.member", []string{"@bob:x"}, 4)
		rtWantIDs(t, "bob before joining", st)
		st, _ = db.StateEventsAt(ctx, "!aa:x", "m.room.member", nil, 0)
		rtWantIDs(t, "no keys", st)
		// RoomMembers at a depth, and now.
		st, _ = db.RoomMembers(ctx, "!aa:x", 4)
		rtWantIDs(t, "members at 4", st, r.ids[1])
		st, _ = db.RoomMembers(ctx, "!aa:x", 0)
		rtWantIDs(t, "members now", st, r.ids[1], r.ids[7])

		// VisibilityIntervals: Bob's membership over time (the room has no
		// history visibility event).
		vis, ivs, err := db.VisibilityIntervals(ctx, "!aa:x", "@bob:x")
		if err != nil || len(vis) != 0 || len(ivs) != 2 || ivs[0].FromDepth != 5 || ivs[0].ToDepth != 8 || ivs[0].Membership != "join" ||
			ivs[1].FromDepth != 8 || ivs[1].ToDepth != 0 || ivs[1].Membership != "leave" || ivs[1].EventID != r.ids[7] {
			t.Errorf("VisibilityIntervals = %+v %+v, %v", vis, ivs, err)
		}

		// EventsByID: several at once, unknown ones left out.
		byID, err := db.EventsByID(ctx, []string{m4, m7, "$unknown", other.ids[1]})
		if err != nil || len(byID) != 3 || byID[m4].Depth != 4 || byID[m7].Sender != "@bob:x" || byID[other.ids[1]].RoomID != "!bb:x" {
			t.Errorf("EventsByID = %+v, %v", byID, err)
		}
		if byID, err := db.EventsByID(ctx, nil); err != nil || len(byID) != 0 {
			t.Errorf("EventsByID(nil) = %v, %v", byID, err)
		}

		// DepthAtStream maps global stream positions to this room's depths.
		e7, _ := db.Event(ctx, m7)
		for pos, want := range map[int64]int64{0: 0, e7.StreamPos: 7} {
			if d, err := db.DepthAtStream(ctx, "!aa:x", pos); err != nil || d != want {
				t.Errorf("DepthAtStream(%d) = %d, %v; want %d", pos, d, err, want)
			}
		}
		now, _ := db.StreamPosition(ctx)
		if d, _ := db.DepthAtStream(ctx, "!aa:x", now); d != 8 {
			t.Errorf("DepthAtStream(now) = %d, want 8 (the other room's later event does not count)", d)
		}
		if d, _ := db.DepthAtStream(ctx, "!zz:x", now); d != 0 {
			t.Errorf("DepthAtStream(unknown room) = %d", d)
		}
	})
}

func TestRoomRedactionTxnsAndForget(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		r := rtNewRoom(t, db, "!aa:x")
		r.member("@alice:x", "join")
		msg := r.message("@alice:x", "secret")
		txn := storage.Txn{UserID: "@alice:x", DeviceID: "D", TxnID: `["redact","!aa:x","` + msg + `","1"]`}
		red := r.add(false, "m.room.redaction", nil, "@alice:x", map[string]any{"redacts": msg}, func(ne *storage.NewEvent) {
			ne.Redacts, ne.RedactedJSON, ne.Txn = msg, []byte(`{"type":"m.room.message","content":{}}`), txn
		})
		e, err := db.Event(ctx, msg)
		if err != nil || e.RedactedBy != red || string(e.JSON) != `{"type":"m.room.message","content":{}}` {
			t.Fatalf("redacted event = %+v, %v", e, err)
		}
		if id, err := db.TxnEvent(ctx, txn); err != nil || id != red {
			t.Fatalf("TxnEvent = %s, %v", id, err)
		}
		for _, other := range []storage.Txn{{UserID: "@alice:x", DeviceID: "E", TxnID: txn.TxnID}, {UserID: "@bob:x", DeviceID: "D", TxnID: txn.TxnID}, {UserID: "@alice:x", DeviceID: "D", TxnID: "1"}} {
			if _, err := db.TxnEvent(ctx, other); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("TxnEvent(%+v): %v, want not found", other, err)
			}
		}
		// A redaction of an event of another room changes nothing there.
		o := rtNewRoom(t, db, "!bb:x")
		elsewhere := o.message("@alice:x", "elsewhere")
		r.add(false, "m.room.redaction", nil, "@alice:x", map[string]any{}, func(ne *storage.NewEvent) {
			ne.Redacts, ne.RedactedJSON = elsewhere, []byte(`{}`)
		})
		if e, _ := db.Event(ctx, elsewhere); e.RedactedBy != "" {
			t.Errorf("cross-room redaction applied: %+v", e)
		}

		// Forgotten: set by ForgetRoom, cleared by joining again.
		r.member("@bob:x", "join")
		r.member("@bob:x", "leave")
		if f, err := db.Forgotten(ctx, "@bob:x", "!aa:x"); err != nil || f {
			t.Fatalf("Forgotten before forgetting = %v, %v", f, err)
		}
		if err := db.ForgetRoom(ctx, "@bob:x", "!aa:x"); err != nil {
			t.Fatal(err)
		}
		if err := db.ForgetRoom(ctx, "@bob:x", "!aa:x"); err != nil {
			t.Fatalf("forgetting twice: %v", err)
		}
		if f, _ := db.Forgotten(ctx, "@bob:x", "!aa:x"); !f {
			t.Fatal("not forgotten")
		}
		if f, _ := db.Forgotten(ctx, "@bob:x", "!bb:x"); f {
			t.Fatal("another room forgotten")
		}
		ms, _ := db.MembershipsOf(ctx, "@bob:x")
		if len(ms) != 0 {
			t.Errorf("MembershipsOf lists a forgotten room: %+v", ms)
		}
		r.member("@bob:x", "join")
		if f, _ := db.Forgotten(ctx, "@bob:x", "!aa:x"); f {
			t.Fatal("still forgotten after joining again")
		}
		ms, _ = db.MembershipsOf(ctx, "@bob:x")
		if len(ms) != 1 || ms[0].Membership != "join" || ms[0].RoomID != "!aa:x" {
			t.Errorf("MembershipsOf = %+v", ms)
		}
	})
}
