package clientapi_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/apitest"
)

// allowPublicRooms is the configuration of tests that need public rooms
// (the closed-room policy refuses them by default): the public join rule
// and world_readable history are allowed.
func allowPublicRooms(c *config.Config) {
	c.Rooms.AllowedJoinRules = append(c.Rooms.AllowedJoinRules, "public")
	c.Rooms.AllowWorldReadable = true
}

// plState is a path to a room's state event.
func plState(roomID, typ string) string {
	return "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/state/" + typ + "/"
}

// TestClosedRoomsRefusals checks every refusal of the closed-room policy
// with the default configuration: 403 M_FORBIDDEN, and nothing created.
func TestClosedRoomsRefusals(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		st := func(typ string, content any) map[string]any {
			return map[string]any{"type": typ, "state_key": "", "content": content}
		}
		for _, tc := range []struct {
			name   string
			body   map[string]any
			public bool // the message says public rooms are disabled
		}{
			{"preset public_chat", map[string]any{"preset": "public_chat"}, true},
			{"visibility public", map[string]any{"visibility": "public"}, true},
			{"visibility public, private preset", map[string]any{"visibility": "public", "preset": "private_chat"}, true},
			{"initial join rule public", map[string]any{"initial_state": []any{st("m.room.join_rules", map[string]string{"join_rule": "public"})}}, true},
			{"initial guest access", map[string]any{"initial_state": []any{st("m.room.guest_access", map[string]string{"guest_access": "can_join"})}}, false},
			{"initial world_readable", map[string]any{"initial_state": []any{st("m.room.history_visibility", map[string]string{"history_visibility": "world_readable"})}}, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := s.Do("POST", "/_matrix/client/v3/createRoom", alice.Token, tc.body).Expect(t, 403, "M_FORBIDDEN")
				if msg := r.String("error"); tc.public && !strings.Contains(msg, "Public rooms are disabled on this server") {
					t.Errorf("error %q does not say public rooms are disabled", msg)
				}
			})
		}
		if rooms := mbJoinedRooms(t, s, alice); len(rooms) != 0 {
			t.Errorf("refused createRoom requests left rooms behind: %v", rooms)
		}

		// The default room: invite-only, no guests, shared history, never
		// federated.
		room := s.CreateRoom(alice, map[string]any{})
		evs := mbEvents(t, s, alice, room)
		mbContentEq(t, "create", mbFind(t, evs, "m.room.create").Content, `{"room_version":"11","m.federate":false}`)
		mbContentEq(t, "join rules", mbFind(t, evs, "m.room.join_rules").Content, `{"join_rule":"invite"}`)
		mbContentEq(t, "guest access", mbFind(t, evs, "m.room.guest_access").Content, `{"guest_access":"forbidden"}`)
		mbContentEq(t, "history visibility", mbFind(t, evs, "m.room.history_visibility").Content, `{"history_visibility":"shared"}`)
		// m.federate is forced even when the client asks otherwise.
		fed := s.CreateRoom(alice, map[string]any{"creation_content": map[string]any{"m.federate": true}})
		mbContentEq(t, "create with m.federate true", mbFind(t, mbEvents(t, s, alice, fed), "m.room.create").Content, `{"room_version":"11","m.federate":false}`)

		// Later changes: refused ones, then allowed ones.
		r := s.Do("PUT", plState(room, "m.room.join_rules"), alice.Token, map[string]string{"join_rule": "public"}).Expect(t, 403, "M_FORBIDDEN")
		if !strings.Contains(r.String("error"), "Public rooms are disabled on this server") {
			t.Errorf("join rule public refused with %s", r.Body)
		}
		s.Do("PUT", plState(room, "m.room.guest_access"), alice.Token, map[string]string{"guest_access": "can_join"}).Expect(t, 403, "M_FORBIDDEN")
		s.Do("PUT", plState(room, "m.room.history_visibility"), alice.Token, map[string]string{"history_visibility": "world_readable"}).Expect(t, 403, "M_FORBIDDEN")
		mbContentEq(t, "join rules after refusal", mbState(t, s, alice, room, "m.room.join_rules", ""), `{"join_rule":"invite"}`)
		mbContentEq(t, "history after refusal", mbState(t, s, alice, room, "m.room.history_visibility", ""), `{"history_visibility":"shared"}`)
		for _, rule := range []string{"knock", "restricted", "knock_restricted", "invite"} {
			s.Do("PUT", plState(room, "m.room.join_rules"), alice.Token, map[string]any{"join_rule": rule, "allow": []any{}}).Expect(t, 200, "")
		}
		for _, vis := range []string{"joined", "invited", "shared"} {
			s.Do("PUT", plState(room, "m.room.history_visibility"), alice.Token, map[string]string{"history_visibility": vis}).Expect(t, 200, "")
		}
		s.Do("PUT", plState(room, "m.room.guest_access"), alice.Token, map[string]string{"guest_access": "forbidden"}).Expect(t, 200, "")
	})
}

