package clientapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aula-chat/aula/internal/apitest"
)

// Helpers shared by the room event tests (send_test.go, state_test.go,
// messages_test.go, visibility_test.go). They carry an "rm" prefix so they
// cannot clash with helpers in the other test files of the package.

// rmTxn makes transaction IDs unique within a test binary.
var rmTxn atomic.Int64

func rmNextTxn() string { return fmt.Sprintf("rm%d", rmTxn.Add(1)) }

// rmRoom is the path of a room endpoint: rmRoom(id, "send", "m.room.message", "t1")
// percent-encodes every part.
func rmRoom(roomID string, parts ...string) string {
	p := "/_matrix/client/v3/rooms/" + confEsc(roomID)
	for _, part := range parts {
		p += "/" + confEsc(part)
	}
	return p
}

// rmInviteJoin has inviter invite u, and u join.
func rmInviteJoin(t *testing.T, s *apitest.Server, inviter apitest.User, roomID string, u apitest.User) {
	t.Helper()
	s.Invite(inviter, roomID, u)
	s.Join(u, roomID)
}

// rmPutState sets a state event and returns its event ID.
func rmPutState(t *testing.T, s *apitest.Server, u apitest.User, roomID, typ, stateKey string, content any) string {
	t.Helper()
	r := s.Do("PUT", rmRoom(roomID, "state", typ, stateKey), u.Token, content).Expect(t, 200, "")
	return r.String("event_id")
}

// rmEvent is a client event as the tests read it.
type rmEvent struct {
	Content        map[string]any `json:"content"`
	EventID        string         `json:"event_id"`
	OriginServerTS int64          `json:"origin_server_ts"`
	RoomID         string         `json:"room_id"`
	Sender         string         `json:"sender"`
	StateKey       *string        `json:"state_key"`
	Type           string         `json:"type"`
	Redacts        string         `json:"redacts"`
	Unsigned       map[string]any `json:"unsigned"`
}

func (e rmEvent) body() string { s, _ := e.Content["body"].(string); return s }

// rmPage is a /messages answer.
type rmPage struct {
	Chunk []rmEvent `json:"chunk"`
	Start string    `json:"start"`
	End   *string   `json:"end"`
	State []rmEvent `json:"state"`
}

// rmDecode decodes a response body into v.
func rmDecode(t *testing.T, r *apitest.Response, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, r.Body)
	}
}

// rmMessages calls /messages with the query parameters (dir included) and
// expects 200.
func rmMessages(t *testing.T, s *apitest.Server, u apitest.User, roomID string, q url.Values) rmPage {
	t.Helper()
	r := s.Do("GET", rmRoom(roomID, "messages")+"?"+q.Encode(), u.Token, nil).Expect(t, 200, "")
	var p rmPage
	rmDecode(t, r, &p)
	if p.Chunk == nil {
		t.Fatalf("/messages without chunk: %s", r.Body)
	}
	return p
}

// rmAll pages through the whole history visible to u in one direction
// ("f" or "b") and returns every event, checking that pagination ends.
func rmAll(t *testing.T, s *apitest.Server, u apitest.User, roomID, dir string, limit int) []rmEvent {
	t.Helper()
	var all []rmEvent
	q := url.Values{"dir": {dir}, "limit": {fmt.Sprint(limit)}}
	for range 10000 {
		p := rmMessages(t, s, u, roomID, q)
		all = append(all, p.Chunk...)
		if p.End == nil {
			return all
		}
		q.Set("from", *p.End)
	}
	t.Fatalf("/messages never ended")
	return nil
}

// rmBodies lists the bodies of the m.room.message events among evs.
func rmBodies(evs []rmEvent) []string {
	out := []string{}
	for _, e := range evs {
		if e.Type == "m.room.message" {
			out = append(out, e.body())
		}
	}
	return out
}

// rmIDs lists the event IDs of evs.
func rmIDs(evs []rmEvent) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.EventID)
	}
	return out
}

// rmGetEvent fetches one event with GET /event.
func rmGetEvent(t *testing.T, s *apitest.Server, u apitest.User, roomID, eventID string) rmEvent {
	t.Helper()
	var e rmEvent
	rmDecode(t, s.Do("GET", rmRoom(roomID, "event", eventID), u.Token, nil).Expect(t, 200, ""), &e)
	return e
}

