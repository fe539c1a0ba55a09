package clientapi_test

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/apitest"
	"github.com/aula-chat/aula/internal/devidp"
	"github.com/aula-chat/aula/storage/storagetest"
)

// ssoClientURL is the client that asks for a login token in these tests.
const ssoClientURL = "https://client.example/app/?x=1"

// ssoServer is a test server with the development identity provider
// mounted on its own listener and registered as provider "dev".
type ssoServer struct {
	*apitest.Server
	idp *devidp.Provider
}

// forEachSSOServer runs fn against an SSO server on every database.
func forEachSSOServer(t *testing.T, change func(c *config.Config), fn func(t *testing.T, s *ssoServer)) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		c := apitest.Config(t, dsn)
		c.Registration.Enabled = false
		c.PasswordLogin.Enabled = false
		var idp *devidp.Provider
		s := apitest.StartPublic(t, c, func(base string, c *config.Config) func(http.Handler) http.Handler {
			var err error
			idp, err = devidp.New(base+devidp.PathPrefix[1:], "test-secret", []string{base + "_aula/client/oidc/callback"})
			if err != nil {
				t.Fatal(err)
			}
			c.OIDCProviders = []config.OIDCProvider{{
				ID: "dev", Name: "Dev", Issuer: idp.Issuer(), ClientID: devidp.ClientID, ClientSecret: "test-secret",
				Scopes: []string{"openid", "profile", "email"},
			}}
			if change != nil {
				change(c)
			}
			return idp.Mount
		})
		fn(t, &ssoServer{Server: s, idp: idp})
	})
}

// browser is a cookie-keeping HTTP client that stops before leaving for
// the client's redirect URL.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host == "client.example" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

type page struct {
	status int
	body   string
	url    *url.URL
	header http.Header
}

func fetch(t *testing.T, c *http.Client, method, u string, form url.Values) page {
	t.Helper()
	var resp *http.Response
	var err error
	if method == "POST" {
		resp, err = c.PostForm(u, form)
	} else {
		resp, err = c.Get(u)
	}
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, body: string(b), url: resp.Request.URL, header: resp.Header}
}

// startSSO opens the redirect endpoint and returns the provider's login
// form page.
func startSSO(t *testing.T, s *ssoServer, c *http.Client) page {
	t.Helper()
	p := fetch(t, c, "GET", s.URL+"/_matrix/client/v3/login/sso/redirect?redirectUrl="+url.QueryEscape(ssoClientURL), nil)
	if p.status != 200 || !strings.Contains(p.body, "never use in production") || p.url.Query().Get("authRequestID") == "" {
		t.Fatalf("login form: %d %s %s", p.status, p.url, p.body)
	}
	return p
}

// submitLogin fills in the provider's login form.
func submitLogin(t *testing.T, c *http.Client, form page, user, password, action string) page {
	t.Helper()
	return fetch(t, c, "POST", form.url.String(), url.Values{
		"authRequestID": {form.url.Query().Get("authRequestID")}, "username": {user}, "password": {password}, "action": {action},
	})
}

var continueLink = regexp.MustCompile(`id="continue" href="([^"]+)"`)

// loginToken extracts the loginToken from the confirmation page.
func loginToken(t *testing.T, p page) string {
	t.Helper()
	if p.status != 200 || !strings.Contains(p.body, "Continue to client.example") {
		t.Fatalf("confirmation page: %d %s", p.status, p.body)
	}
	m := continueLink.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no continue link in %s", p.body)
	}
	u, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != "client.example" || u.Query().Get("x") != "1" {
		t.Fatalf("continue link %s does not keep the client URL", u)
	}
	tok := u.Query().Get("loginToken")
	if tok == "" {
		t.Fatalf("no loginToken in %s", u)
	}
	return tok
}

// ssoSignIn runs the whole browser flow and returns the login token.
func ssoSignIn(t *testing.T, s *ssoServer, user string) string {
	t.Helper()
	c := browser(t)
	return loginToken(t, submitLogin(t, c, startSSO(t, s, c), user, user, "login"))
}

