package clientapi_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/apitest"
)

// Conformance tests for POST /register, GET /register/available, the
// registration-token validity API and Synapse's shared-secret registration.

// auRegister posts a registration body.
func auRegister(s *apitest.Server, body any) *apitest.Response {
	return s.Do("POST", auV3+"/register", "", body)
}

// auDummy is the auth dict completing m.login.dummy.
func auDummy(session string) map[string]any {
	a := map[string]any{"type": "m.login.dummy"}
	if session != "" {
		a["session"] = session
	}
	return a
}

// auAvailable calls GET /register/available.
func auAvailable(s *apitest.Server, username string) *apitest.Response {
	return s.Do("GET", auV3+"/register/available?username="+url.QueryEscape(username), "", nil)
}

func TestRegisterDisabled(t *testing.T) {
	apitest.ForEachServer(t, func(c *config.Config) { c.Registration.Enabled = false }, func(t *testing.T, s *apitest.Server) {
		auError(t, "first step", auRegister(s, map[string]any{}), 403, "M_FORBIDDEN")
		auError(t, "with dummy auth", auRegister(s, map[string]any{
			"username": "mallory", "password": "pw", "auth": auDummy(""),
		}), 403, "M_FORBIDDEN")
		auError(t, "guest", s.Do("POST", auV3+"/register?kind=guest", "", map[string]any{}), 403, "M_FORBIDDEN")
		auError(t, "available", auAvailable(s, "mallory"), 403, "M_FORBIDDEN")
		auError(t, "token validity", s.Do("GET", "/_matrix/client/v1/register/m.login.registration_token/validity?token=abc", "", nil), 403, "M_FORBIDDEN")

		// Admin tooling can still create accounts.
		u := auSharedSecretRegister(t, s, "admin-made", "pw-admin-made", false, "")
		auWhoami(t, s, u.Token, "@admin-made:aula.test", u.DeviceID)
	})
}