// rmEqual fails unless got equals want.
func rmEqual[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d items %v, want %d %v", what, len(got), got, len(want), want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: item %d is %v, want %v\n got: %v\nwant: %v", what, i, got[i], want[i], got, want)
		}
	}
}

// rmDepth reads an event's depth from the database.
func rmDepth(t *testing.T, s *apitest.Server, eventID string) int64 {
	t.Helper()
	ev, err := s.App.DB.Event(t.Context(), eventID)
	if err != nil {
		t.Fatalf("event %s: %v", eventID, err)
	}
	return ev.Depth
}

func TestSendMessage(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		room := s.CreateRoom(alice, nil)
		rmInviteJoin(t, s, alice, room, bob)

		r := s.Do("PUT", rmRoom(room, "send", "m.room.message", "txn1"), alice.Token,
			map[string]any{"msgtype": "m.text", "body": "hello <b>&</b> 🐇"}).Expect(t, 200, "")
		id := r.String("event_id")
		if !strings.HasPrefix(id, "$") || len(r.JSON) != 1 {
			t.Fatalf("send answered %s, want {event_id}", r.Body)
		}
		e := rmGetEvent(t, s, bob, room, id)
		if e.EventID != id || e.RoomID != room || e.Sender != alice.ID || e.Type != "m.room.message" ||
			e.body() != "hello <b>&</b> 🐇" || e.StateKey != nil || e.OriginServerTS < time.Now().Add(-time.Minute).UnixMilli() {
			t.Fatalf("GET /event: %+v", e)
		}
		if _, ok := e.Unsigned["age"].(float64); !ok {
			t.Errorf("unsigned.age missing: %+v", e.Unsigned)
		}
		if e.Unsigned["membership"] != "join" {
			t.Errorf("unsigned.membership = %v, want join", e.Unsigned["membership"])
		}

		// r0 serves the same endpoint.
		r = s.Do("PUT", "/_matrix/client/r0/rooms/"+confEsc(room)+"/send/m.room.message/r0txn", alice.Token,
			map[string]any{"msgtype": "m.text", "body": "old path"}).Expect(t, 200, "")
		if r.String("event_id") == "" {
			t.Fatalf("r0 send: %s", r.Body)
		}
		// An empty object is valid content; custom event types are fine.
		s.Send(bob, room, "org.example.custom", map[string]any{})
		s.Send(bob, room, "org.example.nested", map[string]any{"a": map[string]any{"b": []any{1, "two", nil, true}}})
	})
}

