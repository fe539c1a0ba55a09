package clientapi_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// Helpers of the room upgrade tests carry an "up" prefix; they build on
// the "mb" helpers of the createRoom tests.

// upUpgrade upgrades a room as u and returns the replacement room, checking
// that the answer is exactly {"replacement_room": …}.
func upUpgrade(t *testing.T, s *apitest.Server, u apitest.User, roomID string, body any) string {
	t.Helper()
	r := s.Do("POST", mbRoom(roomID, "/upgrade"), u.Token, body).Expect(t, 200, "")
	id := r.String("replacement_room")
	if len(r.JSON) != 1 || !strings.HasPrefix(id, "!") || id == roomID {
		t.Fatalf("upgrade answer %s", r.Body)
	}
	return id
}

// upEq fails unless got and want are the same JSON value.
func upEq(t *testing.T, what string, got, want any) {
	t.Helper()
	norm := func(v any) any {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var out any
		_ = json.Unmarshal(raw, &out)
		return out
	}
	if g, w := norm(got), norm(want); !reflect.DeepEqual(g, w) {
		gj, _ := json.Marshal(g)
		wj, _ := json.Marshal(w)
		t.Errorf("%s:\n  got  %s\n  want %s", what, gj, wj)
	}
}

// upWith returns a copy of a content with some keys replaced.
func upWith(content map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(content))
	for k, v := range content {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// upSend sends a message as u and returns the status and errcode.
func upSend(t *testing.T, s *apitest.Server, u apitest.User, roomID, txn string) *apitest.Response {
	t.Helper()
	return s.Do("PUT", mbRoom(roomID, "/send/m.room.message/"+txn), u.Token, map[string]any{"msgtype": "m.text", "body": "hello"})
}

// upInviteJoin has inviter invite u into the room and u join it.
func upInviteJoin(t *testing.T, s *apitest.Server, inviter, u apitest.User, roomID string) {
	t.Helper()
	s.Do("POST", mbRoom(roomID, "/invite"), inviter.Token, map[string]any{"user_id": u.ID}).Expect(t, 200, "")
	s.Do("POST", mbRoom(roomID, "/join"), u.Token, map[string]any{}).Expect(t, 200, "")
}

// TestUpgradeRoom upgrades a version 10 room with every kind of state the
// upgrade copies, and checks both rooms afterwards: the new room's events in
// order with their exact content, the old room's closing events, the
// aliases, and who may do what in each room.
func TestUpgradeRoom(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		carol := s.Register("carol", "correct horse battery")
		old := s.CreateRoom(alice, map[string]any{
			"room_version": "10", "preset": "public_chat", "name": "Old name", "topic": "Old topic",
			"room_alias_name":              "upgrade-me",
			"power_level_content_override": map[string]any{"users": map[string]int{alice.ID: 100, bob.ID: 10}},
			"initial_state": []map[string]any{
				{"type": "m.room.avatar", "content": map[string]any{"url": "mxc://aula.test/avatar"}},
				{"type": "m.room.encryption", "content": map[string]any{"algorithm": "m.megolm.v1.aes-sha2"}},
				{"type": "m.room.server_acl", "content": map[string]any{"allow": []string{"*"}, "deny": []string{"evil.example"}, "allow_ip_literals": false}},
				{"type": "m.room.history_visibility", "content": map[string]any{"history_visibility": "joined"}},
				{"type": "m.room.pinned_events", "content": map[string]any{"pinned": []string{}}},
				{"type": "org.example.custom", "content": map[string]any{"a": 1}},
			},
		})
		s.Do("PUT", "/_matrix/client/v3/directory/room/"+confEsc("#second:aula.test"), alice.Token, map[string]any{"room_id": old}).Expect(t, 200, "")
		s.Do("PUT", mbRoom(old, "/state/m.room.canonical_alias/"), alice.Token, map[string]any{
			"alias": "#upgrade-me:aula.test", "alt_aliases": []string{"#second:aula.test"}, "org.example.extra": true,
		}).Expect(t, 200, "")
		s.Do("POST", mbRoom(old, "/join"), bob.Token, map[string]any{}).Expect(t, 200, "")
		s.Do("POST", mbRoom(old, "/join"), carol.Token, map[string]any{}).Expect(t, 200, "")
		s.Do("POST", mbRoom(old, "/ban"), alice.Token, map[string]any{"user_id": carol.ID, "reason": "spam"}).Expect(t, 200, "")
		upSend(t, s, bob, old, "before").Expect(t, 200, "")

		copied := []string{"m.room.join_rules", "m.room.history_visibility", "m.room.guest_access", "m.room.server_acl",
			"m.room.encryption", "m.room.name", "m.room.avatar", "m.room.topic"}
		before := map[string]map[string]any{}
		for _, typ := range append(copied, "m.room.power_levels") {
			before[typ] = mbState(t, s, alice, old, typ, "")
		}
		ban := mbMember(t, s, alice, old, carol.ID)

		newID := upUpgrade(t, s, alice, old, map[string]any{"new_version": "11"})
		if !strings.HasSuffix(newID, ":"+apitest.ServerName) {
			t.Errorf("version 11 room ID %q", newID)
		}

		// The new room: create, join, power levels, the copied state in
		// a fixed order, the ban, the canonical alias. Not copied: the
		// pinned events, custom state, memberships other than bans.
		evs := mbEvents(t, s, alice, newID)
		want := []string{"m.room.create", "m.room.member/" + alice.ID, "m.room.power_levels"}
		want = append(want, copied...)
		want = append(want, "m.room.member/"+carol.ID, "m.room.canonical_alias")
		if !slices.Equal(mbKeys(evs), want) {
			t.Fatalf("new room events\n  %v\nwant\n  %v", mbKeys(evs), want)
		}
		for _, e := range evs {
			if e.Sender != alice.ID || e.RoomID != newID {
				t.Errorf("%s: sender %s room %s", e.key(), e.Sender, e.RoomID)
			}
		}
		oldEvs := mbEvents(t, s, alice, old)
		n := len(oldEvs)
		if n < 3 {
			t.Fatalf("old room events %v", mbKeys(oldEvs))
		}
		tombstone := oldEvs[n-1]
		upEq(t, "create", evs[0].Content, map[string]any{"room_version": "11", "m.federate": false,
			"predecessor": map[string]any{"room_id": old, "event_id": tombstone.EventID}})
		upEq(t, "join", evs[1].Content, map[string]any{"membership": "join", "displayname": "alice"})
		upEq(t, "power levels", evs[2].Content, before["m.room.power_levels"])
		for i, typ := range copied {
			upEq(t, typ, evs[3+i].Content, before[typ])
		}
		upEq(t, "ban", evs[11].Content, ban)
		upEq(t, "ban content", ban, map[string]any{"membership": "ban", "reason": "spam"})
		upEq(t, "new canonical alias", evs[12].Content, map[string]any{"alias": "#upgrade-me:aula.test", "alt_aliases": []string{"#second:aula.test"}})

		// The old room ends with the canonical alias without the moved
		// aliases (other keys kept), power levels that leave speaking
		// and inviting to moderators, and the tombstone.
		if got := mbKeys(oldEvs[n-3:]); !slices.Equal(got, []string{"m.room.canonical_alias", "m.room.power_levels", "m.room.tombstone"}) {
			t.Fatalf("old room ends with %v", got)
		}
		upEq(t, "old canonical alias", oldEvs[n-3].Content, map[string]any{"org.example.extra": true})
		upEq(t, "old power levels", oldEvs[n-2].Content, upWith(before["m.room.power_levels"], "events_default", 50, "invite", 50))
		upEq(t, "tombstone", tombstone.Content, map[string]any{"body": "This room has been replaced", "replacement_room": newID})
		if tombstone.Sender != alice.ID {
			t.Errorf("tombstone sender %s", tombstone.Sender)
		}

		// The aliases lead to the new room.
		for _, a := range []string{"#upgrade-me:aula.test", "#second:aula.test"} {
			r := s.Do("GET", "/_matrix/client/v3/directory/room/"+confEsc(a), bob.Token, nil).Expect(t, 200, "")
			if r.String("room_id") != newID {
				t.Errorf("%s points to %s, want %s", a, r.String("room_id"), newID)
			}
		}
		r := s.Do("GET", mbRoom(newID, "/aliases"), alice.Token, nil).Expect(t, 200, "")
		upEq(t, "new room aliases", r.JSON, map[string]any{"aliases": []string{"#second:aula.test", "#upgrade-me:aula.test"}})
		r = s.Do("GET", mbRoom(old, "/aliases"), alice.Token, nil).Expect(t, 200, "")
		upEq(t, "old room aliases", r.JSON, map[string]any{"aliases": []string{}})

		// Old room: only moderators speak. New room: the public join rule
		// lets bob in, the ban keeps carol out, everyone speaks.
		upSend(t, s, bob, old, "after").Expect(t, 403, "M_FORBIDDEN")
		upSend(t, s, alice, old, "after").Expect(t, 200, "")
		upSend(t, s, alice, newID, "1").Expect(t, 200, "")
		s.Do("POST", mbRoom(newID, "/join"), bob.Token, map[string]any{}).Expect(t, 200, "")
		upSend(t, s, bob, newID, "1").Expect(t, 200, "")
		s.Do("POST", mbRoom(newID, "/join"), carol.Token, map[string]any{}).Expect(t, 403, "M_FORBIDDEN")

		// A repeated request answers with the same room and changes
		// nothing; another version is a new upgrade.
		if again := upUpgrade(t, s, alice, old, map[string]any{"new_version": "11"}); again != newID {
			t.Errorf("repeated upgrade gave %s, want %s", again, newID)
		}
		if got := mbEvents(t, s, alice, old); len(got) != n+1 { // + alice's message
			t.Errorf("repeated upgrade added events to the old room: %v", mbKeys(got[n:]))
		}
		v12 := upUpgrade(t, s, alice, old, map[string]any{"new_version": "12"})
		if v12 == newID || strings.Contains(v12, ":") {
			t.Errorf("upgrade to 12 gave %s", v12)
		}
		upEq(t, "tombstone after the second upgrade", mbState(t, s, alice, old, "m.room.tombstone", ""),
			map[string]any{"body": "This room has been replaced", "replacement_room": v12})
	})
}