func TestRegister(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		t.Run("user-interactive flow", func(t *testing.T) {
			body := map[string]any{"username": "newbie", "password": "newbie-password"}
			session, flows := auChallenge(t, "first step", auRegister(s, body))
			auWantFlows(t, "register", flows, []string{"m.login.dummy"})

			body["auth"] = auDummy(session)
			r := auRegister(s, body)
			auOK(t, "dummy stage", r)
			if r.String("user_id") != "@newbie:aula.test" || r.String("access_token") == "" || r.String("device_id") == "" {
				t.Fatalf("register = %s, want @newbie:aula.test with a token and a device", r.Body)
			}
			if _, has := r.JSON["refresh_token"]; has {
				t.Errorf("refresh_token without asking: %s", r.Body)
			}
			auWhoami(t, s, r.String("access_token"), "@newbie:aula.test", r.String("device_id"))
			auLoginOK(t, s, "newbie", "newbie-password", nil)

			// A request without any body also starts the flow.
			auChallenge(t, "empty body", s.Do("POST", auV3+"/register", "", nil))
			// The stage can be completed in the first request.
			r = auRegister(s, map[string]any{"username": "oneshot", "password": "pw-oneshot", "auth": auDummy("")})
			auOK(t, "dummy without a session", r)
		})

		t.Run("username checks come before authentication", func(t *testing.T) {
			s.Register("taken", "taken-password")
			cases := []struct {
				name, username, errcode string
			}{
				{"taken", "taken", "M_USER_IN_USE"},
				{"taken in other case", "TaKeN", "M_USER_IN_USE"},
				{"space", "bad name", "M_INVALID_USERNAME"},
				{"non-ASCII", "jürgen", "M_INVALID_USERNAME"},
				{"user ID", "@someone:aula.test", "M_INVALID_USERNAME"},
				{"colon", "a:b", "M_INVALID_USERNAME"},
				{"empty", "", "M_INVALID_USERNAME"},
				{"too long", strings.Repeat("a", 250), "M_INVALID_USERNAME"},
				{"numeric (reserved for generated IDs)", "12345", "M_INVALID_USERNAME"},
			}
			for _, c := range cases {
				// No auth at all: a 401 here would mean the check comes later.
				r := auRegister(s, map[string]any{"username": c.username, "password": "pw"})
				auError(t, c.name, r, 400, c.errcode)
				// And with a completed stage the answer is the same.
				r = auRegister(s, map[string]any{"username": c.username, "password": "pw", "auth": auDummy("")})
				auError(t, c.name+" with auth", r, 400, c.errcode)
			}
		})

		t.Run("upper case is folded", func(t *testing.T) {
			r := auRegister(s, map[string]any{"username": "MixedCase", "password": "pw-mixed", "auth": auDummy("")})
			auOK(t, "register MixedCase", r)
			if r.String("user_id") != "@mixedcase:aula.test" {
				t.Fatalf("user_id = %q, want @mixedcase:aula.test", r.String("user_id"))
			}
			auLoginOK(t, s, "MIXEDCASE", "pw-mixed", nil)
		})

		t.Run("allowed characters", func(t *testing.T) {
			r := auRegister(s, map[string]any{"username": "a.b_c=d-e/f+g", "password": "pw", "auth": auDummy("")})
			auOK(t, "register with every allowed punctuation", r)
			if r.String("user_id") != "@a.b_c=d-e/f+g:aula.test" {
				t.Fatalf("user_id = %q", r.String("user_id"))
			}
		})

		t.Run("generated username", func(t *testing.T) {
			r := auRegister(s, map[string]any{"password": "pw-generated", "auth": auDummy("")})
			auOK(t, "register without a username", r)
			if !regexp.MustCompile(`^@[0-9]+:aula\.test$`).MatchString(r.String("user_id")) {
				t.Fatalf("generated user_id = %q, want a numeric localpart", r.String("user_id"))
			}
			auLoginOK(t, s, r.String("user_id"), "pw-generated", nil)
		})

		t.Run("password required", func(t *testing.T) {
			r := auRegister(s, map[string]any{"username": "nopass", "auth": auDummy("")})
			auError(t, "no password", r, 400, "M_MISSING_PARAM")
			auOK(t, "the name is still free", auAvailable(s, "nopass"))
		})

		t.Run("kind", func(t *testing.T) {
			auError(t, "guest", s.Do("POST", auV3+"/register?kind=guest", "", map[string]any{}), 403, "M_FORBIDDEN")
			r := s.Do("POST", auV3+"/register?kind=robot", "", map[string]any{})
			if r.Status != 400 {
				t.Fatalf("kind=robot: got %d, want 400; body %s", r.Status, r.Body)
			}
			r = s.Do("POST", auV3+"/register?kind=user", "", map[string]any{"username": "kinduser", "password": "pw", "auth": auDummy("")})
			auOK(t, "kind=user", r)
		})

		t.Run("inhibit_login", func(t *testing.T) {
			r := auRegister(s, map[string]any{"username": "quiet", "password": "quiet-pw", "inhibit_login": true, "auth": auDummy("")})
			auOK(t, "inhibit_login", r)
			if r.String("user_id") != "@quiet:aula.test" {
				t.Fatalf("user_id = %q", r.String("user_id"))
			}
			for _, k := range []string{"access_token", "device_id", "refresh_token", "expires_in_ms"} {
				if _, has := r.JSON[k]; has {
					t.Errorf("inhibit_login answer has %s: %s", k, r.Body)
				}
			}
			u := auLoginOK(t, s, "quiet", "quiet-pw", nil)
			if ids := auDeviceIDs(t, s, u.Token); len(ids) != 1 {
				t.Fatalf("devices = %v, want only the login's device", ids)
			}
		})

		t.Run("device parameters", func(t *testing.T) {
			r := auRegister(s, map[string]any{
				"username": "devreg", "password": "pw", "device_id": "MYDEVICE",
				"initial_device_display_name": "Registration Phone", "auth": auDummy(""),
			})
			auOK(t, "register with a device", r)
			if r.String("device_id") != "MYDEVICE" {
				t.Fatalf("device_id = %q, want MYDEVICE", r.String("device_id"))
			}
			d := s.Do("GET", auV3+"/devices/MYDEVICE", r.String("access_token"), nil)
			auOK(t, "GET device", d)
			if d.String("display_name") != "Registration Phone" {
				t.Fatalf("device = %s, want display_name Registration Phone", d.Body)
			}
			r = auRegister(s, map[string]any{"username": "devlong", "password": "pw", "initial_device_display_name": strings.Repeat("n", 101), "auth": auDummy("")})
			auError(t, "device name too long", r, 400, "M_TOO_LARGE")
			auOK(t, "the name is still free", auAvailable(s, "devlong"))
		})

		t.Run("refresh_token", func(t *testing.T) {
			r := auRegister(s, map[string]any{"username": "refresher", "password": "pw", "refresh_token": true, "auth": auDummy("")})
			auOK(t, "register with refresh_token", r)
			if r.String("refresh_token") == "" || r.JSON["expires_in_ms"] != float64(s.Config.Login.AccessTokenLifetime.D().Milliseconds()) {
				t.Fatalf("register with refresh_token = %s, want refresh_token and expires_in_ms", r.Body)
			}
		})

		t.Run("stage failures", func(t *testing.T) {
			body := map[string]any{"username": "stagey", "password": "pw"}
			session, _ := auChallenge(t, "first step", auRegister(s, body))
			// A stage that is not offered does not register the account.
			body["auth"] = map[string]any{"type": "m.login.password", "session": session, "user": "stagey", "password": "pw"}
			r := auRegister(s, body)
			if r.Status != 401 || r.Errcode() == "" {
				t.Fatalf("stage not offered: got %d %s, want 401 with an errcode", r.Status, r.Body)
			}
			// An unknown session is an error, not a new flow.
			body["auth"] = auDummy("no-such-session")
			auError(t, "unknown session", auRegister(s, body), 400, "M_UNKNOWN")
			auOK(t, "the name is still free", auAvailable(s, "stagey"))
		})

		t.Run("bad bodies", func(t *testing.T) {
			auError(t, "not JSON", auRegister(s, "{oops"), 400, "M_NOT_JSON")
			auError(t, "array", auRegister(s, `["username"]`), 400, "M_BAD_JSON")
			auError(t, "username not a string", auRegister(s, map[string]any{"username": 5}), 400, "M_BAD_JSON")
			auError(t, "auth not an object", auRegister(s, map[string]any{"username": "authy", "password": "pw", "auth": "dummy"}), 400, "M_BAD_JSON")
		})
	})
}