func tokenLogin(s *ssoServer, token string) *apitest.Response {
	return s.Do("POST", "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.token", "token": token})
}

func TestSSOLoginFlow(t *testing.T) {
	forEachSSOServer(t, nil, func(t *testing.T, s *ssoServer) {
		flows := s.Do("GET", "/_matrix/client/v3/login", "", nil).Expect(t, 200, "")
		raw := string(flows.Body)
		if !strings.Contains(raw, `"type":"m.login.sso"`) || !strings.Contains(raw, `"identity_providers":[{"id":"dev","name":"Dev"}]`) ||
			!strings.Contains(raw, `"type":"m.login.token"`) || strings.Contains(raw, "m.login.password") {
			t.Fatalf("GET /login: %s", raw)
		}

		r := tokenLogin(s, ssoSignIn(t, s, "alice")).Expect(t, 200, "")
		alice := r.String("user_id")
		if alice != "@alice:"+apitest.ServerName || r.String("access_token") == "" {
			t.Fatalf("login: %s", r.Body)
		}
		who := s.Do("GET", "/_matrix/client/v3/account/whoami", r.String("access_token"), nil).Expect(t, 200, "")
		if who.String("user_id") != alice || who.String("device_id") != r.String("device_id") {
			t.Fatalf("whoami: %s", who.Body)
		}
		prof := s.Do("GET", "/_matrix/client/v3/profile/"+url.PathEscape(alice)+"/displayname", r.String("access_token"), nil).Expect(t, 200, "")
		if prof.String("displayname") != "Alice Example" {
			t.Fatalf("display name: %s", prof.Body)
		}
		threepids := s.Do("GET", "/_matrix/client/v3/account/3pid", r.String("access_token"), nil).Expect(t, 200, "")
		if !strings.Contains(string(threepids.Body), `"address":"alice@example.org"`) || !strings.Contains(string(threepids.Body), `"medium":"email"`) {
			t.Fatalf("GET /account/3pid: %s", threepids.Body)
		}
		if p, err := s.App.DB.ThreePIDs(t.Context(), alice); err != nil || len(p) != 1 || p[0].Address != "alice@example.org" {
			t.Fatalf("stored 3pids: %v %v", p, err)
		}

		// The second sign-in finds the same account, and so does a sign-in
		// after the provider renamed the user.
		again := tokenLogin(s, ssoSignIn(t, s, "alice")).Expect(t, 200, "")
		if again.String("user_id") != alice || again.String("device_id") == r.String("device_id") {
			t.Fatalf("second login: %s", again.Body)
		}
		if err := s.idp.SetUsername("alice", "alice.renamed"); err != nil {
			t.Fatal(err)
		}
		c := browser(t)
		tok := loginToken(t, submitLogin(t, c, startSSO(t, s, c), "alice.renamed", "alice", "login"))
		if got := tokenLogin(s, tok).Expect(t, 200, "").String("user_id"); got != alice {
			t.Fatalf("after rename: %s, want %s", got, alice)
		}

		// A new user whose localpart is taken gets another one, never the
		// existing account.
		if err := s.idp.SetUsername("bob", "alice"); err != nil {
			t.Fatal(err)
		}
		c = browser(t)
		tok = loginToken(t, submitLogin(t, c, startSSO(t, s, c), "alice", "bob", "login"))
		if got := tokenLogin(s, tok).Expect(t, 200, "").String("user_id"); got != "@alice1:"+apitest.ServerName {
			t.Fatalf("collision: %s", got)
		}
	})
}

func TestSSOLoginTokenSingleUseAndExpiry(t *testing.T) {
	forEachSSOServer(t, nil, func(t *testing.T, s *ssoServer) {
		tok := ssoSignIn(t, s, "carol")
		tokenLogin(s, tok).Expect(t, 200, "")
		tokenLogin(s, tok).Expect(t, 403, "M_FORBIDDEN")
		tokenLogin(s, "alt_made-up").Expect(t, 403, "M_FORBIDDEN")

		tok = ssoSignIn(t, s, "carol")
		s.App.Auth.SetClock(func() time.Time { return time.Now().Add(3 * time.Minute) })
		tokenLogin(s, tok).Expect(t, 403, "M_FORBIDDEN")
		s.App.Auth.SetClock(nil)
	})
}

