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

// searchRoom appends made-up events to one room for the search tests.
type searchRoom struct {
	t      *testing.T
	db     *storage.DB
	roomID string
	depth  int64
}

func newSearchRoom(t *testing.T, db *storage.DB, roomID string) *searchRoom {
	t.Helper()
	r := &searchRoom{t: t, db: db, roomID: roomID}
	key := ""
	r.persist(&storage.NewRoom{RoomID: roomID, Version: "11", Creator: "@alice:x"}, "m.room.create", &key, "@alice:x", `{"room_version":"11"}`, nil)
	return r
}

// add stores an event with the given content JSON and returns its ID.
func (r *searchRoom) add(typ, sender, content string) string {
	r.t.Helper()
	var key *string
	if typ != "m.room.message" && typ != "m.room.encrypted" {
		key = new(string)
	}
	return r.persist(nil, typ, key, sender, content, nil)
}

func (r *searchRoom) persist(room *storage.NewRoom, typ string, key *string, sender, content string, mod func(*storage.NewEvent)) string {
	r.t.Helper()
	r.depth++
	id := fmt.Sprintf("$%s-%d", r.roomID[1:], r.depth)
	sk, _ := json.Marshal(key)
	raw := fmt.Sprintf(`{"type":%q,"state_key":%s,"sender":%q,"room_id":%q,"depth":%d,"content":%s}`, typ, sk, sender, r.roomID, r.depth, content)
	ev := storage.NewEvent{EventID: id, RoomID: r.roomID, Type: typ, StateKey: key, Sender: sender, Depth: r.depth, JSON: []byte(raw)}
	if mod != nil {
		mod(&ev)
	}
	if _, err := r.db.PersistEvents(r.t.Context(), room, []storage.NewEvent{ev}); err != nil {
		r.t.Fatalf("persist %s %s: %v", typ, content, err)
	}
	return id
}

// redact stores a redaction of id that replaces its JSON with a content-less copy.
func (r *searchRoom) redact(id, typ string) {
	r.t.Helper()
	redacted := fmt.Sprintf(`{"type":%q,"sender":"@alice:x","room_id":%q,"content":{}}`, typ, r.roomID)
	r.persist(nil, "m.room.redaction", nil, "@alice:x", fmt.Sprintf(`{"redacts":%q}`, id), func(ev *storage.NewEvent) {
		ev.Redacts, ev.RedactedJSON = id, []byte(redacted)
	})
}

var searchTypes = []string{"m.room.message", "m.room.name", "m.room.topic"}

// hitIDs runs a search and returns the event IDs of the hits in order.
func hitIDs(t *testing.T, db *storage.DB, q storage.SearchQuery) []string {
	t.Helper()
	if q.Types == nil {
		q.Types = searchTypes
	}
	if q.Limit == 0 {
		q.Limit = 100
	}
	hits, err := db.SearchEvents(t.Context(), q)
	if err != nil {
		t.Fatalf("SearchEvents(%+v): %v", q, err)
	}
	ids := []string{}
	for _, h := range hits {
		ids = append(ids, h.EventID)
	}
	return ids
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestSearchIndex(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		r := newSearchRoom(t, db, "!a:x")
		rooms := []string{"!a:x"}
		msg := r.add("m.room.message", "@alice:x", `{"msgtype":"m.text","body":"The quick brown fox"}`)
		name := r.add("m.room.name", "@alice:x", `{"name":"Fox den"}`)
		topic := r.add("m.room.topic", "@alice:x", `{"topic":"old fox topic"}`)
		mtopic := r.add("m.room.topic", "@alice:x", `{"topic":"plain","m.topic":{"m.text":[{"mimetype":"text/html","body":"<b>html</b> fox"},{"body":"rich fox"}]}}`)
		r.add("m.room.message", "@alice:x", `{"msgtype":"m.text","body":42}`)
		r.add("m.room.encrypted", "@alice:x", `{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"fox"}`)
		r.add("m.room.member", "@alice:x", `{"membership":"join","displayname":"fox"}`)
		r.add("m.custom", "@alice:x", `{"body":"fox"}`)

		if got := hitIDs(t, db, storage.SearchQuery{Term: "fox", RoomIDs: rooms}); !sameSet(got, []string{msg, name, topic, mtopic}) {
			t.Errorf("fox: %v, want message, name and both topics", got)
		}
		// The m.topic text/plain body wins over topic; html is not indexed.
		if got := hitIDs(t, db, storage.SearchQuery{Term: "rich", RoomIDs: rooms}); !slices.Equal(got, []string{mtopic}) {
			t.Errorf("rich: %v", got)
		}
		for _, term := range []string{"plain", "html", "42", "ciphertext", "den fox brown"} {
			if got := hitIDs(t, db, storage.SearchQuery{Term: term, RoomIDs: rooms}); len(got) != 0 {
				t.Errorf("%q found %v", term, got)
			}
		}
		// Types select the keys.
		if got := hitIDs(t, db, storage.SearchQuery{Term: "fox", RoomIDs: rooms, Types: []string{"m.room.name"}}); !slices.Equal(got, []string{name}) {
			t.Errorf("fox in names: %v", got)
		}
		// Words are ANDed, case does not matter, stems match, the last
		// word matches as a prefix.
		for term, want := range map[string][]string{
			"QUICK fox":         {msg},
			"quick den":         {},
			"foxes":             {msg, name, topic, mtopic},
			"qui":               {msg},
			"fox bro":           {msg},
			"quick, brown fox!": {msg},
		} {
			if got := hitIDs(t, db, storage.SearchQuery{Term: term, RoomIDs: rooms}); !sameSet(got, want) {
				t.Errorf("%q: %v, want %v", term, got, want)
			}
		}
		// Keys match exactly; an m.text entry without a mimetype, or with a
		// null one, is plain text; escapes are decoded.
		r.add("m.room.message", "@alice:x", `{"Body":"capital"}`)
		nullMime := r.add("m.room.topic", "@alice:x", `{"topic":"ignored","m.topic":{"m.text":[{"mimetype":"text/markdown","body":"markdown"},{"body":7},"x",{"mimetype":null,"body":"nullmime"}]}}`)
		oldTopic := r.add("m.room.topic", "@alice:x", `{"topic":"ignored","m.topic":"notanobject"}`)
		emoji := r.add("m.room.message", "@alice:x", `{"body":"party \ud83c\udf89 time"}`)
		for term, want := range map[string][]string{
			"capital": {}, "markdown": {}, "notanobject": {}, "ignored": {oldTopic}, "nullmime": {nullMime}, "party": {emoji},
		} {
			if got := hitIDs(t, db, storage.SearchQuery{Term: term, RoomIDs: rooms}); !sameSet(got, want) {
				t.Errorf("%q: %v, want %v", term, got, want)
			}
		}
		// Redacting an event takes it out of the index.
		r.redact(msg, "m.room.message")
		r.redact(name, "m.room.name")
		if got := hitIDs(t, db, storage.SearchQuery{Term: "fox", RoomIDs: rooms}); !sameSet(got, []string{topic, mtopic}) {
			t.Errorf("fox after redactions: %v", got)
		}
	})
}

