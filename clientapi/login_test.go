package clientapi_test

import (
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/apitest"
)

// Conformance tests for login, logout, refresh and whoami. The helpers here
// (prefix "au") are shared by login_test.go, register_test.go,
// devices_test.go and account_test.go.

const auV3 = "/_matrix/client/v3"

// auError fails the test unless r is a standard error response with the
// status and errcode: the spec says errcode and error MUST be present.
func auError(t *testing.T, what string, r *apitest.Response, status int, errcode string) {
	t.Helper()
	if r.Status != status || r.Errcode() != errcode {
		t.Fatalf("%s: got %d %q, want %d %q; body: %s", what, r.Status, r.Errcode(), status, errcode, r.Body)
	}
	if _, ok := r.JSON["error"].(string); !ok {
		t.Fatalf("%s: error response without an \"error\" string: %s", what, r.Body)
	}
}

// auOK fails the test unless r is 200 with a JSON object body.
func auOK(t *testing.T, what string, r *apitest.Response) {
	t.Helper()
	if r.Status != http.StatusOK || r.JSON == nil {
		t.Fatalf("%s: got %d, want 200 with a JSON object; body: %s", what, r.Status, r.Body)
	}
}

// auEmptyOK fails the test unless r is 200 {}.
func auEmptyOK(t *testing.T, what string, r *apitest.Response) {
	t.Helper()
	auOK(t, what, r)
	if len(r.JSON) != 0 {
		t.Fatalf("%s: got %s, want {}", what, r.Body)
	}
}

// auChallenge checks that r is the first 401 of user-interactive
// authentication (flows, params and session, but no errcode) and returns
// the session and the flows as lists of stages.
func auChallenge(t *testing.T, what string, r *apitest.Response) (session string, flows [][]string) {
	t.Helper()
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("%s: got %d, want 401 with UIA flows; body: %s", what, r.Status, r.Body)
	}
	if _, has := r.JSON["errcode"]; has {
		t.Fatalf("%s: the first UIA response must not carry an errcode: %s", what, r.Body)
	}
	return auFlows(t, what, r)
}

// auStageFailed checks that r is a 401 of user-interactive authentication
// for a failed stage: flows, params and session plus the errcode.
func auStageFailed(t *testing.T, what string, r *apitest.Response, errcode string) (session string) {
	t.Helper()
	auError(t, what, r, http.StatusUnauthorized, errcode)
	session, _ = auFlows(t, what, r)
	return session
}

func auFlows(t *testing.T, what string, r *apitest.Response) (string, [][]string) {
	t.Helper()
	session, ok := r.JSON["session"].(string)
	if !ok || session == "" {
		t.Fatalf("%s: UIA response without a session: %s", what, r.Body)
	}
	if _, ok := r.JSON["params"].(map[string]any); !ok {
		t.Fatalf("%s: UIA response without a params object: %s", what, r.Body)
	}
	raw, ok := r.JSON["flows"].([]any)
	if !ok {
		t.Fatalf("%s: UIA response without a flows array: %s", what, r.Body)
	}
	var flows [][]string
	for _, f := range raw {
		obj, _ := f.(map[string]any)
		stages, ok := obj["stages"].([]any)
		if !ok {
			t.Fatalf("%s: flow without a stages array: %s", what, r.Body)
		}
		var flow []string
		for _, st := range stages {
			s, _ := st.(string)
			flow = append(flow, s)
		}
		flows = append(flows, flow)
	}
	return session, flows
}

// auWantFlows fails the test unless flows are exactly want.
func auWantFlows(t *testing.T, what string, flows [][]string, want ...[]string) {
	t.Helper()
	if !reflect.DeepEqual(flows, want) {
		t.Fatalf("%s: flows %v, want %v", what, flows, want)
	}
}

// auLogin posts a password login with extra fields and returns the answer.
func auLogin(s *apitest.Server, user, password string, extra map[string]any) *apitest.Response {
	body := map[string]any{
		"type":       "m.login.password",
		"identifier": map[string]any{"type": "m.id.user", "user": user},
		"password":   password,
	}
	for k, v := range extra {
		body[k] = v
	}
	return s.Do("POST", auV3+"/login", "", body)
}

