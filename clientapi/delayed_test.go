package clientapi_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/apitest"
	"github.com/aula-chat/aula/internal/app"
	"github.com/aula-chat/aula/storage/storagetest"
)

const delayedPath = "/_matrix/client/unstable/org.matrix.msc4140/delayed_events"

// delayedSend schedules an m.room.message with the given body and delay
// and returns its delay ID.
func delayedSend(t *testing.T, s *apitest.Server, u apitest.User, room, txn, body string, delay time.Duration) string {
	t.Helper()
	path := "/_matrix/client/v3/rooms/" + url.PathEscape(room) + "/send/m.room.message/" + txn +
		"?org.matrix.msc4140.delay=" + strconv.FormatInt(delay.Milliseconds(), 10)
	r := s.Do("PUT", path, u.Token, map[string]any{"msgtype": "m.text", "body": body}).Expect(t, 200, "")
	id := r.String("delay_id")
	if id == "" || r.JSON["event_id"] != nil {
		t.Fatalf("delayed send: %s, want only delay_id", r.Body)
	}
	return id
}

// messageSent reports whether the room has an m.room.message with body
// sent by sender.
func messageSent(t *testing.T, s *apitest.Server, u apitest.User, room, body string) bool {
	t.Helper()
	r := s.Do("GET", "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/messages?dir=b&limit=100", u.Token, nil).Expect(t, 200, "")
	chunk, _ := r.JSON["chunk"].([]any)
	for _, e := range chunk {
		ev, _ := e.(map[string]any)
		c, _ := ev["content"].(map[string]any)
		if ev["type"] == "m.room.message" && c["body"] == body && ev["sender"] == u.ID {
			return true
		}
	}
	return false
}

// waitSent waits up to 10 s for the message and returns when it came.
func waitSent(t *testing.T, s *apitest.Server, u apitest.User, room, body string) time.Time {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if messageSent(t, s, u, room, body) {
			return time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("delayed message %q never sent", body)
	return time.Time{}
}

func TestDelayedEventSentAfterDelay(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		room := s.CreateRoom(alice, nil)
		v := s.Do("GET", "/_matrix/client/versions", "", nil).Expect(t, 200, "")
		if f, _ := v.JSON["unstable_features"].(map[string]any); f["org.matrix.msc4140"] != true {
			t.Errorf("org.matrix.msc4140 not advertised: %s", v.Body)
		}
		start := time.Now()
		id := delayedSend(t, s, alice, room, "t1", "later", 2*time.Second)
		// A retried request schedules nothing new.
		if again := delayedSend(t, s, alice, room, "t1", "later", 2*time.Second); again != id {
			t.Errorf("retried txn got delay ID %s, want %s", again, id)
		}
		l := s.Do("GET", delayedPath, alice.Token, nil).Expect(t, 200, "")
		list, _ := l.JSON["delayed_events"].([]any)
		if len(list) != 1 {
			t.Fatalf("delayed_events: %s", l.Body)
		}
		e, _ := list[0].(map[string]any)
		since, _ := e["running_since"].(float64)
		if e["delay_id"] != id || e["room_id"] != room || e["type"] != "m.room.message" || e["delay"] != float64(2000) ||
			e["state_key"] != nil || since < float64(start.UnixMilli()-1) || since > float64(time.Now().UnixMilli()) {
			t.Errorf("listed event: %v", e)
		}
		if c, _ := e["content"].(map[string]any); c["body"] != "later" {
			t.Errorf("listed content: %v", e["content"])
		}
		if sched, _ := l.JSON["scheduled"].([]any); len(sched) != 1 {
			t.Errorf("scheduled: %s", l.Body)
		}
		if messageSent(t, s, alice, room, "later") {
			t.Fatal("delayed message sent at once")
		}
		at := waitSent(t, s, alice, room, "later")
		if at.Sub(start) < 2*time.Second {
			t.Errorf("sent after %v, before its delay", at.Sub(start))
		}
		// Sent events leave the list, and their ID is unknown.
		if l := s.Do("GET", delayedPath, alice.Token, nil).Expect(t, 200, ""); len(l.JSON["delayed_events"].([]any)) != 0 {
			t.Errorf("sent event still listed: %s", l.Body)
		}
		s.Do("POST", delayedPath+"/"+id+"/restart", "", nil).Expect(t, 404, "M_NOT_FOUND")
		// Another user does not see alice's delayed events.
		bob := s.Register("bob", "pw-bob-123")
		delayedSend(t, s, alice, room, "t2", "hidden", time.Hour)
		if l := s.Do("GET", delayedPath, bob.Token, nil).Expect(t, 200, ""); len(l.JSON["delayed_events"].([]any)) != 0 {
			t.Errorf("bob sees alice's delayed events: %s", l.Body)
		}
	})
}

