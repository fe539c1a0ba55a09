package clientapi_test

import (
	"strings"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

func TestProfileRoundTrip(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		prof := func(u string) string { return "/_matrix/client/v3/profile/" + confEsc(u) }

		// A new account's display name is its localpart (as in Synapse);
		// an unset field is 404 M_NOT_FOUND (spec v1.16: "no profile field
		// with this key for this user").
		confJSONEq(t, s.Do("GET", prof(alice.ID), alice.Token, nil).Expect(t, 200, "").Body, `{"displayname":"alice"}`)
		confExpectError(t, "unset avatar", s.Do("GET", prof(alice.ID)+"/avatar_url", alice.Token, nil), 404, "M_NOT_FOUND")

		// Set both; PUT answers {}.
		r := s.Do("PUT", prof(alice.ID)+"/displayname", alice.Token, map[string]string{"displayname": "Alice <Liddell> & Co 🐇"}).Expect(t, 200, "")
		confJSONEq(t, r.Body, `{}`)
		r = s.Do("PUT", prof(alice.ID)+"/avatar_url", alice.Token, map[string]string{"avatar_url": "mxc://aula.test/AbC123_-x"}).Expect(t, 200, "")
		confJSONEq(t, r.Body, `{}`)

		// Alice's own view and Bob's view are the same.
		for _, tok := range []string{alice.Token, bob.Token} {
			r = s.Do("GET", prof(alice.ID), tok, nil).Expect(t, 200, "")
			confJSONEq(t, r.Body, `{"displayname":"Alice <Liddell> & Co 🐇","avatar_url":"mxc://aula.test/AbC123_-x"}`)
			r = s.Do("GET", prof(alice.ID)+"/displayname", tok, nil).Expect(t, 200, "")
			confJSONEq(t, r.Body, `{"displayname":"Alice <Liddell> & Co 🐇"}`)
			r = s.Do("GET", prof(alice.ID)+"/avatar_url", tok, nil).Expect(t, 200, "")
			confJSONEq(t, r.Body, `{"avatar_url":"mxc://aula.test/AbC123_-x"}`)
		}
		// HTML-significant characters are sent as they are, not as \u003c.
		if !strings.Contains(string(r.Body), "mxc://aula.test/AbC123_-x") ||
			strings.Contains(string(s.Do("GET", prof(alice.ID), bob.Token, nil).Body), `\u003c`) {
			t.Errorf("profile escaped: %s", r.Body)
		}
		// Bob's profile is unchanged; the r0 path serves the same data.
		confJSONEq(t, s.Do("GET", prof(bob.ID), alice.Token, nil).Expect(t, 200, "").Body, `{"displayname":"bob"}`)
		confJSONEq(t, s.Do("GET", "/_matrix/client/r0/profile/"+confEsc(alice.ID)+"/displayname", bob.Token, nil).
			Expect(t, 200, "").Body, `{"displayname":"Alice <Liddell> & Co 🐇"}`)

		// Replacing works; other fields of the body are ignored.
		s.Do("PUT", prof(alice.ID)+"/displayname", alice.Token, map[string]any{"displayname": "Alice", "avatar_url": "mxc://x/y"}).Expect(t, 200, "")
		confJSONEq(t, s.Do("GET", prof(alice.ID), bob.Token, nil).Expect(t, 200, "").Body,
			`{"displayname":"Alice","avatar_url":"mxc://aula.test/AbC123_-x"}`)

		// "" clears a field (as Synapse does; v1.16 adds DELETE for this).
		// The cleared field is then absent from the profile and 404 on its
		// own, rather than present as "" or null.
		s.Do("PUT", prof(alice.ID)+"/displayname", alice.Token, map[string]string{"displayname": ""}).Expect(t, 200, "")
		confExpectError(t, "cleared displayname", s.Do("GET", prof(alice.ID)+"/displayname", bob.Token, nil), 404, "M_NOT_FOUND")
		confJSONEq(t, s.Do("GET", prof(alice.ID), bob.Token, nil).Expect(t, 200, "").Body, `{"avatar_url":"mxc://aula.test/AbC123_-x"}`)
		s.Do("PUT", prof(alice.ID)+"/avatar_url", alice.Token, map[string]string{"avatar_url": ""}).Expect(t, 200, "")
		confExpectError(t, "cleared avatar", s.Do("GET", prof(alice.ID)+"/avatar_url", bob.Token, nil), 404, "M_NOT_FOUND")
		confJSONEq(t, s.Do("GET", prof(alice.ID), bob.Token, nil).Expect(t, 200, "").Body, `{}`)
	})
}

