package clientapi_test

import (
	"bytes"
	"net/url"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// expectGone fails if any read path bob has still shows text.
func expectGone(t *testing.T, s *apitest.Server, bob apitest.User, roomID, eventID, text, since string) {
	t.Helper()
	ev := s.Do("GET", privacyPath(roomID, "event", eventID), bob.Token, nil).Expect(t, 200, "")
	if content, _ := ev.JSON["content"].(map[string]any); len(content) != 0 {
		t.Errorf("/event content = %v, want {}", content)
	}
	unsigned, _ := ev.JSON["unsigned"].(map[string]any)
	if because, _ := unsigned["redacted_because"].(map[string]any); because["type"] != "m.room.redaction" {
		t.Errorf("/event unsigned.redacted_because = %v", unsigned["redacted_because"])
	}
	for what, path := range map[string]string{
		"/messages":        privacyPath(roomID, "messages") + "?dir=b&limit=100",
		"/context":         privacyPath(roomID, "context", eventID) + "?limit=10",
		"initial /sync":    "/_matrix/client/v3/sync",
		"incremental sync": "/_matrix/client/v3/sync?since=" + url.QueryEscape(since),
	} {
		r := s.Do("GET", path, bob.Token, nil).Expect(t, 200, "")
		if bytes.Contains(r.Body, []byte(text)) {
			t.Errorf("%s still shows %q: %s", what, text, r.Body)
		}
	}
	r := s.Do("POST", "/_matrix/client/v3/search", bob.Token, map[string]any{
		"search_categories": map[string]any{"room_events": map[string]any{"search_term": text}},
	}).Expect(t, 200, "")
	if bytes.Contains(r.Body, []byte(text)) || bytes.Contains(r.Body, []byte(eventID)) {
		t.Errorf("/search still finds %q: %s", text, r.Body)
	}
}

// TestAdminDeactivateErase: deactivation with erase removes the content of
// every event the user sent and their profile, for everyone; the user
// cannot log in; without erase, history stays.
func TestAdminDeactivateErase(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		admin := s.RegisterAdmin("admin", "pw-admin-123")
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-12345")
		carol := s.Register("carol", "pw-carol-123")
		s.Do("PUT", "/_matrix/client/v3/profile/"+url.PathEscape(alice.ID)+"/displayname", alice.Token,
			map[string]string{"displayname": "Alice Secretname"}).Expect(t, 200, "")
		roomID := s.CreateRoom(bob, map[string]any{"preset": "private_chat"})
		for _, u := range []apitest.User{alice, carol} {
			s.Invite(bob, roomID, u)
			s.Join(u, roomID)
		}
		// A room alice created and named: its state belongs to the room.
		aliceRoom := s.CreateRoom(alice, map[string]any{"name": "Study group", "invite": []string{bob.ID}})
		s.Join(bob, aliceRoom)
		inOwnRoom := s.SendText(alice, aliceRoom, "notes in alice's own room")
		since := s.Do("GET", "/_matrix/client/v3/sync", bob.Token, nil).Expect(t, 200, "").String("next_batch")
		msg := s.SendText(alice, roomID, "confidential words of alice")
		kept := s.SendText(carol, roomID, "carol keeps her history")
		s.SendText(bob, roomID, "reply from bob")

		path := "/_synapse/admin/v1/deactivate/" + url.PathEscape(alice.ID)
		s.Do("POST", path, bob.Token, map[string]any{"erase": true}).Expect(t, 403, "M_FORBIDDEN")
		s.Do("POST", "/_synapse/admin/v1/deactivate/"+url.PathEscape("@nobody:aula.test"), admin.Token, map[string]any{"erase": true}).
			Expect(t, 404, "M_NOT_FOUND")
		r := s.Do("POST", path, admin.Token, map[string]any{"erase": true}).Expect(t, 200, "")
		if r.String("id_server_unbind_result") != "success" {
			t.Errorf("deactivate answer = %s", r.Body)
		}

		expectGone(t, s, bob, roomID, msg, "confidential words", since)
		expectGone(t, s, bob, roomID, msg, "Secretname", since)
		expectGone(t, s, bob, aliceRoom, inOwnRoom, "notes in alice", since)
		name := s.Do("GET", privacyPath(aliceRoom, "state", "m.room.name", ""), bob.Token, nil).Expect(t, 200, "")
		if name.String("name") != "Study group" {
			t.Errorf("name of alice's room after erasure = %s", name.Body)
		}
		s.SendText(bob, aliceRoom, "bob carries on")
		// Her membership is over and carries no profile.
		m := s.Do("GET", privacyPath(roomID, "state", "m.room.member", alice.ID), bob.Token, nil).Expect(t, 200, "")
		if m.String("membership") != "leave" || m.JSON["displayname"] != nil {
			t.Errorf("alice's member event = %s", m.Body)
		}
		// The account is gone.
		s.Do("GET", "/_matrix/client/v3/account/whoami", alice.Token, nil).Expect(t, 401, "M_UNKNOWN_TOKEN")
		login := s.Do("POST", "/_matrix/client/v3/login", "", map[string]any{
			"type": "m.login.password", "identifier": map[string]string{"type": "m.id.user", "user": "alice"}, "password": alice.Password,
		})
		if login.Status == 200 {
			t.Fatalf("erased account logged in: %s", login.Body)
		}
		u := s.Do("GET", "/_synapse/admin/v2/users/"+url.PathEscape(alice.ID), admin.Token, nil).Expect(t, 200, "")
		if u.JSON["deactivated"] != true || u.JSON["erased"] != true || u.JSON["displayname"] != nil {
			t.Errorf("admin view of alice = %s", u.Body)
		}

		// Carol's message, and carol's history after a plain deactivation, stay.
		s.Do("POST", "/_synapse/admin/v1/deactivate/"+url.PathEscape(carol.ID), admin.Token, nil).Expect(t, 200, "")
		ev := s.Do("GET", privacyPath(roomID, "event", kept), bob.Token, nil).Expect(t, 200, "")
		if content, _ := ev.JSON["content"].(map[string]any); content["body"] != "carol keeps her history" {
			t.Errorf("carol's message after deactivation without erase = %s", ev.Body)
		}
		u = s.Do("GET", "/_synapse/admin/v2/users/"+url.PathEscape(carol.ID), admin.Token, nil).Expect(t, 200, "")
		if u.JSON["deactivated"] != true || u.JSON["erased"] != false {
			t.Errorf("admin view of carol = %s", u.Body)
		}
		// The room keeps working for bob.
		s.SendText(bob, roomID, "still here")
		s.Do("GET", privacyPath(roomID, "messages")+"?dir=b&limit=100", bob.Token, nil).Expect(t, 200, "")
	})
}

