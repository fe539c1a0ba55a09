package clientapi_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/apitest"
)

// TestConsentAtRegistration: with consent.require_at_registration,
// POST /register offers m.login.terms with the policy, and an account made
// through it has agreed already.
func TestConsentAtRegistration(t *testing.T) {
	withTerms := func(c *config.Config) {
		withConsent(t)(c)
		c.Consent.RequireAtRegistration = true
	}
	apitest.ForEachServer(t, withTerms, func(t *testing.T, s *apitest.Server) {
		body := func(auth map[string]string) map[string]any {
			b := map[string]any{"username": "dora", "password": "pw-dora-123"}
			if auth != nil {
				b["auth"] = auth
			}
			return b
		}
		r := s.Do("POST", "/_matrix/client/v3/register", "", body(nil)).Expect(t, 401, "")
		var uia struct {
			Session string `json:"session"`
			Flows   []struct {
				Stages []string `json:"stages"`
			} `json:"flows"`
			Params map[string]struct {
				Policies map[string]struct {
					Version string `json:"version"`
					En      struct {
						Name string `json:"name"`
						URL  string `json:"url"`
					} `json:"en"`
				} `json:"policies"`
			} `json:"params"`
		}
		if err := json.Unmarshal(r.Body, &uia); err != nil {
			t.Fatal(err)
		}
		if len(uia.Flows) != 1 || strings.Join(uia.Flows[0].Stages, ",") != "m.login.dummy,m.login.terms" {
			t.Fatalf("flows = %s", r.Body)
		}
		policy := uia.Params["m.login.terms"].Policies["privacy_policy"]
		if policy.Version != s.Config.Consent.Version || policy.En.Name == "" || policy.En.URL != s.Config.PublicBaseURL+"_matrix/consent" {
			t.Fatalf("terms params = %s", r.Body)
		}

		// The dummy stage alone does not create the account.
		r = s.Do("POST", "/_matrix/client/v3/register", "", body(map[string]string{"type": "m.login.dummy", "session": uia.Session})).Expect(t, 401, "")
		if c, _ := r.JSON["completed"].([]any); len(c) != 1 || c[0] != "m.login.dummy" {
			t.Fatalf("completed = %s", r.Body)
		}
		r = s.Do("POST", "/_matrix/client/v3/register", "", body(map[string]string{"type": "m.login.terms", "session": uia.Session})).Expect(t, 200, "")
		token := r.String("access_token")

		// The agreement is on record: no consent error, no notice needed.
		s.Do("POST", "/_matrix/client/v3/createRoom", token, map[string]any{}).Expect(t, 200, "")
		ok, err := s.App.DB.HasConsented(context.Background(), r.String("user_id"), s.Config.Consent.Version)
		if err != nil || !ok {
			t.Errorf("consent on record = %v, %v; want true", ok, err)
		}
	})
}

// TestNoticesUserNotInvitable: the server-notices account cannot be pulled
// into other rooms, as in Synapse.
func TestNoticesUserNotInvitable(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		system := "@" + s.Config.ServerNotices.Localpart + ":" + apitest.ServerName
		s.Do("POST", "/_matrix/client/v3/createRoom", alice.Token, map[string]any{"invite": []string{system}}).Expect(t, 403, "M_FORBIDDEN")
		room := s.CreateRoom(alice, map[string]any{})
		s.Do("POST", "/_matrix/client/v3/rooms/"+room+"/invite", alice.Token, map[string]any{"user_id": system}).Expect(t, 403, "M_FORBIDDEN")
	})
}