func TestProfileErrors(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		prof := func(u string) string { return "/_matrix/client/v3/profile/" + confEsc(u) }

		// aula requires a token to read profiles (like Synapse's
		// require_auth_for_profile_requests): the server is not public.
		confExpectError(t, "no token", s.Do("GET", prof(alice.ID), "", nil), 401, "M_MISSING_TOKEN")
		confExpectError(t, "no token", s.Do("GET", prof(alice.ID)+"/displayname", "", nil), 401, "M_MISSING_TOKEN")
		confExpectError(t, "no token", s.Do("PUT", prof(alice.ID)+"/displayname", "", map[string]string{"displayname": "x"}), 401, "M_MISSING_TOKEN")

		// Unknown users, local or not, are 404 M_NOT_FOUND.
		for _, u := range []string{"@nobody:aula.test", "@alice:elsewhere.example"} {
			for _, suffix := range []string{"", "/displayname", "/avatar_url"} {
				confExpectError(t, "GET "+u+suffix, s.Do("GET", prof(u)+suffix, alice.Token, nil), 404, "M_NOT_FOUND")
			}
		}
		// A path value that is no user ID at all is a bad parameter.
		for _, u := range []string{"alice", "!room:aula.test", "@", "@alice"} {
			confExpectError(t, "GET "+u, s.Do("GET", prof(u), alice.Token, nil), 400, "M_INVALID_PARAM")
		}

		// Someone else's profile cannot be changed, whether they exist or not.
		for _, u := range []string{bob.ID, "@nobody:aula.test"} {
			confExpectError(t, "PUT displayname of "+u,
				s.Do("PUT", prof(u)+"/displayname", alice.Token, map[string]string{"displayname": "Mallory"}), 403, "M_FORBIDDEN")
			confExpectError(t, "PUT avatar of "+u,
				s.Do("PUT", prof(u)+"/avatar_url", alice.Token, map[string]string{"avatar_url": "mxc://aula.test/evil"}), 403, "M_FORBIDDEN")
		}
		confJSONEq(t, s.Do("GET", prof(bob.ID), bob.Token, nil).Expect(t, 200, "").Body, `{"displayname":"bob"}`)

		// Missing field.
		for _, body := range []string{`{}`, `{"displayName":"x"}`, `{"avatar_url":"mxc://a/b"}`} {
			confExpectError(t, "displayname body "+body, s.Do("PUT", prof(alice.ID)+"/displayname", alice.Token, body), 400, "M_MISSING_PARAM")
		}
		confExpectError(t, "avatar without field", s.Do("PUT", prof(alice.ID)+"/avatar_url", alice.Token, `{"displayname":"x"}`), 400, "M_MISSING_PARAM")

		// Avatars must be mxc:// URIs with a server name and a media ID.
		for _, u := range []string{
			"https://example.org/cat.png", "MXC://aula.test/abc", "mxc:aula.test/abc", "mxc://", "mxc://aula.test",
			"mxc://aula.test/", "mxc:///abc", "mxc://aula.test/abc/def", " mxc://aula.test/abc", "cat.png",
		} {
			confExpectError(t, "avatar "+u, s.Do("PUT", prof(alice.ID)+"/avatar_url", alice.Token, map[string]string{"avatar_url": u}), 400, "M_INVALID_PARAM")
		}

		// Too long: 256 characters are fine (counted as characters, not
		// bytes), 257 are not.
		s.Do("PUT", prof(alice.ID)+"/displayname", alice.Token, map[string]string{"displayname": strings.Repeat("é", 256)}).Expect(t, 200, "")
		confExpectError(t, "long displayname",
			s.Do("PUT", prof(alice.ID)+"/displayname", alice.Token, map[string]string{"displayname": strings.Repeat("a", 257)}), 400, "M_TOO_LARGE")
		longURL := "mxc://aula.test/" + strings.Repeat("a", 1001)
		confExpectError(t, "long avatar", s.Do("PUT", prof(alice.ID)+"/avatar_url", alice.Token, map[string]string{"avatar_url": longURL}), 400, "M_TOO_LARGE")

		// Nothing of the failed requests was stored.
		confJSONEq(t, s.Do("GET", prof(alice.ID), bob.Token, nil).Expect(t, 200, "").Body,
			`{"displayname":"`+strings.Repeat("é", 256)+`"}`)
	})
}

func TestProfileOfDeactivatedUser(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		prof := "/_matrix/client/v3/profile/" + confEsc(alice.ID)
		s.Do("PUT", prof+"/displayname", alice.Token, map[string]string{"displayname": "Alice"}).Expect(t, 200, "")

		r := s.Do("POST", "/_matrix/client/v3/account/deactivate", alice.Token, map[string]any{})
		if r.Status == 401 {
			session := r.String("session")
			r = s.Do("POST", "/_matrix/client/v3/account/deactivate", alice.Token, map[string]any{"auth": alice.PasswordAuth(session)})
		}
		r.Expect(t, 200, "")

		confExpectError(t, "deactivated profile", s.Do("GET", prof, bob.Token, nil), 404, "M_NOT_FOUND")
		confExpectError(t, "deactivated displayname", s.Do("GET", prof+"/displayname", bob.Token, nil), 404, "M_NOT_FOUND")
	})
}
