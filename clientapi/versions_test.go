package clientapi_test

import (
	"regexp"
	"testing"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/apitest"
)

func TestVersions(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		r := s.Do("GET", "/_matrix/client/versions", "", nil).Expect(t, 200, "")
		versions, ok := r.JSON["versions"].([]any)
		if !ok || len(versions) == 0 {
			t.Fatalf("versions missing or empty: %s", r.Body)
		}
		form := regexp.MustCompile(`^(v\d+\.\d+|r\d+\.\d+\.\d+)$`)
		seen := map[string]bool{}
		for _, v := range versions {
			str, ok := v.(string)
			if !ok || !form.MatchString(str) {
				t.Errorf("version %v is not vX.Y", v)
			}
			seen[str] = true
		}
		// matrix-js-sdk refuses servers that list none of v1.1 to v1.13.
		if !seen["v1.1"] {
			t.Errorf("v1.1 not listed: %v", versions)
		}
		// Clients switch to authenticated media at v1.11 (media.go); without
		// it they would use the legacy downloads, which refuse media.
		if !seen["v1.11"] {
			t.Errorf("v1.11 not listed: clients would not use authenticated media")
		}
		features, ok := r.JSON["unstable_features"].(map[string]any)
		if !ok {
			t.Fatalf("unstable_features is not an object: %s", r.Body)
		}
		for k, v := range features {
			if _, ok := v.(bool); !ok {
				t.Errorf("unstable_features[%q] = %v, want a boolean", k, v)
			}
		}
	})
}

func TestWellKnownClient(t *testing.T) {
	apitest.ForEachServer(t, func(c *config.Config) {
		c.PublicBaseURL = "https://matrix.uni.example/"
	}, func(t *testing.T, s *apitest.Server) {
		r := s.Do("GET", "/.well-known/matrix/client", "", nil).Expect(t, 200, "")
		confJSONEq(t, r.Body, `{"m.homeserver":{"base_url":"https://matrix.uni.example/"}}`)
		confExpectCORS(t, "well-known", r)
		confExpectJSONType(t, "well-known", r)
		// A token, even an invalid one, changes nothing.
		confJSONEq(t, s.Do("GET", "/.well-known/matrix/client", "bogus", nil).Expect(t, 200, "").Body, string(r.Body))
		// The base_url is usable as is: clients append /_matrix/client/versions.
		if s.Config.PublicBaseURL != "https://matrix.uni.example/" {
			t.Errorf("public_baseurl changed to %q", s.Config.PublicBaseURL)
		}
	})
}

func TestCapabilities(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		confExpectError(t, "no token", s.Do("GET", "/_matrix/client/v3/capabilities", "", nil), 401, "M_MISSING_TOKEN")
		confExpectError(t, "bad token", s.Do("GET", "/_matrix/client/v3/capabilities", "bogus", nil), 401, "M_UNKNOWN_TOKEN")

		alice := s.Register("alice", "correct horse battery")
		r := s.Do("GET", "/_matrix/client/v3/capabilities", alice.Token, nil).Expect(t, 200, "")
		confJSONEq(t, r.Body, `{"capabilities":{
			"m.change_password": {"enabled": true},
			"m.room_versions": {"default": "11", "available": {"10": "stable", "11": "stable", "12": "stable"}},
			"m.set_displayname": {"enabled": true},
			"m.set_avatar_url": {"enabled": true},
			"m.3pid_changes": {"enabled": false},
			"m.get_login_token": {"enabled": false}
		}}`)
		// Same under r0.
		confJSONEq(t, s.Do("GET", "/_matrix/client/r0/capabilities", alice.Token, nil).Expect(t, 200, "").Body, string(r.Body))

		// m.set_displayname and m.set_avatar_url say what the profile
		// endpoints do.
		s.Do("PUT", "/_matrix/client/v3/profile/"+confEsc(alice.ID)+"/displayname", alice.Token,
			map[string]string{"displayname": "Alice"}).Expect(t, 200, "")
		s.Do("PUT", "/_matrix/client/v3/profile/"+confEsc(alice.ID)+"/avatar_url", alice.Token,
			map[string]string{"avatar_url": "mxc://aula.test/abc"}).Expect(t, 200, "")
	})
}

func TestCapabilitiesFollowConfig(t *testing.T) {
	apitest.ForEachServer(t, func(c *config.Config) {
		c.PasswordLogin.Enabled = false
		c.Rooms.DefaultVersion = "12"
	}, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		r := s.Do("GET", "/_matrix/client/v3/capabilities", alice.Token, nil).Expect(t, 200, "")
		caps := r.JSON["capabilities"].(map[string]any)
		confJSONEq(t, confMarshal(t, caps["m.change_password"]), `{"enabled": false}`)
		confJSONEq(t, confMarshal(t, caps["m.room_versions"]),
			`{"default": "12", "available": {"10": "stable", "11": "stable", "12": "stable"}}`)
	})
}

func TestThirdPartyProtocolsAndThreePIDs(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		for _, p := range []string{"/_matrix/client/v3/thirdparty/protocols", "/_matrix/client/v3/account/3pid"} {
			confExpectError(t, p, s.Do("GET", p, "", nil), 401, "M_MISSING_TOKEN")
		}
		alice := s.Register("alice", "correct horse battery")
		r := s.Do("GET", "/_matrix/client/v3/thirdparty/protocols", alice.Token, nil).Expect(t, 200, "")
		confJSONEq(t, r.Body, `{}`)
		confExpectJSONType(t, "thirdparty/protocols", r)
		r = s.Do("GET", "/_matrix/client/v3/account/3pid", alice.Token, nil).Expect(t, 200, "")
		confJSONEq(t, r.Body, `{"threepids": []}`)
		confExpectJSONType(t, "account/3pid", r)
	})
}
