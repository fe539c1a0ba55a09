package clientapi_test

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// unreadOf syncs and returns rooms.join[room] as decoded JSON, and the
// next batch token.
func unreadOf(t *testing.T, s *apitest.Server, u apitest.User, room, sinceTok, filter string) (map[string]any, string) {
	t.Helper()
	q := url.Values{"timeout": {"0"}}
	if sinceTok != "" {
		q.Set("since", sinceTok)
	}
	if filter != "" {
		q.Set("filter", filter)
	}
	r := s.Do("GET", "/_matrix/client/v3/sync?"+q.Encode(), u.Token, nil).Expect(t, 200, "")
	var body struct {
		NextBatch string `json:"next_batch"`
		Rooms     struct {
			Join map[string]map[string]any `json:"join"`
		} `json:"rooms"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("decode sync: %v", err)
	}
	return body.Rooms.Join[room], body.NextBatch
}

// counts returns a {notification_count, highlight_count} object as a pair.
func counts(t *testing.T, v any) [2]int {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("no counts in %v", v)
	}
	n, _ := m["notification_count"].(float64)
	h, _ := m["highlight_count"].(float64)
	return [2]int{int(n), int(h)}
}

func receipt(t *testing.T, s *apitest.Server, u apitest.User, room, typ, eventID string, body any) {
	t.Helper()
	s.Do("POST", "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/receipt/"+typ+"/"+url.PathEscape(eventID), u.Token, body).Expect(t, 200, "")
}

// TestUnreadCountsInSync checks unread_notifications before and after
// receipts, in the main timeline and in threads.
func TestUnreadCountsInSync(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice, bob := s.Register("alice", "pw-alice-123"), s.Register("bob", "pw-bob-123")
		room := s.CreateRoom(alice, map[string]any{})
		s.Invite(alice, room, bob)
		s.Join(bob, room)
		_, tok := unreadOf(t, s, bob, room, "", "")

		s.SendText(alice, room, "hello")
		mention := s.Send(alice, room, "m.room.message", map[string]any{"msgtype": "m.text", "body": "hey you",
			"m.mentions": map[string]any{"user_ids": []string{bob.ID}}})
		s.SendText(bob, room, "my own message never counts")
		jr, tok := unreadOf(t, s, bob, room, tok, "")
		if got := counts(t, jr["unread_notifications"]); got != [2]int{2, 1} {
			t.Fatalf("after two messages and a mention: counts %v, want [2 1]", got)
		}
		// The sender's own counts stay at zero.
		ajr, _ := unreadOf(t, s, alice, room, "", "")
		if got := counts(t, ajr["unread_notifications"]); got != [2]int{1, 0} {
			t.Fatalf("alice: counts %v, want [1 0] (bob's message)", got)
		}

		receipt(t, s, bob, room, "m.read", mention, map[string]any{})
		jr, tok = unreadOf(t, s, bob, room, tok, "")
		if got := counts(t, jr["unread_notifications"]); got != [2]int{0, 0} {
			t.Fatalf("after m.read: counts %v, want [0 0]", got)
		}

		// Threads: a root in the main timeline and two replies in its thread.
		root := s.SendText(alice, room, "root")
		reply := func(body string) string {
			return s.Send(alice, room, "m.room.message", map[string]any{"msgtype": "m.text", "body": body,
				"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": root}})
		}
		reply("one")
		r2 := reply("two")
		const threaded = `{"room":{"timeline":{"unread_thread_notifications":true}}}`
		jr, tok = unreadOf(t, s, bob, room, tok, threaded)
		if got := counts(t, jr["unread_notifications"]); got != [2]int{1, 0} {
			t.Fatalf("main timeline: counts %v, want [1 0]", got)
		}
		threads, _ := jr["unread_thread_notifications"].(map[string]any)
		if got := counts(t, threads[root]); got != [2]int{2, 0} {
			t.Fatalf("thread: counts %v, want [2 0]; %v", got, jr)
		}
		// Without the filter flag every thread counts in the room's total.
		jrAll, _ := unreadOf(t, s, bob, room, "", "")
		if got := counts(t, jrAll["unread_notifications"]); got != [2]int{3, 0} {
			t.Fatalf("total: counts %v, want [3 0]", got)
		}

		// A threaded receipt resets only its thread.
		receipt(t, s, bob, room, "m.read", r2, map[string]any{"thread_id": root})
		jr, tok = unreadOf(t, s, bob, room, tok, threaded)
		if got := counts(t, jr["unread_notifications"]); got != [2]int{1, 0} {
			t.Fatalf("main after thread receipt: counts %v, want [1 0]", got)
		}
		if th, ok := jr["unread_thread_notifications"].(map[string]any); ok && th[root] != nil {
			t.Fatalf("thread still counted after its receipt: %v", th)
		}
		// A private unthreaded receipt resets everything.
		receipt(t, s, bob, room, "m.read.private", r2, map[string]any{})
		jr, _ = unreadOf(t, s, bob, room, tok, threaded)
		if got := counts(t, jr["unread_notifications"]); got != [2]int{0, 0} {
			t.Fatalf("after m.read.private: counts %v, want [0 0]", got)
		}
	})
}

// TestNotificationsList checks GET /notifications: order, read flags,
// only=highlight and pagination.
func TestNotificationsList(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice, bob := s.Register("alice", "pw-alice-123"), s.Register("bob", "pw-bob-123")
		room := s.CreateRoom(alice, map[string]any{})
		s.Invite(alice, room, bob)
		s.Join(bob, room)
		first := s.SendText(alice, room, "first")
		mention := s.Send(alice, room, "m.room.message", map[string]any{"msgtype": "m.text", "body": "bob, look",
			"m.mentions": map[string]any{"user_ids": []string{bob.ID}}})
		s.Send(alice, room, "m.room.message", map[string]any{"msgtype": "m.notice", "body": "a notice never notifies"})
		last := s.SendText(alice, room, "last")
		receipt(t, s, bob, room, "m.read", first, map[string]any{})
		// A sync makes sure every event has been evaluated.
		unreadOf(t, s, bob, room, "", "")

		type page struct {
			Notifications []struct {
				Actions []any  `json:"actions"`
				Read    bool   `json:"read"`
				RoomID  string `json:"room_id"`
				TS      int64  `json:"ts"`
				Event   struct {
					EventID string `json:"event_id"`
				} `json:"event"`
			} `json:"notifications"`
			NextToken string `json:"next_token"`
		}
		get := func(q string) page {
			r := s.Do("GET", "/_matrix/client/v3/notifications"+q, bob.Token, nil).Expect(t, 200, "")
			var p page
			if err := json.Unmarshal(r.Body, &p); err != nil {
				t.Fatal(err)
			}
			return p
		}
		all := get("")
		var ids []string
		for _, n := range all.Notifications {
			ids = append(ids, n.Event.EventID)
			if n.RoomID != room || n.TS == 0 || len(n.Actions) == 0 {
				t.Fatalf("bad entry %+v", n)
			}
		}
		// The fourth is bob's invite (.m.rule.invite_for_me).
		if len(ids) != 4 || ids[0] != last || ids[1] != mention || ids[2] != first {
			t.Fatalf("notifications %v, want [last mention first invite]", ids)
		}
		if all.Notifications[2].Read != true || all.Notifications[0].Read {
			t.Fatalf("read flags wrong: %+v", all.Notifications)
		}
		if all.NextToken != "" {
			t.Fatalf("next_token %q on the last page", all.NextToken)
		}
		p1 := get("?limit=2")
		if len(p1.Notifications) != 2 || p1.NextToken == "" {
			t.Fatalf("page 1: %+v", p1)
		}
		p2 := get("?limit=2&from=" + url.QueryEscape(p1.NextToken))
		if len(p2.Notifications) != 2 || p2.Notifications[0].Event.EventID != first || p2.NextToken != "" {
			t.Fatalf("page 2: %+v", p2)
		}
		hl := get("?only=highlight")
		if len(hl.Notifications) != 1 || hl.Notifications[0].Event.EventID != mention {
			t.Fatalf("only=highlight: %+v", hl)
		}
		s.Do("GET", "/_matrix/client/v3/notifications?from=bogus", bob.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("GET", "/_matrix/client/v3/notifications", "", nil).Expect(t, 401, "M_MISSING_TOKEN")
	})
}

// TestNotificationsMembership checks what the on-demand list considers:
// only events that arrived while the user was joined (and their own
// invite), nothing sent before they joined or after they left, and
// read flags from threaded receipts.
func TestNotificationsMembership(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice, bob := s.Register("alice", "pw-alice-123"), s.Register("bob", "pw-bob-123")
		room := s.CreateRoom(alice, map[string]any{})
		s.SendText(alice, room, "before bob was invited")
		s.Invite(alice, room, bob)
		s.SendText(alice, room, "while bob was only invited")
		s.Join(bob, room)
		root := s.SendText(alice, room, "root")
		s.Send(alice, room, "m.room.message", map[string]any{"msgtype": "m.notice", "body": "not notifying"})
		reply := s.Send(alice, room, "m.room.message", map[string]any{"msgtype": "m.text", "body": "in the thread",
			"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": root}})
		receipt(t, s, bob, room, "m.read", reply, map[string]any{"thread_id": root})
		s.Leave(bob, room)
		s.SendText(alice, room, "after bob left")

		type entry struct {
			Read  bool `json:"read"`
			Event struct {
				EventID string `json:"event_id"`
				Type    string `json:"type"`
			} `json:"event"`
		}
		var body struct {
			Notifications []entry `json:"notifications"`
			NextToken     string  `json:"next_token"`
		}
		r := s.Do("GET", "/_matrix/client/v3/notifications", bob.Token, nil).Expect(t, 200, "")
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, n := range body.Notifications {
			ids = append(ids, n.Event.EventID)
		}
		if len(ids) != 3 || ids[0] != reply || ids[1] != root || body.Notifications[2].Event.Type != "m.room.member" {
			t.Fatalf("notifications %v, want [reply root invite]: %s", ids, r.Body)
		}
		// The threaded receipt covers the reply, not the root in the main timeline.
		if !body.Notifications[0].Read || body.Notifications[1].Read {
			t.Fatalf("read flags: %+v", body.Notifications)
		}
		if body.NextToken != "" {
			t.Fatalf("next_token %q at the end", body.NextToken)
		}
		// Paging one by one visits the same three, then ends.
		var paged []string
		from := ""
		for range 5 {
			q := "?limit=1"
			if from != "" {
				q += "&from=" + url.QueryEscape(from)
			}
			var p struct {
				Notifications []entry `json:"notifications"`
				NextToken     string  `json:"next_token"`
			}
			if err := json.Unmarshal(s.Do("GET", "/_matrix/client/v3/notifications"+q, bob.Token, nil).Expect(t, 200, "").Body, &p); err != nil {
				t.Fatal(err)
			}
			for _, n := range p.Notifications {
				paged = append(paged, n.Event.EventID)
			}
			if from = p.NextToken; from == "" {
				break
			}
		}
		if len(paged) != 3 || paged[0] != reply || paged[1] != root || paged[2] != ids[2] {
			t.Fatalf("paged %v, want %v", paged, ids)
		}
	})
}

// TestUnreadCountsBeyondRing checks counts stay exact when more unread
// notifications arrive than are kept one by one in memory, and when a
// receipt then falls before the ones only counted (the state is read
// again from the database).
func TestUnreadCountsBeyondRing(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice, bob := s.Register("alice", "pw-alice-123"), s.Register("bob", "pw-bob-123")
		room := s.CreateRoom(alice, map[string]any{})
		s.Invite(alice, room, bob)
		s.Join(bob, room)
		_, tok := unreadOf(t, s, bob, room, "", "") // the state is in memory from here on
		var ids []string
		for i := range 45 {
			ids = append(ids, s.SendText(alice, room, "message "+string(rune('a'+i%26))))
		}
		jr, tok := unreadOf(t, s, bob, room, tok, "")
		if got := counts(t, jr["unread_notifications"]); got != [2]int{45, 0} {
			t.Fatalf("after 45 messages: counts %v, want [45 0]", got)
		}
		receipt(t, s, bob, room, "m.read", ids[2], map[string]any{})
		jr, tok = unreadOf(t, s, bob, room, tok, "")
		if got := counts(t, jr["unread_notifications"]); got != [2]int{42, 0} {
			t.Fatalf("after a receipt on the third: counts %v, want [42 0]", got)
		}
		receipt(t, s, bob, room, "m.read", ids[40], map[string]any{})
		jr, _ = unreadOf(t, s, bob, room, tok, "")
		if got := counts(t, jr["unread_notifications"]); got != [2]int{4, 0} {
			t.Fatalf("after a receipt on the 41st: counts %v, want [4 0]", got)
		}
	})
}
