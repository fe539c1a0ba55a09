package clientapi_test

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// rmStateContent reads GET /state/{type}/{key} (the content) and expects 200.
func rmStateContent(t *testing.T, s *apitest.Server, u apitest.User, roomID, typ, key string) map[string]any {
	t.Helper()
	var c map[string]any
	rmDecode(t, s.Do("GET", rmRoom(roomID, "state", typ, key), u.Token, nil).Expect(t, 200, ""), &c)
	return c
}

// rmStateList reads GET /state and indexes it by "type|state_key".
func rmStateList(t *testing.T, s *apitest.Server, u apitest.User, roomID string) map[string]rmEvent {
	t.Helper()
	var list []rmEvent
	rmDecode(t, s.Do("GET", rmRoom(roomID, "state"), u.Token, nil).Expect(t, 200, ""), &list)
	out := map[string]rmEvent{}
	for _, e := range list {
		if e.StateKey == nil {
			t.Fatalf("GET /state returned an event without state_key: %+v", e)
		}
		k := e.Type + "|" + *e.StateKey
		if _, dup := out[k]; dup {
			t.Fatalf("GET /state returned %s twice", k)
		}
		out[k] = e
	}
	return out
}

// rmPowerLevels reads the room's power levels content.
func rmPowerLevels(t *testing.T, s *apitest.Server, u apitest.User, roomID string) map[string]any {
	t.Helper()
	return rmStateContent(t, s, u, roomID, "m.room.power_levels", "")
}

// rmSetUserLevel gives userID a power level, on behalf of admin.
func rmSetUserLevel(t *testing.T, s *apitest.Server, admin apitest.User, roomID, userID string, level int) {
	t.Helper()
	pl := rmPowerLevels(t, s, admin, roomID)
	pl["users"].(map[string]any)[userID] = level
	rmPutState(t, s, admin, roomID, "m.room.power_levels", "", pl)
}