func TestSendTransactionIDs(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		alice2 := s.Login("alice", "correct horse battery") // a second device
		bob := s.Register("bob", "correct horse battery")
		room := s.CreateRoom(alice, nil)
		other := s.CreateRoom(alice, nil)
		rmInviteJoin(t, s, alice, room, bob)
		msg := func(body string) map[string]string { return map[string]string{"msgtype": "m.text", "body": body} }
		send := func(u apitest.User, roomID, typ, txn, body string) string {
			t.Helper()
			return s.Do("PUT", rmRoom(roomID, "send", typ, txn), u.Token, msg(body)).Expect(t, 200, "").String("event_id")
		}

		first := send(alice, room, "m.room.message", "same", "one")
		// A retransmission returns the first event's ID, even with another
		// body, and stores nothing.
		if again := send(alice, room, "m.room.message", "same", "one"); again != first {
			t.Fatalf("retransmission got %s, want %s", again, first)
		}
		if again := send(alice, room, "m.room.message", "same", "changed"); again != first {
			t.Fatalf("retransmission with another body got %s, want %s", again, first)
		}
		// Another device of the same user, another user, another room and
		// another event type are all other requests.
		distinct := map[string]string{first: "first"}
		for what, id := range map[string]string{
			"other device": send(alice2, room, "m.room.message", "same", "two"),
			"other user":   send(bob, room, "m.room.message", "same", "three"),
			"other room":   send(alice, other, "m.room.message", "same", "four"),
			"other type":   send(alice, room, "org.example.message", "same", "five"),
		} {
			if prev, dup := distinct[id]; dup {
				t.Fatalf("%s reused the event of %s", what, prev)
			}
			distinct[id] = what
		}
		// A transaction ID with "/" and other specials, percent-encoded.
		odd := send(alice, room, "m.room.message", "a/b c?d#e%f", "six")
		if again := send(alice, room, "m.room.message", "a/b c?d#e%f", "six"); again != odd {
			t.Fatalf("encoded txn retransmission got %s, want %s", again, odd)
		}
		// A transaction ID used for /redact is another endpoint.
		red := s.Do("PUT", rmRoom(room, "redact", odd, "same"), alice.Token, map[string]any{}).Expect(t, 200, "").String("event_id")
		if red == first {
			t.Fatal("redact reused the send transaction")
		}

		got := rmBodies(rmAll(t, s, bob, room, "f", 100))
		rmEqual(t, "messages", got, []string{"one", "two", "three", ""})
		rmEqual(t, "other room", rmBodies(rmAll(t, s, alice, other, "f", 100)), []string{"four"})

		// Concurrent retransmissions of one request store one event.
		var wg sync.WaitGroup
		ids := make([]string, 8)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ids[i], _ = rmPut(s, alice.Token, rmRoom(room, "send", "m.room.message", "racy"), msg("racy"))
			}()
		}
		wg.Wait()
		for i, id := range ids {
			if id == "" || id != ids[0] {
				t.Fatalf("concurrent retransmission %d got %q, want %q (all: %v)", i, id, ids[0], ids)
			}
		}
		n := 0
		for _, b := range rmBodies(rmAll(t, s, bob, room, "b", 100)) {
			if b == "racy" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("concurrent retransmissions stored %d events, want 1", n)
		}
	})
}

// rmPut sends a PUT from any goroutine (no t.Fatal) and returns the
// event_id of a 200 answer, or an error.
func rmPut(s *apitest.Server, token, path string, body any) (string, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "PUT", s.URL+path, bytes.NewReader(raw))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("PUT %s: %d %s", path, resp.StatusCode, b)
	}
	var out struct {
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.EventID == "" {
		return "", fmt.Errorf("PUT %s: bad answer %s", path, b)
	}
	return out.EventID, nil
}

