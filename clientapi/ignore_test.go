package clientapi_test

import (
	"net/url"
	"slices"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// igIgnore sets u's m.ignored_user_list.
func igIgnore(s *apitest.Server, u apitest.User, body any) *apitest.Response {
	return s.Do("PUT", "/_matrix/client/v3/user/"+url.PathEscape(u.ID)+"/account_data/m.ignored_user_list", u.Token, body)
}

// igIDs lists the event IDs of a JSON array of events.
func igIDs(v any) []string {
	list, _ := v.([]any)
	ids := []string{}
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			id, _ := m["event_id"].(string)
			ids = append(ids, id)
		}
	}
	return ids
}

// igMessages returns the event IDs /messages gives u, newest first.
func igMessages(t *testing.T, s *apitest.Server, u apitest.User, room, query string) []string {
	t.Helper()
	r := s.Do("GET", rcPath(room, "/messages?dir=b&"+query), u.Token, nil).Expect(t, 200, "")
	return igIDs(r.JSON["chunk"])
}

func TestIgnoredUsersHideEvents(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		bob := s.Register("bob", "pw")
		carol := s.Register("carol", "pw")
		room := s.CreateRoom(alice, map[string]any{"preset": "public_chat"})
		for _, u := range []apitest.User{bob, carol} {
			s.Do("POST", rcPath(room, "/join"), u.Token, map[string]any{}).Expect(t, 200, "")
		}
		m1 := s.SendText(bob, room, "from bob")
		m2 := s.SendText(carol, room, "from carol")
		// bob needs power to set the topic: a state event of his.
		pl := s.Do("PUT", rcPath(room, "/state/m.room.power_levels/"), alice.Token, map[string]any{
			"users": map[string]int{alice.ID: 100, bob.ID: 50},
		}).Expect(t, 200, "").String("event_id")
		st := s.Do("PUT", rcPath(room, "/state/m.room.topic/"), bob.Token, map[string]string{"topic": "bob's topic"}).
			Expect(t, 200, "").String("event_id")
		m3 := s.SendText(bob, room, "bob again")
		m4 := s.SendText(carol, room, "carol again")

		all := igMessages(t, s, alice, room, "limit=50")
		for _, id := range []string{m1, m2, st, m3, m4} {
			if !slices.Contains(all, id) {
				t.Fatalf("before ignoring, /messages lacks %s: %q", id, all)
			}
		}

		rcEmpty(t, "ignore bob", igIgnore(s, alice, map[string]any{"ignored_users": map[string]any{bob.ID: map[string]any{}}}))

		got := igMessages(t, s, alice, room, "limit=50")
		if slices.Contains(got, m1) || slices.Contains(got, m3) {
			t.Errorf("alice still sees bob's messages: %q", got)
		}
		if want := slices.DeleteFunc(slices.Clone(all), func(id string) bool { return id == m1 || id == m3 }); !slices.Equal(got, want) {
			t.Errorf("alice's /messages = %q, want %q (bob's state events stay)", got, want)
		}
		// limit counts the events shown: the newest two are carol's m4 and
		// bob's topic, bob's m3 in between is skipped.
		if got := igMessages(t, s, alice, room, "limit=2"); !slices.Equal(got, []string{m4, st}) {
			t.Errorf("limit=2: %q, want [%s %s]", got, m4, st)
		}
		// Only alice ignores bob.
		if got := igMessages(t, s, carol, room, "limit=50"); !slices.Equal(got, all) {
			t.Errorf("carol's /messages = %q, want everything", got)
		}

		// /context leaves bob's messages out of the window and will not
		// show one of them at its centre.
		r := s.Do("GET", rcPath(room, "/context/"+url.PathEscape(m2)+"?limit=10"), alice.Token, nil).Expect(t, 200, "")
		before, after := igIDs(r.JSON["events_before"]), igIDs(r.JSON["events_after"])
		if slices.Contains(before, m1) || slices.Contains(after, m3) {
			t.Errorf("context shows bob's messages: before %q, after %q", before, after)
		}
		if !slices.Equal(after, []string{pl, st, m4}) {
			t.Errorf("context events_after = %q, want [%s %s %s]", after, pl, st, m4)
		}
		s.Do("GET", rcPath(room, "/context/"+url.PathEscape(m1)), alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("GET", rcPath(room, "/context/"+url.PathEscape(st)), alice.Token, nil).Expect(t, 200, "")
		s.Do("GET", rcPath(room, "/context/"+url.PathEscape(m1)), carol.Token, nil).Expect(t, 200, "")
		// GET /event hides them too (state events stay visible), but they
		// can still be reported.
		s.Do("GET", rcPath(room, "/event/"+url.PathEscape(m1)), alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("GET", rcPath(room, "/event/"+url.PathEscape(st)), alice.Token, nil).Expect(t, 200, "")
		s.Do("POST", rcPath(room, "/report/"+url.PathEscape(m1)), alice.Token, map[string]string{"reason": "spam"}).Expect(t, 200, "")

		// Un-ignoring shows them again.
		rcEmpty(t, "unignore", igIgnore(s, alice, map[string]any{"ignored_users": map[string]any{}}))
		if got := igMessages(t, s, alice, room, "limit=50"); !slices.Equal(got, all) {
			t.Errorf("after un-ignoring: %q, want %q", got, all)
		}
		s.Do("GET", rcPath(room, "/context/"+url.PathEscape(m1)), alice.Token, nil).Expect(t, 200, "")
		s.Do("GET", rcPath(room, "/event/"+url.PathEscape(m1)), alice.Token, nil).Expect(t, 200, "")
	})
}