func TestStateRoundTrip(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		room := s.CreateRoom(alice, map[string]any{"name": "The Room"})
		rmInviteJoin(t, s, alice, room, bob)

		// Empty state key: with and without the trailing slash.
		first := rmPutState(t, s, alice, room, "m.room.topic", "", map[string]string{"topic": "first"})
		confJSONEq(t, s.Do("GET", rmRoom(room, "state", "m.room.topic"), bob.Token, nil).Expect(t, 200, "").Body, `{"topic":"first"}`)
		confJSONEq(t, s.Do("GET", rmRoom(room, "state", "m.room.topic")+"/", bob.Token, nil).Expect(t, 200, "").Body, `{"topic":"first"}`)
		r := s.Do("PUT", rmRoom(room, "state", "m.room.topic"), alice.Token, map[string]string{"topic": "second"}).Expect(t, 200, "")
		second := r.String("event_id")
		if second == "" || second == first || len(r.JSON) != 1 {
			t.Fatalf("PUT /state answered %s", r.Body)
		}
		confJSONEq(t, s.Do("GET", rmRoom(room, "state", "m.room.topic", ""), bob.Token, nil).Expect(t, 200, "").Body, `{"topic":"second"}`)
		confJSONEq(t, s.Do("GET", rmRoom(room, "state", "m.room.name", ""), bob.Token, nil).Expect(t, 200, "").Body, `{"name":"The Room"}`)

		// ?format=event returns the whole client event (spec v1.16), with
		// the replaced content in unsigned.prev_content.
		var ev rmEvent
		rmDecode(t, s.Do("GET", rmRoom(room, "state", "m.room.topic", "")+"?format=event", bob.Token, nil).Expect(t, 200, ""), &ev)
		if ev.EventID != second || ev.Type != "m.room.topic" || ev.StateKey == nil || *ev.StateKey != "" ||
			ev.Sender != alice.ID || ev.RoomID != room || ev.Content["topic"] != "second" || ev.OriginServerTS == 0 {
			t.Fatalf("format=event: %+v", ev)
		}
		if pc, _ := ev.Unsigned["prev_content"].(map[string]any); pc["topic"] != "first" {
			t.Errorf("prev_content = %v, want the first topic", ev.Unsigned["prev_content"])
		}
		confJSONEq(t, s.Do("GET", rmRoom(room, "state", "m.room.topic", "")+"?format=content", bob.Token, nil).Expect(t, 200, "").Body, `{"topic":"second"}`)
		confExpectError(t, "format=xml", s.Do("GET", rmRoom(room, "state", "m.room.topic", "")+"?format=xml", bob.Token, nil), 400, "M_INVALID_PARAM")

		// Setting the same content again changes nothing and returns the
		// current event (PUT /state has no transaction ID to retry with).
		if again := rmPutState(t, s, alice, room, "m.room.topic", "", map[string]string{"topic": "second"}); again != second {
			t.Fatalf("identical PUT /state got %s, want %s", again, second)
		}

		// State keys with "/", "?", "#", "%", spaces and non-ASCII, and the
		// sender's own user ID, percent-encoded in the path.
		keys := []string{"a/b", "x?y#z%20", " spaced ", "ключ", alice.ID, "trailing/"}
		for i, k := range keys {
			rmPutState(t, s, alice, room, "org.example.thing", k, map[string]int{"n": i})
		}
		for i, k := range keys {
			confJSONEq(t, s.Do("GET", rmRoom(room, "state", "org.example.thing", k), bob.Token, nil).Expect(t, 200, "").Body, fmt.Sprintf(`{"n":%d}`, i))
		}
		// Unknown state: 404 M_NOT_FOUND.
		confExpectError(t, "unset key", s.Do("GET", rmRoom(room, "state", "org.example.thing", "nope"), bob.Token, nil), 404, "M_NOT_FOUND")
		confExpectError(t, "unset type", s.Do("GET", rmRoom(room, "state", "m.room.avatar"), bob.Token, nil), 404, "M_NOT_FOUND")

		// The full state has one event per (type, state_key), all current.
		all := rmStateList(t, s, bob, room)
		for _, k := range []string{"m.room.create|", "m.room.member|" + alice.ID, "m.room.member|" + bob.ID, "m.room.power_levels|",
			"m.room.join_rules|", "m.room.history_visibility|", "m.room.name|", "m.room.topic|"} {
			if _, ok := all[k]; !ok {
				t.Errorf("GET /state lacks %s", k)
			}
		}
		for i, k := range keys {
			if e := all["org.example.thing|"+k]; e.Content["n"] != float64(i) || e.RoomID != room {
				t.Errorf("GET /state: org.example.thing %q = %+v", k, e)
			}
		}
		if all["m.room.topic|"].EventID != second {
			t.Errorf("GET /state has topic %s, want %s", all["m.room.topic|"].EventID, second)
		}

		// Bad bodies.
		confExpectError(t, "array body", s.Do("PUT", rmRoom(room, "state", "m.room.topic", ""), alice.Token, `["x"]`), 400, "M_BAD_JSON")
		confExpectError(t, "not JSON", s.Do("PUT", rmRoom(room, "state", "m.room.topic", ""), alice.Token, `{`), 400, "M_NOT_JSON")
		confExpectError(t, "state key too long", s.Do("PUT", rmRoom(room, "state", "org.example.thing", strings.Repeat("k", 300)),
			alice.Token, map[string]any{}), 413, "M_TOO_LARGE")
	})
}

func TestStatePowerLevels(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		room := s.CreateRoom(alice, nil)
		rmInviteJoin(t, s, alice, room, bob)
		if pl := rmPowerLevels(t, s, bob, room); pl["state_default"] != float64(50) {
			t.Fatalf("state_default = %v, want 50", pl["state_default"])
		}
		put := func(u apitest.User, typ, key string) *apitest.Response {
			return s.Do("PUT", rmRoom(room, "state", typ, key), u.Token, map[string]string{"topic": "t", "name": "n"})
		}
		// Level 0 may not set state (state_default 50), not even custom state.
		for _, typ := range []string{"m.room.topic", "m.room.name", "org.example.thing", "m.room.power_levels"} {
			confExpectError(t, "bob sets "+typ, put(bob, typ, ""), 403, "M_FORBIDDEN")
		}
		// At 50 they may, except for events that need more (power levels:
		// 100, history visibility: 100).
		rmSetUserLevel(t, s, alice, room, bob.ID, 50)
		for _, typ := range []string{"m.room.topic", "m.room.name", "org.example.thing"} {
			put(bob, typ, "").Expect(t, 200, "")
		}
		confExpectError(t, "bob sets power levels", s.Do("PUT", rmRoom(room, "state", "m.room.power_levels", ""), bob.Token,
			rmPowerLevels(t, s, bob, room)), 403, "M_FORBIDDEN")
		confExpectError(t, "bob sets history visibility", s.Do("PUT", rmRoom(room, "state", "m.room.history_visibility", ""), bob.Token,
			map[string]string{"history_visibility": "joined"}), 403, "M_FORBIDDEN")
		// A state key that is a user ID can only be set by that user
		// (auth rules), whatever the sender's power; m.room.member aside.
		confExpectError(t, "bob sets alice's key", put(bob, "org.example.thing", alice.ID), 403, "M_FORBIDDEN")
		confExpectError(t, "alice sets bob's key", put(alice, "org.example.thing", bob.ID), 403, "M_FORBIDDEN")
		put(bob, "org.example.thing", bob.ID).Expect(t, 200, "")
		// A custom per-type level.
		pl := rmPowerLevels(t, s, alice, room)
		pl["events"].(map[string]any)["org.example.locked"] = 75
		rmPutState(t, s, alice, room, "m.room.power_levels", "", pl)
		confExpectError(t, "bob sets locked", put(bob, "org.example.locked", ""), 403, "M_FORBIDDEN")
		put(alice, "org.example.locked", "").Expect(t, 200, "")
	})
}

