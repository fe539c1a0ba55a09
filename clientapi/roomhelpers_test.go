package clientapi_test

import (
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// mkRoom creates a room as u with the given createRoom body.
func mkRoom(t *testing.T, s *apitest.Server, u apitest.User, body map[string]any) string {
	t.Helper()
	r := s.Do("POST", "/_matrix/client/v3/createRoom", u.Token, body).Expect(t, 200, "")
	return r.String("room_id")
}