func TestRegisterAvailable(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		s.Register("occupied", "pw-occupied")
		r := auAvailable(s, "vacant")
		auOK(t, "free name", r)
		if r.JSON["available"] != true {
			t.Fatalf("available = %s, want {\"available\": true}", r.Body)
		}
		auError(t, "taken", auAvailable(s, "occupied"), 400, "M_USER_IN_USE")
		// Registration folds case, so availability answers for the folded name.
		auError(t, "taken in upper case", auAvailable(s, "OCCUPIED"), 400, "M_USER_IN_USE")
		auOK(t, "free name in upper case", auAvailable(s, "Vacant"))
		auError(t, "invalid", auAvailable(s, "not valid!"), 400, "M_INVALID_USERNAME")
		auError(t, "numeric", auAvailable(s, "424242"), 400, "M_INVALID_USERNAME")
		auError(t, "missing", s.Do("GET", auV3+"/register/available", "", nil), 400, "M_MISSING_PARAM")
	})
}

func TestRegistrationTokens(t *testing.T) {
	const token = "uni-welcome_2025"
	apitest.ForEachServer(t, func(c *config.Config) { c.Registration.Tokens = []string{token, "second.token"} }, func(t *testing.T, s *apitest.Server) {
		clock := auFakeClock(s)
		validity := func(tok string) *apitest.Response {
			return s.Do("GET", "/_matrix/client/v1/register/m.login.registration_token/validity?token="+url.QueryEscape(tok), "", nil)
		}
		for tok, want := range map[string]bool{token: true, "second.token": true, "wrong-token": false} {
			r := validity(tok)
			auOK(t, "validity of "+tok, r)
			if r.JSON["valid"] != want {
				t.Fatalf("validity of %s = %s, want valid %v", tok, r.Body, want)
			}
		}
		auError(t, "validity without a token", s.Do("GET", "/_matrix/client/v1/register/m.login.registration_token/validity", "", nil), 400, "M_MISSING_PARAM")

		body := map[string]any{"username": "invited", "password": "invited-pw"}
		session, flows := auChallenge(t, "first step", auRegister(s, body))
		auWantFlows(t, "token registration", flows, []string{"m.login.registration_token"})

		body["auth"] = auDummy(session)
		if r := auRegister(s, body); r.Status != 401 {
			t.Fatalf("m.login.dummy when a token is required: got %d %s, want 401", r.Status, r.Body)
		}
		body["auth"] = map[string]any{"type": "m.login.registration_token", "token": "wrong-token", "session": session}
		if got := auStageFailed(t, "wrong token", auRegister(s, body), "M_UNAUTHORIZED"); got != session {
			t.Fatalf("wrong token: session %q, want %q", got, session)
		}
		body["auth"] = map[string]any{"type": "m.login.registration_token", "token": token, "session": session}
		r := auRegister(s, body)
		auOK(t, "right token", r)
		if r.String("user_id") != "@invited:aula.test" || r.String("access_token") == "" {
			t.Fatalf("register with a token = %s", r.Body)
		}

		// Guessing tokens is rate limited (per client address), on both
		// the validity API and the registration stage.
		clock.Advance(time.Hour)
		for range 5 {
			auOK(t, "wrong guess", validity("guess"))
		}
		retry := auRetryAfter(t, "sixth wrong guess", validity(token))
		r = auRegister(s, map[string]any{"username": "guesser", "password": "pw",
			"auth": map[string]any{"type": "m.login.registration_token", "token": token}})
		auRetryAfter(t, "registration stage while limited", r)
		clock.Advance(retry)
		r = validity(token)
		auOK(t, "validity after waiting", r)
		if r.JSON["valid"] != true {
			t.Fatalf("validity after waiting = %s", r.Body)
		}
	})
}