func TestDelayedEventRestartPostpones(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		room := s.CreateRoom(alice, nil)
		start := time.Now()
		id := delayedSend(t, s, alice, room, "t1", "postponed", 3*time.Second)
		time.Sleep(time.Second)
		restarted := time.Now()
		s.Do("POST", delayedPath+"/"+id+"/restart", alice.Token, nil).Expect(t, 200, "")
		time.Sleep(time.Until(start.Add(3500 * time.Millisecond)))
		if messageSent(t, s, alice, room, "postponed") {
			t.Fatal("sent at the original time despite the restart")
		}
		at := waitSent(t, s, alice, room, "postponed")
		if at.Sub(restarted) < 3*time.Second {
			t.Errorf("sent %v after the restart, want at least 3s", at.Sub(restarted))
		}
	})
}

func TestDelayedEventCancelAndSend(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		room := s.CreateRoom(alice, nil)
		start := time.Now()
		cancelled := delayedSend(t, s, alice, room, "t1", "cancelled", 2*time.Second)
		// The delay ID alone authorises the action: no access token.
		s.Do("POST", delayedPath+"/"+cancelled+"/cancel", "", nil).Expect(t, 200, "")
		s.Do("POST", delayedPath+"/"+cancelled+"/cancel", "", nil).Expect(t, 404, "M_NOT_FOUND")

		// The older form: the action in the body.
		now := delayedSend(t, s, alice, room, "t2", "now", time.Hour)
		s.Do("POST", delayedPath+"/"+now, alice.Token, map[string]any{}).Expect(t, 400, "M_MISSING_PARAM")
		s.Do("POST", delayedPath+"/"+now, alice.Token, map[string]any{"action": "later"}).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("POST", delayedPath+"/"+now+"/later", alice.Token, nil).Expect(t, 404, "M_UNRECOGNIZED")
		s.Do("POST", delayedPath+"/"+now, alice.Token, map[string]any{"action": "send"}).Expect(t, 200, "")
		if !messageSent(t, s, alice, room, "now") {
			t.Error("action send did not send the event")
		}
		s.Do("POST", delayedPath+"/"+now, "", map[string]any{"action": "cancel"}).Expect(t, 404, "M_NOT_FOUND")
		s.Do("POST", delayedPath+"/"+cancelled+"/send", "", nil).Expect(t, 404, "M_NOT_FOUND")
		// A bad access token is refused rather than ignored.
		s.Do("POST", delayedPath+"/whatever/cancel", "not-a-token", nil).Expect(t, 401, "M_UNKNOWN_TOKEN")

		time.Sleep(time.Until(start.Add(2700 * time.Millisecond)))
		if messageSent(t, s, alice, room, "cancelled") {
			t.Error("cancelled event was sent")
		}
		if l := s.Do("GET", delayedPath, alice.Token, nil).Expect(t, 200, ""); len(l.JSON["delayed_events"].([]any)) != 0 {
			t.Errorf("list not empty: %s", l.Body)
		}
	})
}

