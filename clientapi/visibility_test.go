package clientapi_test

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// rmTimeline renders the events u can page through as short strings:
// message bodies, and "<user> <membership>" for member events of the
// users named in names.
func rmTimeline(t *testing.T, s *apitest.Server, u apitest.User, roomID string, names map[string]string) []string {
	t.Helper()
	out := []string{}
	for _, e := range rmAll(t, s, u, roomID, "f", 3) {
		switch {
		case e.Type == "m.room.message":
			out = append(out, e.body())
		case e.Type == "m.room.member" && e.StateKey != nil && names[*e.StateKey] != "":
			out = append(out, fmt.Sprintf("%s %v", names[*e.StateKey], e.Content["membership"]))
		}
	}
	return out
}

// TestHistoryVisibility runs the same story under each history visibility
// and checks what the latecomer Bob, and Carol who never joins, may see
// through /messages (both directions) and /event:
//
//	before   sent before Bob is invited
//	invited  sent while Bob is invited
//	joined   sent while Bob is in the room
//	after    sent after Bob left
func TestHistoryVisibility(t *testing.T) {
	for _, tc := range []struct {
		visibility string
		bob        []string // Bob's timeline after leaving
		rejoined   []string // Bob's timeline after joining again
		carol      bool     // Carol (never a member) reads everything
	}{
		{
			visibility: "joined",
			bob:        []string{"bob join", "joined", "bob leave"},
			rejoined:   []string{"bob join", "joined", "bob leave", "bob join"},
		},
		{
			visibility: "invited",
			bob:        []string{"bob invite", "invited", "bob join", "joined", "bob leave"},
			rejoined:   []string{"bob invite", "invited", "bob join", "joined", "bob leave", "bob join"},
		},
		{
			visibility: "shared",
			bob:        []string{"before", "bob invite", "invited", "bob join", "joined", "bob leave"},
			rejoined:   []string{"before", "bob invite", "invited", "bob join", "joined", "bob leave", "after", "bob join"},
		},
		{
			visibility: "world_readable",
			bob:        []string{"before", "bob invite", "invited", "bob join", "joined", "bob leave", "after"},
			rejoined:   []string{"before", "bob invite", "invited", "bob join", "joined", "bob leave", "after", "bob join"},
			carol:      true,
		},
	} {
		t.Run(tc.visibility, func(t *testing.T) {
			apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
				alice := s.Register("alice", "correct horse battery")
				bob := s.Register("bob", "correct horse battery")
				carol := s.Register("carol", "correct horse battery")
				names := map[string]string{bob.ID: "bob"}
				room := s.CreateRoom(alice, map[string]any{"initial_state": []map[string]any{
					{"type": "m.room.history_visibility", "state_key": "", "content": map[string]string{"history_visibility": tc.visibility}},
				}})
				ids := map[string]string{}
				ids["before"] = s.SendText(alice, room, "before")
				s.Invite(alice, room, bob)
				ids["invited"] = s.SendText(alice, room, "invited")
				s.Join(bob, room)
				ids["joined"] = s.SendText(alice, room, "joined")
				// While Bob is in the room he sees what he will see after
				// leaving, minus the leave.
				rmEqual(t, "bob while joined", rmTimeline(t, s, bob, room, names), tc.bob[:len(tc.bob)-1-boolInt(tc.visibility == "world_readable")])
				s.Leave(bob, room)
				ids["after"] = s.SendText(alice, room, "after")

				rmEqual(t, "bob after leaving", rmTimeline(t, s, bob, room, names), tc.bob)
				// dir=b shows the same events, newest first.
				var back []string
				for _, e := range rmAll(t, s, bob, room, "b", 2) {
					if e.Type == "m.room.message" {
						back = append(back, e.body())
					}
				}
				rmEqual(t, "bob dir=b", back, rmReversed(rmBodies(rmAll(t, s, bob, room, "f", 100))))
				// /event agrees with /messages: 404 for what Bob may not see.
				visible := map[string]bool{}
				for _, b := range tc.bob {
					visible[b] = true
				}
				for body, id := range ids {
					r := s.Do("GET", rmRoom(room, "event", id), bob.Token, nil)
					if visible[body] {
						r.Expect(t, 200, "")
					} else {
						confExpectError(t, "bob GET /event "+body, r, 404, "M_NOT_FOUND")
					}
				}
				// Alice sees everything.
				rmEqual(t, "alice", rmBodies(rmAll(t, s, alice, room, "f", 100)), []string{"before", "invited", "joined", "after"})

				// Carol, never a member: only world_readable rooms.
				if tc.carol {
					rmEqual(t, "carol", rmBodies(rmAll(t, s, carol, room, "b", 100)), []string{"after", "joined", "invited", "before"})
					rmGetEvent(t, s, carol, room, ids["before"])
				} else {
					confExpectError(t, "carol /messages", s.Do("GET", rmRoom(room, "messages")+"?dir=b", carol.Token, nil), 403, "M_FORBIDDEN")
					for body, id := range ids {
						confExpectError(t, "carol GET /event "+body, s.Do("GET", rmRoom(room, "event", id), carol.Token, nil), 404, "M_NOT_FOUND")
					}
				}

				// Bob comes back.
				rmInviteJoin(t, s, alice, room, bob)
				names[bob.ID] = "bob"
				got := rmTimeline(t, s, bob, room, names)
				// The second invite shows in invited/shared/world_readable.
				want := tc.rejoined
				if tc.visibility != "joined" {
					want = append(want[:len(want)-1:len(want)-1], "bob invite", "bob join")
				}
				rmEqual(t, "bob after rejoining", got, want)
			})
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Visibility is judged by the setting when each event was sent, not by the
// current one.
func TestHistoryVisibilityChanges(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		carol := s.Register("carol", "correct horse battery")
		room := s.CreateRoom(alice, nil) // shared
		setVis := func(v string) string {
			return rmPutState(t, s, alice, room, "m.room.history_visibility", "", map[string]string{"history_visibility": v})
		}
		s.SendText(alice, room, "shared-1")
		toJoined := setVis("joined")
		s.SendText(alice, room, "joined-1")
		toWorld := setVis("world_readable")
		s.SendText(alice, room, "world-1")
		toInvited := setVis("invited")
		s.SendText(alice, room, "invited-1")
		rmInviteJoin(t, s, alice, room, bob)
		s.SendText(alice, room, "member-1")

		// Bob joined last: he sees shared-1 (shared, and he joined later),
		// not joined-1, world-1 (world_readable), not invited-1, and
		// everything since he was invited.
		rmEqual(t, "bob", rmBodies(rmAll(t, s, bob, room, "f", 4)), []string{"shared-1", "world-1", "member-1"})
		// Carol, never a member, may not page (the room is not
		// world_readable now) but may fetch world_readable events; the
		// change to world_readable is visible to her (after it, the room
		// was world_readable), and so is the change away from it.
		confExpectError(t, "carol /messages", s.Do("GET", rmRoom(room, "messages")+"?dir=b", carol.Token, nil), 403, "M_FORBIDDEN")
		confExpectError(t, "carol /event joined change", s.Do("GET", rmRoom(room, "event", toJoined), carol.Token, nil), 404, "M_NOT_FOUND")
		rmGetEvent(t, s, carol, room, toWorld)
		rmGetEvent(t, s, carol, room, toInvited)
		// Bob sees every visibility change: the one to joined because the
		// room was shared before it and he joined later.
		var changes []string
		for _, e := range rmAll(t, s, bob, room, "f", 100) {
			if e.Type == "m.room.history_visibility" {
				changes = append(changes, e.EventID)
			}
		}
		if len(changes) < 4 || changes[len(changes)-3] != toJoined {
			t.Errorf("bob sees visibility changes %v, want ... %s %s %s", changes, toJoined, toWorld, toInvited)
		}
		// The room becomes world_readable: Carol may page, and sees
		// exactly the events that were world_readable when sent.
		setVis("world_readable")
		s.SendText(alice, room, "world-2")
		rmEqual(t, "carol", rmBodies(rmAll(t, s, carol, room, "b", 2)), []string{"world-2", "world-1"})
		// Her /members and /state are the current ones.
		if got := rmMembers(t, s, carol, room, url.Values{"membership": {"join"}}); len(got) != 2 {
			t.Errorf("carol /members: %v", got)
		}
	})
}

