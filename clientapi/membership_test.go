package clientapi_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// mbMember returns the content of u's current member event in the room, as
// the reader sees it.
func mbMember(t *testing.T, s *apitest.Server, reader apitest.User, roomID, userID string) map[string]any {
	t.Helper()
	return mbState(t, s, reader, roomID, "m.room.member", userID)
}

// mbCount returns how many events reader sees in the room.
func mbCount(t *testing.T, s *apitest.Server, reader apitest.User, roomID string) int {
	t.Helper()
	return len(mbEvents(t, s, reader, roomID))
}

// mbPost posts a membership request: /rooms/{roomId}/{action}.
func mbPost(s *apitest.Server, u apitest.User, roomID, action string, body any) *apitest.Response {
	return s.Do("POST", mbRoom(roomID, "/"+action), u.Token, body)
}

func TestJoinPublicRoom(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		carol := s.Register("carol", "correct horse battery")
		s.Do("PUT", "/_matrix/client/v3/profile/"+confEsc(bob.ID)+"/displayname", bob.Token,
			map[string]string{"displayname": "Bob 🐝"}).Expect(t, 200, "")
		s.Do("PUT", "/_matrix/client/v3/profile/"+confEsc(bob.ID)+"/avatar_url", bob.Token,
			map[string]string{"avatar_url": "mxc://aula.test/bee"}).Expect(t, 200, "")
		roomID := s.CreateRoom(alice, map[string]any{"preset": "public_chat", "room_alias_name": "pub"})

		// POST /rooms/{roomId}/join: the member event carries the profile
		// and the reason.
		r := mbPost(s, bob, roomID, "join", map[string]any{"reason": "hello"}).Expect(t, 200, "")
		confJSONEq(t, r.Body, fmt.Sprintf(`{"room_id":%q}`, roomID))
		mbContentEq(t, "bob's join", mbMember(t, s, alice, roomID, bob.ID),
			`{"membership":"join","displayname":"Bob 🐝","avatar_url":"mxc://aula.test/bee","reason":"hello"}`)
		ev := mbEvents(t, s, alice, roomID)
		if last := ev[len(ev)-1]; last.key() != "m.room.member/"+bob.ID || last.Sender != bob.ID {
			t.Errorf("last event %s from %s", last.key(), last.Sender)
		}
		mbExpectRooms(t, s, bob, roomID)

		// Joining again with the same content changes nothing, by either
		// endpoint.
		n := mbCount(t, s, alice, roomID)
		mbPost(s, bob, roomID, "join", map[string]any{"reason": "hello"}).Expect(t, 200, "")
		s.Do("POST", "/_matrix/client/v3/join/"+confEsc(roomID), bob.Token, map[string]any{"reason": "hello"}).Expect(t, 200, "")
		if got := mbCount(t, s, alice, roomID); got != n {
			t.Errorf("re-join added %d events", got-n)
		}

		// POST /join/{roomIdOrAlias} by ID and by alias; its other body keys
		// go into the member event (as in Synapse and Complement).
		r = s.Do("POST", "/_matrix/client/v3/join/"+confEsc("#pub:aula.test"), carol.Token,
			map[string]any{"foo": "bar", "membership": "leave", "is_direct": true}).Expect(t, 200, "")
		confJSONEq(t, r.Body, fmt.Sprintf(`{"room_id":%q}`, roomID))
		mbContentEq(t, "carol's join", mbMember(t, s, alice, roomID, carol.ID), `{"membership":"join","displayname":"carol","foo":"bar"}`)
		// Joining with a new reason is a new join event.
		s.Do("POST", "/_matrix/client/r0/join/"+confEsc(roomID), carol.Token, map[string]any{"reason": "again"}).Expect(t, 200, "")
		mbContentEq(t, "carol's new join", mbMember(t, s, alice, roomID, carol.ID), `{"membership":"join","displayname":"carol","reason":"again"}`)
		mbExpectRooms(t, s, carol, roomID)

		// /rooms/{roomId}/join takes a room ID only.
		confExpectError(t, "alias in /rooms/{roomId}/join", mbPost(s, carol, "#pub:aula.test", "join", nil), 400, "M_INVALID_PARAM")
	})
}

