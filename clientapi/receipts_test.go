package clientapi_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aula-chat/aula/internal/apitest"
)

// rcPath is the client API path of a room endpoint.
func rcPath(roomID, rest string) string {
	return "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + rest
}

// rcReceipt posts a receipt.
func rcReceipt(s *apitest.Server, u apitest.User, roomID, typ, eventID string, body any) *apitest.Response {
	return s.Do("POST", rcPath(roomID, "/receipt/"+url.PathEscape(typ)+"/"+url.PathEscape(eventID)), u.Token, body)
}

// rcEmpty fails unless the response is 200 with the body {}.
func rcEmpty(t *testing.T, what string, r *apitest.Response) {
	t.Helper()
	if r.Status != 200 || strings.TrimSpace(string(r.Body)) != "{}" {
		t.Fatalf("%s: %d %s, want 200 {}", what, r.Status, r.Body)
	}
}

// rcStored lists the receipts viewer may see in the rooms, as
// "user type thread event" in stream order.
func rcStored(t *testing.T, s *apitest.Server, viewer string, rooms ...string) []string {
	t.Helper()
	rs, err := s.App.DB.ReceiptsVisibleTo(t.Context(), viewer, rooms, 0)
	if err != nil {
		t.Fatalf("ReceiptsVisibleTo: %v", err)
	}
	var out []string
	for _, r := range rs {
		out = append(out, strings.Join([]string{r.UserID, r.Type, r.ThreadID, r.EventID}, " "))
	}
	return out
}

func rcWant(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: receipts\n%q\nwant\n%q", what, got, want)
	}
}

// rcRoom is a public room of alice's that bob joined, with three messages.
type rcRoom struct {
	alice, bob apitest.User
	room       string
	ev         []string
}

func rcSetup(t *testing.T, s *apitest.Server) rcRoom {
	t.Helper()
	f := rcRoom{alice: s.Register("alice", "pw"), bob: s.Register("bob", "pw")}
	f.room = s.CreateRoom(f.alice, map[string]any{"preset": "public_chat"})
	s.Do("POST", rcPath(f.room, "/join"), f.bob.Token, map[string]any{}).Expect(t, 200, "")
	for i := range 3 {
		f.ev = append(f.ev, s.SendText(f.alice, f.room, fmt.Sprint("m", i)))
	}
	return f
}

func TestReceipt(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		f := rcSetup(t, s)
		bob := f.bob.ID

		before := time.Now().UnixMilli()
		rcEmpty(t, "m.read", rcReceipt(s, f.bob, f.room, "m.read", f.ev[1], map[string]any{}))
		after := time.Now().UnixMilli()
		rcWant(t, "after m.read", rcStored(t, s, f.alice.ID, f.room), bob+" m.read  "+f.ev[1])
		rs, _ := s.App.DB.ReceiptsVisibleTo(t.Context(), f.alice.ID, []string{f.room}, 0)
		if len(rs) != 1 || rs[0].TS < before || rs[0].TS > after {
			t.Errorf("receipt ts = %+v, want the time of the request (%d-%d)", rs, before, after)
		}
		pos := rs[0].StreamPos

		// Receipts mark "read up to": an earlier event changes nothing,
		// but the request still succeeds. No body at all counts as {}.
		rcEmpty(t, "earlier m.read", rcReceipt(s, f.bob, f.room, "m.read", f.ev[0], nil))
		rcEmpty(t, "same m.read", rcReceipt(s, f.bob, f.room, "m.read", f.ev[1], nil))
		rs, _ = s.App.DB.ReceiptsVisibleTo(t.Context(), f.alice.ID, []string{f.room}, 0)
		if len(rs) != 1 || rs[0].EventID != f.ev[1] || rs[0].StreamPos != pos {
			t.Errorf("after moving back: %+v, want %s at position %d", rs, f.ev[1], pos)
		}
		rcEmpty(t, "later m.read", rcReceipt(s, f.bob, f.room, "m.read", f.ev[2], map[string]any{}))
		rs, _ = s.App.DB.ReceiptsVisibleTo(t.Context(), f.alice.ID, []string{f.room}, pos)
		if len(rs) != 1 || rs[0].EventID != f.ev[2] {
			t.Errorf("receipts since %d: %+v, want the move to %s", pos, rs, f.ev[2])
		}

		// Private receipts are for their owner's eyes only.
		rcEmpty(t, "m.read.private", rcReceipt(s, f.bob, f.room, "m.read.private", f.ev[2], map[string]any{}))
		rcWant(t, "alice sees", rcStored(t, s, f.alice.ID, f.room), bob+" m.read  "+f.ev[2])
		rcWant(t, "bob sees", rcStored(t, s, bob, f.room), bob+" m.read  "+f.ev[2], bob+" m.read.private  "+f.ev[2])

		// A threaded receipt is a marker of its own.
		rcEmpty(t, "threaded", rcReceipt(s, f.bob, f.room, "m.read", f.ev[0], map[string]any{"thread_id": "main"}))
		rcWant(t, "with main", rcStored(t, s, f.alice.ID, f.room), bob+" m.read  "+f.ev[2], bob+" m.read main "+f.ev[0])

		// Joined members only: someone who left can no longer send one.
		s.Do("POST", rcPath(f.room, "/leave"), f.bob.Token, map[string]any{}).Expect(t, 200, "")
		rcReceipt(s, f.bob, f.room, "m.read", f.ev[2], map[string]any{}).Expect(t, 403, "M_FORBIDDEN")
	})
}