// Users see their own membership changes, and leaving ends what they see;
// forgetting the room ends it entirely.
func TestHistoryVisibilityLeaveAndForget(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		room := s.CreateRoom(alice, map[string]any{"initial_state": []map[string]any{
			{"type": "m.room.history_visibility", "state_key": "", "content": map[string]string{"history_visibility": "joined"}},
		}})
		rmInviteJoin(t, s, alice, room, bob)
		in := s.SendText(alice, room, "in")
		s.Do("POST", rmRoom(room, "kick"), alice.Token, map[string]string{"user_id": bob.ID, "reason": "bye"}).Expect(t, 200, "")
		out := s.SendText(alice, room, "out")
		names := map[string]string{bob.ID: "bob"}
		rmEqual(t, "kicked bob", rmTimeline(t, s, bob, room, names), []string{"bob join", "in", "bob leave"})
		rmGetEvent(t, s, bob, room, in)
		confExpectError(t, "after kick", s.Do("GET", rmRoom(room, "event", out), bob.Token, nil), 404, "M_NOT_FOUND")
		// Paging from the newest event starts at the last one Bob may see.
		p := rmMessages(t, s, bob, room, url.Values{"dir": {"b"}, "limit": {"1"}})
		if len(p.Chunk) != 1 || p.Chunk[0].Type != "m.room.member" || p.Chunk[0].Content["membership"] != "leave" {
			t.Fatalf("first page for kicked bob: %+v", p.Chunk)
		}
		if p.Chunk[0].Unsigned["membership"] != "leave" {
			t.Errorf("unsigned.membership of the kick = %v", p.Chunk[0].Unsigned["membership"])
		}
		// Forgetting: no more history, no more events.
		s.Do("POST", rmRoom(room, "forget"), bob.Token, map[string]any{}).Expect(t, 200, "")
		confExpectError(t, "forgot /messages", s.Do("GET", rmRoom(room, "messages")+"?dir=b", bob.Token, nil), 403, "M_FORBIDDEN")
		confExpectError(t, "forgot /event", s.Do("GET", rmRoom(room, "event", in), bob.Token, nil), 404, "M_NOT_FOUND")
		// Unknown events are 404 too, in a room one can see.
		confExpectError(t, "unknown event", s.Do("GET", rmRoom(room, "event", "$nope"), alice.Token, nil), 404, "M_NOT_FOUND")
		// An event of another room is not found through this one.
		other := s.CreateRoom(alice, nil)
		elsewhere := s.SendText(alice, other, "elsewhere")
		confExpectError(t, "event of another room", s.Do("GET", rmRoom(room, "event", elsewhere), alice.Token, nil), 404, "M_NOT_FOUND")
	})
}
