package clientapi_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/apitest"
)

// presContent is the content of m.presence and the body of GET
// /presence/{userId}/status. Optional fields are pointers, so a test can
// tell a missing field from a zero one.
type presContent struct {
	Presence        string  `json:"presence"`
	LastActiveAgo   *int64  `json:"last_active_ago"`
	StatusMsg       *string `json:"status_msg"`
	CurrentlyActive *bool   `json:"currently_active"`
}

// presSync is what the presence tests read of a /sync answer.
type presSync struct {
	NextBatch string
	Section   bool                   // the answer has a presence section
	Users     map[string]presContent // m.presence content by sender
	Senders   []string               // in the order sent
}

// presenceSync calls /sync with the query and decodes its presence
// section, checking the shape of every event.
func presenceSync(t *testing.T, s *apitest.Server, u apitest.User, q url.Values) presSync {
	t.Helper()
	r := s.Do("GET", "/_matrix/client/v3/sync?"+q.Encode(), u.Token, nil).Expect(t, 200, "")
	var body struct {
		NextBatch string `json:"next_batch"`
		Presence  *struct {
			Events []struct {
				Type    string          `json:"type"`
				Sender  string          `json:"sender"`
				Content json.RawMessage `json:"content"`
			} `json:"events"`
		} `json:"presence"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("decode sync: %v; %s", err, r.Body)
	}
	out := presSync{NextBatch: body.NextBatch, Users: map[string]presContent{}}
	if body.Presence == nil {
		return out
	}
	out.Section = true
	if len(body.Presence.Events) == 0 {
		t.Errorf("sync sent an empty presence section: %s", r.Body)
	}
	for _, ev := range body.Presence.Events {
		var c presContent
		if err := json.Unmarshal(ev.Content, &c); err != nil || ev.Type != "m.presence" || ev.Sender == "" {
			t.Fatalf("bad presence event %s %s %s", ev.Type, ev.Sender, ev.Content)
		}
		if _, dup := out.Users[ev.Sender]; dup {
			t.Errorf("presence of %s sent twice: %s", ev.Sender, r.Body)
		}
		out.Users[ev.Sender] = c
		out.Senders = append(out.Senders, ev.Sender)
	}
	return out
}

// quiet is the query of a sync that leaves the syncing user's presence
// alone, so that only PUT /presence sets it.
func quiet(kv ...string) url.Values {
	q := url.Values{"set_presence": {"offline"}, "timeout": {"0"}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}

func presencePath(userID string) string {
	return "/_matrix/client/v3/presence/" + url.PathEscape(userID) + "/status"
}

func putPresence(t *testing.T, s *apitest.Server, u apitest.User, body any) {
	t.Helper()
	r := s.Do("PUT", presencePath(u.ID), u.Token, body).Expect(t, 200, "")
	if string(r.Body) != "{}\n" {
		t.Errorf("PUT presence answered %s, want {}", r.Body)
	}
}

func getPresence(t *testing.T, s *apitest.Server, viewer apitest.User, userID string) presContent {
	t.Helper()
	r := s.Do("GET", presencePath(userID), viewer.Token, nil).Expect(t, 200, "")
	var c presContent
	if err := json.Unmarshal(r.Body, &c); err != nil {
		t.Fatalf("decode presence: %v; %s", err, r.Body)
	}
	return c
}

// checkPresence compares presence content with the expected state, status
// message ("" for none) and currently_active (nil: must be absent).
func checkPresence(t *testing.T, what string, got presContent, state, msg string, active *bool) {
	t.Helper()
	if got.Presence != state {
		t.Errorf("%s: presence %q, want %q", what, got.Presence, state)
	}
	switch {
	case msg == "" && got.StatusMsg != nil:
		t.Errorf("%s: status_msg %q, want none", what, *got.StatusMsg)
	case msg != "" && (got.StatusMsg == nil || *got.StatusMsg != msg):
		t.Errorf("%s: status_msg %v, want %q", what, got.StatusMsg, msg)
	}
	switch {
	case active == nil && got.CurrentlyActive != nil:
		t.Errorf("%s: currently_active %v, want none", what, *got.CurrentlyActive)
	case active != nil && (got.CurrentlyActive == nil || *got.CurrentlyActive != *active):
		t.Errorf("%s: currently_active %v, want %v", what, got.CurrentlyActive, *active)
	}
	// Only being online counts as activity (as in Synapse), so a user who
	// was never online has no last_active_ago.
	if state == "online" && got.LastActiveAgo == nil {
		t.Errorf("%s: no last_active_ago", what)
	}
	if ago := got.LastActiveAgo; ago != nil && (*ago < 0 || *ago > 60_000) {
		t.Errorf("%s: last_active_ago %d, want a recent time", what, *ago)
	}
}

var presTrue, presFalse = true, false

// presTrio is alice and bob sharing a room, and carol who shares none with
// either (she is in a room of her own).
type presTrio struct {
	alice, bob, carol apitest.User
	room              string
}

func newPresTrio(s *apitest.Server) presTrio {
	p := presTrio{alice: s.Register("alice", "pw-alice-123"), bob: s.Register("bob", "pw-bob-123"), carol: s.Register("carol", "pw-carol-123")}
	p.room = s.CreateRoom(p.alice, map[string]any{"preset": "private_chat"})
	s.Invite(p.alice, p.room, p.bob)
	s.Join(p.bob, p.room)
	s.CreateRoom(p.carol, nil)
	return p
}

func TestPresencePutGet(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		p := newPresTrio(s)
		// Never set: offline, with nothing else.
		if r := s.Do("GET", presencePath(p.alice.ID), p.alice.Token, nil).Expect(t, 200, ""); string(r.Body) != `{"presence":"offline"}`+"\n" {
			t.Errorf("presence never set: %s", r.Body)
		}

		putPresence(t, s, p.alice, map[string]any{"presence": "online", "status_msg": "Reading room 3"})
		checkPresence(t, "own, online", getPresence(t, s, p.alice, p.alice.ID), "online", "Reading room 3", &presTrue)
		checkPresence(t, "room-mate, online", getPresence(t, s, p.bob, p.alice.ID), "online", "Reading room 3", &presTrue)

		// Without status_msg the message is cleared; unavailable has no
		// currently_active. Unknown keys are ignored.
		putPresence(t, s, p.alice, map[string]any{"presence": "unavailable", "org.example.mood": "tired"})
		checkPresence(t, "unavailable", getPresence(t, s, p.bob, p.alice.ID), "unavailable", "", nil)
		putPresence(t, s, p.alice, map[string]any{"presence": "offline", "status_msg": "back Monday"})
		checkPresence(t, "offline", getPresence(t, s, p.bob, p.alice.ID), "offline", "back Monday", nil)

		// Privacy: only users who share a joined room.
		s.Do("GET", presencePath(p.alice.ID), p.carol.Token, nil).Expect(t, 403, "M_FORBIDDEN")
		s.Do("GET", presencePath(p.carol.ID), p.alice.Token, nil).Expect(t, 403, "M_FORBIDDEN")
		s.Do("GET", presencePath("@nobody:"+apitest.ServerName), p.alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("GET", presencePath("not-a-user-id"), p.alice.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("GET", presencePath(p.alice.ID), "", nil).Expect(t, 401, "M_MISSING_TOKEN")
		s.Leave(p.bob, p.room)
		s.Do("GET", presencePath(p.alice.ID), p.bob.Token, nil).Expect(t, 403, "M_FORBIDDEN")
		// An invitation is not sharing a room.
		s.Invite(p.alice, p.room, p.carol)
		s.Do("GET", presencePath(p.alice.ID), p.carol.Token, nil).Expect(t, 403, "M_FORBIDDEN")

		// Only your own.
		s.Do("PUT", presencePath(p.alice.ID), p.bob.Token, map[string]any{"presence": "online"}).Expect(t, 403, "M_FORBIDDEN")
		s.Do("PUT", presencePath(p.alice.ID), "", map[string]any{"presence": "online"}).Expect(t, 401, "M_MISSING_TOKEN")
	})
}

func TestPresencePutBadBodies(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		putPresence(t, s, alice, map[string]any{"presence": "unavailable", "status_msg": "kept"})
		for _, tc := range []struct {
			body    any
			status  int
			errcode string
		}{
			{"{not json", 400, "M_NOT_JSON"},
			{"", 400, "M_NOT_JSON"},
			{`["online"]`, 400, "M_BAD_JSON"},
			{`{}`, 400, "M_MISSING_PARAM"},
			{`{"status_msg":"no state"}`, 400, "M_MISSING_PARAM"},
			{`{"presence":null}`, 400, "M_BAD_JSON"},
			{`{"presence":1}`, 400, "M_BAD_JSON"},
			{`{"presence":["online"]}`, 400, "M_BAD_JSON"},
			{`{"presence":"busy"}`, 400, "M_INVALID_PARAM"},
			{`{"presence":"Online"}`, 400, "M_INVALID_PARAM"},
			{`{"presence":""}`, 400, "M_INVALID_PARAM"},
			{`{"presence":"online","status_msg":5}`, 400, "M_BAD_JSON"},
			{`{"presence":"online","status_msg":null}`, 400, "M_BAD_JSON"},
			{`{"presence":"online","status_msg":{"text":"x"}}`, 400, "M_BAD_JSON"},
			{`{"presence":"online","status_msg":"a\u0000b"}`, 400, "M_INVALID_PARAM"},
			{map[string]any{"presence": "online", "status_msg": strings.Repeat("é", 1001)}, 400, "M_TOO_LARGE"},
		} {
			s.Do("PUT", presencePath(alice.ID), alice.Token, tc.body).Expect(t, tc.status, tc.errcode)
		}
		// Nothing was changed by the bad requests; the longest message is fine.
		checkPresence(t, "after bad requests", getPresence(t, s, alice, alice.ID), "unavailable", "kept", nil)
		long := strings.Repeat("é", 1000)
		putPresence(t, s, alice, map[string]any{"presence": "unavailable", "status_msg": long})
		checkPresence(t, "longest status", getPresence(t, s, alice, alice.ID), "unavailable", long, nil)
	})
}

func TestPresenceInSync(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		p := newPresTrio(s)
		putPresence(t, s, p.alice, map[string]any{"presence": "online", "status_msg": "hi"})

		// Initial sync: the room-mate's presence.
		first := presenceSync(t, s, p.bob, quiet())
		if !slices.Equal(first.Senders, []string{p.alice.ID}) {
			t.Fatalf("bob's initial sync has presence of %v, want [%s]", first.Senders, p.alice.ID)
		}
		checkPresence(t, "initial", first.Users[p.alice.ID], "online", "hi", &presTrue)
		// The user's own presence comes too; carol sees nobody.
		own := presenceSync(t, s, p.alice, quiet())
		if !slices.Equal(own.Senders, []string{p.alice.ID}) {
			t.Errorf("alice's own initial sync has presence of %v, want herself", own.Senders)
		}
		carol := presenceSync(t, s, p.carol, quiet())
		if carol.Section {
			t.Errorf("carol, who shares no room, got presence of %v", carol.Senders)
		}

		// Incremental: nothing new, then exactly the change.
		if again := presenceSync(t, s, p.bob, quiet("since", first.NextBatch)); again.Section {
			t.Errorf("incremental sync with no change has presence of %v", again.Senders)
		}
		putPresence(t, s, p.alice, map[string]any{"presence": "unavailable", "status_msg": "in a lecture"})
		inc := presenceSync(t, s, p.bob, quiet("since", first.NextBatch))
		if !slices.Equal(inc.Senders, []string{p.alice.ID}) {
			t.Fatalf("incremental presence of %v, want [%s]", inc.Senders, p.alice.ID)
		}
		checkPresence(t, "incremental", inc.Users[p.alice.ID], "unavailable", "in a lecture", nil)
		if c := presenceSync(t, s, p.carol, quiet("since", carol.NextBatch)); c.Section {
			t.Errorf("carol's incremental sync has presence of %v", c.Senders)
		}

		// The filter's presence section applies.
		for _, f := range []string{
			`{"presence":{"not_senders":["` + p.alice.ID + `"]}}`,
			`{"presence":{"senders":["@someone:else"]}}`,
			`{"presence":{"types":["m.room.message"]}}`,
			`{"presence":{"not_types":["m.presence"]}}`,
			`{"presence":{"limit":0}}`,
		} {
			if got := presenceSync(t, s, p.bob, quiet("filter", f)); got.Section {
				t.Errorf("filter %s: presence of %v", f, got.Senders)
			}
		}
		if got := presenceSync(t, s, p.bob, quiet("filter", `{"presence":{"types":["m.*"],"senders":["`+p.alice.ID+`"]}}`)); !slices.Equal(got.Senders, []string{p.alice.ID}) {
			t.Errorf("filter keeping alice: presence of %v", got.Senders)
		}

		// Going offline is news to an incremental sync; an initial sync
		// leaves offline users out.
		putPresence(t, s, p.alice, map[string]any{"presence": "offline"})
		off := presenceSync(t, s, p.bob, quiet("since", inc.NextBatch))
		if !slices.Equal(off.Senders, []string{p.alice.ID}) {
			t.Fatalf("presence after going offline: %v", off.Senders)
		}
		checkPresence(t, "offline", off.Users[p.alice.ID], "offline", "", nil)
		if got := presenceSync(t, s, p.bob, quiet()); got.Section {
			t.Errorf("initial sync has offline users: %v", got.Senders)
		}

		// Joining a room brings its members' presence, however old.
		putPresence(t, s, p.alice, map[string]any{"presence": "online"})
		tok := presenceSync(t, s, p.carol, quiet()).NextBatch
		s.Invite(p.alice, p.room, p.carol)
		s.Join(p.carol, p.room)
		joined := presenceSync(t, s, p.carol, quiet("since", tok))
		sort.Strings(joined.Senders)
		if !slices.Equal(joined.Senders, []string{p.alice.ID}) {
			t.Errorf("after joining, carol got presence of %v, want [%s]", joined.Senders, p.alice.ID)
		}
		checkPresence(t, "after joining", joined.Users[p.alice.ID], "online", "", &presTrue)
	})
}

func TestPresenceWakesRoomMates(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		p := newPresTrio(s)
		bobTok := presenceSync(t, s, p.bob, quiet()).NextBatch
		carolTok := presenceSync(t, s, p.carol, quiet()).NextBatch
		type result struct {
			got presSync
			at  time.Time
		}
		bobDone, carolDone := make(chan result, 1), make(chan result, 1)
		go func() {
			bobDone <- result{presenceSync(t, s, p.bob, quiet("since", bobTok, "timeout", "20000")), time.Now()}
		}()
		go func() {
			carolDone <- result{presenceSync(t, s, p.carol, quiet("since", carolTok, "timeout", "1500")), time.Now()}
		}()
		time.Sleep(300 * time.Millisecond) // let both park
		sent := time.Now()
		putPresence(t, s, p.alice, map[string]any{"presence": "unavailable", "status_msg": "away"})
		select {
		case r := <-bobDone:
			if !slices.Equal(r.got.Senders, []string{p.alice.ID}) {
				t.Fatalf("woken sync has presence of %v, want [%s]", r.got.Senders, p.alice.ID)
			}
			checkPresence(t, "woken", r.got.Users[p.alice.ID], "unavailable", "away", nil)
			t.Logf("woken %v after the PUT began", r.at.Sub(sent))
		case <-time.After(10 * time.Second):
			t.Fatal("a room-mate's long poll was not woken by a presence change")
		}
		r := <-carolDone
		if r.got.Section {
			t.Errorf("carol, who shares no room, got presence of %v", r.got.Senders)
		}
		if r.at.Sub(sent) < time.Second {
			t.Errorf("carol's long poll returned %v after the PUT: woken by presence she cannot see", r.at.Sub(sent))
		}
	})
}

func TestPresenceDisabled(t *testing.T) {
	apitest.ForEachServer(t, func(c *config.Config) { c.Presence.Enabled = false }, func(t *testing.T, s *apitest.Server) {
		p := newPresTrio(s)
		putPresence(t, s, p.alice, map[string]any{"presence": "online", "status_msg": "hidden"})
		for _, viewer := range []apitest.User{p.alice, p.bob, p.carol} {
			r := s.Do("GET", presencePath(p.alice.ID), viewer.Token, nil).Expect(t, 200, "")
			if string(r.Body) != `{"presence":"offline"}`+"\n" {
				t.Errorf("GET as %s with presence off: %s", viewer.ID, r.Body)
			}
		}
		// Requests are still checked.
		s.Do("PUT", presencePath(p.alice.ID), p.alice.Token, map[string]any{"presence": "busy"}).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("PUT", presencePath(p.alice.ID), p.bob.Token, map[string]any{"presence": "online"}).Expect(t, 403, "M_FORBIDDEN")
		// Syncs carry no presence, with or without set_presence.
		for _, q := range []url.Values{quiet(), {"timeout": {"0"}}, {"timeout": {"0"}, "set_presence": {"unavailable"}}} {
			if got := presenceSync(t, s, p.alice, q); got.Section {
				t.Errorf("sync %v with presence off has presence of %v", q, got.Senders)
			}
			if got := presenceSync(t, s, p.bob, q); got.Section {
				t.Errorf("sync %v with presence off has presence of %v", q, got.Senders)
			}
		}
	})
}

// /sync's set_presence sets the syncing user's presence (online by
// default), before the sync is computed.
func TestPresenceSetBySync(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		p := newPresTrio(s)
		bobTok := presenceSync(t, s, p.bob, quiet()).NextBatch

		own := presenceSync(t, s, p.alice, url.Values{"timeout": {"0"}})
		if !slices.Equal(own.Senders, []string{p.alice.ID}) {
			t.Fatalf("alice's first sync has presence of %v, want herself online", own.Senders)
		}
		checkPresence(t, "own after syncing", own.Users[p.alice.ID], "online", "", &presTrue)
		checkPresence(t, "GET after syncing", getPresence(t, s, p.bob, p.alice.ID), "online", "", &presTrue)
		got := presenceSync(t, s, p.bob, quiet("since", bobTok))
		if !slices.Equal(got.Senders, []string{p.alice.ID}) {
			t.Fatalf("bob's incremental sync has presence of %v, want alice", got.Senders)
		}
		checkPresence(t, "room-mate after syncing", got.Users[p.alice.ID], "online", "", &presTrue)

		// Another sync is only activity: nothing new for bob.
		presenceSync(t, s, p.alice, url.Values{"timeout": {"0"}, "since": {own.NextBatch}})
		if again := presenceSync(t, s, p.bob, quiet("since", got.NextBatch)); again.Section {
			t.Errorf("a second sync of alice told bob %v", again.Senders)
		}

		// set_presence=unavailable, while no other device says online.
		presenceSync(t, s, p.carol, url.Values{"timeout": {"0"}, "set_presence": {"unavailable"}})
		checkPresence(t, "set_presence=unavailable", getPresence(t, s, p.carol, p.carol.ID), "unavailable", "", nil)
		// set_presence=offline does not mark anyone online.
		dave := s.Register("dave", "pw-dave-123")
		presenceSync(t, s, dave, url.Values{"timeout": {"0"}, "set_presence": {"offline"}})
		checkPresence(t, "set_presence=offline", getPresence(t, s, dave, dave.ID), "offline", "", nil)
	})
}