func TestJoinErrors(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		private := s.CreateRoom(alice, map[string]any{"room_alias_name": "private"})

		// Invite-only without an invite: 403, by every path.
		confExpectError(t, "rooms/join", mbPost(s, bob, private, "join", nil), 403, "M_FORBIDDEN")
		confExpectError(t, "join by ID", s.Do("POST", "/_matrix/client/v3/join/"+confEsc(private), bob.Token, nil), 403, "M_FORBIDDEN")
		confExpectError(t, "join by alias", s.Do("POST", "/_matrix/client/v3/join/"+confEsc("#private:aula.test"), bob.Token, nil), 403, "M_FORBIDDEN")

		// Unknown rooms and aliases: 404; those of other servers: 403, since
		// this server does not federate.
		for _, target := range []string{"!nosuchroom:aula.test", "#nosuch:aula.test", "!" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
			confExpectError(t, "join "+target, s.Do("POST", "/_matrix/client/v3/join/"+confEsc(target), bob.Token, nil), 404, "M_NOT_FOUND")
		}
		for _, target := range []string{"!nosuchroom:elsewhere.example", "#private:elsewhere.example"} {
			confExpectError(t, "join "+target, s.Do("POST", "/_matrix/client/v3/join/"+confEsc(target), bob.Token, nil), 403, "M_FORBIDDEN")
		}
		confExpectError(t, "rooms/join unknown", mbPost(s, bob, "!nosuchroom:aula.test", "join", nil), 404, "M_NOT_FOUND")

		// Malformed room IDs and aliases: 400.
		for _, target := range []string{"nosuchroom", "!nocolon", "#noserver", "@alice:aula.test", "!x:bad server", "#:aula.test"} {
			confExpectError(t, "join "+target, s.Do("POST", "/_matrix/client/v3/join/"+confEsc(target), bob.Token, nil), 400, "M_INVALID_PARAM")
		}
		confExpectError(t, "rooms/join malformed", mbPost(s, bob, "nosuchroom", "join", nil), 400, "M_INVALID_PARAM")

		// Bodies.
		confExpectError(t, "not JSON", s.Do("POST", mbRoom(private, "/join"), bob.Token, "{"), 400, "M_NOT_JSON")
		confExpectError(t, "array", s.Do("POST", mbRoom(private, "/join"), bob.Token, "[]"), 400, "M_BAD_JSON")
		confExpectError(t, "reason not a string", mbPost(s, bob, private, "join", map[string]any{"reason": 1}), 400, "M_BAD_JSON")
		confExpectError(t, "join/ reason not a string", s.Do("POST", "/_matrix/client/v3/join/"+confEsc(private), bob.Token,
			map[string]any{"reason": []int{}}), 400, "M_BAD_JSON")
		confExpectError(t, "displayname not a string", s.Do("POST", "/_matrix/client/v3/join/"+confEsc(private), bob.Token,
			map[string]any{"displayname": 5}), 400, "M_BAD_JSON")
		confExpectError(t, "no token", s.Do("POST", mbRoom(private, "/join"), "", nil), 401, "M_MISSING_TOKEN")
		mbExpectRooms(t, s, bob)
	})
}