func TestSendErrors(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		carol := s.Register("carol", "correct horse battery")
		room := s.CreateRoom(alice, nil)
		rmInviteJoin(t, s, alice, room, bob)
		msg := map[string]string{"msgtype": "m.text", "body": "hi"}
		path := func(roomID string) string { return rmRoom(roomID, "send", "m.room.message", rmNextTxn()) }

		confExpectError(t, "no token", s.Do("PUT", path(room), "", msg), 401, "M_MISSING_TOKEN")
		// Not a member (never joined, or only invited): 403.
		confExpectError(t, "non-member", s.Do("PUT", path(room), carol.Token, msg), 403, "M_FORBIDDEN")
		s.Invite(alice, room, carol)
		confExpectError(t, "invited", s.Do("PUT", path(room), carol.Token, msg), 403, "M_FORBIDDEN")
		// A room the server does not have: 403, as for rooms one is not in.
		confExpectError(t, "unknown room", s.Do("PUT", path("!nowhere:aula.test"), alice.Token, msg), 403, "M_FORBIDDEN")
		confExpectError(t, "bad room ID", s.Do("PUT", path("not-a-room"), alice.Token, msg), 400, "M_INVALID_PARAM")

		// Content must be a JSON object.
		for _, tc := range []struct {
			body, code string
		}{
			{`[1,2]`, "M_BAD_JSON"},
			{`"text"`, "M_BAD_JSON"},
			{`42`, "M_BAD_JSON"},
			{`null`, "M_BAD_JSON"},
			{`{"body":`, "M_NOT_JSON"},
			{``, "M_NOT_JSON"},
			{`{"x": 1.5}`, "M_BAD_JSON"},              // no floats in canonical JSON
			{`{"x": 9007199254740992}`, "M_BAD_JSON"}, // beyond 2^53-1
		} {
			confExpectError(t, "body "+tc.body, s.Do("PUT", path(room), alice.Token, tc.body), 400, tc.code)
		}

		// The whole event may be 65536 bytes: a body near the limit is
		// fine, one over it is 413 M_TOO_LARGE, as are a type over 255 bytes.
		s.Send(alice, room, "m.room.message", map[string]string{"body": strings.Repeat("x", 60000)})
		confExpectError(t, "event too large", s.Do("PUT", path(room), alice.Token,
			map[string]string{"body": strings.Repeat("x", 65536)}), 413, "M_TOO_LARGE")
		confExpectError(t, "type too long", s.Do("PUT", rmRoom(room, "send", strings.Repeat("t", 256), "t1"), alice.Token,
			msg), 413, "M_TOO_LARGE")

		// A moderated room: events_default raised to 50.
		var pl map[string]any
		rmDecode(t, s.Do("GET", rmRoom(room, "state", "m.room.power_levels", ""), alice.Token, nil).Expect(t, 200, ""), &pl)
		pl["events_default"] = 50
		rmPutState(t, s, alice, room, "m.room.power_levels", "", pl)
		confExpectError(t, "moderated", s.Do("PUT", path(room), bob.Token, msg), 403, "M_FORBIDDEN")
		s.Send(alice, room, "m.room.message", msg)
		// ... unless the event type has its own lower level.
		pl["events"].(map[string]any)["org.example.open"] = 0
		rmPutState(t, s, alice, room, "m.room.power_levels", "", pl)
		s.Send(bob, room, "org.example.open", msg)
		confExpectError(t, "moderated", s.Do("PUT", path(room), bob.Token, msg), 403, "M_FORBIDDEN")

		// After leaving, sending is forbidden again.
		s.Leave(bob, room)
		confExpectError(t, "left", s.Do("PUT", rmRoom(room, "send", "org.example.open", rmNextTxn()), bob.Token, msg), 403, "M_FORBIDDEN")

		// None of the rejected events was stored.
		for _, b := range rmBodies(rmAll(t, s, alice, room, "f", 100)) {
			if b != "hi" && len(b) != 60000 {
				t.Errorf("unexpected stored message %.40q", b)
			}
		}
	})
}

// TestSendConcurrently is the concurrency test: 50 clients (50
// users, each with its own device) send into one room at once, each
// sending its request twice at the same moment as a retry would. The room
// must end up with exactly 50 new events in one total order (consecutive
// depths, no gaps or duplicates), and /messages must return that order in
// both directions.
func TestSendConcurrently(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		const clients = 50
		owner := s.Register("owner", "correct horse battery")
		room := s.CreateRoom(owner, nil)
		users := make([]apitest.User, clients)
		for i := range users {
			users[i] = s.Register(fmt.Sprintf("user%02d", i), "correct horse battery")
			rmInviteJoin(t, s, owner, room, users[i])
		}
		before := rmAll(t, s, owner, room, "f", 1000)

		start := make(chan struct{})
		type result struct {
			ids  [2]string
			errs [2]error
		}
		results := make([]result, clients)
		var wg sync.WaitGroup
		for i, u := range users {
			for k := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					results[i].ids[k], results[i].errs[k] = rmPut(s, u.Token,
						rmRoom(room, "send", "m.room.message", "concurrent"),
						map[string]string{"msgtype": "m.text", "body": fmt.Sprintf("message %02d", i)})
				}()
			}
		}
		close(start)
		wg.Wait()

		sent := map[string]int{}
		for i, r := range results {
			for k := range 2 {
				if r.errs[k] != nil {
					t.Fatalf("client %d: %v", i, r.errs[k])
				}
			}
			if r.ids[0] != r.ids[1] {
				t.Fatalf("client %d: the retry got %s, the request %s", i, r.ids[1], r.ids[0])
			}
			if prev, dup := sent[r.ids[0]]; dup {
				t.Fatalf("clients %d and %d got the same event %s", prev, i, r.ids[0])
			}
			sent[r.ids[0]] = i
		}

		all := rmAll(t, s, owner, room, "f", 7) // small pages cross many page boundaries
		rmEqual(t, "history before the sends", rmIDs(all[:len(before)]), rmIDs(before))
		after := all[len(before):]
		if len(after) != clients {
			t.Fatalf("/messages returned %d new events, want %d", len(after), clients)
		}
		lastDepth := rmDepth(t, s, before[len(before)-1].EventID)
		for i, e := range after {
			who, ok := sent[e.EventID]
			if !ok {
				t.Fatalf("event %d (%s) is not one of the sent events", i, e.EventID)
			}
			if e.Sender != users[who].ID || e.body() != fmt.Sprintf("message %02d", who) {
				t.Fatalf("event %s: sender %s body %q, want client %d", e.EventID, e.Sender, e.body(), who)
			}
			if d := rmDepth(t, s, e.EventID); d != lastDepth+1 {
				t.Fatalf("event %d has depth %d after %d: not one total order", i, d, lastDepth)
			}
			lastDepth++
		}
		// Backwards gives exactly the reverse.
		back := rmAll(t, s, owner, room, "b", 9)
		ids := rmIDs(all)
		for i, j := 0, len(ids)-1; i < j; i, j = i+1, j-1 {
			ids[i], ids[j] = ids[j], ids[i]
		}
		rmEqual(t, "dir=b", rmIDs(back), ids)
		// Every member sees the same order.
		rmEqual(t, "another member's view", rmIDs(rmAll(t, s, users[7], room, "f", 1000))[len(before):], rmIDs(after))
	})
}