func TestReceiptErrors(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		f := rcSetup(t, s)
		carol := s.Register("carol", "pw")
		// An event bob cannot see: sent while history was "joined"-only,
		// before he joined.
		hidden := s.CreateRoom(f.alice, map[string]any{"preset": "public_chat"})
		s.Do("PUT", rcPath(hidden, "/state/m.room.history_visibility/"), f.alice.Token,
			map[string]string{"history_visibility": "joined"}).Expect(t, 200, "")
		secret := s.SendText(f.alice, hidden, "before bob")
		s.Do("POST", rcPath(hidden, "/join"), f.bob.Token, map[string]any{}).Expect(t, 200, "")
		// An event of a room bob is not in.
		other := s.CreateRoom(f.alice, map[string]any{})
		elsewhere := s.SendText(f.alice, other, "elsewhere")

		ev := f.ev[1]
		for _, c := range []struct {
			name          string
			user          apitest.User
			room, typ, id string
			body          any
			status        int
			errcode       string
		}{
			{"unknown receipt type", f.bob, f.room, "m.seen", ev, "{}", 400, "M_INVALID_PARAM"},
			{"not an event ID", f.bob, f.room, "m.read", "nope", "{}", 400, "M_INVALID_PARAM"},
			{"not a room ID", f.bob, "nope", "m.read", ev, "{}", 400, "M_INVALID_PARAM"},
			{"not JSON", f.bob, f.room, "m.read", ev, "{", 400, "M_NOT_JSON"},
			{"not an object", f.bob, f.room, "m.read", ev, "[]", 400, "M_BAD_JSON"},
			{"empty thread_id", f.bob, f.room, "m.read", ev, `{"thread_id":""}`, 400, "M_INVALID_PARAM"},
			{"numeric thread_id", f.bob, f.room, "m.read", ev, `{"thread_id":1}`, 400, "M_INVALID_PARAM"},
			{"null thread_id", f.bob, f.room, "m.read", ev, `{"thread_id":null}`, 400, "M_INVALID_PARAM"},
			{"thread_id not main or an event", f.bob, f.room, "m.read", ev, `{"thread_id":"thread"}`, 400, "M_INVALID_PARAM"},
			{"thread_id with m.fully_read", f.bob, f.room, "m.fully_read", ev, `{"thread_id":"main"}`, 400, "M_INVALID_PARAM"},
			{"not in the room", carol, f.room, "m.read", ev, "{}", 403, "M_FORBIDDEN"},
			{"unknown room", f.bob, "!nope:aula.test", "m.read", ev, "{}", 403, "M_FORBIDDEN"},
			{"unknown event", f.bob, f.room, "m.read", "$nope", "{}", 404, "M_NOT_FOUND"},
			{"event of another room", f.bob, f.room, "m.read", elsewhere, "{}", 404, "M_NOT_FOUND"},
			{"event of another room, m.fully_read", f.bob, f.room, "m.fully_read", elsewhere, "{}", 404, "M_NOT_FOUND"},
			{"invisible event", f.bob, hidden, "m.read", secret, "{}", 404, "M_NOT_FOUND"},
			{"invisible event, private", f.bob, hidden, "m.read.private", secret, "{}", 404, "M_NOT_FOUND"},
			{"unknown event in a thread", f.bob, f.room, "m.read", "$nope", `{"thread_id":"main"}`, 404, "M_NOT_FOUND"},
		} {
			t.Run(c.name, func(t *testing.T) {
				rcReceipt(s, c.user, c.room, c.typ, c.id, c.body).Expect(t, c.status, c.errcode)
			})
		}
		s.Do("GET", rcPath(f.room, "/receipt/m.read/"+url.PathEscape(ev)), f.bob.Token, nil).Expect(t, 405, "M_UNRECOGNIZED")
		s.Do("POST", rcPath(f.room, "/receipt/m.read/"+url.PathEscape(ev)), "", map[string]any{}).Expect(t, 401, "M_MISSING_TOKEN")

		rcWant(t, "after failed requests", rcStored(t, s, f.bob.ID, f.room, hidden, other))
		s.Do("GET", "/_matrix/client/v3/user/"+url.PathEscape(f.bob.ID)+"/rooms/"+url.PathEscape(f.room)+"/account_data/m.fully_read",
			f.bob.Token, nil).Expect(t, 404, "M_NOT_FOUND")
	})
}