func TestStateAccess(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		carol := s.Register("carol", "correct horse battery")
		dave := s.Register("dave", "correct horse battery")
		room := s.CreateRoom(alice, nil)
		rmPutState(t, s, alice, room, "m.room.topic", "", map[string]string{"topic": "before"})
		rmInviteJoin(t, s, alice, room, bob)
		rmInviteJoin(t, s, alice, room, dave)

		// Never a member (or only invited): 403 on every state endpoint;
		// unknown rooms too.
		s.Invite(alice, room, carol)
		for _, p := range []string{rmRoom(room, "state"), rmRoom(room, "state", "m.room.topic", ""), rmRoom(room, "state", "m.room.topic"),
			rmRoom(room, "members"), rmRoom(room, "joined_members"), rmRoom("!unknown:aula.test", "state"),
			rmRoom("!unknown:aula.test", "state", "m.room.topic", ""), rmRoom("!unknown:aula.test", "members"),
			rmRoom("!unknown:aula.test", "joined_members")} {
			confExpectError(t, "carol GET "+p, s.Do("GET", p, carol.Token, nil), 403, "M_FORBIDDEN")
		}
		confExpectError(t, "carol PUT state", s.Do("PUT", rmRoom(room, "state", "m.room.topic", ""), carol.Token, map[string]string{"topic": "x"}), 403, "M_FORBIDDEN")
		confExpectError(t, "PUT state in unknown room", s.Do("PUT", rmRoom("!unknown:aula.test", "state", "m.room.topic", ""), alice.Token,
			map[string]string{"topic": "x"}), 403, "M_FORBIDDEN")

		// Bob leaves, Dave is kicked: afterwards they read the state as it
		// was when they left, not what changed later.
		s.Leave(bob, room)
		s.Do("POST", rmRoom(room, "kick"), alice.Token, map[string]string{"user_id": dave.ID}).Expect(t, 200, "")
		rmPutState(t, s, alice, room, "m.room.topic", "", map[string]string{"topic": "after"})
		rmPutState(t, s, alice, room, "m.room.name", "", map[string]string{"name": "new"})
		for _, u := range []apitest.User{bob, dave} {
			if c := rmStateContent(t, s, u, room, "m.room.topic", ""); c["topic"] != "before" {
				t.Errorf("%s reads topic %v, want the topic when they left", u.ID, c["topic"])
			}
			confExpectError(t, "name set after leaving", s.Do("GET", rmRoom(room, "state", "m.room.name", ""), u.Token, nil), 404, "M_NOT_FOUND")
			st := rmStateList(t, s, u, room)
			if st["m.room.topic|"].Content["topic"] != "before" {
				t.Errorf("%s: GET /state topic = %v", u.ID, st["m.room.topic|"].Content)
			}
			if _, ok := st["m.room.name|"]; ok {
				t.Errorf("%s: GET /state shows a name set after they left", u.ID)
			}
			if m := st["m.room.member|"+u.ID].Content["membership"]; m != "leave" {
				t.Errorf("%s: own membership in state = %v, want leave", u.ID, m)
			}
			confExpectError(t, "former member PUT state", s.Do("PUT", rmRoom(room, "state", "m.room.topic", ""), u.Token,
				map[string]string{"topic": "x"}), 403, "M_FORBIDDEN")
		}
		// Dave's view includes Bob's departure (before his kick); Bob's
		// does not include the kick.
		if m := rmStateList(t, s, dave, room)["m.room.member|"+bob.ID].Content["membership"]; m != "leave" {
			t.Errorf("dave sees bob as %v", m)
		}
		if m := rmStateList(t, s, bob, room)["m.room.member|"+dave.ID].Content["membership"]; m != "join" {
			t.Errorf("bob sees dave as %v", m)
		}
		// Re-invited (not yet joined again): still the state at leaving.
		s.Invite(alice, room, bob)
		if c := rmStateContent(t, s, bob, room, "m.room.topic", ""); c["topic"] != "before" {
			t.Errorf("re-invited bob reads topic %v", c["topic"])
		}
		// Joined again: the current state.
		s.Join(bob, room)
		if c := rmStateContent(t, s, bob, room, "m.room.topic", ""); c["topic"] != "after" {
			t.Errorf("rejoined bob reads topic %v", c["topic"])
		}
		// Forgetting the room ends access to its state.
		s.Do("POST", rmRoom(room, "forget"), dave.Token, map[string]any{}).Expect(t, 200, "")
		confExpectError(t, "forgotten", s.Do("GET", rmRoom(room, "state"), dave.Token, nil), 403, "M_FORBIDDEN")
		confExpectError(t, "forgotten", s.Do("GET", rmRoom(room, "members"), dave.Token, nil), 403, "M_FORBIDDEN")

		// A world_readable room's current state is open to anyone.
		rmPutState(t, s, alice, room, "m.room.history_visibility", "", map[string]string{"history_visibility": "world_readable"})
		if c := rmStateContent(t, s, carol, room, "m.room.topic", ""); c["topic"] != "after" {
			t.Errorf("world_readable: carol reads topic %v", c["topic"])
		}
		if len(rmStateList(t, s, carol, room)) == 0 {
			t.Error("world_readable: empty state")
		}
		confExpectError(t, "world_readable joined_members", s.Do("GET", rmRoom(room, "joined_members"), carol.Token, nil), 403, "M_FORBIDDEN")
		confExpectError(t, "world_readable PUT", s.Do("PUT", rmRoom(room, "state", "m.room.topic", ""), carol.Token,
			map[string]string{"topic": "x"}), 403, "M_FORBIDDEN")
	})
}