// TestUpgradeRoomErrors checks who may upgrade and the request's shape.
func TestUpgradeRoomErrors(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		dave := s.Register("dave", "correct horse battery")
		old := s.CreateRoom(alice, map[string]any{})
		upInviteJoin(t, s, alice, bob, old)
		path := mbRoom(old, "/upgrade")
		v11 := map[string]any{"new_version": "11"}

		for _, tc := range []struct {
			name    string
			user    apitest.User
			path    string
			body    any
			status  int
			errcode string
		}{
			{"member without power", bob, path, v11, 403, "M_FORBIDDEN"},
			{"not a member", dave, path, v11, 403, "M_FORBIDDEN"},
			{"unknown room", alice, mbRoom("!nope:aula.test", "/upgrade"), v11, 403, "M_FORBIDDEN"},
			{"not a room ID", alice, mbRoom("nope", "/upgrade"), v11, 400, "M_INVALID_PARAM"},
			{"unknown version", alice, path, map[string]any{"new_version": "13"}, 400, "M_UNSUPPORTED_ROOM_VERSION"},
			{"unsupported old version", alice, path, map[string]any{"new_version": "9"}, 400, "M_UNSUPPORTED_ROOM_VERSION"},
			{"empty version", alice, path, map[string]any{"new_version": ""}, 400, "M_UNSUPPORTED_ROOM_VERSION"},
			{"version check first", dave, path, map[string]any{"new_version": "1"}, 400, "M_UNSUPPORTED_ROOM_VERSION"},
			{"no version", alice, path, map[string]any{}, 400, "M_MISSING_PARAM"},
			{"version not a string", alice, path, map[string]any{"new_version": 11}, 400, "M_BAD_JSON"},
			{"not JSON", alice, path, "nope", 400, "M_NOT_JSON"},
			{"not an object", alice, path, "[]", 400, "M_BAD_JSON"},
			{"additional creator not a user ID", alice, path, map[string]any{"new_version": "12", "additional_creators": []string{"bob"}}, 400, "M_BAD_JSON"},
			{"additional creators not a list", alice, path, map[string]any{"new_version": "12", "additional_creators": bob.ID}, 400, "M_BAD_JSON"},
			{"additional creators of numbers", alice, path, map[string]any{"new_version": "12", "additional_creators": []int{1}}, 400, "M_BAD_JSON"},
			{"no token", apitest.User{}, path, v11, 401, "M_MISSING_TOKEN"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s.Do("POST", tc.path, tc.user.Token, tc.body).Expect(t, tc.status, tc.errcode)
			})
		}
		s.Do("GET", path, alice.Token, nil).Expect(t, 405, "M_UNRECOGNIZED")

		// Nothing happened: no tombstone, no new room.
		s.Do("GET", mbRoom(old, "/state/m.room.tombstone/"), alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		mbExpectRooms(t, s, alice, old)

		// additional_creators means nothing to version 11 and is ignored;
		// r0 serves the endpoint too.
		r := s.Do("POST", "/_matrix/client/r0/rooms/"+confEsc(old)+"/upgrade", alice.Token,
			map[string]any{"new_version": "11", "additional_creators": []string{"bob"}}).Expect(t, 200, "")
		newID := r.String("replacement_room")
		upEq(t, "create", mbEvents(t, s, alice, newID)[0].Content,
			map[string]any{"room_version": "11", "m.federate": false, "predecessor": map[string]any{
				"room_id": old, "event_id": upStateEventID(t, s, alice, old, "m.room.tombstone")}})
		mbExpectRooms(t, s, alice, old, newID)
	})
}