func TestSSONegative(t *testing.T) {
	forEachSSOServer(t, func(c *config.Config) {
		c.OIDCProviders[0].AttributeRequirements = []config.AttributeRequirement{{Attribute: "affiliation", Value: "staff"}}
	}, func(t *testing.T, s *ssoServer) {
		// Missing cookie: the callback arrives in another browser.
		c := browser(t)
		form := startSSO(t, s, c)
		other := browser(t)
		noFollow := *c
		noFollow.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if strings.Contains(req.URL.Path, "/oidc/callback") {
				return http.ErrUseLastResponse
			}
			return nil
		}
		p := submitLogin(t, &noFollow, form, "bob", "bob", "login")
		if p.status != http.StatusFound {
			t.Fatalf("expected a redirect to the callback, got %d %s", p.status, p.body)
		}
		callback := p.header.Get("Location")
		got := fetch(t, other, "GET", callback, nil)
		if got.status != 400 || !strings.Contains(got.body, "cookie") {
			t.Fatalf("missing cookie: %d %s", got.status, got.body)
		}
		// Tampered state, in the right browser.
		u, _ := url.Parse(callback)
		q := u.Query()
		q.Set("state", q.Get("state")+"x")
		u.RawQuery = q.Encode()
		got = fetch(t, c, "GET", u.String(), nil)
		if got.status != 400 || !strings.Contains(got.body, "does not belong") {
			t.Fatalf("tampered state: %d %s", got.status, got.body)
		}
		// The session cookie is gone after one use: replaying fails too.
		got = fetch(t, c, "GET", callback, nil)
		if got.status != 400 {
			t.Fatalf("replayed callback: %d %s", got.status, got.body)
		}

		// Failed attribute requirement: alice is a student.
		c = browser(t)
		got = submitLogin(t, c, startSSO(t, s, c), "alice", "alice", "login")
		if got.status != 403 || !strings.Contains(got.body, "not authorised") {
			t.Fatalf("attribute requirement: %d %s", got.status, got.body)
		}
		if _, err := s.App.DB.User(t.Context(), "@alice:"+apitest.ServerName); err == nil {
			t.Fatal("an account was created despite the failed requirement")
		}
		// Denied at the provider.
		c = browser(t)
		got = submitLogin(t, c, startSSO(t, s, c), "", "", "cancel")
		if got.status != 403 || !strings.Contains(got.body, "declined") {
			t.Fatalf("denied: %d %s", got.status, got.body)
		}
		// bob (staff) passes.
		tokenLogin(s, ssoSignIn(t, s, "bob")).Expect(t, 200, "")

		// Unknown provider; missing redirectUrl.
		s.Do("GET", "/_matrix/client/v3/login/sso/redirect/nope?redirectUrl=https%3A%2F%2Fx.example%2F", "", nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("GET", "/_matrix/client/v3/login/sso/redirect", "", nil).Expect(t, 400, "M_MISSING_PARAM")
		// No password login, no registration.
		s.Do("POST", "/_matrix/client/v3/login", "", map[string]any{
			"type": "m.login.password", "identifier": map[string]string{"type": "m.id.user", "user": "bob"}, "password": "bob",
		}).Expect(t, 403, "M_FORBIDDEN")
		s.Do("POST", "/_matrix/client/v3/register", "", map[string]any{
			"username": "mallory", "password": "secret-password", "auth": map[string]string{"type": "m.login.dummy"},
		}).Expect(t, 403, "M_FORBIDDEN")
	})
}

func TestSSOWhitelistedClientRedirects(t *testing.T) {
	forEachSSOServer(t, func(c *config.Config) { c.SSO.ClientWhitelist = []string{"client.example"} }, func(t *testing.T, s *ssoServer) {
		c := browser(t)
		p := submitLogin(t, c, startSSO(t, s, c), "bob", "bob", "login")
		if p.status != http.StatusFound {
			t.Fatalf("want a redirect to the client, got %d %s", p.status, p.body)
		}
		u, _ := url.Parse(p.header.Get("Location"))
		if u.Host != "client.example" || u.Query().Get("loginToken") == "" {
			t.Fatalf("redirect to %s", u)
		}
		tokenLogin(s, u.Query().Get("loginToken")).Expect(t, 200, "")
	})
}