func TestInviteAndJoin(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		carol := s.Register("carol", "correct horse battery")
		dave := s.Register("dave", "correct horse battery")
		s.Do("PUT", "/_matrix/client/v3/profile/"+confEsc(bob.ID)+"/displayname", bob.Token,
			map[string]string{"displayname": "Robert"}).Expect(t, 200, "")
		roomID := s.CreateRoom(alice, map[string]any{"room_alias_name": "club"})

		// The invite carries the invitee's profile and the reason.
		confJSONEq(t, mbPost(s, alice, roomID, "invite", map[string]any{"user_id": bob.ID, "reason": "Welcome!"}).Expect(t, 200, "").Body, `{}`)
		mbContentEq(t, "invite", mbMember(t, s, alice, roomID, bob.ID), `{"membership":"invite","displayname":"Robert","reason":"Welcome!"}`)
		mbExpectRooms(t, s, bob)

		// Inviting again is 200 and changes nothing.
		n := mbCount(t, s, alice, roomID)
		mbPost(s, alice, roomID, "invite", map[string]any{"user_id": bob.ID}).Expect(t, 200, "")
		if got := mbCount(t, s, alice, roomID); got != n {
			t.Errorf("re-invite added %d events", got-n)
		}

		// The invitee joins by room ID; the join replaces the invite.
		mbPost(s, bob, roomID, "join", nil).Expect(t, 200, "")
		mbContentEq(t, "join", mbMember(t, s, alice, roomID, bob.ID), `{"membership":"join","displayname":"Robert"}`)
		mbExpectRooms(t, s, bob, roomID)

		// Invites work through /join/{alias} and /join/{roomId} too.
		mbPost(s, alice, roomID, "invite", map[string]any{"user_id": carol.ID}).Expect(t, 200, "")
		s.Do("POST", "/_matrix/client/v3/join/"+confEsc("#club:aula.test"), carol.Token, nil).Expect(t, 200, "")
		mbPost(s, bob, roomID, "invite", map[string]any{"user_id": dave.ID}).Expect(t, 200, "") // private_chat: invite level 0
		s.Do("POST", "/_matrix/client/v3/join/"+confEsc(roomID), dave.Token, nil).Expect(t, 200, "")
		for _, u := range []apitest.User{alice, bob, carol, dave} {
			mbExpectRooms(t, s, u, roomID)
			if m := mbMember(t, s, alice, roomID, u.ID)["membership"]; m != "join" {
				t.Errorf("%s: membership %v", u.ID, m)
			}
		}

		// A left user can be invited back and rejoin.
		mbPost(s, carol, roomID, "leave", nil).Expect(t, 200, "")
		confExpectError(t, "rejoin without invite", mbPost(s, carol, roomID, "join", nil), 403, "M_FORBIDDEN")
		mbPost(s, alice, roomID, "invite", map[string]any{"user_id": carol.ID}).Expect(t, 200, "")
		mbPost(s, carol, roomID, "join", nil).Expect(t, 200, "")
		mbExpectRooms(t, s, carol, roomID)
	})
}

func TestInviteErrors(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		carol := s.Register("carol", "correct horse battery")
		eve := s.Register("eve", "correct horse battery")
		// A public room where inviting needs level 50.
		roomID := s.CreateRoom(alice, map[string]any{"preset": "public_chat",
			"power_level_content_override": map[string]any{"invite": 50}})
		mbPost(s, bob, roomID, "join", nil).Expect(t, 200, "")

		n := mbCount(t, s, alice, roomID)
		for _, tc := range []struct {
			name    string
			by      apitest.User
			body    any
			status  int
			errcode string
		}{
			{"without invite power", bob, map[string]any{"user_id": carol.ID}, 403, "M_FORBIDDEN"},
			{"by a non-member", eve, map[string]any{"user_id": carol.ID}, 403, "M_FORBIDDEN"},
			{"a joined user", alice, map[string]any{"user_id": bob.ID}, 403, "M_FORBIDDEN"},
			{"oneself", alice, map[string]any{"user_id": alice.ID}, 403, "M_FORBIDDEN"},
			{"an unknown user", alice, map[string]any{"user_id": "@nobody:aula.test"}, 404, "M_NOT_FOUND"},
			{"a user of another server", alice, map[string]any{"user_id": "@carol:elsewhere.example"}, 403, "M_FORBIDDEN"},
			{"a malformed user ID", alice, map[string]any{"user_id": "carol"}, 400, "M_INVALID_PARAM"},
			{"no user_id", alice, map[string]any{"reason": "x"}, 400, "M_MISSING_PARAM"},
			{"an empty body", alice, nil, 400, "M_MISSING_PARAM"},
			{"user_id not a string", alice, map[string]any{"user_id": 5}, 400, "M_BAD_JSON"},
			{"reason not a string", alice, map[string]any{"user_id": carol.ID, "reason": 5}, 400, "M_BAD_JSON"},
			{"not JSON", alice, "nope", 400, "M_NOT_JSON"},
		} {
			confExpectError(t, tc.name, mbPost(s, tc.by, roomID, "invite", tc.body), tc.status, tc.errcode)
		}
		if got := mbCount(t, s, alice, roomID); got != n {
			t.Errorf("failed invites added %d events", got-n)
		}
		// A user without power cannot re-invite someone already invited
		// either.
		mbPost(s, alice, roomID, "invite", map[string]any{"user_id": carol.ID}).Expect(t, 200, "")
		confExpectError(t, "re-invite without power", mbPost(s, bob, roomID, "invite", map[string]any{"user_id": carol.ID}), 403, "M_FORBIDDEN")
		// A banned user cannot be invited.
		mbPost(s, alice, roomID, "ban", map[string]any{"user_id": eve.ID}).Expect(t, 200, "")
		confExpectError(t, "banned", mbPost(s, alice, roomID, "invite", map[string]any{"user_id": eve.ID}), 403, "M_FORBIDDEN")
		// Unknown and malformed rooms.
		confExpectError(t, "unknown room", mbPost(s, alice, "!nosuch:aula.test", "invite", map[string]any{"user_id": carol.ID}), 404, "M_NOT_FOUND")
		confExpectError(t, "malformed room", mbPost(s, alice, "nosuch", "invite", map[string]any{"user_id": carol.ID}), 400, "M_INVALID_PARAM")
	})
}