func TestThreadedReceipts(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		f := rcSetup(t, s)
		relates := func(rel, parent string) map[string]any {
			return map[string]any{"rel_type": rel, "event_id": parent}
		}
		root := s.SendText(f.alice, f.room, "root")
		reply := s.Send(f.alice, f.room, "m.room.message", map[string]any{
			"msgtype": "m.text", "body": "in thread", "m.relates_to": relates("m.thread", root),
		})
		onReply := s.Send(f.alice, f.room, "m.reaction", map[string]any{
			"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": reply, "key": "👍"},
		})
		onRoot := s.Send(f.alice, f.room, "m.reaction", map[string]any{
			"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": root, "key": "👍"},
		})
		plain := s.SendText(f.alice, f.room, "plain")

		for _, c := range []struct {
			name, thread, event string
			ok                  bool
		}{
			{"main: thread root", "main", root, true},
			{"main: reaction to the root", "main", onRoot, true},
			{"main: plain message", "main", plain, true},
			{"main: thread reply", "main", reply, false},
			{"main: reaction to a reply", "main", onReply, false},
			{"thread: reply", root, reply, true},
			{"thread: reaction to a reply", root, onReply, true},
			{"thread: the root itself", root, root, true},
			{"thread: reaction to the root", root, onRoot, true},
			{"thread: plain message", root, plain, false},
			{"thread: another thread", plain, reply, false},
			{"thread: an event without replies", plain, plain, false},
			{"thread: unknown root", "$nope", reply, false},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := rcReceipt(s, f.bob, f.room, "m.read.private", c.event, map[string]any{"thread_id": c.thread})
				if c.ok {
					rcEmpty(t, c.name, r)
				} else {
					r.Expect(t, 400, "M_INVALID_PARAM")
				}
			})
		}
		rcEmpty(t, "thread receipt", rcReceipt(s, f.bob, f.room, "m.read", reply, map[string]any{"thread_id": root}))
		rcWant(t, "public receipts", rcStored(t, s, f.alice.ID, f.room), f.bob.ID+" m.read "+root+" "+reply)
	})
}