func TestIgnoredUserListValidation(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		bob := s.Register("bob", "pw")
		valid := map[string]any{"ignored_users": map[string]any{bob.ID: map[string]any{}, "@someone:elsewhere.example": map[string]any{}}}
		rcEmpty(t, "valid list", igIgnore(s, alice, valid))

		for _, c := range []struct {
			name    string
			body    string
			errcode string
		}{
			{"no ignored_users", `{}`, "M_BAD_JSON"},
			{"ignored_users a list", `{"ignored_users":["@bob:aula.test"]}`, "M_BAD_JSON"},
			{"ignored_users null", `{"ignored_users":null}`, "M_BAD_JSON"},
			{"ignored_users a string", `{"ignored_users":"@bob:aula.test"}`, "M_BAD_JSON"},
			{"not a user ID", `{"ignored_users":{"bob":{}}}`, "M_INVALID_PARAM"},
			{"yourself", `{"ignored_users":{"@alice:aula.test":{}}}`, "M_INVALID_PARAM"},
			{"value not an object", `{"ignored_users":{"@bob:aula.test":true}}`, "M_BAD_JSON"},
			{"not JSON", `{"ignored_users":`, "M_NOT_JSON"},
		} {
			t.Run(c.name, func(t *testing.T) {
				igIgnore(s, alice, c.body).Expect(t, 400, c.errcode)
			})
		}
		// The last valid list stays.
		r := s.Do("GET", "/_matrix/client/v3/user/"+url.PathEscape(alice.ID)+"/account_data/m.ignored_user_list", alice.Token, nil).Expect(t, 200, "")
		users, _ := r.JSON["ignored_users"].(map[string]any)
		if len(users) != 2 || users[bob.ID] == nil {
			t.Errorf("stored list = %s, want the valid one", r.Body)
		}
		// Another user's list is theirs to set (403 before any check).
		s.Do("PUT", "/_matrix/client/v3/user/"+url.PathEscape(alice.ID)+"/account_data/m.ignored_user_list", bob.Token, `{}`).Expect(t, 403, "M_FORBIDDEN")
		// Only the global list means anything; room account data of that
		// type is not checked.
		room := s.CreateRoom(alice, map[string]any{})
		s.Do("PUT", "/_matrix/client/v3/user/"+url.PathEscape(alice.ID)+"/rooms/"+url.PathEscape(room)+"/account_data/m.ignored_user_list",
			alice.Token, `{}`).Expect(t, 200, "")
	})
}