func TestLeave(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		carol := s.Register("carol", "correct horse battery")
		roomID := s.CreateRoom(alice, map[string]any{"preset": "public_chat"})
		other := s.CreateRoom(alice, map[string]any{"preset": "public_chat"})
		mbPost(s, bob, roomID, "join", nil).Expect(t, 200, "")
		mbPost(s, bob, other, "join", nil).Expect(t, 200, "")

		// Leaving, with a reason; the member event has no profile.
		confJSONEq(t, mbPost(s, bob, roomID, "leave", map[string]any{"reason": "bye"}).Expect(t, 200, "").Body, `{}`)
		mbContentEq(t, "leave", mbMember(t, s, alice, roomID, bob.ID), `{"membership":"leave","reason":"bye"}`)
		mbExpectRooms(t, s, bob, other)
		// Leaving again is 200 and changes nothing; a body is optional.
		n := mbCount(t, s, alice, roomID)
		mbPost(s, bob, roomID, "leave", nil).Expect(t, 200, "")
		mbPost(s, bob, roomID, "leave", map[string]any{"reason": "really"}).Expect(t, 200, "")
		if got := mbCount(t, s, alice, roomID); got != n {
			t.Errorf("second leave added %d events", got-n)
		}
		// A user who was never in the room cannot leave it.
		confExpectError(t, "never a member", mbPost(s, carol, roomID, "leave", nil), 403, "M_FORBIDDEN")

		// Rejecting an invite is leaving.
		private := s.CreateRoom(alice, nil)
		mbPost(s, alice, private, "invite", map[string]any{"user_id": carol.ID}).Expect(t, 200, "")
		mbPost(s, carol, private, "leave", map[string]any{"reason": "no thanks"}).Expect(t, 200, "")
		m := mbMember(t, s, alice, private, carol.ID)
		mbContentEq(t, "rejected invite", m, `{"membership":"leave","reason":"no thanks"}`)
		confExpectError(t, "join after rejecting", mbPost(s, carol, private, "join", nil), 403, "M_FORBIDDEN")
		mbExpectRooms(t, s, carol)

		// The last member can leave; then nobody can join an invite-only
		// room.
		mbPost(s, alice, private, "leave", nil).Expect(t, 200, "")
		mbExpectRooms(t, s, alice, roomID, other)

		// Errors.
		confExpectError(t, "unknown room", mbPost(s, bob, "!nosuch:aula.test", "leave", nil), 404, "M_NOT_FOUND")
		confExpectError(t, "malformed room", mbPost(s, bob, "nosuch", "leave", nil), 400, "M_INVALID_PARAM")
		confExpectError(t, "not JSON", mbPost(s, bob, other, "leave", "{"), 400, "M_NOT_JSON")
		mbExpectRooms(t, s, bob, other)
	})
}