// rmRedact redacts an event through PUT /redact and returns the
// redaction's event ID.
func rmRedact(t *testing.T, s *apitest.Server, u apitest.User, roomID, eventID string, body any) string {
	t.Helper()
	return s.Do("PUT", rmRoom(roomID, "redact", eventID, rmNextTxn()), u.Token, body).Expect(t, 200, "").String("event_id")
}

// rmRedactedBecause returns unsigned.redacted_because of e, failing if it
// is missing.
func rmRedactedBecause(t *testing.T, e rmEvent) map[string]any {
	t.Helper()
	rb, ok := e.Unsigned["redacted_because"].(map[string]any)
	if !ok {
		t.Fatalf("event %s has no unsigned.redacted_because: %+v", e.EventID, e.Unsigned)
	}
	return rb
}

func TestRedaction(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery") // 100
		bob := s.Register("bob", "correct horse battery")     // 0
		mod := s.Register("mod", "correct horse battery")     // 50
		carol := s.Register("carol", "correct horse battery") // not in the room
		room := s.CreateRoom(alice, nil)
		rmInviteJoin(t, s, alice, room, bob)
		rmInviteJoin(t, s, alice, room, mod)
		rmSetUserLevel(t, s, alice, room, mod.ID, 50)

		// Bob redacts his own message, with a reason.
		secret := s.Send(bob, room, "m.room.message", map[string]any{
			"msgtype": "m.text", "body": "secret", "m.relates_to": map[string]string{"rel_type": "m.thread", "event_id": "$x"},
		})
		txn := rmNextTxn()
		r := s.Do("PUT", rmRoom(room, "redact", secret, txn), bob.Token, map[string]string{"reason": "oops"}).Expect(t, 200, "")
		redaction := r.String("event_id")
		if !strings.HasPrefix(redaction, "$") || len(r.JSON) != 1 {
			t.Fatalf("redact answered %s", r.Body)
		}
		// The same transaction again: the same redaction, nothing new.
		if again := s.Do("PUT", rmRoom(room, "redact", secret, txn), bob.Token, map[string]string{"reason": "oops"}).Expect(t, 200, "").String("event_id"); again != redaction {
			t.Fatalf("redact retransmission got %s, want %s", again, redaction)
		}

		// GET /event and /messages serve the redacted event (room version
		// 11: no content keys survive for m.room.message) with the
		// redaction in unsigned.redacted_because.
		check := func(e rmEvent, what string) {
			t.Helper()
			if len(e.Content) != 0 || e.Type != "m.room.message" || e.Sender != bob.ID || e.EventID != secret || e.RoomID != room {
				t.Fatalf("%s: redacted event %+v", what, e)
			}
			rb := rmRedactedBecause(t, e)
			content, _ := rb["content"].(map[string]any)
			if rb["event_id"] != redaction || rb["type"] != "m.room.redaction" || rb["sender"] != bob.ID ||
				content["reason"] != "oops" || content["redacts"] != secret || rb["redacts"] != secret {
				t.Fatalf("%s: redacted_because %+v", what, rb)
			}
		}
		check(rmGetEvent(t, s, alice, room, secret), "GET /event")
		var redactions []rmEvent
		for _, e := range rmAll(t, s, mod, room, "b", 100) {
			switch {
			case e.EventID == secret:
				check(e, "/messages")
			case e.Type == "m.room.redaction":
				redactions = append(redactions, e)
			}
			if e.body() == "secret" || strings.Contains(fmt.Sprint(e.Content), "m.thread") {
				t.Fatalf("redacted content still served: %+v", e)
			}
		}
		if len(redactions) != 1 || redactions[0].EventID != redaction || redactions[0].Redacts != secret ||
			redactions[0].Content["redacts"] != secret || redactions[0].Content["reason"] != "oops" {
			t.Fatalf("redaction events in /messages: %+v", redactions)
		}
		// Redacting it again is allowed and keeps the first redaction.
		second := rmRedact(t, s, alice, room, secret, map[string]any{})
		if second == redaction {
			t.Fatal("a new transaction reused the redaction")
		}
		check(rmGetEvent(t, s, bob, room, secret), "after a second redaction")

		// Others' events need the redact level (50).
		aliceMsg := s.SendText(alice, room, "alice's")
		confExpectError(t, "bob redacts alice", s.Do("PUT", rmRoom(room, "redact", aliceMsg, rmNextTxn()), bob.Token, map[string]any{}), 403, "M_FORBIDDEN")
		if e := rmGetEvent(t, s, bob, room, aliceMsg); e.body() != "alice's" || e.Unsigned["redacted_because"] != nil {
			t.Fatalf("a refused redaction changed the event: %+v", e)
		}
		bobMsg := s.SendText(bob, room, "bob's")
		rmRedact(t, s, mod, room, bobMsg, nil) // empty body: {} is implied
		if e := rmGetEvent(t, s, bob, room, bobMsg); e.body() != "" || rmRedactedBecause(t, e)["sender"] != mod.ID {
			t.Fatalf("moderator's redaction: %+v", e)
		}
		rmRedact(t, s, mod, room, aliceMsg, map[string]any{"reason": "mods may"})
		// The create event may not be redacted, not even by its creator.
		create := rmAll(t, s, alice, room, "f", 1)[0]
		confExpectError(t, "redact create", s.Do("PUT", rmRoom(room, "redact", create.EventID, rmNextTxn()), alice.Token, map[string]any{}), 403, "M_FORBIDDEN")
		// Unknown events, and events of other rooms, are 404.
		confExpectError(t, "unknown event", s.Do("PUT", rmRoom(room, "redact", "$unknown", rmNextTxn()), alice.Token, map[string]any{}), 404, "M_NOT_FOUND")
		other := s.CreateRoom(alice, nil)
		elsewhere := s.SendText(alice, other, "elsewhere")
		confExpectError(t, "other room's event", s.Do("PUT", rmRoom(room, "redact", elsewhere, rmNextTxn()), alice.Token, map[string]any{}), 404, "M_NOT_FOUND")
		if e := rmGetEvent(t, s, alice, other, elsewhere); e.body() != "elsewhere" {
			t.Fatalf("cross-room redaction changed the event: %+v", e)
		}
		// Non-members, unknown rooms, bad bodies.
		confExpectError(t, "non-member", s.Do("PUT", rmRoom(room, "redact", aliceMsg, rmNextTxn()), carol.Token, map[string]any{}), 403, "M_FORBIDDEN")
		// ... without learning whether an event exists.
		confExpectError(t, "non-member, unknown event", s.Do("PUT", rmRoom(room, "redact", "$unknown", rmNextTxn()), carol.Token, map[string]any{}), 403, "M_FORBIDDEN")
		confExpectError(t, "unknown room", s.Do("PUT", rmRoom("!nowhere:aula.test", "redact", aliceMsg, rmNextTxn()), alice.Token, map[string]any{}), 403, "M_FORBIDDEN")
		confExpectError(t, "reason not a string", s.Do("PUT", rmRoom(room, "redact", aliceMsg, rmNextTxn()), alice.Token, map[string]any{"reason": 5}), 400, "M_BAD_JSON")
		confExpectError(t, "body not an object", s.Do("PUT", rmRoom(room, "redact", aliceMsg, rmNextTxn()), alice.Token, `[]`), 400, "M_BAD_JSON")

		// m.room.redaction through PUT /send (spec v1.18 makes this a must):
		// redacts in the content.
		viaSend := s.SendText(bob, room, "via send")
		s.Send(bob, room, "m.room.redaction", map[string]string{"redacts": viaSend, "reason": "send"})
		if e := rmGetEvent(t, s, alice, room, viaSend); e.body() != "" || rmRedactedBecause(t, e)["content"].(map[string]any)["reason"] != "send" {
			t.Fatalf("redaction through /send: %+v", e)
		}
		confExpectError(t, "redaction without redacts", s.Do("PUT", rmRoom(room, "send", "m.room.redaction", rmNextTxn()), bob.Token,
			map[string]any{}), 400, "M_MISSING_PARAM")
	})
}