// auLoginOK logs in and returns the session.
func auLoginOK(t *testing.T, s *apitest.Server, user, password string, extra map[string]any) apitest.User {
	t.Helper()
	r := auLogin(s, user, password, extra)
	auOK(t, "login as "+user, r)
	return apitest.User{ID: r.String("user_id"), Token: r.String("access_token"), DeviceID: r.String("device_id"), Password: password}
}

// auWhoami fails the test unless token belongs to user and device.
func auWhoami(t *testing.T, s *apitest.Server, token, userID, deviceID string) {
	t.Helper()
	r := s.Do("GET", auV3+"/account/whoami", token, nil)
	auOK(t, "whoami", r)
	if r.String("user_id") != userID || r.String("device_id") != deviceID || r.JSON["is_guest"] != false {
		t.Fatalf("whoami = %s, want user %s, device %s, is_guest false", r.Body, userID, deviceID)
	}
}

// auTokenDead fails the test unless token is refused as unknown, and not
// as a soft logout.
func auTokenDead(t *testing.T, s *apitest.Server, what, token string) {
	t.Helper()
	r := s.Do("GET", auV3+"/account/whoami", token, nil)
	auError(t, what, r, http.StatusUnauthorized, "M_UNKNOWN_TOKEN")
	if r.JSON["soft_logout"] == true {
		t.Fatalf("%s: soft_logout for a token that is gone: %s", what, r.Body)
	}
}

// auDeviceIDs lists the device IDs GET /devices returns.
func auDeviceIDs(t *testing.T, s *apitest.Server, token string) []string {
	t.Helper()
	r := s.Do("GET", auV3+"/devices", token, nil)
	auOK(t, "GET /devices", r)
	list, ok := r.JSON["devices"].([]any)
	if !ok {
		t.Fatalf("GET /devices without a devices array: %s", r.Body)
	}
	var ids []string
	for _, d := range list {
		obj, _ := d.(map[string]any)
		id, _ := obj["device_id"].(string)
		ids = append(ids, id)
	}
	return ids
}

// auRaw sends a request with the given headers and no body.
func auRaw(t *testing.T, s *apitest.Server, method, path string, header map[string]string) *apitest.Response {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return confDo(t, req)
}

// auClock is a clock a test moves forward by hand; it replaces the auth
// service's clock.
type auClock struct {
	mu  sync.Mutex
	now time.Time
}

func auFakeClock(s *apitest.Server) *auClock {
	c := &auClock{now: time.Now()}
	s.App.Auth.SetClock(c.Now)
	return c
}

func (c *auClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *auClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// auRetryAfter returns retry_after_ms of a 429 M_LIMIT_EXCEEDED.
func auRetryAfter(t *testing.T, what string, r *apitest.Response) time.Duration {
	t.Helper()
	auError(t, what, r, http.StatusTooManyRequests, "M_LIMIT_EXCEEDED")
	ms, ok := r.JSON["retry_after_ms"].(float64)
	if !ok || ms <= 0 {
		t.Fatalf("%s: 429 without a positive retry_after_ms: %s", what, r.Body)
	}
	// Retry-After (spec v1.10) carries the same wait in whole seconds, rounded up.
	if got, want := r.Header.Get("Retry-After"), strconv.Itoa(int((ms+999)/1000)); got != want {
		t.Errorf("%s: Retry-After = %q, want %q (retry_after_ms %v)", what, got, want, ms)
	}
	return time.Duration(ms) * time.Millisecond
}

func TestLoginFlows(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		for _, prefix := range []string{"/_matrix/client/v3", "/_matrix/client/r0"} {
			r := s.Do("GET", prefix+"/login", "", nil)
			auOK(t, "GET "+prefix+"/login", r)
			if want := `{"flows":[{"type":"m.login.password"}]}`; strings.TrimSpace(string(r.Body)) != want {
				t.Errorf("GET %s/login = %s, want %s", prefix, r.Body, want)
			}
		}
	})
}

func TestLoginPasswordDisabled(t *testing.T) {
	apitest.ForEachServer(t, func(c *config.Config) { c.PasswordLogin.Enabled = false }, func(t *testing.T, s *apitest.Server) {
		s.Register("pat", "pat-password")
		r := s.Do("GET", auV3+"/login", "", nil)
		auOK(t, "GET /login", r)
		if flows, ok := r.JSON["flows"].([]any); !ok || len(flows) != 0 {
			t.Errorf("GET /login with password login off = %s, want an empty flows array", r.Body)
		}
		auError(t, "password login when disabled", auLogin(s, "pat", "pat-password", nil), 403, "M_FORBIDDEN")
	})
}

