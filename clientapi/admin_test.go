package clientapi_test

import (
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

func TestAdminUser(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		root := s.RegisterAdmin("root", "pw-root-1234")
		alice := s.Register("alice", "pw-alice-1234")
		s.Do("PUT", "/_matrix/client/v3/profile/"+alice.ID+"/displayname", alice.Token, map[string]string{"displayname": "Alice A."}).Expect(t, 200, "")

		path := "/_synapse/admin/v2/users/" + alice.ID
		s.Do("GET", path, "", nil).Expect(t, 401, "M_MISSING_TOKEN")
		s.Do("GET", path, alice.Token, nil).Expect(t, 403, "M_FORBIDDEN")
		r := s.Do("GET", path, root.Token, nil).Expect(t, 200, "")
		if r.String("name") != alice.ID || r.String("displayname") != "Alice A." || r.JSON["admin"] != false || r.JSON["deactivated"] != false {
			t.Errorf("user = %s", r.Body)
		}
		if r.JSON["devices"] != float64(1) || r.JSON["creation_ts"].(float64) <= 0 {
			t.Errorf("devices/creation_ts = %s", r.Body)
		}
		s.Do("GET", "/_synapse/admin/v2/users/@nobody:"+apitest.ServerName, root.Token, nil).Expect(t, 404, "M_NOT_FOUND")
	})
}
