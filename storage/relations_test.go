package storage_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

// rlRoom appends made-up events to one room, one PersistEvents call per
// event, as the room server does. Event IDs are "$<room>.<depth>".
type rlRoom struct {
	t      *testing.T
	db     *storage.DB
	roomID string
	depth  int64
}

func rlNewRoom(t *testing.T, db *storage.DB, roomID string) *rlRoom {
	t.Helper()
	r := &rlRoom{t: t, db: db, roomID: roomID}
	key := ""
	r.persist(&storage.NewRoom{RoomID: roomID, Version: "11", Creator: "@alice:x"}, "m.room.create", &key, "@alice:x", map[string]any{}, 0, nil)
	return r
}

// persist stores one event with the given content and origin_server_ts and
// returns its ID.
func (r *rlRoom) persist(room *storage.NewRoom, typ string, stateKey *string, sender string, content any, ts int64, mod func(*storage.NewEvent)) string {
	r.t.Helper()
	r.depth++
	id := fmt.Sprintf("$%s.%d", r.roomID[1:], r.depth)
	pdu := map[string]any{"type": typ, "sender": sender, "content": content, "depth": r.depth, "origin_server_ts": ts, "room_id": r.roomID}
	if stateKey != nil {
		pdu["state_key"] = *stateKey
	}
	raw, err := json.Marshal(pdu)
	if err != nil {
		r.t.Fatal(err)
	}
	ev := storage.NewEvent{EventID: id, RoomID: r.roomID, Type: typ, StateKey: stateKey, Sender: sender, OriginTS: ts, Depth: r.depth, JSON: raw}
	if mod != nil {
		mod(&ev)
	}
	if _, err := r.db.PersistEvents(r.t.Context(), room, []storage.NewEvent{ev}); err != nil {
		r.t.Fatalf("persist %s: %v", id, err)
	}
	return id
}

// msg stores an m.room.message; rel, if not nil, is its m.relates_to.
func (r *rlRoom) msg(sender string, rel map[string]any) string {
	r.t.Helper()
	content := map[string]any{"msgtype": "m.text", "body": "hi"}
	if rel != nil {
		content["m.relates_to"] = rel
	}
	return r.persist(nil, "m.room.message", nil, sender, content, 1000+r.depth, nil)
}

// redact stores a redaction of target.
func (r *rlRoom) redact(sender, target string) string {
	r.t.Helper()
	return r.persist(nil, "m.room.redaction", nil, sender, map[string]any{"redacts": target}, 1000+r.depth, func(ev *storage.NewEvent) {
		ev.Redacts, ev.RedactedJSON = target, []byte(`{"type":"m.room.message","content":{}}`)
	})
}

func rlRel(relType, parent string) map[string]any {
	return map[string]any{"rel_type": relType, "event_id": parent}
}

func rlIDs(evs []storage.Event) []string {
	out := []string{}
	for _, ev := range evs {
		out = append(out, ev.EventID)
	}
	return out
}