// Redacting state events follows the room version's algorithm: protected
// keys stay, the state still counts, and nothing of the removed content
// is served anywhere afterwards (not even as a later event's prev_content).
func TestRedactionOfState(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		room := s.CreateRoom(alice, map[string]any{"room_version": "11"})
		rmInviteJoin(t, s, alice, room, bob)

		// A topic is redacted: the topic state is now empty content, and the
		// next topic's prev_content does not reveal it.
		secret := rmPutState(t, s, alice, room, "m.room.topic", "", map[string]string{"topic": "secret plans"})
		public := rmPutState(t, s, alice, room, "m.room.topic", "", map[string]string{"topic": "public"})
		rmRedact(t, s, alice, room, secret, map[string]any{})
		var ev rmEvent
		rmDecode(t, s.Do("GET", rmRoom(room, "state", "m.room.topic", "")+"?format=event", bob.Token, nil).Expect(t, 200, ""), &ev)
		if ev.EventID != public {
			t.Fatalf("topic is %s, want %s", ev.EventID, public)
		}
		for _, e := range append(rmAll(t, s, bob, room, "f", 100), ev) {
			if raw := fmt.Sprint(e.Content, e.Unsigned); strings.Contains(raw, "secret plans") {
				t.Fatalf("redacted topic still served in %s (%s): %s", e.EventID, e.Type, raw)
			}
			if e.EventID == public {
				if pc, ok := e.Unsigned["prev_content"].(map[string]any); !ok || len(pc) != 0 {
					t.Errorf("prev_content of the next topic = %v, want {}", e.Unsigned["prev_content"])
				}
			}
		}
		// Redacting the current topic removes the topic (redacted state
		// still counts, with no topic key).
		rmRedact(t, s, alice, room, public, map[string]any{})
		confJSONEq(t, s.Do("GET", rmRoom(room, "state", "m.room.topic", ""), bob.Token, nil).Expect(t, 200, "").Body, `{}`)
		// Setting the redacted content again is a change, not a repeat.
		if again := rmPutState(t, s, alice, room, "m.room.topic", "", map[string]string{"topic": "public"}); again == public {
			t.Fatal("setting a redacted topic again was taken for a repeat")
		}
		confJSONEq(t, s.Do("GET", rmRoom(room, "state", "m.room.topic", ""), bob.Token, nil).Expect(t, 200, "").Body, `{"topic":"public"}`)

		// Power levels: the room version 11 algorithm keeps ban, events,
		// events_default, invite, kick, redact, state_default, users and
		// users_default, and drops the rest.
		pl := rmPowerLevels(t, s, alice, room)
		pl["notifications"] = map[string]int{"room": 20}
		pl["org.example.custom"] = 1
		pl["users"].(map[string]any)[bob.ID] = 50
		plID := rmPutState(t, s, alice, room, "m.room.power_levels", "", pl)
		rmRedact(t, s, alice, room, plID, map[string]any{})
		got := rmPowerLevels(t, s, bob, room)
		var keys []string
		for k := range got {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		rmEqual(t, "redacted power level keys", keys, []string{"ban", "events", "events_default", "invite", "kick", "redact", "state_default", "users", "users_default"})
		// The redacted power levels still rule: Bob keeps 50 and may set a
		// name; "historical" (dropped) no longer matters.
		rmPutState(t, s, bob, room, "m.room.name", "", map[string]string{"name": "bob's"})

		// A member event keeps membership, losing the profile, which
		// /joined_members shows. (The signed part of a third-party invite,
		// which also stays, is checked in the roomserver's unit tests.)
		member := rmPutState(t, s, bob, room, "m.room.member", bob.ID, map[string]any{
			"membership": "join", "displayname": "Bobby", "avatar_url": "mxc://aula.test/b",
		})
		rmRedact(t, s, alice, room, member, map[string]any{})
		confJSONEq(t, confMarshal(t, rmStateContent(t, s, alice, room, "m.room.member", bob.ID)), `{"membership":"join"}`)
		var jm struct {
			Joined map[string]map[string]string `json:"joined"`
		}
		rmDecode(t, s.Do("GET", rmRoom(room, "joined_members"), alice.Token, nil).Expect(t, 200, ""), &jm)
		if m, ok := jm.Joined[bob.ID]; !ok || len(m) != 0 {
			t.Fatalf("joined_members after redacting bob's profile: %+v", jm.Joined)
		}
		s.SendText(bob, room, "still joined") // the redacted join still counts

		// Join rules keep join_rule; history visibility keeps its value.
		jr := rmPutState(t, s, alice, room, "m.room.join_rules", "", map[string]any{"join_rule": "invite", "note": "x"})
		rmRedact(t, s, alice, room, jr, map[string]any{})
		confJSONEq(t, s.Do("GET", rmRoom(room, "state", "m.room.join_rules", ""), bob.Token, nil).Expect(t, 200, "").Body, `{"join_rule":"invite"}`)
		hv := rmPutState(t, s, alice, room, "m.room.history_visibility", "", map[string]any{"history_visibility": "joined", "note": "x"})
		rmRedact(t, s, alice, room, hv, map[string]any{})
		confJSONEq(t, s.Do("GET", rmRoom(room, "state", "m.room.history_visibility", ""), bob.Token, nil).Expect(t, 200, "").Body, `{"history_visibility":"joined"}`)
		// A redaction event redacted keeps its redacts (room version 11).
		red := rmRedact(t, s, bob, room, s.SendText(bob, room, "x"), map[string]string{"reason": "r"})
		rmRedact(t, s, alice, room, red, map[string]any{})
		if e := rmGetEvent(t, s, bob, room, red); len(e.Content) != 1 || e.Content["redacts"] == nil {
			t.Fatalf("redacted redaction: %+v", e.Content)
		}
	})
}

