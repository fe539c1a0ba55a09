package clientapi_test

import (
	"net/url"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

func TestOpenIDTokens(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")
		path := "/_matrix/client/v3/user/" + url.PathEscape(alice.ID) + "/openid/request_token"
		s.Do("POST", path, "", map[string]any{}).Expect(t, 401, "M_MISSING_TOKEN")
		s.Do("POST", path, bob.Token, map[string]any{}).Expect(t, 403, "M_FORBIDDEN")
		r := s.Do("POST", path, alice.Token, map[string]any{}).Expect(t, 200, "")
		tok := r.String("access_token")
		if tok == "" || r.String("token_type") != "Bearer" || r.String("matrix_server_name") != apitest.ServerName || r.JSON["expires_in"] != float64(3600) {
			t.Fatalf("request_token: %s", r.Body)
		}

		info := "/_matrix/federation/v1/openid/userinfo?access_token="
		u := s.Do("GET", info+url.QueryEscape(tok), "", nil).Expect(t, 200, "")
		if len(u.JSON) != 1 || u.String("sub") != alice.ID {
			t.Errorf("userinfo: %s, want {\"sub\": %q}", u.Body, alice.ID)
		}
		s.Do("GET", info+url.QueryEscape(tok+"x"), "", nil).Expect(t, 401, "M_UNKNOWN_TOKEN")
		// An access token is not an OpenID token.
		s.Do("GET", info+url.QueryEscape(alice.Token), "", nil).Expect(t, 401, "M_UNKNOWN_TOKEN")
		s.Do("GET", "/_matrix/federation/v1/openid/userinfo", "", nil).Expect(t, 401, "M_MISSING_TOKEN")
		// Every token is new and works on its own.
		tok2 := s.Do("POST", path, alice.Token, nil).Expect(t, 200, "").String("access_token")
		if tok2 == tok {
			t.Error("the same OpenID token was issued twice")
		}
		s.Do("GET", info+url.QueryEscape(tok2), "", nil).Expect(t, 200, "")

		// That is the only federation endpoint.
		for _, p := range []string{"/_matrix/federation/v1/version", "/_matrix/federation/v1/openid/userinfo/x", "/_matrix/federation/v2/openid/userinfo", "/_matrix/federation/v1/query/profile"} {
			s.Do("GET", p, "", nil).Expect(t, 404, "M_UNRECOGNIZED")
		}
	})
}
