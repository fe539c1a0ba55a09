package clientapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/aula-chat/aula/clientapi"
	"github.com/aula-chat/aula/internal/apitest"
)

// socketServer serves s's admin socket handler (over TCP here: the
// identity comes from the handler, not from the transport).
func socketServer(t *testing.T, s *apitest.Server) *apitest.Server {
	t.Helper()
	ts := httptest.NewServer(s.App.AdminSocketHandler)
	t.Cleanup(ts.Close)
	return &apitest.Server{URL: ts.URL, Config: s.Config, App: s.App, T: t}
}

// TestAdminSocketOperator: on the admin socket, admin routes run without
// a token as the local operator (the notices account, or the user named
// in Aula-Operator-User), and nothing but admin routes is served.
func TestAdminSocketOperator(t *testing.T) {
	t.Parallel()
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "password-alice")
		bob := s.Register("bob", "password-bob")
		sock := socketServer(t, s)

		// A group created as alice (aula group create --creator).
		req := map[string]any{"name": "Seminar X", "members": []string{bob.ID}}
		roomID := sock.Do("POST", "/_aula/admin/v1/groups", "", req).Expect(t, http.StatusOK, "").String("room_id")
		if roomID == "" {
			t.Fatal("no room_id")
		}
		// Without Aula-Operator-User the notices account created it:
		// alice is not in it, bob is.
		if slices.Contains(joinedRooms(t, s, alice), roomID) || !slices.Contains(joinedRooms(t, s, bob), roomID) {
			t.Errorf("group %s: alice %v, bob %v", roomID, joinedRooms(t, s, alice), joinedRooms(t, s, bob))
		}
		body, _ := json.Marshal(req)
		hreq, _ := http.NewRequest("POST", sock.URL+"/_aula/admin/v1/groups", bytes.NewReader(body))
		hreq.Header.Set(clientapi.OperatorUserHeader, alice.ID)
		resp, err := http.DefaultClient.Do(hreq)
		if err != nil {
			t.Fatal(err)
		}
		var created struct {
			RoomID string `json:"room_id"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&created)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !slices.Contains(joinedRooms(t, s, alice), created.RoomID) {
			t.Fatalf("group as alice: %d %q; alice's rooms %v", resp.StatusCode, created.RoomID, joinedRooms(t, s, alice))
		}
		pl := s.Do("GET", "/_matrix/client/v3/rooms/"+created.RoomID+"/state/m.room.power_levels/", alice.Token, nil).Expect(t, http.StatusOK, "")
		if users, _ := pl.JSON["users"].(map[string]any); users[alice.ID] != float64(100) {
			t.Errorf("alice is not the group's moderator: %s", pl.Body)
		}

		// Server notices and the other admin routes.
		sock.Do("POST", "/_synapse/admin/v1/send_server_notice", "", map[string]any{
			"user_id": alice.ID, "content": map[string]string{"msgtype": "m.text", "body": "hi"},
		}).Expect(t, http.StatusOK, "")
		if got := sock.Do("GET", "/_synapse/admin/v2/users/"+bob.ID, "", nil).Expect(t, http.StatusOK, "").String("name"); got != bob.ID {
			t.Errorf("admin user lookup: name %q", got)
		}

		// Only admin routes; a token does not change that.
		sock.Do("GET", "/_matrix/client/v3/account/whoami", alice.Token, nil).Expect(t, http.StatusNotFound, "M_UNRECOGNIZED")
		sock.Do("GET", "/_matrix/client/v3/joined_rooms", "", nil).Expect(t, http.StatusNotFound, "M_UNRECOGNIZED")
		sock.Do("GET", "/_synapse/admin/../../_matrix/client/v3/account/whoami", "", nil).Expect(t, http.StatusNotFound, "M_UNRECOGNIZED")

		// The operator can only act as a user of this server.
		hreq, _ = http.NewRequest("POST", sock.URL+"/_aula/admin/v1/groups", bytes.NewReader(body))
		hreq.Header.Set(clientapi.OperatorUserHeader, "@mallory:evil.example")
		resp, err = http.DefaultClient.Do(hreq)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("remote operator user: %d, want 400", resp.StatusCode)
		}
	})
}

// TestAdminSocketIdentityNotOnTCP: the normal listener never grants the
// operator identity, whatever the request carries.
func TestAdminSocketIdentityNotOnTCP(t *testing.T) {
	t.Parallel()
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "password-alice")
		send := func(token string) *http.Response {
			body, _ := json.Marshal(map[string]any{"name": "Sneaky", "members": []string{}})
			req, _ := http.NewRequest("POST", s.URL+"/_aula/admin/v1/groups", bytes.NewReader(body))
			req.Header.Set(clientapi.OperatorUserHeader, "@administrator:"+apitest.ServerName)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		}
		if r := send(""); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("no token, operator header: %d, want 401", r.StatusCode)
		}
		if r := send(alice.Token); r.StatusCode != http.StatusForbidden {
			t.Errorf("non-admin token, operator header: %d, want 403", r.StatusCode)
		}
		s.Do("POST", "/_synapse/admin/v1/send_server_notice", "", map[string]any{
			"user_id": alice.ID, "content": map[string]string{"msgtype": "m.text", "body": "hi"},
		}).Expect(t, http.StatusUnauthorized, "M_MISSING_TOKEN")
		s.Do("GET", "/_synapse/admin/v2/users/"+alice.ID, alice.Token, nil).Expect(t, http.StatusForbidden, "M_FORBIDDEN")
	})
}