func TestLogin(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "alice-password")
		s.Register("bob", "bob-password")

		t.Run("identifiers", func(t *testing.T) {
			cases := []struct {
				name string
				body map[string]any
			}{
				{"localpart", map[string]any{"identifier": map[string]any{"type": "m.id.user", "user": "alice"}}},
				{"full user ID", map[string]any{"identifier": map[string]any{"type": "m.id.user", "user": "@alice:aula.test"}}},
				{"deprecated user field", map[string]any{"user": "alice"}},
				{"deprecated user field with user ID", map[string]any{"user": "@alice:aula.test"}},
				{"upper-case localpart", map[string]any{"identifier": map[string]any{"type": "m.id.user", "user": "ALICE"}}},
				{"mixed-case user ID", map[string]any{"identifier": map[string]any{"type": "m.id.user", "user": "@AlIcE:aula.test"}}},
			}
			for _, c := range cases {
				body := map[string]any{"type": "m.login.password", "password": "alice-password"}
				for k, v := range c.body {
					body[k] = v
				}
				r := s.Do("POST", auV3+"/login", "", body)
				auOK(t, c.name, r)
				if r.String("user_id") != alice.ID || r.String("access_token") == "" || r.String("device_id") == "" {
					t.Fatalf("%s: login = %s, want user_id %s with an access token and a device", c.name, r.Body, alice.ID)
				}
				if _, has := r.JSON["refresh_token"]; has {
					t.Errorf("%s: refresh_token without asking for one: %s", c.name, r.Body)
				}
				if _, has := r.JSON["expires_in_ms"]; has {
					t.Errorf("%s: expires_in_ms for a token that does not expire: %s", c.name, r.Body)
				}
				wk, _ := r.JSON["well_known"].(map[string]any)
				hs, _ := wk["m.homeserver"].(map[string]any)
				if hs["base_url"] != "https://aula.test/" {
					t.Errorf("%s: well_known = %v, want m.homeserver.base_url https://aula.test/", c.name, r.JSON["well_known"])
				}
				auWhoami(t, s, r.String("access_token"), alice.ID, r.String("device_id"))
			}
		})

		t.Run("failures", func(t *testing.T) {
			cases := []struct {
				name    string
				body    any
				status  int
				errcode string
			}{
				{"wrong password", map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "bob"}, "password": "nope"}, 403, "M_FORBIDDEN"},
				{"unknown user", map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "nobody"}, "password": "x"}, 403, "M_FORBIDDEN"},
				{"user of another server", map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "@alice:elsewhere.test"}, "password": "alice-password"}, 403, "M_FORBIDDEN"},
				{"third-party identifier", map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.thirdparty", "medium": "email", "address": "alice@aula.test"}, "password": "alice-password"}, 403, "M_FORBIDDEN"},
				{"deprecated medium and address", map[string]any{"type": "m.login.password", "medium": "email", "address": "alice@aula.test", "password": "alice-password"}, 403, "M_FORBIDDEN"},
				{"unknown login type", map[string]any{"type": "m.login.magic", "identifier": map[string]any{"type": "m.id.user", "user": "alice"}}, 400, "M_UNKNOWN"},
				{"unknown identifier type", map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.telepathy", "user": "alice"}, "password": "alice-password"}, 400, "M_UNKNOWN"},
				{"no type", map[string]any{"identifier": map[string]any{"type": "m.id.user", "user": "alice"}, "password": "alice-password"}, 400, "M_MISSING_PARAM"},
				{"no password", map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "alice"}}, 400, "M_MISSING_PARAM"},
				{"no user", map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user"}, "password": "alice-password"}, 400, "M_MISSING_PARAM"},
				{"password of the wrong type", map[string]any{"type": "m.login.password", "user": "alice", "password": 12345}, 400, "M_BAD_JSON"},
				{"refresh_token of the wrong type", map[string]any{"type": "m.login.password", "user": "alice", "password": "alice-password", "refresh_token": "yes"}, 400, "M_BAD_JSON"},
				{"identifier not an object", map[string]any{"type": "m.login.password", "identifier": "alice", "password": "alice-password"}, 400, "M_BAD_JSON"},
				{"device name too long", map[string]any{"type": "m.login.password", "user": "alice", "password": "alice-password", "initial_device_display_name": strings.Repeat("x", 101)}, 400, "M_TOO_LARGE"},
				{"not JSON", "{this is not json", 400, "M_NOT_JSON"},
				{"empty body", "", 400, "M_NOT_JSON"},
				{"JSON array", `[{"type":"m.login.password"}]`, 400, "M_BAD_JSON"},
				{"JSON string", `"m.login.password"`, 400, "M_BAD_JSON"},
			}
			for _, c := range cases {
				r := s.Do("POST", auV3+"/login", "", c.body)
				auError(t, c.name, r, c.status, c.errcode)
				if _, has := r.JSON["access_token"]; has {
					t.Fatalf("%s: access token in an error: %s", c.name, r.Body)
				}
			}
		})

		t.Run("device reuse", func(t *testing.T) {
			first := auLoginOK(t, s, "alice", "alice-password", map[string]any{"device_id": "REUSED", "initial_device_display_name": "Phone"})
			if first.DeviceID != "REUSED" {
				t.Fatalf("device_id = %q, want the requested REUSED", first.DeviceID)
			}
			second := auLoginOK(t, s, "alice", "alice-password", map[string]any{"device_id": "REUSED", "initial_device_display_name": "Ignored"})
			if second.DeviceID != "REUSED" || second.Token == first.Token {
				t.Fatalf("second login = device %q token %q, want REUSED with a new token", second.DeviceID, second.Token)
			}
			auTokenDead(t, s, "the replaced token of a reused device", first.Token)
			auWhoami(t, s, second.Token, alice.ID, "REUSED")
			n := 0
			for _, id := range auDeviceIDs(t, s, second.Token) {
				if id == "REUSED" {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("GET /devices lists REUSED %d times, want once", n)
			}
			// initial_device_display_name is ignored for a known device.
			r := s.Do("GET", auV3+"/devices/REUSED", second.Token, nil)
			auOK(t, "GET /devices/REUSED", r)
			if r.String("display_name") != "Phone" {
				t.Fatalf("display_name after reuse = %q, want the first name Phone", r.String("display_name"))
			}
		})

		t.Run("display name", func(t *testing.T) {
			u := auLoginOK(t, s, "alice", "alice-password", map[string]any{"initial_device_display_name": "Jungle Phone"})
			r := s.Do("GET", auV3+"/devices", u.Token, nil)
			auOK(t, "GET /devices", r)
			found := false
			for _, d := range r.JSON["devices"].([]any) {
				obj := d.(map[string]any)
				if obj["device_id"] == u.DeviceID {
					found = obj["display_name"] == "Jungle Phone"
				}
			}
			if !found {
				t.Fatalf("GET /devices = %s, want %s named Jungle Phone", r.Body, u.DeviceID)
			}
		})

		t.Run("refresh token requested", func(t *testing.T) {
			r := auLogin(s, "alice", "alice-password", map[string]any{"refresh_token": true})
			auOK(t, "login with refresh_token", r)
			want := float64(s.Config.Login.AccessTokenLifetime.D().Milliseconds())
			if r.String("refresh_token") == "" || r.JSON["expires_in_ms"] != want {
				t.Fatalf("login with refresh_token = %s, want a refresh_token and expires_in_ms %v", r.Body, want)
			}
			if r.String("refresh_token") == r.String("access_token") {
				t.Fatalf("refresh token equals the access token")
			}
		})
	})
}