func TestDelayedStateEvent(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		room := s.CreateRoom(alice, nil)
		member := "/_matrix/client/v3/rooms/" + url.PathEscape(room) + "/state/org.matrix.msc3401.call.member/_" + url.PathEscape(alice.ID) + "_DEV"
		s.Do("PUT", member, alice.Token, map[string]any{"application": "m.call", "call_id": ""}).Expect(t, 200, "")
		r := s.Do("PUT", member+"?org.matrix.msc4140.delay=300", alice.Token, map[string]any{}).Expect(t, 200, "")
		if r.String("delay_id") == "" {
			t.Fatalf("delayed state: %s", r.Body)
		}
		l := s.Do("GET", delayedPath, alice.Token, nil).Expect(t, 200, "")
		if e, _ := l.JSON["delayed_events"].([]any)[0].(map[string]any); e["state_key"] != "_"+alice.ID+"_DEV" {
			t.Errorf("listed state_key: %v", e)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			st := s.Do("GET", member, alice.Token, nil).Expect(t, 200, "")
			if len(st.JSON) == 0 {
				break // the membership was emptied: the "leave" fired
			}
			if time.Now().After(deadline) {
				t.Fatalf("delayed state never sent: %s", st.Body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

func TestDelayedEventErrors(t *testing.T) {
	apitest.ForEachServer(t, func(c *config.Config) { c.DelayedEvents.MaxDelay = config.Duration(10 * time.Second) }, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")
		room := s.CreateRoom(alice, nil)
		send := "/_matrix/client/v3/rooms/" + url.PathEscape(room) + "/send/m.room.message/"
		msg := map[string]any{"msgtype": "m.text", "body": "x"}
		r := s.Do("PUT", send+"a?org.matrix.msc4140.delay=10001", alice.Token, msg).Expect(t, 400, "M_UNKNOWN")
		if r.String("org.matrix.msc4140.errcode") != "M_MAX_DELAY_EXCEEDED" || r.JSON["org.matrix.msc4140.max_delay"] != float64(10000) {
			t.Errorf("max delay error: %s", r.Body)
		}
		for _, bad := range []string{"-1", "abc", "1.5", ""} {
			s.Do("PUT", send+"b?org.matrix.msc4140.delay="+bad, alice.Token, msg).Expect(t, 400, "M_INVALID_PARAM")
		}
		// Only members may schedule events in a room.
		s.Do("PUT", send+"c?org.matrix.msc4140.delay=100", bob.Token, msg).Expect(t, 403, "M_FORBIDDEN")
		s.Do("PUT", send+"d?org.matrix.msc4140.delay=100", "", msg).Expect(t, 401, "M_MISSING_TOKEN")
		s.Do("GET", delayedPath, "", nil).Expect(t, 401, "M_MISSING_TOKEN")
		// 10 s is allowed.
		delayedSend(t, s, alice, room, "e", "max", 10*time.Second)
	})
	apitest.ForEachServer(t, func(c *config.Config) { c.DelayedEvents.MaxDelay = 0 }, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		room := s.CreateRoom(alice, nil)
		s.Do("PUT", "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/send/m.room.message/a?org.matrix.msc4140.delay=100", alice.Token,
			map[string]any{"msgtype": "m.text", "body": "x"}).Expect(t, 403, "M_FORBIDDEN")
		v := s.Do("GET", "/_matrix/client/versions", "", nil).Expect(t, 200, "")
		if f, _ := v.JSON["unstable_features"].(map[string]any); f["org.matrix.msc4140"] != false {
			t.Errorf("org.matrix.msc4140 advertised while off: %s", v.Body)
		}
	})
}

// TestDelayedEventSurvivesRestart schedules an event, stops the server
// before it is due and starts it again on the same database after it came
// due: the event is sent at start-up.
func TestDelayedEventSurvivesRestart(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		c := apitest.Config(t, dsn)
		first, err := app.New(context.Background(), c, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(first.Handler)
		s1 := &apitest.Server{URL: ts.URL, Config: c, App: first, T: t}
		alice := s1.Register("alice", "pw-alice-123")
		room := s1.CreateRoom(alice, nil)
		sent := time.Now()
		id := delayedSend(t, s1, alice, room, "t1", "after restart", 1500*time.Millisecond)
		if messageSent(t, s1, alice, room, "after restart") {
			t.Fatal("sent before its delay")
		}
		ts.Close()
		first.Close()
		if time.Since(sent) > 1400*time.Millisecond {
			t.Log("the machine is slow: the event may have been sent before the server stopped")
		}
		time.Sleep(time.Until(sent.Add(2 * time.Second))) // it comes due while the server is down

		s2 := apitest.Start(t, c)
		waitSent(t, s2, alice, room, "after restart")
		s2.Do("POST", delayedPath+"/"+id+"/cancel", "", nil).Expect(t, 404, "M_NOT_FOUND")

		// One still waiting keeps its time across the restart too.
		id2 := delayedSend(t, s2, alice, room, "t2", "waiting", time.Hour)
		s2.App.Delayed.Close()
		s3 := apitest.Start(t, c)
		l := s3.Do("GET", delayedPath, alice.Token, nil).Expect(t, 200, "")
		if list := l.JSON["delayed_events"].([]any); len(list) != 1 || list[0].(map[string]any)["delay_id"] != id2 {
			t.Errorf("after restart: %s", l.Body)
		}
	})
}

// TestDelayedStateCancelledWhenReplaced: a delayed state event is dropped
// when another user sets the same state first, not when its owner does.
func TestDelayedStateCancelledWhenReplaced(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")
		room := s.CreateRoom(alice, map[string]any{"power_level_content_override": map[string]any{"state_default": 0}})
		s.Invite(alice, room, bob)
		s.Join(bob, room)
		state := "/_matrix/client/v3/rooms/" + url.PathEscape(room) + "/state/org.example.thing/k"
		listed := func(u apitest.User) int {
			return len(s.Do("GET", delayedPath, u.Token, nil).Expect(t, 200, "").JSON["delayed_events"].([]any))
		}
		s.Do("PUT", state+"?org.matrix.msc4140.delay=3600000", bob.Token, map[string]any{"v": "bob later"}).Expect(t, 200, "")
		s.Do("PUT", state, bob.Token, map[string]any{"v": "bob now"}).Expect(t, 200, "")
		if n := listed(bob); n != 1 {
			t.Fatalf("bob's own state change cancelled his delayed state: %d listed", n)
		}
		// Another state key or type leaves it alone.
		s.Do("PUT", "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/state/org.example.thing/other", alice.Token, map[string]any{"v": 1}).Expect(t, 200, "")
		if n := listed(bob); n != 1 {
			t.Fatalf("another state key cancelled bob's delayed state: %d listed", n)
		}
		s.Do("PUT", state, alice.Token, map[string]any{"v": "alice"}).Expect(t, 200, "")
		if n := listed(bob); n != 0 {
			t.Errorf("alice replaced the state, bob's delayed state still listed (%d)", n)
		}
	})
}