func TestReadMarkers(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		f := rcSetup(t, s)
		carol := s.Register("carol", "pw")
		other := s.CreateRoom(f.alice, map[string]any{})
		elsewhere := s.SendText(f.alice, other, "elsewhere")
		markers := rcPath(f.room, "/read_markers")
		marker := func(u apitest.User) string {
			t.Helper()
			r := s.Do("GET", "/_matrix/client/v3/user/"+url.PathEscape(u.ID)+"/rooms/"+url.PathEscape(f.room)+"/account_data/m.fully_read", u.Token, nil)
			if r.Status == 404 {
				return ""
			}
			r.Expect(t, 200, "")
			if len(r.JSON) != 1 {
				t.Errorf("m.fully_read content = %s, want only event_id", r.Body)
			}
			return r.String("event_id")
		}

		rcEmpty(t, "both", s.Do("POST", markers, f.bob.Token, map[string]any{"m.fully_read": f.ev[1], "m.read": f.ev[1]}))
		if got := marker(f.bob); got != f.ev[1] {
			t.Errorf("marker = %q, want %s", got, f.ev[1])
		}
		rcWant(t, "m.read", rcStored(t, s, f.alice.ID, f.room), f.bob.ID+" m.read  "+f.ev[1])
		if got := marker(f.alice); got != "" {
			t.Errorf("alice's marker = %q, want none", got)
		}

		// The marker only moves forwards, like receipts.
		rcEmpty(t, "back", s.Do("POST", markers, f.bob.Token, map[string]any{"m.fully_read": f.ev[0]}))
		if got := marker(f.bob); got != f.ev[1] {
			t.Errorf("marker after moving back = %q, want %s", got, f.ev[1])
		}
		// /receipt/m.fully_read sets the marker, not a receipt.
		rcEmpty(t, "receipt m.fully_read", rcReceipt(s, f.bob, f.room, "m.fully_read", f.ev[2], map[string]any{}))
		if got := marker(f.bob); got != f.ev[2] {
			t.Errorf("marker after /receipt/m.fully_read = %q, want %s", got, f.ev[2])
		}
		rcWant(t, "receipts after m.fully_read", rcStored(t, s, f.bob.ID, f.room), f.bob.ID+" m.read  "+f.ev[1])

		// m.read.private, an empty body and unknown keys.
		rcEmpty(t, "private", s.Do("POST", markers, f.bob.Token, map[string]any{"m.read.private": f.ev[2], "org.example.seen": "x"}))
		rcEmpty(t, "nothing", s.Do("POST", markers, f.bob.Token, map[string]any{}))
		rcWant(t, "bob's receipts", rcStored(t, s, f.bob.ID, f.room), f.bob.ID+" m.read  "+f.ev[1], f.bob.ID+" m.read.private  "+f.ev[2])
		rcWant(t, "alice's view", rcStored(t, s, f.alice.ID, f.room), f.bob.ID+" m.read  "+f.ev[1])

		// Clients cannot write the marker as account data.
		s.Do("PUT", "/_matrix/client/v3/user/"+url.PathEscape(f.bob.ID)+"/rooms/"+url.PathEscape(f.room)+"/account_data/m.fully_read",
			f.bob.Token, map[string]string{"event_id": f.ev[0]}).Expect(t, 405, "M_BAD_JSON")

		// Failures change nothing, even for the fields that were fine.
		e4 := s.SendText(f.alice, f.room, "m4")
		for _, c := range []struct {
			name    string
			user    apitest.User
			room    string
			body    any
			status  int
			errcode string
		}{
			{"not JSON", f.bob, f.room, "{", 400, "M_NOT_JSON"},
			{"no body", f.bob, f.room, nil, 400, "M_NOT_JSON"},
			{"not an object", f.bob, f.room, "[]", 400, "M_BAD_JSON"},
			{"not a string", f.bob, f.room, map[string]any{"m.fully_read": 4}, 400, "M_BAD_JSON"},
			{"not an event ID", f.bob, f.room, map[string]any{"m.fully_read": e4, "m.read": "nope"}, 400, "M_INVALID_PARAM"},
			{"unknown event", f.bob, f.room, map[string]any{"m.fully_read": e4, "m.read": "$nope"}, 404, "M_NOT_FOUND"},
			{"event of another room", f.bob, f.room, map[string]any{"m.read": e4, "m.fully_read": elsewhere}, 404, "M_NOT_FOUND"},
			{"not in the room", carol, f.room, map[string]any{"m.fully_read": e4}, 403, "M_FORBIDDEN"},
			{"not in the room, empty", carol, f.room, map[string]any{}, 403, "M_FORBIDDEN"},
			{"unknown room", f.bob, "!nope:aula.test", map[string]any{"m.fully_read": e4}, 403, "M_FORBIDDEN"},
			{"not a room ID", f.bob, "nope", map[string]any{"m.fully_read": e4}, 400, "M_INVALID_PARAM"},
		} {
			t.Run(c.name, func(t *testing.T) {
				s.Do("POST", rcPath(c.room, "/read_markers"), c.user.Token, c.body).Expect(t, c.status, c.errcode)
			})
		}
		if got := marker(f.bob); got != f.ev[2] {
			t.Errorf("marker after failed requests = %q, want %s", got, f.ev[2])
		}
		rcWant(t, "receipts after failed requests", rcStored(t, s, f.bob.ID, f.room), f.bob.ID+" m.read  "+f.ev[1], f.bob.ID+" m.read.private  "+f.ev[2])

		// Requests racing each other still leave the marker and the
		// receipt at the latest event.
		var later []string
		for i := range 12 {
			later = append(later, s.SendText(f.alice, f.room, fmt.Sprint("later ", i)))
		}
		statuses := make(chan int, len(later))
		var wg sync.WaitGroup
		for _, id := range later {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses <- s.Do("POST", markers, f.bob.Token, map[string]any{"m.fully_read": id, "m.read": id}).Status
			}()
		}
		wg.Wait()
		close(statuses)
		for st := range statuses {
			if st != 200 {
				t.Errorf("concurrent read_markers: status %d", st)
			}
		}
		last := later[len(later)-1]
		if got := marker(f.bob); got != last {
			t.Errorf("marker after concurrent requests = %q, want the latest %s", got, last)
		}
		rcWant(t, "receipts after concurrent requests", rcStored(t, s, f.alice.ID, f.room), f.bob.ID+" m.read  "+last)
	})
}