// upStateEventID returns the ID of the current state event of a type.
func upStateEventID(t *testing.T, s *apitest.Server, u apitest.User, roomID, typ string) string {
	t.Helper()
	r := s.Do("GET", mbRoom(roomID, "/state/"+confEsc(typ)+"/?format=event"), u.Token, nil).Expect(t, 200, "")
	return r.String("event_id")
}

// TestUpgradeRoomJoinRules checks that the copied join rules hold in the
// new room: invite-only stays invite-only, a restricted rule keeps its
// allow list.
func TestUpgradeRoomJoinRules(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		t.Run("invite", func(t *testing.T) {
			old := s.CreateRoom(alice, map[string]any{"preset": "private_chat"})
			upInviteJoin(t, s, alice, bob, old)
			newID := upUpgrade(t, s, alice, old, map[string]any{"new_version": "11"})
			upEq(t, "join rules", mbState(t, s, alice, newID, "m.room.join_rules", ""), map[string]any{"join_rule": "invite"})
			s.Do("POST", mbRoom(newID, "/join"), bob.Token, map[string]any{}).Expect(t, 403, "M_FORBIDDEN")
			upInviteJoin(t, s, alice, bob, newID)
			upSend(t, s, bob, newID, "1").Expect(t, 200, "")
		})
		t.Run("restricted", func(t *testing.T) {
			space := s.CreateRoom(alice, map[string]any{"creation_content": map[string]any{"type": "m.space"}})
			old := s.CreateRoom(alice, map[string]any{})
			rule := map[string]any{"join_rule": "restricted", "allow": []map[string]any{{"type": "m.room_membership", "room_id": space}}}
			s.Do("PUT", mbRoom(old, "/state/m.room.join_rules/"), alice.Token, rule).Expect(t, 200, "")
			newID := upUpgrade(t, s, alice, old, map[string]any{"new_version": "11"})
			upEq(t, "join rules", mbState(t, s, alice, newID, "m.room.join_rules", ""), rule)
		})
	})
}

