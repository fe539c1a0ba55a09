package clientapi_test

import (
	"net/url"
	"slices"
	"testing"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/apitest"
)

const udPath = "/_matrix/client/v3/user_directory/search"

// udSearch searches as u and returns the user IDs found and limited.
func udSearch(t *testing.T, s *apitest.Server, u apitest.User, body map[string]any) ([]string, bool, []any) {
	t.Helper()
	r := s.Do("POST", udPath, u.Token, body).Expect(t, 200, "")
	results, ok := r.JSON["results"].([]any)
	limited, okL := r.JSON["limited"].(bool)
	if !ok || !okL {
		t.Fatalf("search %v answered %s", body, r.Body)
	}
	ids := []string{}
	for _, res := range results {
		ids = append(ids, res.(map[string]any)["user_id"].(string))
	}
	return ids, limited, results
}

// udDeactivate deactivates u through the API.
func udDeactivate(t *testing.T, s *apitest.Server, u apitest.User) {
	t.Helper()
	r := s.Do("POST", "/_matrix/client/v3/account/deactivate", u.Token, map[string]any{}).Expect(t, 401, "")
	s.Do("POST", "/_matrix/client/v3/account/deactivate", u.Token, map[string]any{"auth": u.PasswordAuth(r.String("session"))}).Expect(t, 200, "")
}

// udSetName sets u's display name.
func udSetName(t *testing.T, s *apitest.Server, u apitest.User, name string) {
	t.Helper()
	s.Do("PUT", "/_matrix/client/v3/profile/"+url.PathEscape(u.ID)+"/displayname", u.Token, map[string]string{"displayname": name}).Expect(t, 200, "")
}

// TestUserDirectorySharedRooms checks the default: only users who share a
// joined room with the searcher are found.
func TestUserDirectorySharedRooms(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		bob := s.Register("bob", "pw")         // shares a room
		carol := s.Register("carol", "pw")     // shares nothing
		dave := s.Register("dave", "pw")       // only invited
		erin := s.Register("erin", "pw")       // shares a room, then deactivated
		frank := s.Register("frank", "pw")     // joined, then left
		mueller := s.Register("mueller", "pw") // shares a room with carol only
		udSetName(t, s, bob, "Bob Müller")
		udSetName(t, s, carol, "Carol Müller")
		udSetName(t, s, erin, "Erin Müller")
		udSetName(t, s, frank, "Frank Müller")
		s.Do("PUT", "/_matrix/client/v3/profile/"+url.PathEscape(bob.ID)+"/avatar_url", bob.Token, map[string]string{"avatar_url": "mxc://aula.test/bob"}).Expect(t, 200, "")

		room := s.CreateRoom(alice, map[string]any{"invite": []string{bob.ID, dave.ID, erin.ID, frank.ID}})
		for _, u := range []apitest.User{bob, erin, frank} {
			s.Join(u, room)
		}
		s.Leave(frank, room)
		other := s.CreateRoom(carol, map[string]any{"invite": []string{mueller.ID}})
		s.Join(mueller, other)
		udDeactivate(t, s, erin)

		for _, tc := range []struct {
			term string
			want []string
		}{
			{"müller", []string{bob.ID}},
			{"MULLER", []string{bob.ID}},
			{"bob mü", []string{bob.ID}},
			{"@bob:aula", []string{bob.ID}},
			{"dave", nil},    // invited, not joined
			{"carol", nil},   // no shared room
			{"mueller", nil}, // in another room only
			{"frank", nil},   // left
			{"erin", nil},    // deactivated
			{"alice", nil},   // not the searcher herself
		} {
			ids, limited, _ := udSearch(t, s, alice, map[string]any{"search_term": tc.term})
			if !slices.Equal(ids, append([]string{}, tc.want...)) || limited {
				t.Errorf("alice searches %q: %v (limited %v), want %v", tc.term, ids, limited, tc.want)
			}
		}
		// The result carries the profile.
		_, _, results := udSearch(t, s, alice, map[string]any{"search_term": "bob"})
		if want := map[string]any{"user_id": bob.ID, "display_name": "Bob Müller", "avatar_url": "mxc://aula.test/bob"}; len(results) != 1 || !mapsEqual(results[0].(map[string]any), want) {
			t.Errorf("result %v, want %v", results, want)
		}
		// Carol finds mueller by localpart, and no one in alice's room.
		if ids, _, _ := udSearch(t, s, carol, map[string]any{"search_term": "mueller"}); !slices.Equal(ids, []string{mueller.ID}) {
			t.Errorf("carol searches mueller: %v", ids)
		}

		// limit and limited.
		more := s.CreateRoom(alice, map[string]any{})
		for _, lp := range []string{"stud1", "stud2", "stud3"} {
			u := s.Register(lp, "pw")
			s.Invite(alice, more, u)
			s.Join(u, more)
		}
		if ids, limited, _ := udSearch(t, s, alice, map[string]any{"search_term": "stud", "limit": 2}); !slices.Equal(ids, []string{"@stud1:aula.test", "@stud2:aula.test"}) || !limited {
			t.Errorf("limit 2: %v, limited %v", ids, limited)
		}
		if ids, limited, _ := udSearch(t, s, alice, map[string]any{"search_term": "stud", "limit": 3}); len(ids) != 3 || limited {
			t.Errorf("limit 3 of 3: %v, limited %v", ids, limited)
		}

		// Bad requests.
		s.Do("POST", udPath, alice.Token, map[string]any{}).Expect(t, 400, "M_MISSING_PARAM")
		s.Do("POST", udPath, alice.Token, map[string]any{"search_term": "x", "limit": 0}).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("POST", udPath, alice.Token, map[string]any{"search_term": 7}).Expect(t, 400, "M_BAD_JSON")
		s.Do("POST", udPath, "", map[string]any{"search_term": "bob"}).Expect(t, 401, "M_MISSING_TOKEN")
	})
}

// mapsEqual compares two decoded JSON objects of strings.
func mapsEqual(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestUserDirectoryAllUsers checks user_directory.search_all_users: every
// local user is found, except deactivated users and the server notices
// account.
func TestUserDirectoryAllUsers(t *testing.T) {
	apitest.ForEachServer(t, func(c *config.Config) {
		c.UserDirectory.SearchAllUsers = true
		c.ServerNotices.Localpart = "notices"
	}, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		carol := s.Register("carol", "pw")
		erin := s.Register("erin", "pw")
		udSetName(t, s, carol, "Carol Dupré")
		udSetName(t, s, erin, "Erin Dupré")
		udDeactivate(t, s, erin)
		// The notices account exists (created at start-up, or here).
		if s.Do("GET", "/_matrix/client/v3/profile/@notices:aula.test", alice.Token, nil).Status == 404 {
			s.Register("notices", "pw")
		}
		if ids, _, _ := udSearch(t, s, alice, map[string]any{"search_term": "dupre"}); !slices.Equal(ids, []string{carol.ID}) {
			t.Errorf("search dupre: %v, want [%s]", ids, carol.ID)
		}
		if ids, _, _ := udSearch(t, s, alice, map[string]any{"search_term": "notices"}); len(ids) != 0 {
			t.Errorf("the server notices account is found: %v", ids)
		}
		if ids, _, _ := udSearch(t, s, alice, map[string]any{"search_term": "alice"}); !slices.Equal(ids, []string{alice.ID}) {
			t.Errorf("search alice: %v", ids)
		}
	})
}