// rmMembers calls /members with a query and returns "user:membership"
// entries, sorted.
func rmMembers(t *testing.T, s *apitest.Server, u apitest.User, roomID string, q url.Values) []string {
	t.Helper()
	var resp struct {
		Chunk []rmEvent `json:"chunk"`
	}
	rmDecode(t, s.Do("GET", rmRoom(roomID, "members")+"?"+q.Encode(), u.Token, nil).Expect(t, 200, ""), &resp)
	if resp.Chunk == nil {
		t.Fatal("/members without chunk")
	}
	out := []string{}
	for _, e := range resp.Chunk {
		if e.Type != "m.room.member" || e.StateKey == nil || e.RoomID != roomID {
			t.Fatalf("/members returned %+v", e)
		}
		out = append(out, fmt.Sprintf("%s:%v", *e.StateKey, e.Content["membership"]))
	}
	sort.Strings(out)
	return out
}

func TestMembers(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		carol := s.Register("carol", "correct horse battery")
		dave := s.Register("dave", "correct horse battery")
		eve := s.Register("eve", "correct horse battery")
		frank := s.Register("frank", "correct horse battery")
		room := s.CreateRoom(alice, nil)
		other := s.CreateRoom(alice, nil)

		// Tokens for "at": a /messages start token (the newest event now)
		// and a /sync-style stream position.
		atStart := rmMessages(t, s, alice, room, url.Values{"dir": {"b"}, "limit": {"1"}}).Start
		pos, err := s.App.DB.StreamPosition(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		rmInviteJoin(t, s, alice, room, bob)
		s.Invite(alice, room, carol)
		rmInviteJoin(t, s, alice, room, dave)
		s.Leave(dave, room)
		s.Do("POST", rmRoom(room, "ban"), alice.Token, map[string]string{"user_id": eve.ID}).Expect(t, 200, "")
		s.Do("PUT", "/_matrix/client/v3/profile/"+confEsc(bob.ID)+"/displayname", bob.Token, map[string]string{"displayname": "Bobby"}).Expect(t, 200, "")
		rmPutState(t, s, bob, room, "m.room.member", bob.ID, map[string]string{"membership": "join", "displayname": "Bobby", "avatar_url": "mxc://aula.test/bob"})

		a, b, c, d, e := alice.ID+":join", bob.ID+":join", carol.ID+":invite", dave.ID+":leave", eve.ID+":ban"
		rmEqual(t, "all", rmMembers(t, s, alice, room, nil), []string{a, b, c, d, e})
		rmEqual(t, "join", rmMembers(t, s, bob, room, url.Values{"membership": {"join"}}), []string{a, b})
		rmEqual(t, "invite", rmMembers(t, s, bob, room, url.Values{"membership": {"invite"}}), []string{c})
		rmEqual(t, "not leave", rmMembers(t, s, bob, room, url.Values{"not_membership": {"leave"}}), []string{a, b, c, e})
		rmEqual(t, "join, not leave", rmMembers(t, s, bob, room, url.Values{"membership": {"join"}, "not_membership": {"leave"}}), []string{a, b})
		rmEqual(t, "join, not join", rmMembers(t, s, bob, room, url.Values{"membership": {"join"}, "not_membership": {"join"}}), []string{})
		// at: the members at that point of the room.
		rmEqual(t, "at start", rmMembers(t, s, alice, room, url.Values{"at": {atStart}}), []string{a})
		rmEqual(t, "at stream position", rmMembers(t, s, bob, room, url.Values{"at": {fmt.Sprintf("s%d", pos)}}), []string{a})
		rmEqual(t, "at t0", rmMembers(t, s, alice, room, url.Values{"at": {"t0"}}), []string{})
		for _, bad := range []string{"garbage", "t", "t-1", "s", "sx", "t1.5"} {
			confExpectError(t, "at="+bad, s.Do("GET", rmRoom(room, "members")+"?at="+url.QueryEscape(bad), alice.Token, nil), 400, "M_INVALID_PARAM")
		}
		// Dave left: the members as of his leave (Eve not yet banned).
		rmEqual(t, "former member", rmMembers(t, s, dave, room, nil), []string{a, b, c, d})
		// The ban is at a point Dave could not see (he had left; the room
		// is "shared" but he never came back): 403.
		confExpectError(t, "former member at now", s.Do("GET", rmRoom(room, "members")+"?at=t999999", dave.Token, nil), 403, "M_FORBIDDEN")
		// Never members: 403.
		for _, u := range []apitest.User{carol, frank, eve} {
			confExpectError(t, u.ID+" /members", s.Do("GET", rmRoom(room, "members"), u.Token, nil), 403, "M_FORBIDDEN")
		}

		// /joined_members: members only, with their room profile.
		var jm struct {
			Joined map[string]map[string]string `json:"joined"`
		}
		rmDecode(t, s.Do("GET", rmRoom(room, "joined_members"), alice.Token, nil).Expect(t, 200, ""), &jm)
		if len(jm.Joined) != 2 || jm.Joined[alice.ID]["display_name"] != "alice" ||
			jm.Joined[bob.ID]["display_name"] != "Bobby" || jm.Joined[bob.ID]["avatar_url"] != "mxc://aula.test/bob" {
			t.Fatalf("joined_members: %+v", jm.Joined)
		}
		for _, u := range []apitest.User{carol, dave, eve, frank} {
			confExpectError(t, u.ID+" /joined_members", s.Do("GET", rmRoom(room, "joined_members"), u.Token, nil), 403, "M_FORBIDDEN")
		}

		// /joined_rooms: joined rooms only.
		joinedRooms := func(u apitest.User) []string {
			var jr struct {
				JoinedRooms []string `json:"joined_rooms"`
			}
			rmDecode(t, s.Do("GET", "/_matrix/client/v3/joined_rooms", u.Token, nil).Expect(t, 200, ""), &jr)
			if jr.JoinedRooms == nil {
				t.Fatal("joined_rooms missing")
			}
			slices.Sort(jr.JoinedRooms)
			return jr.JoinedRooms
		}
		want := []string{room, other}
		slices.Sort(want)
		rmEqual(t, "alice's rooms", joinedRooms(alice), want)
		rmEqual(t, "bob's rooms", joinedRooms(bob), []string{room})
		for _, u := range []apitest.User{carol, dave, eve, frank} {
			rmEqual(t, u.ID+"'s rooms", joinedRooms(u), []string{})
		}
		confExpectError(t, "joined_rooms without token", s.Do("GET", "/_matrix/client/v3/joined_rooms", "", nil), 401, "M_MISSING_TOKEN")
	})
}

