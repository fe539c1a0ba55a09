package clientapi_test

import (
	"net/url"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

func TestRestrictedJoin(t *testing.T) {
	for _, version := range []string{"10", "11", "12"} {
		t.Run("v"+version, func(t *testing.T) {
			apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
				alice := s.Register("alice", "pw")
				bob := s.Register("bob", "pw")
				carol := s.Register("carol", "pw")
				// A space that bob belongs to, and a room restricted to its members.
				space := s.CreateRoom(alice, map[string]any{"room_version": version, "invite": []string{bob.ID}, "creation_content": map[string]string{"type": "m.space"}})
				s.Do("POST", "/_matrix/client/v3/rooms/"+url.PathEscape(space)+"/join", bob.Token, map[string]any{}).Expect(t, 200, "")
				room := s.CreateRoom(alice, map[string]any{
					"room_version": version,
					"initial_state": []map[string]any{{"type": "m.room.join_rules", "content": map[string]any{
						"join_rule": "restricted",
						"allow":     []map[string]string{{"type": "m.room_membership", "room_id": space}},
					}}},
				})
				rp := "/_matrix/client/v3/rooms/" + url.PathEscape(room)

				// bob is in the space: he may join, authorised by alice.
				s.Do("POST", rp+"/join", bob.Token, map[string]any{}).Expect(t, 200, "")
				ev := s.Do("GET", rp+"/state/m.room.member/"+url.PathEscape(bob.ID)+"?format=event", bob.Token, nil).Expect(t, 200, "")
				content, _ := ev.JSON["content"].(map[string]any)
				if content["membership"] != "join" || content["join_authorised_via_users_server"] != alice.ID {
					t.Errorf("bob's join = %s", ev.Body)
				}
				// carol is not: refused, unless invited.
				s.Do("POST", rp+"/join", carol.Token, map[string]any{}).Expect(t, 403, "M_FORBIDDEN")
				s.Do("POST", rp+"/invite", alice.Token, map[string]string{"user_id": carol.ID}).Expect(t, 200, "")
				s.Do("POST", rp+"/join", carol.Token, map[string]any{}).Expect(t, 200, "")
				// A client cannot name an authoriser itself.
				s.Do("POST", rp+"/leave", carol.Token, map[string]any{}).Expect(t, 200, "")
				s.Do("POST", rp+"/join", carol.Token, map[string]any{"join_authorised_via_users_server": alice.ID}).Expect(t, 403, "M_FORBIDDEN")
			})
		})
	}
}

func TestProfileChangeReachesRooms(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		bob := s.Register("bob", "pw")
		joined := s.CreateRoom(alice, map[string]any{"invite": []string{bob.ID}})
		s.Do("POST", "/_matrix/client/v3/rooms/"+url.PathEscape(joined)+"/join", bob.Token, map[string]any{}).Expect(t, 200, "")
		left := s.CreateRoom(alice, map[string]any{"invite": []string{bob.ID}})
		s.Do("POST", "/_matrix/client/v3/rooms/"+url.PathEscape(left)+"/join", bob.Token, map[string]any{}).Expect(t, 200, "")
		s.Do("POST", "/_matrix/client/v3/rooms/"+url.PathEscape(left)+"/leave", bob.Token, map[string]any{}).Expect(t, 200, "")

		prof := "/_matrix/client/v3/profile/" + url.PathEscape(bob.ID)
		s.Do("PUT", prof+"/displayname", bob.Token, map[string]string{"displayname": "Bob B."}).Expect(t, 200, "")
		s.Do("PUT", prof+"/avatar_url", bob.Token, map[string]string{"avatar_url": "mxc://aula.test/bob"}).Expect(t, 200, "")

		member := func(room string) map[string]any {
			r := s.Do("GET", "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/state/m.room.member/"+url.PathEscape(bob.ID), alice.Token, nil).Expect(t, 200, "")
			return r.JSON
		}
		if m := member(joined); m["membership"] != "join" || m["displayname"] != "Bob B." || m["avatar_url"] != "mxc://aula.test/bob" {
			t.Errorf("member event in a joined room = %v", m)
		}
		// A room bob left keeps his leave; nothing is sent there.
		if m := member(left); m["membership"] != "leave" || m["displayname"] != nil {
			t.Errorf("member event in a left room = %v", m)
		}
		// Setting the same name again sends no new event.
		before := s.Do("GET", "/_matrix/client/v3/rooms/"+url.PathEscape(joined)+"/messages?dir=b&limit=1", alice.Token, nil).Expect(t, 200, "")
		s.Do("PUT", prof+"/displayname", bob.Token, map[string]string{"displayname": "Bob B."}).Expect(t, 200, "")
		after := s.Do("GET", "/_matrix/client/v3/rooms/"+url.PathEscape(joined)+"/messages?dir=b&limit=1", alice.Token, nil).Expect(t, 200, "")
		if before.String("start") != after.String("start") {
			t.Errorf("an unchanged profile sent an event: %s then %s", before.String("start"), after.String("start"))
		}
	})
}
