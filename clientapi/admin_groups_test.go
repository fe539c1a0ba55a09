package clientapi_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// joinedRooms returns u's joined rooms.
func joinedRooms(t *testing.T, s *apitest.Server, u apitest.User) []string {
	t.Helper()
	r := s.Do("GET", "/_matrix/client/v3/joined_rooms", u.Token, nil).Expect(t, 200, "")
	var out []string
	for _, id := range r.JSON["joined_rooms"].([]any) {
		out = append(out, id.(string))
	}
	return out
}

// TestAdminCreateGroup: an admin creates an invite-only group whose
// members are joined at once; members can leave; bad members are named.
func TestAdminCreateGroup(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		admin := s.RegisterAdmin("admin", "pw-admin-123")
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-12345")
		carol := s.Register("carol", "pw-carol-123")

		// Only admins.
		s.Do("POST", "/_aula/admin/v1/groups", alice.Token, map[string]any{"name": "X", "members": []string{bob.ID}}).
			Expect(t, 403, "M_FORBIDDEN")
		// A name is required.
		s.Do("POST", "/_aula/admin/v1/groups", admin.Token, map[string]any{"members": []string{bob.ID}}).
			Expect(t, 400, "M_MISSING_PARAM")
		// Unknown, remote and malformed members are named, and nothing is created.
		r := s.Do("POST", "/_aula/admin/v1/groups", admin.Token, map[string]any{
			"name": "X", "members": []string{alice.ID, "@nobody:aula.test", "@x:elsewhere.example", "carol"},
		}).Expect(t, 400, "M_INVALID_PARAM")
		for _, id := range []string{"@nobody:aula.test", "@x:elsewhere.example", "carol"} {
			if !strings.Contains(r.String("error"), id) {
				t.Errorf("error %q does not name %s", r.String("error"), id)
			}
		}
		if strings.Contains(r.String("error"), alice.ID) {
			t.Errorf("error %q names the valid member %s", r.String("error"), alice.ID)
		}
		if rooms := joinedRooms(t, s, alice); len(rooms) != 0 {
			t.Fatalf("alice is in %v after a refused group", rooms)
		}

		r = s.Do("POST", "/_aula/admin/v1/groups", admin.Token, map[string]any{
			"name": "Seminar X", "topic": "Thursdays", "members": []string{alice.ID, bob.ID, alice.ID},
		}).Expect(t, 200, "")
		roomID := r.String("room_id")
		if !strings.HasPrefix(roomID, "!") {
			t.Fatalf("room_id in %s", r.Body)
		}
		for _, u := range []apitest.User{admin, alice, bob} {
			if !slices.Contains(joinedRooms(t, s, u), roomID) {
				t.Errorf("%s is not joined to the group", u.ID)
			}
		}
		if slices.Contains(joinedRooms(t, s, carol), roomID) {
			t.Error("carol was joined without being listed")
		}
		jr := s.Do("GET", privacyPath(roomID, "state", "m.room.join_rules", ""), alice.Token, nil).Expect(t, 200, "")
		if jr.String("join_rule") != "invite" {
			t.Errorf("join_rule = %s", jr.Body)
		}
		name := s.Do("GET", privacyPath(roomID, "state", "m.room.name", ""), alice.Token, nil).Expect(t, 200, "")
		if name.String("name") != "Seminar X" {
			t.Errorf("name = %s", name.Body)
		}
		topic := s.Do("GET", privacyPath(roomID, "state", "m.room.topic", ""), alice.Token, nil).Expect(t, 200, "")
		if topic.String("topic") != "Thursdays" {
			t.Errorf("topic = %s", topic.Body)
		}
		// Not open to others; members talk and can leave.
		s.Do("POST", privacyPath(roomID, "join"), carol.Token, map[string]any{}).Expect(t, 403, "M_FORBIDDEN")
		s.SendText(alice, roomID, "hello seminar")
		s.Leave(bob, roomID)
		if slices.Contains(joinedRooms(t, s, bob), roomID) {
			t.Error("bob is still joined after leaving")
		}

		// A space.
		r = s.Do("POST", "/_aula/admin/v1/groups", admin.Token, map[string]any{
			"name": "Faculty", "members": []string{carol.ID}, "space": true,
		}).Expect(t, 200, "")
		spaceID := r.String("room_id")
		create := s.Do("GET", privacyPath(spaceID, "state", "m.room.create", ""), carol.Token, nil).Expect(t, 200, "")
		if create.String("type") != "m.space" {
			t.Errorf("space create content = %s", create.Body)
		}
	})
}