func TestKick(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		carol := s.Register("carol", "correct horse battery")
		dave := s.Register("dave", "correct horse battery")
		eve := s.Register("eve", "correct horse battery")
		// Bob is a moderator (50, the kick level); the others have 0.
		roomID := s.CreateRoom(alice, map[string]any{"preset": "public_chat",
			"power_level_content_override": map[string]any{"users": map[string]int{alice.ID: 100, bob.ID: 50}}})
		for _, u := range []apitest.User{bob, carol, dave} {
			mbPost(s, u, roomID, "join", nil).Expect(t, 200, "")
		}

		// Without kick power: 403.
		confExpectError(t, "carol kicks dave", mbPost(s, carol, roomID, "kick", map[string]any{"user_id": dave.ID}), 403, "M_FORBIDDEN")
		// The kicker must outrank the target.
		confExpectError(t, "bob kicks alice", mbPost(s, bob, roomID, "kick", map[string]any{"user_id": alice.ID}), 403, "M_FORBIDDEN")
		// Kicking a user who is not in the room: 403.
		confExpectError(t, "kick a non-member", mbPost(s, alice, roomID, "kick", map[string]any{"user_id": eve.ID}), 403, "M_FORBIDDEN")
		// A non-member cannot kick.
		confExpectError(t, "eve kicks carol", mbPost(s, eve, roomID, "kick", map[string]any{"user_id": carol.ID}), 403, "M_FORBIDDEN")

		// A moderator kicks a user, with a reason.
		confJSONEq(t, mbPost(s, bob, roomID, "kick", map[string]any{"user_id": dave.ID, "reason": "spam"}).Expect(t, 200, "").Body, `{}`)
		mbContentEq(t, "kick", mbMember(t, s, alice, roomID, dave.ID), `{"membership":"leave","reason":"spam"}`)
		evs := mbEvents(t, s, alice, roomID)
		if last := evs[len(evs)-1]; last.Sender != bob.ID || *last.StateKey != dave.ID {
			t.Errorf("kick event from %s about %v", last.Sender, *last.StateKey)
		}
		mbExpectRooms(t, s, dave)
		// Kicking a user who has left (been kicked): 403. A kicked user may
		// rejoin a public room.
		confExpectError(t, "kick again", mbPost(s, bob, roomID, "kick", map[string]any{"user_id": dave.ID}), 403, "M_FORBIDDEN")
		mbPost(s, dave, roomID, "join", nil).Expect(t, 200, "")

		// The admin kicks the moderator.
		mbPost(s, alice, roomID, "kick", map[string]any{"user_id": bob.ID}).Expect(t, 200, "")
		mbContentEq(t, "kick without reason", mbMember(t, s, alice, roomID, bob.ID), `{"membership":"leave"}`)

		// Kicking an invited user withdraws the invite.
		mbPost(s, alice, roomID, "invite", map[string]any{"user_id": eve.ID}).Expect(t, 200, "")
		mbPost(s, alice, roomID, "kick", map[string]any{"user_id": eve.ID, "reason": "oops"}).Expect(t, 200, "")
		mbContentEq(t, "withdrawn invite", mbMember(t, s, alice, roomID, eve.ID), `{"membership":"leave","reason":"oops"}`)

		confExpectError(t, "no user_id", mbPost(s, alice, roomID, "kick", map[string]any{}), 400, "M_MISSING_PARAM")
		confExpectError(t, "malformed user_id", mbPost(s, alice, roomID, "kick", map[string]any{"user_id": "dave"}), 400, "M_INVALID_PARAM")
		confExpectError(t, "unknown room", mbPost(s, alice, "!nosuch:aula.test", "kick", map[string]any{"user_id": dave.ID}), 404, "M_NOT_FOUND")
		confExpectError(t, "malformed room", mbPost(s, alice, "nosuch", "kick", map[string]any{"user_id": dave.ID}), 400, "M_INVALID_PARAM")
	})
}

