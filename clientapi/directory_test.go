package clientapi_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// The room directory is always empty, and no room can be published in it.
func TestRoomDirectoryIsEmpty(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		room := s.CreateRoom(alice, map[string]any{"preset": "private_chat", "name": "Seminar"})
		const empty = `{"chunk":[],"total_room_count_estimate":0}`
		for _, r := range []*apitest.Response{
			s.Do("GET", "/_matrix/client/v3/publicRooms", "", nil),
			s.Do("GET", "/_matrix/client/v3/publicRooms?limit=20", alice.Token, nil),
			s.Do("POST", "/_matrix/client/v3/publicRooms", alice.Token, map[string]any{"limit": 20, "filter": map[string]string{"generic_search_term": "Seminar"}}),
		} {
			if r.Status != 200 || strings.TrimSpace(string(r.Body)) != empty {
				t.Errorf("publicRooms: %d %s, want 200 %s", r.Status, r.Body, empty)
			}
		}
		s.Do("POST", "/_matrix/client/v3/publicRooms", "", map[string]any{}).Expect(t, 401, "M_MISSING_TOKEN")
		s.Do("POST", "/_matrix/client/v3/publicRooms", alice.Token, "[]").Expect(t, 400, "M_BAD_JSON")
		s.Do("GET", "/_matrix/client/v3/publicRooms?server=elsewhere.example", alice.Token, nil).Expect(t, 403, "M_FORBIDDEN")

		path := "/_matrix/client/v3/directory/list/room/" + url.PathEscape(room)
		if v := s.Do("GET", path, "", nil).Expect(t, 200, "").String("visibility"); v != "private" {
			t.Errorf("visibility %q, want private", v)
		}
		s.Do("PUT", path, alice.Token, map[string]string{"visibility": "public"}).Expect(t, 403, "M_FORBIDDEN")
		s.Do("PUT", path, alice.Token, map[string]string{"visibility": "private"}).Expect(t, 200, "")
		s.Do("PUT", path, alice.Token, map[string]string{"visibility": "listed"}).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("GET", "/_matrix/client/v3/directory/list/room/"+url.PathEscape("!unknown:aula.test"), "", nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("PUT", "/_matrix/client/v3/directory/list/room/"+url.PathEscape("!unknown:aula.test"), alice.Token, map[string]string{"visibility": "private"}).Expect(t, 404, "M_NOT_FOUND")
		s.Do("PUT", path, "", map[string]string{"visibility": "private"}).Expect(t, 401, "M_MISSING_TOKEN")
	})
}

// Rooms, aliases and users of other servers are refused at once: this
// server never federates.
func TestRemoteRoomsAndUsersRefused(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		room := s.CreateRoom(alice, nil)
		for _, target := range []string{"#lobby:elsewhere.example", "!abcdef:elsewhere.example"} {
			s.Do("POST", "/_matrix/client/v3/join/"+url.PathEscape(target), alice.Token, map[string]any{}).Expect(t, 403, "M_FORBIDDEN")
			s.Do("POST", "/_matrix/client/v3/knock/"+url.PathEscape(target), alice.Token, map[string]any{}).Expect(t, 403, "M_FORBIDDEN")
		}
		s.Do("POST", "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/invite", alice.Token, map[string]string{"user_id": "@bob:elsewhere.example"}).Expect(t, 403, "M_FORBIDDEN")
		// Unknown local rooms and aliases are still 404.
		s.Do("POST", "/_matrix/client/v3/join/"+url.PathEscape("#nope:aula.test"), alice.Token, map[string]any{}).Expect(t, 404, "M_NOT_FOUND")
		// No server-to-server API at all.
		for _, p := range []string{"/_matrix/federation/v1/version", "/_matrix/key/v2/server", "/.well-known/matrix/server"} {
			s.Do("GET", p, "", nil).Expect(t, 404, "M_UNRECOGNIZED")
		}
	})
}