// In room version 10 redacts is a top-level key of the redaction event.
func TestRedactionRoomVersion10(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		room := s.CreateRoom(alice, map[string]any{"room_version": "10"})
		msg := s.SendText(alice, room, "old")
		red := rmRedact(t, s, alice, room, msg, map[string]string{"reason": "v10"})
		e := rmGetEvent(t, s, alice, room, red)
		if e.Redacts != msg || e.Content["redacts"] != nil || e.Content["reason"] != "v10" {
			t.Fatalf("v10 redaction event: %+v", e)
		}
		if e := rmGetEvent(t, s, alice, room, msg); len(e.Content) != 0 || rmRedactedBecause(t, e)["redacts"] != msg {
			t.Fatalf("v10 redacted event: %+v", e)
		}
		// Through /send, redacts moves from the content to the top level.
		msg2 := s.SendText(alice, room, "old 2")
		red2 := s.Send(alice, room, "m.room.redaction", map[string]string{"redacts": msg2})
		if e := rmGetEvent(t, s, alice, room, red2); e.Redacts != msg2 || e.Content["redacts"] != nil {
			t.Fatalf("v10 redaction through /send: %+v", e)
		}
		if e := rmGetEvent(t, s, alice, room, msg2); len(e.Content) != 0 {
			t.Fatalf("v10 redaction through /send left %+v", e.Content)
		}
	})
}
