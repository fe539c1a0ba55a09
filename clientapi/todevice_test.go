package clientapi_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aula-chat/aula/internal/apitest"
)

// sendToDevice sends one PUT /sendToDevice and expects 200 {}.
func sendToDevice(t *testing.T, s *apitest.Server, from apitest.User, typ, txn string, messages map[string]any) {
	t.Helper()
	r := s.Do("PUT", "/_matrix/client/v3/sendToDevice/"+url.PathEscape(typ)+"/"+url.PathEscape(txn), from.Token,
		map[string]any{"messages": messages}).Expect(t, 200, "")
	if got := strings.TrimSpace(string(r.Body)); got != "{}" {
		t.Fatalf("sendToDevice answered %s, want {}", got)
	}
}

// tdSync is a /sync of u's device returning its to-device events, decoded
// as generic JSON so that every field they carry is compared, and the
// next_batch token.
func tdSync(t *testing.T, s *apitest.Server, u apitest.User, q url.Values) ([]map[string]any, string) {
	t.Helper()
	r := s.Do("GET", "/_matrix/client/v3/sync?"+q.Encode(), u.Token, nil).Expect(t, 200, "")
	var out struct {
		NextBatch string `json:"next_batch"`
		ToDevice  *struct {
			Events []map[string]any `json:"events"`
		} `json:"to_device"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil || out.NextBatch == "" {
		t.Fatalf("sync answer %s: %v", r.Body, err)
	}
	if out.ToDevice == nil {
		return nil, out.NextBatch
	}
	if len(out.ToDevice.Events) == 0 {
		t.Errorf("sync sent an empty to_device section: %s", r.Body)
	}
	return out.ToDevice.Events, out.NextBatch
}

// tdEvent is a to-device event as /sync must deliver it.
func tdEvent(sender, typ string, content map[string]any) map[string]any {
	return map[string]any{"sender": sender, "type": typ, "content": content}
}

// wantEvents fails unless got is exactly want.
func wantEvents(t *testing.T, what string, got []map[string]any, want ...map[string]any) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("%s: to_device events %s, want %s", what, g, w)
	}
}

func TestToDeviceDelivery(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")
		bob2 := s.Login("bob", "pw-bob-123")
		_, tok1 := tdSync(t, s, bob, url.Values{})

		// To one device: the other device of the same user gets nothing.
		sendToDevice(t, s, alice, "m.room.encrypted", "t1", map[string]any{
			bob.ID: map[string]any{bob.DeviceID: map[string]any{"algorithm": "m.olm.v1", "n": 1}},
		})
		want1 := tdEvent(alice.ID, "m.room.encrypted", map[string]any{"algorithm": "m.olm.v1", "n": float64(1)})
		got, tok2 := tdSync(t, s, bob, since(tok1))
		wantEvents(t, "first delivery", got, want1)
		if other, _ := tdSync(t, s, bob2, url.Values{}); len(other) != 0 {
			t.Errorf("message for %s delivered to %s: %v", bob.DeviceID, bob2.DeviceID, other)
		}
		// Not acknowledged until the client uses the newer token: the same
		// since gives the message again.
		got, again := tdSync(t, s, bob, since(tok1))
		wantEvents(t, "repeated since", got, want1)
		if again != tok2 {
			t.Errorf("repeated since gave next_batch %s, first time %s", again, tok2)
		}
		// Syncing from tok2 acknowledges it: gone for good, even for tok1.
		got, tok3 := tdSync(t, s, bob, since(tok2))
		wantEvents(t, "after acknowledging", got)
		got, _ = tdSync(t, s, bob, since(tok1))
		wantEvents(t, "old token after acknowledging", got)

		// "*" reaches every device; an explicit entry wins over it.
		sendToDevice(t, s, alice, "m.test", "t2", map[string]any{
			bob.ID: map[string]any{"*": map[string]any{"to": "all"}, bob2.DeviceID: map[string]any{"to": "two"}},
		})
		got, _ = tdSync(t, s, bob, since(tok3))
		wantEvents(t, "* on the first device", got, tdEvent(alice.ID, "m.test", map[string]any{"to": "all"}))
		// An initial sync delivers pending messages but acknowledges none.
		for i := range 2 {
			got, _ = tdSync(t, s, bob2, url.Values{})
			wantEvents(t, fmt.Sprintf("initial sync %d of the second device", i+1), got,
				tdEvent(alice.ID, "m.test", map[string]any{"to": "two"}))
		}

		// Unknown users and devices, users of other servers and invalid
		// user IDs are dropped silently.
		sendToDevice(t, s, alice, "m.test", "t3", map[string]any{
			"@nobody:" + apitest.ServerName: map[string]any{"*": map[string]any{}},
			bob.ID:                          map[string]any{"NOSUCHDEVICE": map[string]any{}},
			"@bob:elsewhere.example":        map[string]any{"*": map[string]any{}},
			"not a user":                    map[string]any{"*": map[string]any{}},
		})
		_, tok4 := tdSync(t, s, bob, since(tok3))
		got, _ = tdSync(t, s, bob, since(tok4))
		wantEvents(t, "after messages to nobody", got)
	})
}

func TestToDeviceTransactionID(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")
		_, tok := tdSync(t, s, bob, url.Values{})
		to := func(n int) map[string]any {
			return map[string]any{bob.ID: map[string]any{bob.DeviceID: map[string]any{"n": n}}}
		}
		sendToDevice(t, s, alice, "m.test", "same", to(1))
		sendToDevice(t, s, alice, "m.test", "same", to(2)) // a retry: stores nothing
		// The transaction ID is scoped to the path: another event type is
		// another request.
		sendToDevice(t, s, alice, "m.other", "same", to(3))
		// A request that failed stored nothing, its ID included.
		s.Do("PUT", "/_matrix/client/v3/sendToDevice/m.test/failed", alice.Token, `{"messages": []}`).Expect(t, 400, "M_BAD_JSON")
		sendToDevice(t, s, alice, "m.test", "failed", to(4))
		got, _ := tdSync(t, s, bob, since(tok))
		wantEvents(t, "after a retried transaction", got,
			tdEvent(alice.ID, "m.test", map[string]any{"n": float64(1)}),
			tdEvent(alice.ID, "m.other", map[string]any{"n": float64(3)}),
			tdEvent(alice.ID, "m.test", map[string]any{"n": float64(4)}))
	})
}

func TestToDeviceWakesLongPoll(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")
		bob2 := s.Login("bob", "pw-bob-123")
		_, tok := tdSync(t, s, bob, url.Values{})

		type result struct {
			events []map[string]any
			at     time.Time
		}
		done := make(chan result, 1)
		go func() {
			q := since(tok)
			q.Set("timeout", "20000")
			evs, _ := tdSync(t, s, bob, q)
			done <- result{evs, time.Now()}
		}()
		select {
		case r := <-done:
			t.Fatalf("long poll returned before anything happened: %v", r.events)
		case <-time.After(300 * time.Millisecond):
		}
		// A message for another device of the same user does not wake it.
		sendToDevice(t, s, alice, "m.test", "other", map[string]any{bob.ID: map[string]any{bob2.DeviceID: map[string]any{}}})
		select {
		case r := <-done:
			t.Fatalf("long poll woken by a message for another device: %v", r.events)
		case <-time.After(300 * time.Millisecond):
		}
		sent := time.Now()
		sendToDevice(t, s, alice, "m.test", "wake", map[string]any{bob.ID: map[string]any{bob.DeviceID: map[string]any{"wake": true}}})
		select {
		case r := <-done:
			wantEvents(t, "woken sync", r.events, tdEvent(alice.ID, "m.test", map[string]any{"wake": true}))
			t.Logf("woken %v after the send began", r.at.Sub(sent))
		case <-time.After(5 * time.Second):
			t.Fatal("long poll not woken by a to-device message")
		}
	})
}

// More messages than one response carries arrive over several syncs, in
// order, none lost, and the syncs that fetch the rest return at once even
// with a long timeout.
func TestToDeviceManyPending(t *testing.T) {
	const n = 230
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")
		for i := range n {
			sendToDevice(t, s, alice, "m.test", fmt.Sprint(i), map[string]any{bob.ID: map[string]any{bob.DeviceID: map[string]any{"i": i}}})
		}
		var seen []int
		var sizes []int
		check := func(evs []map[string]any) {
			t.Helper()
			sizes = append(sizes, len(evs))
			for _, e := range evs {
				c, _ := e["content"].(map[string]any)
				i, _ := c["i"].(float64)
				seen = append(seen, int(i))
			}
		}
		evs, tok := tdSync(t, s, bob, url.Values{}) // initial: the first batch
		check(evs)
		for round := 0; round < 5 && len(seen) < n; round++ {
			q := since(tok)
			q.Set("timeout", "20000")
			start := time.Now()
			prev := tok
			evs, tok = tdSync(t, s, bob, q)
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("sync for the remaining messages took %v: it waited instead of answering at once", d)
			}
			check(evs)
			if round == 0 {
				// Not acknowledged yet: the same since gives the same batch.
				again, againTok := tdSync(t, s, bob, since(prev))
				if !reflect.DeepEqual(again, evs) || againTok != tok {
					t.Errorf("repeating since %s gave %d events and %s, first %d and %s", prev, len(again), againTok, len(evs), tok)
				}
			}
		}
		if want := []int{100, 100, n - 200}; !reflect.DeepEqual(sizes, want) {
			t.Errorf("batch sizes %v, want %v", sizes, want)
		}
		for i, v := range seen {
			if v != i {
				t.Fatalf("message %d of the deliveries is %d: out of order, lost or repeated (%v)", i, v, seen)
			}
		}
		if len(seen) != n {
			t.Fatalf("delivered %d messages, want %d", len(seen), n)
		}
		got, _ := tdSync(t, s, bob, since(tok))
		wantEvents(t, "after everything was delivered", got)
	})
}

func TestToDeviceBadRequests(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")
		path := "/_matrix/client/v3/sendToDevice/m.test/"
		big := strings.Repeat("x", 65536)
		for i, c := range []struct {
			body    string
			status  int
			errcode string
		}{
			{`not json`, 400, "M_NOT_JSON"},
			{`[]`, 400, "M_BAD_JSON"},
			{`"messages"`, 400, "M_BAD_JSON"},
			{`{}`, 400, "M_MISSING_PARAM"},
			{`{"messages": null}`, 400, "M_MISSING_PARAM"},
			{`{"messages": []}`, 400, "M_BAD_JSON"},
			{`{"messages": "x"}`, 400, "M_BAD_JSON"},
			{`{"messages": {"` + bob.ID + `": "x"}}`, 400, "M_BAD_JSON"},
			{`{"messages": {"` + bob.ID + `": null}}`, 400, "M_BAD_JSON"},
			{`{"messages": {"` + bob.ID + `": {"` + bob.DeviceID + `": "x"}}}`, 400, "M_BAD_JSON"},
			{`{"messages": {"` + bob.ID + `": {"` + bob.DeviceID + `": [1]}}}`, 400, "M_BAD_JSON"},
			{`{"messages": {"` + bob.ID + `": {"` + bob.DeviceID + `": null}}}`, 400, "M_BAD_JSON"},
			{`{"messages": {"` + bob.ID + `": {"` + bob.DeviceID + `": {"big": "` + big + `"}}}}`, 413, "M_TOO_LARGE"},
			{`{"messages": {}}`, 200, ""},
			{`{"messages": {"` + bob.ID + `": {}}}`, 200, ""},
		} {
			s.Do("PUT", path+fmt.Sprint("txn", i), alice.Token, c.body).Expect(t, c.status, c.errcode)
		}
		// Event type limits.
		long := strings.Repeat("t", 256)
		body := map[string]any{"messages": map[string]any{}}
		s.Do("PUT", "/_matrix/client/v3/sendToDevice/"+long+"/1", alice.Token, body).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("PUT", "/_matrix/client/v3/sendToDevice/"+long[:255]+"/1", alice.Token, body).Expect(t, 200, "")
		// Authentication and method.
		s.Do("PUT", path+"noauth", "", body).Expect(t, 401, "M_MISSING_TOKEN")
		s.Do("PUT", path+"badauth", "not-a-token", body).Expect(t, 401, "M_UNKNOWN_TOKEN")
		s.Do("GET", path+"get", alice.Token, nil).Expect(t, 405, "M_UNRECOGNIZED")
		// Nothing of that reached bob.
		got, tok := tdSync(t, s, bob, url.Values{})
		wantEvents(t, "after bad requests", got)

		// Sync tokens with a to-device position: never above the stream
		// position, and nothing after it.
		pos, _, _ := strings.Cut(strings.TrimPrefix(tok, "s"), "_")
		for _, bad := range []string{"s" + pos + "_0_" + pos + "1", "s1_0_2", "s1_0_1_1", "s1_0_", "s1_0_-1", "s1_0_x"} {
			s.Do("GET", "/_matrix/client/v3/sync?timeout=0&since="+bad, bob.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
		}
		for _, good := range []string{"s" + pos + "_0_" + pos, "s" + pos + "_0_0", "s" + pos + "_0", "s" + pos} {
			s.Do("GET", "/_matrix/client/v3/sync?timeout=0&since="+good, bob.Token, nil).Expect(t, 200, "")
		}
	})
}