func TestTyping(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		f := rcSetup(t, s)
		carol := s.Register("carol", "pw")
		tr := s.App.Typing
		typingPath := func(room string, u string) string {
			return rcPath(room, "/typing/"+url.PathEscape(u))
		}
		put := func(u apitest.User, body any) *apitest.Response {
			return s.Do("PUT", typingPath(f.room, u.ID), u.Token, body)
		}
		want := func(what string, users ...string) {
			t.Helper()
			if users == nil {
				users = []string{}
			}
			if got := tr.Typing(f.room); !slices.Equal(got, users) {
				t.Errorf("%s: typing %q, want %q", what, got, users)
			}
		}

		serial := tr.Serial()
		rcEmpty(t, "alice types", put(f.alice, map[string]any{"typing": true, "timeout": 10000}))
		want("alice types", f.alice.ID)
		rcEmpty(t, "bob types", put(f.bob, map[string]any{"typing": true})) // default timeout
		want("both type", f.alice.ID, f.bob.ID)
		rcEmpty(t, "alice stops", put(f.alice, map[string]any{"typing": false}))
		want("alice stopped", f.bob.ID)
		rcEmpty(t, "huge timeout", put(f.alice, map[string]any{"typing": true, "timeout": 1 << 40}))
		want("huge timeout", f.alice.ID, f.bob.ID)
		if next := tr.Serial(); next != serial+4 {
			t.Errorf("serial %d -> %d, want 4 changes", serial, next)
		}

		for _, c := range []struct {
			name    string
			user    apitest.User
			path    string
			body    any
			status  int
			errcode string
		}{
			{"someone else", f.alice, typingPath(f.room, f.bob.ID), map[string]any{"typing": true}, 403, "M_FORBIDDEN"},
			{"not in the room", carol, typingPath(f.room, carol.ID), map[string]any{"typing": true}, 403, "M_FORBIDDEN"},
			{"unknown room", f.bob, typingPath("!nope:aula.test", f.bob.ID), map[string]any{"typing": true}, 403, "M_FORBIDDEN"},
			{"not a room ID", f.bob, typingPath("nope", f.bob.ID), map[string]any{"typing": true}, 400, "M_INVALID_PARAM"},
			{"no typing", f.bob, typingPath(f.room, f.bob.ID), map[string]any{"timeout": 100}, 400, "M_MISSING_PARAM"},
			{"typing not a boolean", f.bob, typingPath(f.room, f.bob.ID), map[string]any{"typing": "yes"}, 400, "M_BAD_JSON"},
			{"timeout not a number", f.bob, typingPath(f.room, f.bob.ID), map[string]any{"typing": true, "timeout": "1s"}, 400, "M_BAD_JSON"},
			{"timeout negative", f.bob, typingPath(f.room, f.bob.ID), map[string]any{"typing": true, "timeout": -1}, 400, "M_INVALID_PARAM"},
			{"not JSON", f.bob, typingPath(f.room, f.bob.ID), "{", 400, "M_NOT_JSON"},
			{"no body", f.bob, typingPath(f.room, f.bob.ID), nil, 400, "M_NOT_JSON"},
		} {
			t.Run(c.name, func(t *testing.T) {
				s.Do("PUT", c.path, c.user.Token, c.body).Expect(t, c.status, c.errcode)
			})
		}
		s.Do("POST", typingPath(f.room, f.bob.ID), f.bob.Token, map[string]any{"typing": true}).Expect(t, 405, "M_UNRECOGNIZED")
		want("after failed requests", f.alice.ID, f.bob.ID)
		if got := tr.Typing("!nope:aula.test"); len(got) != 0 {
			t.Errorf("typing in an unknown room: %q", got)
		}

		// Typing ends by itself after the timeout.
		rcEmpty(t, "short", put(f.bob, map[string]any{"typing": true, "timeout": 30}))
		deadline := time.Now().Add(5 * time.Second)
		for slices.Contains(tr.Typing(f.room), f.bob.ID) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		want("after bob's timeout", f.alice.ID)

		// Leaving: no more typing requests.
		s.Do("POST", rcPath(f.room, "/leave"), f.bob.Token, map[string]any{}).Expect(t, 200, "")
		put(f.bob, map[string]any{"typing": true}).Expect(t, 403, "M_FORBIDDEN")
	})
}