// TestUpgradeRoomToV12 upgrades a version 11 room to 12, where creators have
// unlimited power and must not be listed in the power levels, and back.
func TestUpgradeRoomToV12(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		carol := s.Register("carol", "correct horse battery")
		old := s.CreateRoom(alice, map[string]any{"room_version": "11",
			"power_level_content_override": map[string]any{"users": map[string]int{alice.ID: 100, bob.ID: 100, carol.ID: 50}}})
		upInviteJoin(t, s, alice, bob, old)
		upInviteJoin(t, s, alice, carol, old)
		oldPL := mbState(t, s, alice, old, "m.room.power_levels", "")

		newID := upUpgrade(t, s, alice, old, map[string]any{"new_version": "12", "additional_creators": []string{bob.ID, bob.ID, alice.ID}})
		if strings.Contains(newID, ":") || len(newID) != 44 {
			t.Errorf("version 12 room ID %q", newID)
		}
		evs := mbEvents(t, s, alice, newID)
		want := []string{"m.room.create", "m.room.member/" + alice.ID, "m.room.power_levels",
			"m.room.join_rules", "m.room.history_visibility", "m.room.guest_access"}
		if !slices.Equal(mbKeys(evs), want) {
			t.Fatalf("new room events %v, want %v", mbKeys(evs), want)
		}
		// No event_id in the predecessor: the room ID is the create
		// event's hash, and the tombstone names the room.
		upEq(t, "create", evs[0].Content, map[string]any{"room_version": "12", "m.federate": false,
			"predecessor": map[string]any{"room_id": old}, "additional_creators": []string{bob.ID}})
		upEq(t, "power levels", evs[2].Content, upWith(oldPL, "users", map[string]int{carol.ID: 50}))
		upEq(t, "tombstone", mbState(t, s, alice, old, "m.room.tombstone", ""),
			map[string]any{"body": "This room has been replaced", "replacement_room": newID})

		// Creators do anything; carol keeps her moderator level.
		upSend(t, s, alice, newID, "1").Expect(t, 200, "")
		upInviteJoin(t, s, alice, bob, newID)
		upInviteJoin(t, s, alice, carol, newID)
		s.Do("PUT", mbRoom(newID, "/state/m.room.power_levels/"), bob.Token,
			upWith(evs[2].Content, "users", map[string]int{carol.ID: 60})).Expect(t, 200, "")
		s.Do("PUT", mbRoom(newID, "/state/m.room.name/"), carol.Token, map[string]any{"name": "by carol"}).Expect(t, 200, "")
		s.Do("PUT", mbRoom(newID, "/state/m.room.power_levels/"), carol.Token, evs[2].Content).Expect(t, 403, "M_FORBIDDEN")

		// Back to 11, by bob: the creators, who had unlimited power,
		// get the highest level in use there.
		back := upUpgrade(t, s, bob, newID, map[string]any{"new_version": "11", "additional_creators": []string{carol.ID}})
		evs = mbEvents(t, s, bob, back)
		upEq(t, "create back", evs[0].Content, map[string]any{"room_version": "11", "m.federate": false,
			"predecessor": map[string]any{"room_id": newID, "event_id": upStateEventID(t, s, bob, newID, "m.room.tombstone")}})
		upEq(t, "power levels back", mbState(t, s, bob, back, "m.room.power_levels", ""),
			upWith(oldPL, "users", map[string]int{alice.ID: 100, bob.ID: 100, carol.ID: 60}))
		upSend(t, s, bob, back, "1").Expect(t, 200, "")
	})
}