// PUT /state/m.room.canonical_alias checks the aliases it adds: they must
// be aliases (400 M_INVALID_PARAM) that point to the room (400
// M_BAD_ALIAS). Aliases already in the event, and removed ones, are not
// checked (spec v1.16, room_state.yaml).
func TestStateCanonicalAlias(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		room := s.CreateRoom(alice, map[string]any{"room_alias_name": "lounge"})
		other := s.CreateRoom(alice, map[string]any{"room_alias_name": "elsewhere"})
		rmInviteJoin(t, s, alice, room, bob)
		dir := func(alias string) string { return "/_matrix/client/v3/directory/room/" + confEsc(alias) }
		s.Do("PUT", dir("#second:aula.test"), alice.Token, map[string]string{"room_id": room}).Expect(t, 200, "")
		put := func(u apitest.User, content any) *apitest.Response {
			return s.Do("PUT", rmRoom(room, "state", "m.room.canonical_alias", ""), u.Token, content)
		}
		if c := rmStateContent(t, s, alice, room, "m.room.canonical_alias", ""); c["alias"] != "#lounge:aula.test" {
			t.Fatalf("canonical alias after createRoom: %v", c)
		}
		for _, tc := range []struct {
			content       any
			status        int
			code, comment string
		}{
			{map[string]any{"alias": "#lounge:aula.test", "alt_aliases": []string{"#second:aula.test"}}, 200, "", "both point here"},
			{map[string]any{"alias": "#elsewhere:aula.test"}, 400, "M_BAD_ALIAS", "another room's alias"},
			{map[string]any{"alias": "#nowhere:aula.test"}, 400, "M_BAD_ALIAS", "unknown alias"},
			{map[string]any{"alias": "#lounge:aula.test", "alt_aliases": []string{"#x:other.example"}}, 400, "M_BAD_ALIAS", "another server's alias"},
			{map[string]any{"alias": "lounge"}, 400, "M_INVALID_PARAM", "not an alias"},
			{map[string]any{"alt_aliases": []string{"#:aula.test"}}, 400, "M_INVALID_PARAM", "empty localpart"},
			{map[string]any{"alias": 5}, 400, "M_BAD_JSON", "alias not a string"},
			{map[string]any{"alt_aliases": "#lounge:aula.test"}, 400, "M_BAD_JSON", "alt_aliases not a list"},
			{map[string]any{"alt_aliases": []string{"#second:aula.test"}}, 200, "", "removing the main alias"},
			{map[string]any{}, 200, "", "removing all"},
		} {
			r := put(alice, tc.content)
			if tc.status == 200 {
				r.Expect(t, 200, "")
			} else {
				confExpectError(t, tc.comment, r, tc.status, tc.code)
			}
		}
		// Those without power get 403 whatever the aliases.
		confExpectError(t, "bob", put(bob, map[string]any{"alias": "#nowhere:aula.test"}), 403, "M_FORBIDDEN")
		// An alias already in the event is not checked again, even once it
		// no longer points here.
		rmPutState(t, s, alice, room, "m.room.canonical_alias", "", map[string]any{"alias": "#lounge:aula.test", "alt_aliases": []string{"#second:aula.test"}})
		s.Do("DELETE", dir("#second:aula.test"), alice.Token, nil).Expect(t, 200, "")
		s.Do("PUT", dir("#second:aula.test"), alice.Token, map[string]string{"room_id": other}).Expect(t, 200, "")
		rmPutState(t, s, alice, room, "m.room.canonical_alias", "", map[string]any{"alias": "#second:aula.test", "alt_aliases": []string{"#lounge:aula.test"}})
		confExpectError(t, "a new alias pointing elsewhere", put(alice, map[string]any{"alias": "#second:aula.test", "alt_aliases": []string{"#elsewhere:aula.test"}}), 400, "M_BAD_ALIAS")
	})
}