func TestSearchSyntaxIsInert(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		r := newSearchRoom(t, db, "!a:x")
		id := r.add("m.room.message", "@alice:x", `{"body":"we said OR and NOT near the cafe's door"}`)
		// Events whose text the engines cannot index are stored anyway.
		r.add("m.room.message", "@alice:x", `{"body":"nul \u0000 inside"}`)
		r.add("m.room.message", "@alice:x", `{"body":"lone \ud800 surrogate"}`)
		for _, term := range []string{
			`"`, `""`, `*`, `'`, `''`, `\`, `"cafe`, `cafe's`, `OR`, `NOT`, `AND`, `NEAR(door`, `door)`, `-door`,
			`door:*`, `d:* & !x | (y)`, `^door`, `{value}: door`, `value:door`, `+door`, "door\x00", `\'door\'`,
			`OR door`, `door NOT`, `said AND`, strings.Repeat("door ", 200), "",
		} {
			hits, err := db.SearchEvents(t.Context(), storage.SearchQuery{Term: term, RoomIDs: []string{"!a:x"}, Types: searchTypes, Limit: 10})
			if err != nil {
				t.Errorf("SearchEvents(%q): %v", term, err)
				continue
			}
			for _, h := range hits {
				if h.EventID != id {
					t.Errorf("SearchEvents(%q) found %s", term, h.EventID)
				}
			}
			if _, err := db.SearchHighlights(t.Context(), term, []string{id}); err != nil {
				t.Errorf("SearchHighlights(%q): %v", term, err)
			}
		}
		if got := hitIDs(t, db, storage.SearchQuery{Term: `said OR door`, RoomIDs: []string{"!a:x"}}); !slices.Equal(got, []string{id}) {
			t.Errorf("OR as a word: %v", got)
		}
		if got := hitIDs(t, db, storage.SearchQuery{Term: `NEAR(door)`, RoomIDs: []string{"!a:x"}}); !slices.Equal(got, []string{id}) {
			t.Errorf("NEAR as a word: %v", got)
		}
	})
}

