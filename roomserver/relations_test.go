package roomserver

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

func TestRelationParse(t *testing.T) {
	for _, tc := range []struct {
		content         string
		relType, parent string
		ok              bool
	}{
		{`{"m.relates_to":{"rel_type":"m.thread","event_id":"$a"}}`, "m.thread", "$a", true},
		{`{"m.relates_to":{"rel_type":"org.example","event_id":"$a","key":"x"}}`, "org.example", "$a", true},
		{`{"m.relates_to":{"m.in_reply_to":{"event_id":"$a"}}}`, "", "", false}, // a reply is no rel_type
		{`{"m.relates_to":{"rel_type":"m.thread"}}`, "", "", false},
		{`{"m.relates_to":{"rel_type":"m.thread","event_id":5}}`, "", "", false},
		{`{"m.relates_to":{"rel_type":["m.thread"],"event_id":"$a"}}`, "", "", false},
		{`{"m.relates_to":{"rel_type":"","event_id":"$a"}}`, "", "", false},
		{`{"m.relates_to":"m.thread"}`, "", "", false},
		{`{"body":"x"}`, "", "", false},
		{`[]`, "", "", false},
	} {
		relType, parent, ok := relation(json.RawMessage(tc.content))
		if relType != tc.relType || parent != tc.parent || ok != tc.ok {
			t.Errorf("relation(%s) = %q %q %v, want %q %q %v", tc.content, relType, parent, ok, tc.relType, tc.parent, tc.ok)
		}
	}
}

func TestValidEdit(t *testing.T) {
	for _, tc := range []struct {
		typ, content string
		ok           bool
	}{
		{"m.room.message", `{"m.new_content":{"body":"x"}}`, true},
		{"m.room.message", `{"m.new_content":{}}`, true},
		{"m.room.message", `{"body":"* x"}`, false},
		{"m.room.message", `{"m.new_content":"x"}`, false},
		{"m.room.message", `{"m.new_content":null}`, false},
		{"m.room.message", `{"m.new_content":[]}`, false},
		{"m.room.encrypted", `{"ciphertext":"..."}`, true}, // m.new_content is inside the ciphertext
	} {
		ev := storage.Event{Type: tc.typ, JSON: []byte(`{"type":"` + tc.typ + `","content":` + tc.content + `}`)}
		if got := validEdit(ev); got != tc.ok {
			t.Errorf("validEdit(%s %s) = %v, want %v", tc.typ, tc.content, got, tc.ok)
		}
	}
}

