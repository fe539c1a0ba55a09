package storage_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

// changeLog records what the stream publishes.
type changeLog struct {
	mu     sync.Mutex
	events []string // event IDs in publication order
	last   int64
	order  error // the first position that went backwards
}

func (l *changeLog) listen(db *storage.DB) {
	db.OnChange(func(pos int64, changes []storage.Change) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if pos <= l.last && l.order == nil {
			l.order = fmt.Errorf("position %d published after %d", pos, l.last)
		}
		l.last = pos
		for _, c := range changes {
			if c.Kind == storage.ChangeEvent {
				l.events = append(l.events, c.Event.EventID)
			}
		}
	})
}

func message(roomID, id string, depth int64, body string, txn storage.Txn) storage.NewEvent {
	raw, _ := json.Marshal(map[string]any{"type": "m.room.message", "room_id": roomID, "sender": "@alice:x",
		"content": map[string]any{"msgtype": "m.text", "body": body}, "depth": depth})
	return storage.NewEvent{EventID: id, RoomID: roomID, Type: "m.room.message", Sender: "@alice:x", Depth: depth, JSON: raw, Txn: txn}
}

// TestMessagesOfManyRoomsAtOnce sends into many rooms concurrently, as the
// room server does (one writer per room). On PostgreSQL the messages are
// stored in batches; nothing may be lost, duplicated or reordered, and
// everything a message brings (search text, transaction ID, the change for
// /sync) must be there.
func TestMessagesOfManyRoomsAtOnce(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		var log changeLog
		log.listen(db)
		const rooms, perRoom = 16, 25
		var wg sync.WaitGroup
		errs := make(chan error, rooms)
		for r := range rooms {
			room := rtNewRoom(t, db, fmt.Sprintf("!%c%c:x", 'a'+r, 'a'+r))
			wg.Go(func() {
				for i := range perRoom {
					depth := int64(i + 2)
					id := fmt.Sprintf("$%s-%d", room.roomID[1:3], depth)
					txn := storage.Txn{UserID: "@alice:x", DeviceID: "D", TxnID: id}
					ev := message(room.roomID, id, depth, fmt.Sprintf("hello word%d%d", r, i), txn)
					if _, err := db.PersistEvents(ctx, nil, []storage.NewEvent{ev}); err != nil {
						errs <- fmt.Errorf("persist %s: %w", id, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}

		var published []string
		log.mu.Lock()
		published = slices.Clone(log.events)
		if log.order != nil {
			t.Error(log.order)
		}
		log.mu.Unlock()
		if len(published) != rooms*(perRoom+1) {
			t.Fatalf("published %d events, want %d", len(published), rooms*(perRoom+1))
		}
		seen := map[string]bool{}
		for _, id := range published {
			if seen[id] {
				t.Fatalf("%s published twice", id)
			}
			seen[id] = true
		}
		positions := map[int64]string{}
		for r := range rooms {
			roomID := fmt.Sprintf("!%c%c:x", 'a'+r, 'a'+r)
			evs, err := db.RoomEvents(ctx, roomID, 0, 0, false, 100)
			if err != nil || len(evs) != perRoom+1 {
				t.Fatalf("RoomEvents(%s) = %d events, %v", roomID, len(evs), err)
			}
			for i, e := range evs[1:] {
				want := fmt.Sprintf("$%s-%d", roomID[1:3], i+2)
				if e.EventID != want || e.Depth != int64(i+2) {
					t.Fatalf("%s event %d = %s at depth %d, want %s", roomID, i, e.EventID, e.Depth, want)
				}
				if other, dup := positions[e.StreamPos]; dup {
					t.Fatalf("%s and %s share stream position %d", other, e.EventID, e.StreamPos)
				}
				positions[e.StreamPos] = e.EventID
				if got, err := db.TxnEvent(ctx, storage.Txn{UserID: "@alice:x", DeviceID: "D", TxnID: want}); err != nil || got != want {
					t.Fatalf("TxnEvent(%s) = %s, %v", want, got, err)
				}
			}
			hits, err := db.SearchEvents(ctx, storage.SearchQuery{Term: fmt.Sprintf("word%d%d", r, perRoom-1),
				RoomIDs: []string{roomID}, Types: []string{"m.room.message"}, Limit: 10})
			if err != nil || len(hits) != 1 || hits[0].EventID != fmt.Sprintf("$%s-%d", roomID[1:3], perRoom+1) {
				t.Fatalf("search in %s = %+v, %v", roomID, hits, err)
			}
		}
		if pos, _ := db.StreamPosition(ctx); pos < int64(len(positions)) {
			t.Errorf("stream position %d below the %d positions stored", pos, len(positions))
		}

		// A retried transaction stores nothing and says so.
		again := message("!aa:x", "$retry", perRoom+2, "again", storage.Txn{UserID: "@alice:x", DeviceID: "D", TxnID: "$aa-2"})
		if _, err := db.PersistEvents(ctx, nil, []storage.NewEvent{again}); !errors.Is(err, storage.ErrDuplicateTxn) {
			t.Fatalf("retried transaction: %v, want ErrDuplicateTxn", err)
		}
		if _, err := db.Event(ctx, "$retry"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("retried transaction's event stored: %v", err)
		}
	})
}

// TestMessageBatchWithFailures stores a batch in which one message reuses a
// transaction ID and another an event ID: those two fail as they would on
// their own, and the rest of the batch is stored.
func TestMessageBatchWithFailures(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		if db.Engine() != "postgres" {
			t.Skip("only PostgreSQL stores messages in batches")
		}
		ctx := t.Context()
		var log changeLog
		log.listen(db)
		a := rtNewRoom(t, db, "!aa:x")
		rtNewRoom(t, db, "!bb:x")
		old := a.add(false, "m.room.message", nil, "@alice:x", map[string]any{"body": "old"}, func(ne *storage.NewEvent) {
			ne.Txn = storage.Txn{UserID: "@alice:x", DeviceID: "D", TxnID: "old"}
		})
		before, _ := db.Event(ctx, old)
		// Array literals quote their elements: text that needs it must come back as it went in.
		const odd = `delta "quoted" \ back\slash, {brace} NULL é \u0000 'x'`

		errs := db.StoreMessagesTogether([]storage.NewEvent{
			message("!aa:x", "$ok-a", 3, "alpha", storage.Txn{UserID: "@alice:x", DeviceID: "D", TxnID: "new"}),
			message("!aa:x", "$dup-txn", 4, "beta", storage.Txn{UserID: "@alice:x", DeviceID: "D", TxnID: "old"}),
			message("!aa:x", old, 5, "gamma", storage.Txn{}),
			message("!bb:x", "$ok-b", 2, odd, storage.Txn{UserID: "@alice:x", DeviceID: "D", TxnID: odd}),
		})
		if !errors.Is(errs[1], storage.ErrDuplicateTxn) || !errors.Is(errs[2], storage.ErrConflict) || errs[0] != nil || errs[3] != nil {
			t.Fatalf("outcomes = %v, want [nil, duplicate transaction, conflict, nil]", errs)
		}
		for _, id := range []string{"$ok-a", "$ok-b"} {
			if _, err := db.Event(ctx, id); err != nil {
				t.Errorf("%s not stored: %v", id, err)
			}
		}
		if e, _ := db.Event(ctx, "$ok-b"); string(e.JSON) != string(message("!bb:x", "$ok-b", 2, odd, storage.Txn{}).JSON) {
			t.Errorf("stored JSON = %s", e.JSON)
		}
		if got, err := db.TxnEvent(ctx, storage.Txn{UserID: "@alice:x", DeviceID: "D", TxnID: odd}); err != nil || got != "$ok-b" {
			t.Errorf("TxnEvent(%q) = %s, %v", odd, got, err)
		}
		if _, err := db.Event(ctx, "$dup-txn"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("the message with a used transaction ID was stored: %v", err)
		}
		if after, _ := db.Event(ctx, old); string(after.JSON) != string(before.JSON) || after.StreamPos != before.StreamPos {
			t.Errorf("the event whose ID was reused changed: %+v", after)
		}
		if got, err := db.TxnEvent(ctx, storage.Txn{UserID: "@alice:x", DeviceID: "D", TxnID: "old"}); err != nil || got != old {
			t.Errorf("TxnEvent(old) = %s, %v", got, err)
		}
		if got, err := db.TxnEvent(ctx, storage.Txn{UserID: "@alice:x", DeviceID: "D", TxnID: "new"}); err != nil || got != "$ok-a" {
			t.Errorf("TxnEvent(new) = %s, %v", got, err)
		}
		for term, room := range map[string]string{"alpha": "!aa:x", "back": "!bb:x", "brace": "!bb:x", "beta": "!aa:x"} {
			hits, err := db.SearchEvents(ctx, storage.SearchQuery{Term: term, RoomIDs: []string{room}, Types: []string{"m.room.message"}, Limit: 5})
			if want := map[bool]int{true: 0, false: 1}[term == "beta"]; err != nil || len(hits) != want {
				t.Errorf("search %q = %d hits, %v; want %d", term, len(hits), err, want)
			}
		}
		log.mu.Lock()
		defer log.mu.Unlock()
		if n := len(log.events); n < 2 || !slices.Equal(log.events[n-2:], []string{"$ok-a", "$ok-b"}) || slices.Contains(log.events, "$dup-txn") {
			t.Errorf("published %v, want it to end with $ok-a, $ok-b and nothing of the failed ones", log.events)
		}
	})
}

// TestMessageWritersFollowSynchronousCommit: one writer when commits wait
// for the disk, four when an admin turned that off in the database URL
// (lib/pq passes the parameter on to PostgreSQL).
func TestMessageWritersFollowSynchronousCommit(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		if !strings.HasPrefix(dsn, "postgres") {
			if n := storagetest.OpenDB(t, dsn).MessageWriters(); n != 0 {
				t.Fatalf("SQLite has %d message writers", n)
			}
			return
		}
		// The test cluster may run with synchronous_commit=off for speed
		// (scripts/test does): both settings are given explicitly.
		with := func(value string) string {
			rest, ok := strings.CutPrefix(dsn, "postgres://")
			if !ok {
				return dsn + " synchronous_commit=" + value
			}
			u, err := url.Parse("postgres://" + rest)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			q.Set("synchronous_commit", value)
			u.RawQuery = q.Encode()
			return u.String()
		}
		if n := storagetest.OpenDB(t, with("on")).MessageWriters(); n != 1 {
			t.Errorf("durable commits: %d message writers, want 1", n)
		}
		db := storagetest.OpenDB(t, with("off"))
		if n := db.MessageWriters(); n != 4 {
			t.Errorf("synchronous_commit=off: %d message writers, want 4", n)
		}
		// And messages are still stored.
		rtNewRoom(t, db, "!sc:x").message("@alice:x", "stored")
	})
}