// TestUpgradeRoomRaisesUpgrader checks that an upgrader with less power than
// the copied state needs is raised for the copy, and the copied power levels
// are put back as the new room's last event; and that the old room's power
// levels stay when the upgrader may not change them.
func TestUpgradeRoomRaisesUpgrader(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		dave := s.Register("dave", "correct horse battery")
		old := s.CreateRoom(alice, map[string]any{"room_version": "10",
			"power_level_content_override": map[string]any{
				"users":  map[string]int{alice.ID: 100, bob.ID: 50, dave.ID: 80},
				"events": map[string]int{"m.room.tombstone": 50, "m.room.encryption": 60, "m.room.power_levels": 70},
			},
			"initial_state": []map[string]any{{"type": "m.room.encryption", "content": map[string]any{"algorithm": "m.megolm.v1.aes-sha2"}}},
		})
		upInviteJoin(t, s, alice, bob, old)
		s.Do("POST", mbRoom(old, "/ban"), alice.Token, map[string]any{"user_id": dave.ID}).Expect(t, 200, "")
		oldPL := mbState(t, s, alice, old, "m.room.power_levels", "")

		newID := upUpgrade(t, s, bob, old, map[string]any{"new_version": "11"})
		evs := mbEvents(t, s, bob, newID)
		want := []string{"m.room.create", "m.room.member/" + bob.ID, "m.room.power_levels", "m.room.join_rules",
			"m.room.history_visibility", "m.room.guest_access", "m.room.encryption", "m.room.member/" + dave.ID, "m.room.power_levels"}
		if !slices.Equal(mbKeys(evs), want) {
			t.Fatalf("new room events\n  %v\nwant\n  %v", mbKeys(evs), want)
		}
		// Banning dave (80) needs 81.
		upEq(t, "raised power levels", evs[2].Content, upWith(oldPL, "users", map[string]int{alice.ID: 100, bob.ID: 81, dave.ID: 80}))
		upEq(t, "final power levels", evs[8].Content, oldPL)
		upEq(t, "ban", evs[7].Content, map[string]any{"membership": "ban"})

		// Bob may not change the old room's power levels (70): they stay,
		// and the tombstone is the last event.
		upEq(t, "old power levels", mbState(t, s, alice, old, "m.room.power_levels", ""), oldPL)
		oldEvs := mbEvents(t, s, alice, old)
		if last := oldEvs[len(oldEvs)-1]; last.key() != "m.room.tombstone" || last.Sender != bob.ID {
			t.Errorf("old room ends with %s from %s", last.key(), last.Sender)
		}

		upSend(t, s, bob, newID, "1").Expect(t, 200, "")
		s.Do("POST", mbRoom(newID, "/invite"), bob.Token, map[string]any{"user_id": dave.ID}).Expect(t, 403, "M_FORBIDDEN")
		upInviteJoin(t, s, bob, alice, newID)
		s.Do("PUT", mbRoom(newID, "/state/m.room.name/"), alice.Token, map[string]any{"name": "by alice"}).Expect(t, 200, "")
	})
}