func TestBanAndUnban(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		carol := s.Register("carol", "correct horse battery")
		dave := s.Register("dave", "correct horse battery")
		roomID := s.CreateRoom(alice, map[string]any{"preset": "public_chat"})
		mbPost(s, bob, roomID, "join", nil).Expect(t, 200, "")
		mbPost(s, carol, roomID, "join", nil).Expect(t, 200, "")

		// Without ban power: 403; a non-member: 403.
		confExpectError(t, "carol bans bob", mbPost(s, carol, roomID, "ban", map[string]any{"user_id": bob.ID}), 403, "M_FORBIDDEN")
		confExpectError(t, "dave bans bob", mbPost(s, dave, roomID, "ban", map[string]any{"user_id": bob.ID}), 403, "M_FORBIDDEN")

		// Ban with a reason: the member leaves the room.
		confJSONEq(t, mbPost(s, alice, roomID, "ban", map[string]any{"user_id": bob.ID, "reason": "trolling"}).Expect(t, 200, "").Body, `{}`)
		mbContentEq(t, "ban", mbMember(t, s, alice, roomID, bob.ID), `{"membership":"ban","reason":"trolling"}`)
		mbExpectRooms(t, s, bob)
		// Banning again with the same reason changes nothing.
		n := mbCount(t, s, alice, roomID)
		mbPost(s, alice, roomID, "ban", map[string]any{"user_id": bob.ID, "reason": "trolling"}).Expect(t, 200, "")
		if got := mbCount(t, s, alice, roomID); got != n {
			t.Errorf("repeated ban added %d events", got-n)
		}

		// The banned user cannot join, leave, or be invited.
		confExpectError(t, "banned join", mbPost(s, bob, roomID, "join", nil), 403, "M_FORBIDDEN")
		confExpectError(t, "banned join/", s.Do("POST", "/_matrix/client/v3/join/"+confEsc(roomID), bob.Token, nil), 403, "M_FORBIDDEN")
		confExpectError(t, "banned leave", mbPost(s, bob, roomID, "leave", nil), 403, "M_FORBIDDEN")
		confExpectError(t, "banned invite", mbPost(s, alice, roomID, "invite", map[string]any{"user_id": bob.ID}), 403, "M_FORBIDDEN")

		// Users who never joined can be banned too.
		mbPost(s, alice, roomID, "ban", map[string]any{"user_id": dave.ID}).Expect(t, 200, "")
		confExpectError(t, "pre-banned join", mbPost(s, dave, roomID, "join", nil), 403, "M_FORBIDDEN")

		// Unban: needs power; then the user may join the public room again.
		confExpectError(t, "carol unbans", mbPost(s, carol, roomID, "unban", map[string]any{"user_id": bob.ID}), 403, "M_FORBIDDEN")
		confJSONEq(t, mbPost(s, alice, roomID, "unban", map[string]any{"user_id": bob.ID, "reason": "served"}).Expect(t, 200, "").Body, `{}`)
		mbContentEq(t, "unban", mbMember(t, s, alice, roomID, bob.ID), `{"membership":"leave","reason":"served"}`)
		mbPost(s, bob, roomID, "join", nil).Expect(t, 200, "")
		mbExpectRooms(t, s, bob, roomID)
		// Unbanning someone who is not banned: 403 M_BAD_STATE.
		confExpectError(t, "unban a member", mbPost(s, alice, roomID, "unban", map[string]any{"user_id": bob.ID}), 403, "M_BAD_STATE")
		confExpectError(t, "unban a stranger", mbPost(s, alice, roomID, "unban", map[string]any{"user_id": "@nobody:aula.test"}), 403, "M_BAD_STATE")

		// An unbanned user of an invite-only room needs an invite again.
		private := s.CreateRoom(alice, nil)
		mbPost(s, alice, private, "invite", map[string]any{"user_id": carol.ID}).Expect(t, 200, "")
		mbPost(s, carol, private, "join", nil).Expect(t, 200, "")
		mbPost(s, alice, private, "ban", map[string]any{"user_id": carol.ID}).Expect(t, 200, "")
		mbPost(s, alice, private, "unban", map[string]any{"user_id": carol.ID}).Expect(t, 200, "")
		confExpectError(t, "unbanned, not invited", mbPost(s, carol, private, "join", nil), 403, "M_FORBIDDEN")

		for _, action := range []string{"ban", "unban"} {
			confExpectError(t, action+" no user_id", mbPost(s, alice, roomID, action, map[string]any{}), 400, "M_MISSING_PARAM")
			confExpectError(t, action+" malformed user_id", mbPost(s, alice, roomID, action, map[string]any{"user_id": "@x"}), 400, "M_INVALID_PARAM")
			confExpectError(t, action+" unknown room", mbPost(s, alice, "!nosuch:aula.test", action, map[string]any{"user_id": bob.ID}), 404, "M_NOT_FOUND")
			confExpectError(t, action+" malformed room", mbPost(s, alice, "nosuch", action, map[string]any{"user_id": bob.ID}), 400, "M_INVALID_PARAM")
		}
	})
}