func TestLoginRateLimit(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		clock := auFakeClock(s)
		s.Register("rita", "rita-password")
		s.Register("sam", "sam-password")

		// Five failures are answered normally; the sixth attempt is
		// refused even with the right password.
		for i := range 5 {
			auError(t, "wrong password", auLogin(s, "rita", "wrong-"+string(rune('a'+i)), nil), 403, "M_FORBIDDEN")
		}
		retry := auRetryAfter(t, "right password after five failures", auLogin(s, "rita", "rita-password", nil))
		auRetryAfter(t, "another spelling of the same user", auLogin(s, "@RITA:aula.test", "rita-password", nil))
		// The limit is per account: others log in normally.
		auLoginOK(t, s, "sam", "sam-password", nil)

		clock.Advance(retry)
		auLoginOK(t, s, "rita", "rita-password", nil)

		// Unknown users are limited the same way, so the limit does not
		// tell which accounts exist.
		for range 5 {
			auError(t, "unknown user", auLogin(s, "ghost", "x", nil), 403, "M_FORBIDDEN")
		}
		auRetryAfter(t, "unknown user after five failures", auLogin(s, "ghost", "x", nil))
	})
}

func TestRefresh(t *testing.T) {
	apitest.ForEachServer(t, func(c *config.Config) {
		c.Login.RefreshTokenLifetime = config.Duration(time.Hour)
	}, func(t *testing.T, s *apitest.Server) {
		clock := auFakeClock(s)
		user := s.Register("rae", "rae-password")
		lifetime := s.Config.Login.AccessTokenLifetime.D()

		refresh := func(path, token string) *apitest.Response {
			return s.Do("POST", path, "", map[string]any{"refresh_token": token})
		}
		refreshOK := func(what, path, token string) (access, next string) {
			t.Helper()
			r := refresh(path, token)
			auOK(t, what, r)
			access, next = r.String("access_token"), r.String("refresh_token")
			if access == "" || next == "" || r.JSON["expires_in_ms"] != float64(lifetime.Milliseconds()) {
				t.Fatalf("%s = %s, want access_token, refresh_token and expires_in_ms %d", what, r.Body, lifetime.Milliseconds())
			}
			return access, next
		}

		t.Run("rotation", func(t *testing.T) {
			r := auLogin(s, "rae", "rae-password", map[string]any{"refresh_token": true})
			auOK(t, "login", r)
			a0, r0, dev := r.String("access_token"), r.String("refresh_token"), r.String("device_id")

			a1, r1 := refreshOK("refresh", auV3+"/refresh", r0)
			if a1 == a0 || r1 == r0 {
				t.Fatalf("refresh returned the old tokens")
			}
			// Until the new tokens are used, the old refresh token still
			// works (a client may have lost the answer).
			a2, r2 := refreshOK("repeating the refresh with the old token", "/_matrix/client/v1/refresh", r0)
			// Using the new access token revokes the old refresh token.
			auWhoami(t, s, a2, user.ID, dev)
			r = refresh(auV3+"/refresh", r0)
			auError(t, "old refresh token after the new access token was used", r, 401, "M_UNKNOWN_TOKEN")
			if r.JSON["soft_logout"] == true {
				t.Fatalf("soft_logout for a used refresh token: %s", r.Body)
			}
			// The successor that was never used went with the repeat.
			auError(t, "refresh token superseded by a repeated refresh", refresh(auV3+"/refresh", r1), 401, "M_UNKNOWN_TOKEN")
			_ = a1

			// Using the new refresh token also revokes its predecessor.
			_, r3 := refreshOK("refresh again", auV3+"/refresh", r2)
			_, _ = refreshOK("refresh with the newest token", auV3+"/refresh", r3)
			auError(t, "refresh token after its successor was refreshed", refresh(auV3+"/refresh", r2), 401, "M_UNKNOWN_TOKEN")
		})

		t.Run("expired access token", func(t *testing.T) {
			r := auLogin(s, "rae", "rae-password", map[string]any{"refresh_token": true})
			auOK(t, "login", r)
			access, rt, dev := r.String("access_token"), r.String("refresh_token"), r.String("device_id")
			plain := auLoginOK(t, s, "rae", "rae-password", nil)

			clock.Advance(lifetime + time.Second)
			r = s.Do("GET", auV3+"/account/whoami", access, nil)
			auError(t, "expired access token", r, 401, "M_UNKNOWN_TOKEN")
			if r.JSON["soft_logout"] != true {
				t.Fatalf("expired access token: soft_logout missing: %s", r.Body)
			}
			// A token issued without a refresh token does not expire.
			auWhoami(t, s, plain.Token, user.ID, plain.DeviceID)

			fresh, _ := refreshOK("refresh after expiry", auV3+"/refresh", rt)
			auWhoami(t, s, fresh, user.ID, dev)
		})

		t.Run("expired refresh token", func(t *testing.T) {
			r := auLogin(s, "rae", "rae-password", map[string]any{"refresh_token": true})
			auOK(t, "login", r)
			clock.Advance(2 * time.Hour)
			r = refresh(auV3+"/refresh", r.String("refresh_token"))
			auError(t, "expired refresh token", r, 401, "M_UNKNOWN_TOKEN")
			if r.JSON["soft_logout"] != true {
				t.Fatalf("expired refresh token of a live device: soft_logout missing: %s", r.Body)
			}
		})

		t.Run("logged out", func(t *testing.T) {
			r := auLogin(s, "rae", "rae-password", map[string]any{"refresh_token": true})
			auOK(t, "login", r)
			auEmptyOK(t, "logout", s.Do("POST", auV3+"/logout", r.String("access_token"), nil))
			auError(t, "refresh token of a logged-out device", refresh(auV3+"/refresh", r.String("refresh_token")), 401, "M_UNKNOWN_TOKEN")
		})

		t.Run("bad requests", func(t *testing.T) {
			auError(t, "unknown refresh token", refresh(auV3+"/refresh", "art_not-a-real-token"), 401, "M_UNKNOWN_TOKEN")
			auError(t, "no refresh_token", s.Do("POST", auV3+"/refresh", "", map[string]any{}), 400, "M_MISSING_PARAM")
			auError(t, "not JSON", s.Do("POST", auV3+"/refresh", "", "refresh"), 400, "M_NOT_JSON")
			auError(t, "refresh_token not a string", s.Do("POST", auV3+"/refresh", "", map[string]any{"refresh_token": 7}), 400, "M_BAD_JSON")
		})
	})
}

