package storage_test

import (
	"testing"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

// at sets an event's origin_server_ts.
func at(ts int64) func(*storage.NewEvent) { return func(ev *storage.NewEvent) { ev.OriginTS = ts } }

// TestRetentionBatch: only old non-state events are returned, the walk
// stops at the first event that is not old enough, and rewritten events
// are not returned again.
func TestRetentionBatch(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		b := rtNewRoom(t, db, "!ret:x")
		m1 := b.add(false, "m.room.message", nil, "@alice:x", map[string]any{"body": "one"}, at(100))
		b.add(false, "m.room.name", rtPtr(""), "@alice:x", map[string]any{"name": "kept"}, at(100))
		m2 := b.add(false, "m.room.message", nil, "@alice:x", map[string]any{"body": "two"}, at(100))
		young := b.add(false, "m.room.message", nil, "@alice:x", map[string]any{"body": "young"}, at(5000))
		b.add(false, "m.room.message", nil, "@alice:x", map[string]any{"body": "old after young"}, at(100))

		evs, upto, err := db.RetentionBatch(ctx, b.roomID, 1000, 10)
		if err != nil {
			t.Fatal(err)
		}
		rtWantIDs(t, "batch", evs, m1, m2)
		youngEv, err := db.Event(ctx, young)
		if err != nil {
			t.Fatal(err)
		}
		if upto != youngEv.Depth-1 {
			t.Errorf("upto = %d, want %d", upto, youngEv.Depth-1)
		}
		rw := []storage.Rewrite{{EventID: m1, JSON: []byte(`{"type":"m.room.message","content":{}}`)}, {EventID: m2, JSON: []byte(`{"type":"m.room.message","content":{}}`)}}
		if err := db.RewriteEvents(ctx, b.roomID, rw, upto); err != nil {
			t.Fatal(err)
		}
		got, err := db.Event(ctx, m1)
		if err != nil || string(got.JSON) != `{"type":"m.room.message","content":{}}` {
			t.Errorf("m1 after rewrite = %s, %v", got.JSON, err)
		}
		if evs, upto, err := db.RetentionBatch(ctx, b.roomID, 1000, 10); err != nil || len(evs) != 0 || upto != 0 {
			t.Errorf("second batch = %v, %d, %v; want nothing", rtEventIDs(evs), upto, err)
		}
		// Later everything is old; the limit bounds a batch.
		evs, upto, err = db.RetentionBatch(ctx, b.roomID, 10000, 1)
		if err != nil || len(evs) != 1 || evs[0].EventID != young || upto != youngEv.Depth {
			t.Errorf("limited batch = %v, %d, %v; want [%s], %d", rtEventIDs(evs), upto, err, young, youngEv.Depth)
		}
	})
}

// TestErasableEvents: a user's non-state events and every member event
// about them, not the room state they set.
func TestErasableEvents(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		b := rtNewRoom(t, db, "!era:x")
		bob := "@bob:x"
		invite := b.add(false, "m.room.member", &bob, "@alice:x", map[string]any{"membership": "invite", "displayname": "Bob"}, nil)
		join := b.member(bob, "join")
		b.add(false, "m.room.topic", rtPtr(""), bob, map[string]any{"topic": "bob's topic"}, nil)
		msg := b.message(bob, "hello")
		b.message("@alice:x", "not bob's")
		evs, err := db.ErasableEvents(t.Context(), bob, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		rtWantIDs(t, "erasable", evs, invite, join, msg)
		evs, err = db.ErasableEvents(t.Context(), bob, evs[0].StreamPos, 1)
		if err != nil {
			t.Fatal(err)
		}
		rtWantIDs(t, "erasable after the first, limit 1", evs, join)
	})
}