// TestDeactivateAccountErase: POST /account/deactivate with erase: true
// (after user-interactive auth) erases like the admin API.
func TestDeactivateAccountErase(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		dave := s.Register("dave", "pw-dave-1234")
		bob := s.Register("bob", "pw-bob-12345")
		roomID := s.CreateRoom(bob, nil)
		s.Invite(bob, roomID, dave)
		s.Join(dave, roomID)
		since := s.Do("GET", "/_matrix/client/v3/sync", bob.Token, nil).Expect(t, 200, "").String("next_batch")
		msg := s.SendText(dave, roomID, "dave wants this forgotten")

		r := s.Do("POST", "/_matrix/client/v3/account/deactivate", dave.Token, map[string]any{"erase": true}).Expect(t, 401, "")
		s.Do("POST", "/_matrix/client/v3/account/deactivate", dave.Token, map[string]any{
			"erase": true, "auth": dave.PasswordAuth(r.String("session")),
		}).Expect(t, 200, "")
		expectGone(t, s, bob, roomID, msg, "forgotten", since)
		m := s.Do("GET", privacyPath(roomID, "state", "m.room.member", dave.ID), bob.Token, nil).Expect(t, 200, "")
		if m.String("membership") != "leave" {
			t.Errorf("dave's membership after deactivation = %s", m.Body)
		}
	})
}