func TestLogout(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		lou := s.Register("lou", "lou-password")
		other := auLoginOK(t, s, "lou", "lou-password", nil)

		auEmptyOK(t, "logout", s.Do("POST", auV3+"/logout", other.Token, nil))
		auTokenDead(t, s, "logged-out token", other.Token)
		auError(t, "logout with a logged-out token", s.Do("POST", auV3+"/logout", other.Token, nil), 401, "M_UNKNOWN_TOKEN")
		if ids := auDeviceIDs(t, s, lou.Token); !reflect.DeepEqual(ids, []string{lou.DeviceID}) {
			t.Fatalf("devices after logout = %v, want only %s", ids, lou.DeviceID)
		}
		auWhoami(t, s, lou.Token, lou.ID, lou.DeviceID)

		// /logout/all ends every session, including the caller's.
		second := auLoginOK(t, s, "lou", "lou-password", nil)
		auEmptyOK(t, "logout/all", s.Do("POST", auV3+"/logout/all", second.Token, nil))
		auTokenDead(t, s, "caller's token after logout/all", second.Token)
		auTokenDead(t, s, "other token after logout/all", lou.Token)
		third := auLoginOK(t, s, "lou", "lou-password", nil)
		if ids := auDeviceIDs(t, s, third.Token); !reflect.DeepEqual(ids, []string{third.DeviceID}) {
			t.Fatalf("devices after logout/all and a new login = %v, want only %s", ids, third.DeviceID)
		}

		auError(t, "logout without a token", s.Do("POST", auV3+"/logout", "", nil), 401, "M_MISSING_TOKEN")
		auError(t, "logout/all without a token", s.Do("POST", auV3+"/logout/all", "", nil), 401, "M_MISSING_TOKEN")
	})
}