func TestSSOUIADeleteDevices(t *testing.T) {
	forEachSSOServer(t, nil, func(t *testing.T, s *ssoServer) {
		first := tokenLogin(s, ssoSignIn(t, s, "carol")).Expect(t, 200, "")
		second := tokenLogin(s, ssoSignIn(t, s, "carol")).Expect(t, 200, "")
		token := first.String("access_token")
		body := map[string]any{"devices": []string{second.String("device_id")}}
		r := s.Do("POST", "/_matrix/client/v3/delete_devices", token, body).Expect(t, 401, "")
		session := r.String("session")
		if !strings.Contains(string(r.Body), `{"stages":["m.login.sso"]}`) || session == "" {
			t.Fatalf("flows: %s", r.Body)
		}
		// Not completed yet.
		body["auth"] = map[string]any{"session": session}
		s.Do("POST", "/_matrix/client/v3/delete_devices", token, body).Expect(t, 401, "")

		// Someone else's identity does not complete the stage.
		c := browser(t)
		fb := fetch(t, c, "GET", s.URL+"/_matrix/client/v3/auth/m.login.sso/fallback/web?session="+url.QueryEscape(session), nil)
		m := continueLink.FindStringSubmatch(fb.body)
		if fb.status != 200 || m == nil {
			t.Fatalf("fallback page: %d %s", fb.status, fb.body)
		}
		start := html.UnescapeString(m[1])
		form := fetch(t, c, "GET", start, nil)
		got := submitLogin(t, c, form, "alice", "alice", "login")
		if got.status != 403 {
			t.Fatalf("other identity: %d %s", got.status, got.body)
		}
		s.Do("POST", "/_matrix/client/v3/delete_devices", token, body).Expect(t, 401, "")

		// Carol herself does.
		form = fetch(t, c, "GET", start, nil)
		got = submitLogin(t, c, form, "carol", "carol", "login")
		if got.status != 200 || !strings.Contains(got.body, "window.onAuthDone") || !strings.Contains(got.body, `postMessage("authDone"`) {
			t.Fatalf("done page: %d %s", got.status, got.body)
		}
		s.Do("POST", "/_matrix/client/v3/delete_devices", token, body).Expect(t, 200, "")
		s.Do("GET", "/_matrix/client/v3/account/whoami", second.String("access_token"), nil).Expect(t, 401, "M_UNKNOWN_TOKEN")
	})
}

func TestSSOBackchannelLogout(t *testing.T) {
	forEachSSOServer(t, nil, func(t *testing.T, s *ssoServer) {
		old := tokenLogin(s, ssoSignIn(t, s, "alice")).Expect(t, 200, "")
		latest := tokenLogin(s, ssoSignIn(t, s, "alice")).Expect(t, 200, "")
		post := func(form url.Values) int {
			resp, err := http.PostForm(s.URL+"/_aula/client/oidc/backchannel_logout", form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if got := post(url.Values{"logout_token": {"a.b.c"}}); got != 400 {
			t.Fatalf("garbage token: %d", got)
		}
		lt, err := s.idp.LogoutToken("alice")
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(lt, ".")
		if got := post(url.Values{"logout_token": {parts[0] + "." + parts[1] + ".AAAA"}}); got != 400 {
			t.Fatalf("bad signature: %d", got)
		}
		if got := post(url.Values{"logout_token": {lt}}); got != 200 {
			t.Fatalf("logout: %d", got)
		}
		// Only the device of that provider session is gone.
		s.Do("GET", "/_matrix/client/v3/account/whoami", latest.String("access_token"), nil).Expect(t, 401, "M_UNKNOWN_TOKEN")
		s.Do("GET", "/_matrix/client/v3/account/whoami", old.String("access_token"), nil).Expect(t, 200, "")
	})
}