// TestPage walks made-up events at depths 1..20 of which keep accepts the
// even ones, checking the pages and the tokens that continue them.
func TestPage(t *testing.T) {
	var calls int
	fetch := func(lo, hi int64, n int) ([]storage.Event, error) {
		calls++
		var out []storage.Event
		for d := int64(1); d <= 20; d++ {
			if d > lo && d <= hi {
				out = append(out, storage.Event{Depth: d})
			}
		}
		return out, nil
	}
	backwards := func(lo, hi int64, n int) ([]storage.Event, error) {
		evs, _ := fetch(lo, hi, n)
		slices.Reverse(evs)
		return evs[:min(n, len(evs))], nil
	}
	forwards := func(lo, hi int64, n int) ([]storage.Event, error) {
		evs, _ := fetch(lo, hi, n)
		return evs[:min(n, len(evs))], nil
	}
	even := func(ev storage.Event) bool { return ev.Depth%2 == 0 }
	depths := func(evs []storage.Event) string {
		s := ""
		for _, ev := range evs {
			s += fmt.Sprintf("%d ", ev.Depth)
		}
		return s
	}
	for _, tc := range []struct {
		name    string
		lo, hi  int64
		forward bool
		limit   int
		want    string
		next    int64
	}{
		{"backwards, first page", 0, 20, false, 3, "20 18 16 ", 15},
		{"backwards, continued", 0, 15, false, 3, "14 12 10 ", 9},
		{"backwards, to the start", 0, 5, false, 3, "4 2 ", -1},
		{"backwards, page ends at the last match", 0, 4, false, 2, "4 2 ", 1}, // depth 1 is left, though not kept
		{"backwards, page ends at the first event", 1, 4, false, 2, "4 2 ", -1},
		{"backwards, bounded", 10, 20, false, 100, "20 18 16 14 12 ", -1},
		{"forwards", 0, 20, true, 3, "2 4 6 ", 6},
		{"forwards, to the end", 15, 20, true, 3, "16 18 20 ", -1},
		{"forwards, bounded", 0, 7, true, 10, "2 4 6 ", -1},
		{"empty range", 5, 5, false, 3, "", -1},
		{"limit 0", 0, 20, false, 0, "", -1},
	} {
		fetchFn := backwards
		if tc.forward {
			fetchFn = forwards
		}
		picked, next, err := page(tc.lo, tc.hi, tc.forward, tc.limit, even, fetchFn)
		if err != nil || depths(picked) != tc.want || next != tc.next {
			t.Errorf("%s: got %q next %d (%v), want %q next %d", tc.name, depths(picked), next, err, tc.want, tc.next)
		}
	}
	// The scan is bounded: nothing kept in a long history still ends.
	calls = 0
	long := func(lo, hi int64, n int) ([]storage.Event, error) {
		calls++
		var out []storage.Event
		for d := hi; d > lo && len(out) < n; d-- {
			out = append(out, storage.Event{Depth: d})
		}
		return out, nil
	}
	picked, next, err := page(0, 1_000_000, false, 10, func(storage.Event) bool { return false }, long)
	if err != nil || len(picked) != 0 || next != 1_000_000-maxScan || calls > 8 {
		t.Errorf("bounded scan: %d picked, next %d, %d fetches, %v", len(picked), next, calls, err)
	}
}

// checkRelation refuses a thread off an event that is itself a relation,
// and nothing else.
func TestCheckRelation(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		const alice = "@alice:aula.test"
		s := testServer(t, dsn, alice)
		ctx := context.Background()
		room, err := s.CreateRoom(ctx, CreateRoomRequest{Creator: alice})
		if err != nil {
			t.Fatal(err)
		}
		other, err := s.CreateRoom(ctx, CreateRoomRequest{Creator: alice})
		if err != nil {
			t.Fatal(err)
		}
		send := func(roomID, content string) string {
			t.Helper()
			id, err := s.Send(ctx, SendRequest{RoomID: roomID, Sender: alice, Type: "m.room.message", Content: json.RawMessage(content)})
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		rel := func(relType, parent string) json.RawMessage {
			return json.RawMessage(fmt.Sprintf(`{"body":"x","m.relates_to":{"rel_type":%q,"event_id":%q}}`, relType, parent))
		}
		root := send(room, `{"body":"root"}`)
		reply := send(room, string(rel("m.thread", root)))
		reaction := send(room, `{"m.relates_to":{"rel_type":"m.annotation","event_id":"`+root+`","key":"x"}}`)
		replyTo := send(room, `{"body":"r","m.relates_to":{"m.in_reply_to":{"event_id":"`+root+`"}}}`)
		elsewhere := send(other, string(rel("m.thread", send(other, `{"body":"root"}`))))

		for _, tc := range []struct {
			name    string
			content json.RawMessage
			refused bool
		}{
			{"thread off a plain event", rel("m.thread", root), false},
			{"thread off a thread reply", rel("m.thread", reply), true},
			{"thread off a reaction", rel("m.thread", reaction), true},
			{"thread off a rich reply (no rel_type)", rel("m.thread", replyTo), false},
			{"thread off an unknown event", rel("m.thread", "$nosuch"), false},
			{"thread off a relation in another room", rel("m.thread", elsewhere), false},
			{"reaction to a thread reply", rel("m.annotation", reply), false},
			{"edit of a thread reply", rel("m.replace", reply), false},
			{"no relation", json.RawMessage(`{"body":"x"}`), false},
		} {
			err := s.checkRelation(ctx, room, tc.content)
			if tc.refused {
				wantCode(t, tc.name, err, 400, "M_UNKNOWN")
			} else if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
		}
	})
}
