package clientapi_test

import (
	"net/url"
	"slices"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// After an upgrade, users find their tags, their room push rule and the
// room's place in m.direct on the new room when they join it.
func TestUpgradeCarriesUserState(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		bob := s.Register("bob", "pw")
		old := s.CreateRoom(alice, map[string]any{"preset": "public_chat", "invite": []string{bob.ID}, "is_direct": true})
		s.Do("POST", "/_matrix/client/v3/join/"+url.PathEscape(old), bob.Token, map[string]any{}).Expect(t, 200, "")

		user := "/_matrix/client/v3/user/" + url.PathEscape(bob.ID)
		s.Do("PUT", user+"/rooms/"+url.PathEscape(old)+"/tags/m.favourite", bob.Token, map[string]any{"order": 0.5}).Expect(t, 200, "")
		s.Do("PUT", user+"/account_data/m.direct", bob.Token, map[string][]string{alice.ID: {old}}).Expect(t, 200, "")
		s.Do("PUT", "/_matrix/client/v3/pushrules/global/room/"+url.PathEscape(old), bob.Token, map[string]any{"actions": []any{}}).Expect(t, 200, "")

		r := s.Do("POST", "/_matrix/client/v3/rooms/"+url.PathEscape(old)+"/upgrade", alice.Token, map[string]string{"new_version": "11"}).Expect(t, 200, "")
		nr := r.String("replacement_room")
		s.Do("POST", "/_matrix/client/v3/join/"+url.PathEscape(nr), bob.Token, map[string]any{}).Expect(t, 200, "")

		tags := s.Do("GET", user+"/rooms/"+url.PathEscape(nr)+"/tags", bob.Token, nil).Expect(t, 200, "")
		if fav, _ := tags.JSON["tags"].(map[string]any)["m.favourite"].(map[string]any); fav["order"] != 0.5 {
			t.Errorf("tags of the new room = %s", tags.Body)
		}
		direct := s.Do("GET", user+"/account_data/m.direct", bob.Token, nil).Expect(t, 200, "")
		var rooms []string
		for _, x := range direct.JSON[alice.ID].([]any) {
			rooms = append(rooms, x.(string))
		}
		if !slices.Equal(rooms, []string{old, nr}) {
			t.Errorf("m.direct = %s", direct.Body)
		}
		s.Do("GET", "/_matrix/client/v3/pushrules/global/room/"+url.PathEscape(nr), bob.Token, nil).Expect(t, 200, "")
		// Alice, who upgraded, gets nothing she did not have.
		s.Do("GET", "/_matrix/client/v3/pushrules/global/room/"+url.PathEscape(nr), alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")
	})
}