func TestSearchOrderAndScope(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		a := newSearchRoom(t, db, "!a:x")
		b := newSearchRoom(t, db, "!b:x")
		c := newSearchRoom(t, db, "!c:x")
		a1 := a.add("m.room.message", "@alice:x", `{"body":"apple pie recipe with a long story about the bakery and other things"}`)
		b1 := b.add("m.room.message", "@bob:x", `{"body":"apple apple apple"}`)
		a2 := a.add("m.room.message", "@bob:x", `{"body":"apple"}`)
		c.add("m.room.message", "@alice:x", `{"body":"apple"}`)
		both := []string{"!a:x", "!b:x"}

		if got := hitIDs(t, db, storage.SearchQuery{Term: "apple", RoomIDs: both}); !slices.Equal(got, []string{a2, b1, a1}) {
			t.Errorf("recent: %v, want %v", got, []string{a2, b1, a1})
		}
		hits, err := db.SearchEvents(t.Context(), storage.SearchQuery{Term: "apple", RoomIDs: both, Types: searchTypes, ByRank: true, Limit: 10})
		if err != nil || len(hits) != 3 {
			t.Fatalf("rank: %v %v", hits, err)
		}
		if hits[2].EventID != a1 || hits[0].Rank < hits[1].Rank || hits[1].Rank <= hits[2].Rank || hits[2].Rank <= 0 {
			t.Errorf("rank order: %+v (the long text should rank last, ranks positive and falling)", hits)
		}
		if h := hits[2]; h.RoomID != "!a:x" || h.Sender != "@alice:x" || h.Type != "m.room.message" || h.Depth != 2 || h.StreamPos == 0 {
			t.Errorf("hit fields: %+v", h)
		}
		// Pages: by stream position and by offset.
		if got := hitIDs(t, db, storage.SearchQuery{Term: "apple", RoomIDs: both, Before: hitsPos(t, db, a2), Limit: 1}); !slices.Equal(got, []string{b1}) {
			t.Errorf("before a2: %v", got)
		}
		if got := hitIDs(t, db, storage.SearchQuery{Term: "apple", RoomIDs: both, Offset: 2}); !slices.Equal(got, []string{a1}) {
			t.Errorf("offset 2: %v", got)
		}
		// Senders.
		if got := hitIDs(t, db, storage.SearchQuery{Term: "apple", RoomIDs: both, Senders: []string{"@bob:x"}}); !slices.Equal(got, []string{a2, b1}) {
			t.Errorf("senders: %v", got)
		}
		if got := hitIDs(t, db, storage.SearchQuery{Term: "apple", RoomIDs: both, NotSenders: []string{"@bob:x"}}); !slices.Equal(got, []string{a1}) {
			t.Errorf("not_senders: %v", got)
		}
		if got := hitIDs(t, db, storage.SearchQuery{Term: "apple", RoomIDs: both, Senders: []string{}}); len(got) != 0 {
			t.Errorf("empty senders: %v", got)
		}
		if got := hitIDs(t, db, storage.SearchQuery{Term: "apple"}); len(got) != 0 {
			t.Errorf("no rooms: %v", got)
		}
	})
}

// hitsPos returns the stream position of an event.
func hitsPos(t *testing.T, db *storage.DB, id string) int64 {
	t.Helper()
	ev, err := db.Event(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return ev.StreamPos
}

func TestSearchHighlights(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		r := newSearchRoom(t, db, "!a:x")
		id1 := r.add("m.room.message", "@alice:x", `{"body":"Meeting about the Messages of Monday"}`)
		id2 := r.add("m.room.message", "@alice:x", `{"body":"a message for the meetings"}`)
		got, err := db.SearchHighlights(t.Context(), "message meet", []string{id1, id2})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"meeting", "meetings", "message", "messages"}; !slices.Equal(got, want) {
			t.Errorf("highlights %v, want %v", got, want)
		}
		if got, err := db.SearchHighlights(t.Context(), "...", []string{id1}); err != nil || got == nil || len(got) != 0 {
			t.Errorf("highlights without words: %v %v", got, err)
		}
	})
}

// TestSearchBackfill checks that migrations 0005 and 0006 index the events
// stored before them, with the text highlights need, and leave redacted
// events out.
func TestSearchBackfill(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		r := newSearchRoom(t, db, "!a:x")
		msg := r.add("m.room.message", "@alice:x", `{"body":"backfilled words"}`)
		topic := r.add("m.room.topic", "@alice:x", `{"topic":"words on top"}`)
		r.add("m.room.message", "@alice:x", `{"body":"nul \u0000 other"}`)
		gone := r.add("m.room.message", "@alice:x", `{"body":"redacted words"}`)
		r.redact(gone, "m.room.message")

		raw := storagetest.RawDB(t, dsn)
		// Back to the schema before 0005.
		if _, err := raw.ExecContext(t.Context(), `DROP TABLE event_search`); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"0005_search.sql", "0006_search_text.sql"} {
			migration, err := os.ReadFile(filepath.Join("schema", db.Engine(), name))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := raw.ExecContext(t.Context(), string(migration)); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		if got := hitIDs(t, db, storage.SearchQuery{Term: "words", RoomIDs: []string{"!a:x"}}); !sameSet(got, []string{msg, topic}) {
			t.Errorf("after backfill: %v, want %v", got, []string{msg, topic})
		}
		got, err := db.SearchHighlights(t.Context(), "word", []string{msg, topic})
		if err != nil || !slices.Equal(got, []string{"words"}) {
			t.Errorf("highlights after backfill: %v %v", got, err)
		}
		// The write path keeps the index from there.
		later := r.add("m.room.message", "@alice:x", `{"body":"later words"}`)
		r.redact(msg, "m.room.message")
		if got := hitIDs(t, db, storage.SearchQuery{Term: "words", RoomIDs: []string{"!a:x"}}); !sameSet(got, []string{topic, later}) {
			t.Errorf("after new events: %v, want %v", got, []string{topic, later})
		}
	})
}
