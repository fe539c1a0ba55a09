package clientapi_test

import (
	"net/url"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

func TestRoomAliases(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		bob := s.Register("bob", "pw")
		carol := s.Register("carol", "pw")
		room := s.CreateRoom(alice, map[string]any{"preset": "public_chat"})
		s.Do("POST", "/_matrix/client/v3/join/"+url.PathEscape(room), bob.Token, map[string]any{}).Expect(t, 200, "")
		dir := func(alias string) string { return "/_matrix/client/v3/directory/room/" + url.PathEscape(alias) }

		// Bob (a member) creates an alias; it resolves for anyone.
		s.Do("PUT", dir("#lounge:aula.test"), bob.Token, map[string]string{"room_id": room}).Expect(t, 200, "")
		r := s.Do("GET", dir("#lounge:aula.test"), carol.Token, nil).Expect(t, 200, "")
		if r.String("room_id") != room {
			t.Fatalf("alias resolves to %s, want %s", r.Body, room)
		}
		if servers, _ := r.JSON["servers"].([]any); len(servers) != 1 || servers[0] != "aula.test" {
			t.Errorf("servers = %v", r.JSON["servers"])
		}
		// Taken, foreign, malformed, unknown, non-member.
		s.Do("PUT", dir("#lounge:aula.test"), alice.Token, map[string]string{"room_id": room}).Expect(t, 409, "M_UNKNOWN")
		s.Do("PUT", dir("#x:elsewhere.example"), alice.Token, map[string]string{"room_id": room}).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("PUT", dir("lounge"), alice.Token, map[string]string{"room_id": room}).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("PUT", dir("#y:aula.test"), alice.Token, map[string]string{"room_id": "nope"}).Expect(t, 400, "M_BAD_JSON")
		s.Do("PUT", dir("#y:aula.test"), carol.Token, map[string]string{"room_id": room}).Expect(t, 403, "M_FORBIDDEN")
		s.Do("GET", dir("#missing:aula.test"), alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")

		// Members list the room's aliases; strangers may not.
		r = s.Do("GET", "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/aliases", alice.Token, nil).Expect(t, 200, "")
		if got, _ := r.JSON["aliases"].([]any); len(got) != 1 || got[0] != "#lounge:aula.test" {
			t.Errorf("aliases = %s", r.Body)
		}
		s.Do("GET", "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/aliases", carol.Token, nil).Expect(t, 403, "M_FORBIDDEN")

		// Canonical alias must point to the room.
		state := "/_matrix/client/v3/rooms/" + url.PathEscape(room) + "/state/m.room.canonical_alias"
		s.Do("PUT", state, alice.Token, map[string]string{"alias": "#missing:aula.test"}).Expect(t, 400, "M_BAD_ALIAS")
		s.Do("PUT", state, alice.Token, map[string]any{"alias": "#lounge:aula.test", "alt_aliases": []string{"#nope:aula.test"}}).Expect(t, 400, "M_BAD_ALIAS")
		s.Do("PUT", state, alice.Token, map[string]string{"alias": "#lounge:aula.test"}).Expect(t, 200, "")

		// Only the creator, someone with power over the canonical alias, or
		// an admin may delete it.
		s.Do("DELETE", dir("#lounge:aula.test"), carol.Token, nil).Expect(t, 403, "M_FORBIDDEN")
		s.Do("DELETE", dir("#lounge:aula.test"), alice.Token, nil).Expect(t, 200, "")
		s.Do("GET", dir("#lounge:aula.test"), alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("DELETE", dir("#lounge:aula.test"), alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")
	})
}

func TestRoomTags(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		bob := s.Register("bob", "pw")
		room := s.CreateRoom(alice, map[string]any{})
		base := "/_matrix/client/v3/user/" + url.PathEscape(alice.ID) + "/rooms/" + url.PathEscape(room) + "/tags"

		r := s.Do("GET", base, alice.Token, nil).Expect(t, 200, "")
		if string(r.Body) != "{\"tags\":{}}\n" {
			t.Errorf("empty tags = %s", r.Body)
		}
		s.Do("PUT", base+"/m.favourite", alice.Token, map[string]any{"order": 0.25}).Expect(t, 200, "")
		s.Do("PUT", base+"/u.work", alice.Token, map[string]any{}).Expect(t, 200, "")
		r = s.Do("GET", base, alice.Token, nil).Expect(t, 200, "")
		tags, _ := r.JSON["tags"].(map[string]any)
		fav, _ := tags["m.favourite"].(map[string]any)
		if len(tags) != 2 || fav["order"] != 0.25 {
			t.Fatalf("tags = %s", r.Body)
		}
		// The tags are the room's m.tag account data, as sync will deliver it.
		ad := s.Do("GET", "/_matrix/client/v3/user/"+url.PathEscape(alice.ID)+"/rooms/"+url.PathEscape(room)+"/account_data/m.tag", alice.Token, nil).Expect(t, 200, "")
		if _, ok := ad.JSON["tags"].(map[string]any)["u.work"]; !ok {
			t.Errorf("m.tag account data = %s", ad.Body)
		}
		s.Do("DELETE", base+"/u.work", alice.Token, nil).Expect(t, 200, "")
		s.Do("DELETE", base+"/u.work", alice.Token, nil).Expect(t, 200, "")
		r = s.Do("GET", base, alice.Token, nil).Expect(t, 200, "")
		if tags, _ := r.JSON["tags"].(map[string]any); len(tags) != 1 {
			t.Errorf("after delete: %s", r.Body)
		}
		// Errors.
		s.Do("PUT", base+"/m.lowpriority", alice.Token, map[string]any{"order": "high"}).Expect(t, 400, "M_BAD_JSON")
		s.Do("PUT", base+"/m.lowpriority", alice.Token, map[string]any{"order": 2}).Expect(t, 400, "M_BAD_JSON")
		s.Do("PUT", base+"/m.lowpriority", alice.Token, `[]`).Expect(t, 400, "M_BAD_JSON")
		s.Do("GET", base, bob.Token, nil).Expect(t, 403, "M_FORBIDDEN")
		s.Do("PUT", base+"/x", bob.Token, map[string]any{}).Expect(t, 403, "M_FORBIDDEN")
		s.Do("GET", "/_matrix/client/v3/user/"+url.PathEscape(alice.ID)+"/rooms/notaroom/tags", alice.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
	})
}