// auMAC computes the shared-secret registration MAC as Synapse documents
// it: hex HMAC-SHA1 keyed with the secret over nonce, username, password and
// "admin" or "notadmin" (then the user type, if any), NUL-separated.
func auMAC(secret, nonce, user, password string, admin bool, userType string) string {
	m := hmac.New(sha1.New, []byte(secret))
	role := "notadmin"
	if admin {
		role = "admin"
	}
	parts := []string{nonce, user, password, role}
	if userType != "" {
		parts = append(parts, userType)
	}
	m.Write([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(m.Sum(nil))
}

const auSharedSecretPath = "/_synapse/admin/v1/register"

// auNonce fetches a shared-secret registration nonce.
func auNonce(t *testing.T, s *apitest.Server) string {
	t.Helper()
	r := s.Do("GET", auSharedSecretPath, "", nil)
	auOK(t, "GET nonce", r)
	nonce := r.String("nonce")
	if nonce == "" {
		t.Fatalf("GET %s = %s, want a nonce", auSharedSecretPath, r.Body)
	}
	return nonce
}

// auSharedSecretRegister registers an account with the shared secret.
func auSharedSecretRegister(t *testing.T, s *apitest.Server, user, password string, admin bool, userType string) apitest.User {
	t.Helper()
	nonce := auNonce(t, s)
	body := map[string]any{"nonce": nonce, "username": user, "password": password, "admin": admin,
		"mac": auMAC(apitest.SharedSecret, nonce, user, password, admin, userType)}
	if userType != "" {
		body["user_type"] = userType
	}
	r := s.Do("POST", auSharedSecretPath, "", body)
	auOK(t, "shared-secret registration of "+user, r)
	return apitest.User{ID: r.String("user_id"), Token: r.String("access_token"), DeviceID: r.String("device_id"), Password: password}
}

func TestSharedSecretRegistration(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		clock := auFakeClock(s)
		post := func(body map[string]any) *apitest.Response { return s.Do("POST", auSharedSecretPath, "", body) }
		isAdmin := func(userID string) bool {
			t.Helper()
			u, err := s.App.DB.User(t.Context(), userID)
			if err != nil {
				t.Fatalf("User(%s): %v", userID, err)
			}
			return u.IsAdmin
		}

		u := auSharedSecretRegister(t, s, "plain", "plain-pw", false, "")
		if u.ID != "@plain:aula.test" || u.Token == "" || u.DeviceID == "" {
			t.Fatalf("shared-secret registration = %+v", u)
		}
		auWhoami(t, s, u.Token, u.ID, u.DeviceID)
		auLoginOK(t, s, "plain", "plain-pw", nil)
		if isAdmin(u.ID) {
			t.Errorf("%s is an admin without asking", u.ID)
		}

		boss := auSharedSecretRegister(t, s, "boss", "boss-pw", true, "")
		if !isAdmin(boss.ID) {
			t.Errorf("%s is not an admin", boss.ID)
		}
		bot := auSharedSecretRegister(t, s, "helper-bot", "bot-pw", false, "bot")
		auWhoami(t, s, bot.Token, "@helper-bot:aula.test", bot.DeviceID)

		// The MAC covers the name as sent; the account is in lower case.
		upper := auSharedSecretRegister(t, s, "LoudName", "loud-pw", false, "")
		if upper.ID != "@loudname:aula.test" {
			t.Errorf("user_id = %q, want @loudname:aula.test", upper.ID)
		}

		// displayname lands in the profile.
		nonce := auNonce(t, s)
		r := post(map[string]any{"nonce": nonce, "username": "named", "password": "pw", "displayname": "Named Person",
			"mac": auMAC(apitest.SharedSecret, nonce, "named", "pw", false, "")})
		auOK(t, "with displayname", r)
		p := s.Do("GET", auV3+"/profile/@named:aula.test/displayname", u.Token, nil)
		auOK(t, "displayname", p)
		if p.String("displayname") != "Named Person" {
			t.Errorf("displayname = %s", p.Body)
		}

		// A wrong MAC is refused, and uses up the nonce.
		nonce = auNonce(t, s)
		body := map[string]any{"nonce": nonce, "username": "forged", "password": "pw",
			"mac": auMAC("not-the-secret-at-all", nonce, "forged", "pw", false, "")}
		auError(t, "wrong MAC", post(body), 403, "M_FORBIDDEN")
		body["mac"] = auMAC(apitest.SharedSecret, nonce, "forged", "pw", false, "")
		auError(t, "nonce after a wrong MAC", post(body), 400, "M_UNKNOWN")
		// The admin flag is part of the MAC.
		nonce = auNonce(t, s)
		auError(t, "admin flag not covered by the MAC", post(map[string]any{"nonce": nonce, "username": "sneaky", "password": "pw", "admin": true,
			"mac": auMAC(apitest.SharedSecret, nonce, "sneaky", "pw", false, "")}), 403, "M_FORBIDDEN")

		// A nonce is single-use.
		nonce = auNonce(t, s)
		body = map[string]any{"nonce": nonce, "username": "once", "password": "pw",
			"mac": auMAC(apitest.SharedSecret, nonce, "once", "pw", false, "")}
		auOK(t, "first use", post(body))
		body["username"], body["mac"] = "twice", auMAC(apitest.SharedSecret, nonce, "twice", "pw", false, "")
		auError(t, "reused nonce", post(body), 400, "M_UNKNOWN")

		// Unknown and expired nonces.
		auError(t, "unknown nonce", post(map[string]any{"nonce": "abc", "username": "x", "password": "pw",
			"mac": auMAC(apitest.SharedSecret, "abc", "x", "pw", false, "")}), 400, "M_UNKNOWN")
		nonce = auNonce(t, s)
		clock.Advance(2 * time.Minute)
		auError(t, "expired nonce", post(map[string]any{"nonce": nonce, "username": "late", "password": "pw",
			"mac": auMAC(apitest.SharedSecret, nonce, "late", "pw", false, "")}), 400, "M_UNKNOWN")

		// Username problems, after a valid MAC.
		for _, c := range []struct{ name, username, errcode string }{
			{"taken", "plain", "M_USER_IN_USE"},
			{"invalid", "no spaces", "M_INVALID_USERNAME"},
		} {
			nonce = auNonce(t, s)
			auError(t, c.name, post(map[string]any{"nonce": nonce, "username": c.username, "password": "pw",
				"mac": auMAC(apitest.SharedSecret, nonce, c.username, "pw", false, "")}), 400, c.errcode)
		}
		nonce = auNonce(t, s)
		auError(t, "no mac", post(map[string]any{"nonce": nonce, "username": "nomac", "password": "pw"}), 400, "M_MISSING_PARAM")
		auError(t, "not JSON", s.Do("POST", auSharedSecretPath, "", "nonce"), 400, "M_NOT_JSON")
	})
}

func TestSharedSecretRegistrationDisabled(t *testing.T) {
	apitest.ForEachServer(t, func(c *config.Config) { c.Registration.SharedSecret = "" }, func(t *testing.T, s *apitest.Server) {
		auError(t, "GET nonce", s.Do("GET", auSharedSecretPath, "", nil), 400, "M_UNKNOWN")
		// Even a MAC made with an empty key must not work.
		r := s.Do("POST", auSharedSecretPath, "", map[string]any{"nonce": "n", "username": "intruder", "password": "pw",
			"mac": auMAC("", "n", "intruder", "pw", true, "")})
		auError(t, "POST", r, 400, "M_UNKNOWN")
		auOK(t, "nothing was created", auAvailable(s, "intruder"))
	})
}