func TestWhoamiAndAccessTokens(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		wes := s.Register("wes", "wes-password")
		auWhoami(t, s, wes.Token, "@wes:aula.test", wes.DeviceID)

		r := s.Do("GET", "/_matrix/client/r0/account/whoami", wes.Token, nil)
		auOK(t, "whoami under r0", r)

		r = s.Do("GET", auV3+"/account/whoami?access_token="+url.QueryEscape(wes.Token), "", nil)
		auOK(t, "token in the access_token query parameter", r)
		if r.String("user_id") != wes.ID {
			t.Fatalf("whoami with ?access_token= = %s", r.Body)
		}

		auError(t, "no token", s.Do("GET", auV3+"/account/whoami", "", nil), 401, "M_MISSING_TOKEN")
		auTokenDead(t, s, "unknown token", "aat_this-token-was-never-issued")
		auError(t, "unknown token in the query", s.Do("GET", auV3+"/account/whoami?access_token=nope", "", nil), 401, "M_UNKNOWN_TOKEN")

		for _, h := range []string{"Basic " + wes.Token, "Bearer", "Bearer ", wes.Token, "Token " + wes.Token} {
			r := auRaw(t, s, "GET", auV3+"/account/whoami", map[string]string{"Authorization": h})
			auError(t, "Authorization: "+h, r, 401, "M_MISSING_TOKEN")
		}
	})
}