// TestUpgradeSpace checks that a space stays a space and keeps its
// children (not the removed ones).
func TestUpgradeSpace(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		child := s.CreateRoom(alice, map[string]any{})
		old := s.CreateRoom(alice, map[string]any{
			"creation_content": map[string]any{"type": "m.space"},
			"initial_state": []map[string]any{
				{"type": "m.space.child", "state_key": child, "content": map[string]any{"via": []string{"aula.test"}, "suggested": true}},
				{"type": "m.space.child", "state_key": "!removed:aula.test", "content": map[string]any{}},
			},
		})
		newID := upUpgrade(t, s, alice, old, map[string]any{"new_version": "11"})
		evs := mbEvents(t, s, alice, newID)
		upEq(t, "create", evs[0].Content, map[string]any{"room_version": "11", "m.federate": false, "type": "m.space",
			"predecessor": map[string]any{"room_id": old, "event_id": upStateEventID(t, s, alice, old, "m.room.tombstone")}})
		want := []string{"m.room.create", "m.room.member/" + alice.ID, "m.room.power_levels", "m.room.join_rules",
			"m.room.history_visibility", "m.room.guest_access", "m.space.child/" + child}
		if !slices.Equal(mbKeys(evs), want) {
			t.Fatalf("new room events %v, want %v", mbKeys(evs), want)
		}
		upEq(t, "child", evs[6].Content, map[string]any{"via": []string{"aula.test"}, "suggested": true})
	})
}