func rlEqual(t *testing.T, what string, got, want []string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got == nil {
		got = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

func TestRelationsRecordedAndQueried(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		r := rlNewRoom(t, db, "!a:x")
		root := r.msg("@alice:x", nil)
		t1 := r.msg("@bob:x", rlRel("m.thread", root))
		ann := r.msg("@bob:x", rlRel("m.annotation", t1)) // a reaction to the thread reply
		ref := r.persist(nil, "m.key.verification.done", nil, "@bob:x", map[string]any{"m.relates_to": rlRel("m.reference", root)}, 5, nil)
		t2 := r.msg("@alice:x", rlRel("m.thread", root))
		deep := r.msg("@bob:x", rlRel("m.annotation", ann)) // three levels down
		deeper := r.msg("@bob:x", rlRel("m.annotation", deep))
		// Not relations: bad shapes, another room's parent does not matter here.
		r.msg("@bob:x", map[string]any{"rel_type": "m.thread"})
		r.msg("@bob:x", map[string]any{"rel_type": 5, "event_id": root})
		r.msg("@bob:x", map[string]any{"rel_type": "", "event_id": root})
		r.msg("@bob:x", map[string]any{"m.in_reply_to": map[string]any{"event_id": root}})
		r.persist(nil, "m.room.message", nil, "@bob:x", map[string]any{"m.relates_to": "nope"}, 1, nil)
		// A NUL cannot be stored in PostgreSQL text: the relation is
		// skipped and the event still stored.
		nul := r.msg("@bob:x", rlRel("m.thread\x00", root))
		if _, err := db.Event(ctx, nul); err != nil {
			t.Fatalf("event with a NUL relation not stored: %v", err)
		}

		rels := func(q storage.RelationsQuery) []string {
			t.Helper()
			q.RoomID, q.EventID = "!a:x", root
			if q.Limit == 0 {
				q.Limit = 100
			}
			evs, err := db.Relations(ctx, q)
			if err != nil {
				t.Fatalf("Relations(%+v): %v", q, err)
			}
			return rlIDs(evs)
		}
		rlEqual(t, "direct, newest first", rels(storage.RelationsQuery{Backwards: true}), []string{t2, ref, t1})
		rlEqual(t, "direct, oldest first", rels(storage.RelationsQuery{}), []string{t1, ref, t2})
		rlEqual(t, "rel_type", rels(storage.RelationsQuery{RelType: "m.thread"}), []string{t1, t2})
		rlEqual(t, "rel_type and type", rels(storage.RelationsQuery{RelType: "m.reference", EventType: "m.key.verification.done"}), []string{ref})
		rlEqual(t, "type of another rel_type", rels(storage.RelationsQuery{RelType: "m.thread", EventType: "m.key.verification.done"}), nil)
		rlEqual(t, "limit", rels(storage.RelationsQuery{Backwards: true, Limit: 2}), []string{t2, ref})
		d := func(id string) int64 {
			ev, err := db.Event(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return ev.Depth
		}
		rlEqual(t, "depth window", rels(storage.RelationsQuery{After: d(t1), Before: d(t2)}), []string{ref})
		rlEqual(t, "three levels", rels(storage.RelationsQuery{Levels: 3}), []string{t1, ann, ref, t2, deep})
		rlEqual(t, "four levels", rels(storage.RelationsQuery{Levels: 4, Backwards: true}), []string{deeper, deep, t2, ref, ann, t1})
		// Filters apply at every level: the annotation's children are
		// reached only through it.
		rlEqual(t, "recursive with rel_type", rels(storage.RelationsQuery{Levels: 3, RelType: "m.annotation"}), nil)
		rlEqual(t, "recursive with rel_type", rels(storage.RelationsQuery{Levels: 3, RelType: "m.thread"}), []string{t1, t2})
		rlEqual(t, "recursive, window", rels(storage.RelationsQuery{Levels: 3, After: d(t1), Before: d(deep)}), []string{ann, ref, t2})

		// Relations are per room: the same parent ID seen from another
		// room has no children there.
		if evs, err := db.Relations(ctx, storage.RelationsQuery{RoomID: "!b:x", EventID: root, Limit: 10}); err != nil || len(evs) != 0 {
			t.Errorf("other room: %v %v", rlIDs(evs), err)
		}

		children, err := db.Children(ctx, "!a:x", []string{root, t1}, []string{"m.thread", "m.annotation"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range children {
			got = append(got, c.RelType+" "+c.EventID+"->"+c.Parent+" "+c.Sender+" "+c.Type)
		}
		rlEqual(t, "children", got, []string{
			"m.thread " + t1 + "->" + root + " @bob:x m.room.message",
			"m.annotation " + ann + "->" + t1 + " @bob:x m.room.message",
			"m.thread " + t2 + "->" + root + " @alice:x m.room.message",
		})

		if relType, parent, err := db.RelationOf(ctx, t1); err != nil || relType != "m.thread" || parent != root {
			t.Errorf("RelationOf(t1) = %q %q %v", relType, parent, err)
		}
		if _, _, err := db.RelationOf(ctx, root); err != storage.ErrNotFound {
			t.Errorf("RelationOf(root): %v, want ErrNotFound", err)
		}
	})
}

func TestEditsValidity(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		r := rlNewRoom(t, db, "!e:x")
		edit := func(sender, typ, target string, ts int64) string {
			return r.persist(nil, typ, nil, sender, map[string]any{
				"m.new_content": map[string]any{"body": "new"}, "m.relates_to": rlRel("m.replace", target),
			}, ts, nil)
		}
		orig := r.msg("@alice:x", nil)
		e1 := edit("@alice:x", "m.room.message", orig, 3000)
		e2 := edit("@alice:x", "m.room.message", orig, 2000) // older by timestamp, though sent later
		edit("@bob:x", "m.room.message", orig, 9000)         // another sender
		edit("@alice:x", "m.sticker", orig, 9000)            // another type
		key := ""
		edit("@alice:x", "m.room.message", e1, 9000) // an edit of an edit
		stateEdit := r.persist(nil, "m.room.message", &key, "@alice:x", map[string]any{"m.relates_to": rlRel("m.replace", orig)}, 9000, nil)
		state := r.persist(nil, "m.room.topic", &key, "@alice:x", map[string]any{"topic": "t"}, 1, nil)
		edit("@alice:x", "m.room.topic", state, 9000) // editing state
		same1 := edit("@alice:x", "m.room.message", orig, 3000)
		_ = stateEdit

		other := r.msg("@alice:x", nil)
		o1 := edit("@alice:x", "m.room.message", other, 10)
		redacted := r.msg("@alice:x", nil)
		edit("@alice:x", "m.room.message", redacted, 10)
		r.redact("@alice:x", redacted)

		eds, err := db.Edits(ctx, "!e:x", []string{orig, other, redacted, state, e1})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ed := range eds {
			got = append(got, ed.Original+" "+ed.Event.EventID)
		}
		// Newest first; equal timestamps by event ID, largest first.
		first, second := e1, same1
		if second > first {
			first, second = second, first
		}
		rlEqual(t, "valid edits", got, []string{orig + " " + first, orig + " " + second, orig + " " + e2, other + " " + o1})
		if len(eds) > 0 && len(eds[0].Event.JSON) == 0 {
			t.Errorf("edit without JSON")
		}
	})
}

func TestRelationsRedactedAndThreads(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		r := rlNewRoom(t, db, "!t:x")
		threads := func(through int64, participant string, limit int) []string {
			t.Helper()
			ts, err := db.Threads(ctx, "!t:x", through, participant, limit)
			if err != nil {
				t.Fatal(err)
			}
			out := []string{}
			for _, th := range ts {
				out = append(out, fmt.Sprintf("%s@%d", th.RootID, th.LatestDepth))
			}
			return out
		}
		a := r.msg("@alice:x", nil) // depth 2
		b := r.msg("@bob:x", nil)   // 3
		a1 := r.msg("@bob:x", rlRel("m.thread", a))
		b1 := r.msg("@carol:x", rlRel("m.thread", b))
		a2 := r.msg("@bob:x", rlRel("m.thread", a)) // 6
		rlEqual(t, "threads", threads(0, "", 10), []string{a + "@6", b + "@5"})
		rlEqual(t, "limit", threads(0, "", 1), []string{a + "@6"})
		rlEqual(t, "through", threads(5, "", 10), []string{b + "@5"})
		rlEqual(t, "root sender takes part", threads(0, "@alice:x", 10), []string{a + "@6"})
		rlEqual(t, "reply sender takes part", threads(0, "@carol:x", 10), []string{b + "@5"})
		rlEqual(t, "no part", threads(0, "@dave:x", 10), nil)

		// Redacting the latest reply moves the thread back; redacting the
		// last one ends it; the relation is gone from every query.
		r.redact("@bob:x", a2)
		rlEqual(t, "after redacting the latest reply", threads(0, "", 10), []string{b + "@5", a + "@4"})
		evs, err := db.Relations(ctx, storage.RelationsQuery{RoomID: "!t:x", EventID: a, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		rlEqual(t, "relations after redaction", rlIDs(evs), []string{a1})
		if _, _, err := db.RelationOf(ctx, a2); err != storage.ErrNotFound {
			t.Errorf("RelationOf(redacted) = %v, want ErrNotFound", err)
		}
		r.redact("@carol:x", b1)
		rlEqual(t, "after redacting the only reply", threads(0, "", 10), []string{a + "@4"})
		// Redacting the root keeps the thread (its children remain).
		r.redact("@alice:x", a)
		rlEqual(t, "after redacting the root", threads(0, "", 10), []string{a + "@4"})
		// A second redaction of the same event changes nothing.
		r.persist(nil, "m.room.redaction", nil, "@bob:x", map[string]any{"redacts": a1}, 1, func(ev *storage.NewEvent) {
			ev.Redacts, ev.RedactedJSON = a1, []byte(`{"content":{}}`)
		})
		rlEqual(t, "after redacting the last reply", threads(0, "", 10), nil)
		r.persist(nil, "m.room.redaction", nil, "@bob:x", map[string]any{"redacts": a1}, 1, func(ev *storage.NewEvent) {
			ev.Redacts = a1 // already redacted: the room server sends no new JSON
		})
		rlEqual(t, "after a repeated redaction", threads(0, "", 10), nil)
	})
}

// Events stored before migration 0003 get their relations and threads
// when it runs.
func TestRelationsMigrationBackfill(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		r := rlNewRoom(t, db, "!m:x")
		root := r.msg("@alice:x", nil)
		t1 := r.msg("@bob:x", rlRel("m.thread", root))
		ref := r.msg("@bob:x", rlRel("m.reference", root))
		r.persist(nil, "m.room.message", nil, "@bob:x", map[string]any{"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": 7}}, 1, nil)
		r.persist(nil, "m.room.message", nil, "@bob:x", map[string]any{"m.relates_to": []any{1}}, 1, nil)
		r.persist(nil, "m.room.message", nil, "@bob:x", map[string]any{"body": "x\x00", "m.relates_to": rlRel("m.thread", root)}, 1, nil)
		t2 := r.msg("@bob:x", rlRel("m.thread", root))

		// Run the migration again on these events. (Later migrations
		// exist, so schema_migrations cannot simply be rewound.)
		engine := "postgres"
		if strings.HasPrefix(dsn, "sqlite:") {
			engine = "sqlite"
		}
		migration, err := os.ReadFile(filepath.Join("schema", engine, "0003_relations.sql"))
		if err != nil {
			t.Fatal(err)
		}
		raw := storagetest.RawDB(t, dsn)
		for _, stmt := range []string{`DROP TABLE threads`, `DROP TABLE event_relations`, string(migration)} {
			if _, err := raw.ExecContext(ctx, stmt); err != nil {
				t.Fatalf("%.40s: %v", stmt, err)
			}
		}
		evs, err := db.Relations(ctx, storage.RelationsQuery{RoomID: "!m:x", EventID: root, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		rlEqual(t, "backfilled relations", rlIDs(evs), []string{t1, ref, t2})
		ts, err := db.Threads(ctx, "!m:x", 0, "@bob:x", 10)
		if err != nil || len(ts) != 1 || ts[0].RootID != root || ts[0].LatestDepth != r.depth {
			t.Errorf("backfilled threads: %+v %v", ts, err)
		}
	})
}