// TestClosedRoomsAllowedPaths checks that what closed rooms offer keeps
// working: invite-only rooms, knocking, rooms restricted to the members of
// a space, and moderated rooms where only moderators speak.
func TestClosedRoomsAllowedPaths(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		bob := s.Register("bob", "pw")
		carol := s.Register("carol", "pw")
		rp := func(room, action string) string {
			return "/_matrix/client/v3/rooms/" + url.PathEscape(room) + "/" + action
		}

		// Members-only: nobody joins without an invite.
		members := s.CreateRoom(alice, map[string]any{"preset": "private_chat", "name": "Seminar"})
		s.Do("POST", rp(members, "join"), bob.Token, map[string]any{}).Expect(t, 403, "M_FORBIDDEN")
		s.Do("POST", rp(members, "invite"), alice.Token, map[string]string{"user_id": bob.ID}).Expect(t, 200, "")
		s.Do("POST", rp(members, "join"), bob.Token, map[string]any{}).Expect(t, 200, "")

		// Knock: carol asks, alice lets her in.
		knock := s.CreateRoom(alice, map[string]any{"initial_state": []map[string]any{
			{"type": "m.room.join_rules", "content": map[string]string{"join_rule": "knock"}}}})
		s.Do("POST", "/_matrix/client/v3/knock/"+url.PathEscape(knock), carol.Token, map[string]string{"reason": "please"}).Expect(t, 200, "")
		s.Do("POST", rp(knock, "invite"), alice.Token, map[string]string{"user_id": carol.ID}).Expect(t, 200, "")
		s.Do("POST", rp(knock, "join"), carol.Token, map[string]any{}).Expect(t, 200, "")

		// Restricted to the members of a space: bob (a member) joins
		// without an invite; carol (not a member) may not.
		space := s.CreateRoom(alice, map[string]any{"name": "Faculty", "invite": []string{bob.ID},
			"creation_content": map[string]string{"type": "m.space"}})
		s.Do("POST", rp(space, "join"), bob.Token, map[string]any{}).Expect(t, 200, "")
		restricted := s.CreateRoom(alice, map[string]any{"initial_state": []map[string]any{
			{"type": "m.room.join_rules", "content": map[string]any{"join_rule": "restricted",
				"allow": []map[string]string{{"type": "m.room_membership", "room_id": space}}}},
			{"type": "m.space.parent", "state_key": space, "content": map[string]any{"via": []string{"aula.test"}, "canonical": true}}}})
		s.Do("PUT", plState(space, "m.space.child")+url.PathEscape(restricted), alice.Token, map[string]any{"via": []string{"aula.test"}}).Expect(t, 200, "")
		s.Do("POST", rp(restricted, "join"), bob.Token, map[string]any{}).Expect(t, 200, "")
		s.Do("POST", rp(restricted, "join"), carol.Token, map[string]any{}).Expect(t, 403, "M_FORBIDDEN")
		// The space's members see the room in the space hierarchy.
		h := s.Do("GET", "/_matrix/client/v1/rooms/"+url.PathEscape(space)+"/hierarchy", bob.Token, nil).Expect(t, 200, "")
		if !strings.Contains(string(h.Body), restricted) {
			t.Errorf("hierarchy of the space does not list the restricted room: %s", h.Body)
		}

		// Moderated: events_default 50, so only moderators speak.
		moderated := s.CreateRoom(alice, map[string]any{"invite": []string{bob.ID},
			"power_level_content_override": map[string]any{"events_default": 50}})
		s.Do("POST", rp(moderated, "join"), bob.Token, map[string]any{}).Expect(t, 200, "")
		s.Do("PUT", rp(moderated, "send/m.room.message/t1"), bob.Token, map[string]string{"msgtype": "m.text", "body": "hi"}).Expect(t, 403, "M_FORBIDDEN")
		s.Do("PUT", rp(moderated, "send/m.room.message/t1"), alice.Token, map[string]string{"msgtype": "m.text", "body": "welcome"}).Expect(t, 200, "")
	})
}

// TestClosedRoomsConfig checks the configuration keys: public rooms and
// world_readable history when the admin allows them, a narrower list of
// join rules, and guest access, which stays off whatever the config.
func TestClosedRoomsConfig(t *testing.T) {
	t.Run("open", func(t *testing.T) {
		apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
			alice := s.Register("alice", "pw")
			bob := s.Register("bob", "pw")
			room := s.CreateRoom(alice, map[string]any{"preset": "public_chat"})
			s.Do("POST", "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/join", bob.Token, map[string]any{}).Expect(t, 200, "")
			s.Do("PUT", plState(room, "m.room.history_visibility"), alice.Token, map[string]string{"history_visibility": "world_readable"}).Expect(t, 200, "")
			s.Do("PUT", plState(room, "m.room.guest_access"), alice.Token, map[string]string{"guest_access": "can_join"}).Expect(t, 403, "M_FORBIDDEN")
			// The directory stays empty: publishing is still refused.
			s.Do("POST", "/_matrix/client/v3/createRoom", alice.Token, map[string]any{"visibility": "public"}).Expect(t, 403, "M_FORBIDDEN")
		})
	})
	t.Run("invite only", func(t *testing.T) {
		apitest.ForEachServer(t, func(c *config.Config) { c.Rooms.AllowedJoinRules = []string{"invite"} }, func(t *testing.T, s *apitest.Server) {
			alice := s.Register("alice", "pw")
			room := s.CreateRoom(alice, map[string]any{})
			s.Do("PUT", plState(room, "m.room.join_rules"), alice.Token, map[string]string{"join_rule": "knock"}).Expect(t, 403, "M_FORBIDDEN")
			s.Do("POST", "/_matrix/client/v3/createRoom", alice.Token, map[string]any{"initial_state": []map[string]any{
				{"type": "m.room.join_rules", "content": map[string]string{"join_rule": "knock"}}}}).Expect(t, 403, "M_FORBIDDEN")
		})
	})
}