func TestForget(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		carol := s.Register("carol", "correct horse battery")
		roomID := s.CreateRoom(alice, map[string]any{"preset": "public_chat"})
		mbPost(s, bob, roomID, "join", nil).Expect(t, 200, "")

		// Members must leave first: 400 M_UNKNOWN (spec, Complement).
		confExpectError(t, "forget while joined", mbPost(s, bob, roomID, "forget", nil), 400, "M_UNKNOWN")
		mbExpectRooms(t, s, bob, roomID)

		mbPost(s, bob, roomID, "leave", nil).Expect(t, 200, "")
		confJSONEq(t, mbPost(s, bob, roomID, "forget", map[string]any{}).Expect(t, 200, "").Body, `{}`)
		mbPost(s, bob, roomID, "forget", nil).Expect(t, 200, "") // again: still fine
		mbExpectRooms(t, s, bob)
		// The history is gone for Bob (Complement: "Forgotten room
		// messages cannot be paginated").
		confExpectError(t, "messages after forget", s.Do("GET", mbRoom(roomID, "/messages?dir=b"), bob.Token, nil), 403, "M_FORBIDDEN")
		confExpectError(t, "state after forget", s.Do("GET", mbRoom(roomID, "/state"), bob.Token, nil), 403, "M_FORBIDDEN")

		// Rejoining brings the room back.
		mbPost(s, bob, roomID, "join", nil).Expect(t, 200, "")
		mbExpectRooms(t, s, bob, roomID)

		// Invitees must reject first; a rejected invite can be forgotten
		// (Complement: "Can forget room we weren't an actual member").
		private := s.CreateRoom(alice, nil)
		mbPost(s, alice, private, "invite", map[string]any{"user_id": carol.ID}).Expect(t, 200, "")
		confExpectError(t, "forget while invited", mbPost(s, carol, private, "forget", nil), 400, "M_UNKNOWN")
		mbPost(s, carol, private, "leave", nil).Expect(t, 200, "")
		mbPost(s, carol, private, "forget", nil).Expect(t, 200, "")
		// A room one was never in, and one banned from.
		mbPost(s, carol, roomID, "forget", nil).Expect(t, 200, "")
		mbPost(s, alice, roomID, "ban", map[string]any{"user_id": bob.ID}).Expect(t, 200, "")
		mbPost(s, bob, roomID, "forget", nil).Expect(t, 200, "")
		mbExpectRooms(t, s, bob)

		confExpectError(t, "unknown room", mbPost(s, bob, "!nosuch:aula.test", "forget", nil), 404, "M_NOT_FOUND")
		confExpectError(t, "malformed room", mbPost(s, bob, "nosuch", "forget", nil), 400, "M_INVALID_PARAM")
		confExpectError(t, "not JSON", mbPost(s, bob, roomID, "forget", "x"), 400, "M_NOT_JSON")
	})
}

// TestJoinedRooms checks that /joined_rooms lists exactly the rooms the
// user is joined to: not invites, not rooms left, kicked or banned from.
func TestJoinedRooms(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		mbExpectRooms(t, s, bob)
		var rooms []string
		for i := 0; i < 6; i++ {
			rooms = append(rooms, s.CreateRoom(alice, map[string]any{"preset": "public_chat"}))
		}
		invited := s.CreateRoom(alice, map[string]any{"invite": []string{bob.ID}})
		for _, r := range rooms {
			mbPost(s, bob, r, "join", nil).Expect(t, 200, "")
		}
		mbPost(s, bob, rooms[0], "leave", nil).Expect(t, 200, "")
		mbPost(s, alice, rooms[1], "kick", map[string]any{"user_id": bob.ID}).Expect(t, 200, "")
		mbPost(s, alice, rooms[2], "ban", map[string]any{"user_id": bob.ID}).Expect(t, 200, "")
		mbPost(s, bob, rooms[3], "leave", nil).Expect(t, 200, "")
		mbPost(s, bob, rooms[3], "join", nil).Expect(t, 200, "")
		mbExpectRooms(t, s, bob, rooms[3], rooms[4], rooms[5])
		mbExpectRooms(t, s, alice, append(slices.Clone(rooms), invited)...)
		confExpectError(t, "no token", s.Do("GET", "/_matrix/client/v3/joined_rooms", "", nil), 401, "M_MISSING_TOKEN")
	})
}
