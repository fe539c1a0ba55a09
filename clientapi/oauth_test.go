package clientapi_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
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
)

// The OAuth 2.0 API (clientapi/oauth.go, package oauth), driven over HTTP
// with the development identity provider as the upstream sign-in.

const (
	oauthPrefix        = "/_aula/oauth2/"
	webClientHost      = "app.example.org"
	unstableAPIScope   = "urn:matrix:org.matrix.msc2967.client:api:*"
	unstableDeviceTok  = "urn:matrix:org.matrix.msc2967.client:device:"
	stableAPIScope     = "urn:matrix:client:api:*"
	stableDeviceTok    = "urn:matrix:client:device:"
	elementXRedirect   = "io.element:/callback"
	webClientRedirect  = "https://" + webClientHost + "/callback?x=1"
	testCodeVerifier   = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-the-verifier"
	otherCodeVerifier  = "another-verifier-that-is-long-enough-0123456789abcdef"
	elementXClientName = "Element"
)

// elementXMetadata is what Element X registers (matrix-rust-sdk).
func elementXMetadata() map[string]any {
	return map[string]any{
		"client_name": elementXClientName, "client_uri": "https://element.io",
		"logo_uri": "https://element.io/mobile-icon.png", "tos_uri": "https://element.io/acceptable-use-policy-terms",
		"policy_uri": "https://element.io/privacy", "redirect_uris": []string{elementXRedirect},
		"application_type": "native", "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
	}
}

// webMetadata is a web client's registration (as Element Web sends it).
func webMetadata() map[string]any {
	return map[string]any{
		"client_name": "Web Chat", "client_uri": "https://" + webClientHost + "/",
		"redirect_uris": []string{webClientRedirect}, "application_type": "web",
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"},
		"response_types": []string{"code"},
	}
}

// oauthBrowser keeps cookies and stops before leaving aula for a client:
// a native app's private-use scheme or the web client's host.
func oauthBrowser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "http" || req.URL.Host == webClientHost {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// noRedirects is a client that follows no redirect at all.
var noRedirects = &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}}

// oauthAnswer is an answer of an OAuth endpoint.
type oauthAnswer struct {
	status int
	header http.Header
	body   string
	json   map[string]any
}

func (a oauthAnswer) str(k string) string { s, _ := a.json[k].(string); return s }

// expect fails unless the answer has the status and (if not empty) the
// OAuth error code, and is never cached.
func (a oauthAnswer) expect(t *testing.T, status int, code string) oauthAnswer {
	t.Helper()
	if a.status != status || a.str("error") != code {
		t.Fatalf("got %d %q, want %d %q: %s", a.status, a.str("error"), status, code, a.body)
	}
	if a.header.Get("Cache-Control") != "no-store" || a.header.Get("Pragma") != "no-cache" {
		t.Fatalf("cache headers %q %q, want no-store and no-cache", a.header.Get("Cache-Control"), a.header.Get("Pragma"))
	}
	if !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		t.Fatalf("Content-Type %q", a.header.Get("Content-Type"))
	}
	return a
}

func oauthDo(t *testing.T, req *http.Request) oauthAnswer {
	t.Helper()
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := oauthAnswer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	_ = json.Unmarshal(b, &a.json)
	return a
}

// postForm posts an application/x-www-form-urlencoded body to an OAuth
// endpoint ("token", "revoke").
func postForm(t *testing.T, s *ssoServer, endpoint string, form url.Values) oauthAnswer {
	t.Helper()
	req, _ := http.NewRequest("POST", s.URL+oauthPrefix+endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return oauthDo(t, req)
}

// registerClient posts client metadata to the registration endpoint.
func registerClient(t *testing.T, baseURL string, md any) oauthAnswer {
	t.Helper()
	raw, _ := json.Marshal(md)
	req, _ := http.NewRequest("POST", baseURL+oauthPrefix+"register", strings.NewReader(string(raw)))
	req.Header.Set("Content-Type", "application/json")
	return oauthDo(t, req)
}

// registered registers md and returns the client ID.
func registered(t *testing.T, s *ssoServer, md any) string {
	t.Helper()
	id := registerClient(t, s.URL, md).expect(t, http.StatusCreated, "").str("client_id")
	if id == "" {
		t.Fatal("registration returned no client_id")
	}
	return id
}

func challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authzQuery is a complete authorization request; tests change fields.
func authzQuery(clientID, redirect, device string) url.Values {
	return url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect},
		"scope": {unstableAPIScope + " " + unstableDeviceTok + device},
		"state": {"st-" + device}, "response_mode": {"query"},
		"code_challenge": {challenge(testCodeVerifier)}, "code_challenge_method": {"S256"},
	}
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// consentFor runs the browser from the authorization endpoint through the
// identity provider's login as user, and returns the consent page.
func consentFor(t *testing.T, s *ssoServer, c *http.Client, q url.Values, user string) page {
	t.Helper()
	form := fetch(t, c, "GET", s.URL+oauthPrefix+"authorize?"+q.Encode(), nil)
	if form.status != 200 || !strings.Contains(form.body, "never use in production") {
		t.Fatalf("identity provider's login form: %d %s %s", form.status, form.url, form.body)
	}
	p := submitLogin(t, c, form, user, user, "login")
	if p.status != 200 || p.url.Path != oauthPrefix+"consent" {
		t.Fatalf("consent page: %d %s %s", p.status, p.url, p.body)
	}
	return p
}

// decide answers the consent page; the answer is the redirect to the
// client, not followed.
func decide(t *testing.T, s *ssoServer, c *http.Client, consent page, action string) page {
	t.Helper()
	m := csrfField.FindStringSubmatch(consent.body)
	if m == nil {
		t.Fatalf("no CSRF token on the consent page: %s", consent.body)
	}
	return fetch(t, c, "POST", s.URL+oauthPrefix+"consent", url.Values{"csrf_token": {html.UnescapeString(m[1])}, "action": {action}})
}

// callback reads the parameters the client receives from the redirect to
// its redirect URI (query or fragment).
func callback(t *testing.T, p page, wantPrefix, mode string) url.Values {
	t.Helper()
	if p.status != http.StatusSeeOther {
		t.Fatalf("want a 303 to the client, got %d %s", p.status, p.body)
	}
	loc := p.header.Get("Location")
	if !strings.HasPrefix(loc, wantPrefix) {
		t.Fatalf("redirect to %q, want %s…", loc, wantPrefix)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	raw := u.RawQuery
	if mode == "fragment" {
		raw = u.Fragment
	}
	v, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatalf("parameters of %s: %v", loc, err)
	}
	return v
}

// authorizeCode runs a whole authorization as user and returns the code.
func authorizeCode(t *testing.T, s *ssoServer, q url.Values, user string) string {
	t.Helper()
	c := oauthBrowser(t)
	got := callback(t, decide(t, s, c, consentFor(t, s, c, q, user), "allow"), q.Get("redirect_uri")+"?", "query")
	if got.Get("state") != q.Get("state") || got.Get("code") == "" || got.Get("error") != "" {
		t.Fatalf("callback parameters %v", got)
	}
	return got.Get("code")
}

func exchange(t *testing.T, s *ssoServer, clientID, redirect, code, verifier string) oauthAnswer {
	t.Helper()
	return postForm(t, s, "token", url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
		"client_id": {clientID}, "code_verifier": {verifier},
	})
}

func refreshGrant(t *testing.T, s *ssoServer, clientID, refresh string) oauthAnswer {
	t.Helper()
	return postForm(t, s, "token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {clientID}})
}

func whoami(s *ssoServer, token string) *apitest.Response {
	return s.Do("GET", "/_matrix/client/v3/account/whoami", token, nil)
}

func TestOAuthElementXFlow(t *testing.T) {
	forEachSSOServer(t, withConsent(t), func(t *testing.T, s *ssoServer) {
		base := s.Config.PublicBaseURL

		// Discovery: stable and unstable paths, the spec's required fields.
		for _, path := range []string{"/_matrix/client/v1/auth_metadata", "/_matrix/client/unstable/org.matrix.msc2965/auth_metadata"} {
			md := s.Do("GET", path, "", nil).Expect(t, 200, "")
			want := map[string]any{
				"issuer": base, "authorization_endpoint": base + "_aula/oauth2/authorize", "token_endpoint": base + "_aula/oauth2/token",
				"registration_endpoint": base + "_aula/oauth2/register", "revocation_endpoint": base + "_aula/oauth2/revoke",
				"response_types_supported": []any{"code"}, "response_modes_supported": []any{"query", "fragment"},
				"grant_types_supported":            []any{"authorization_code", "refresh_token"},
				"code_challenge_methods_supported": []any{"S256"},
			}
			for k, v := range want {
				if fmt.Sprint(md.JSON[k]) != fmt.Sprint(v) {
					t.Errorf("%s: %s = %v, want %v", path, k, md.JSON[k], v)
				}
			}
			if _, ok := md.JSON["prompt_values_supported"]; ok {
				t.Errorf("%s advertises prompt values: %s", path, md.Body)
			}
		}
		// GET /login prefers m.login.sso for OAuth-aware clients, and still
		// offers m.login.token.
		flows := s.Do("GET", "/_matrix/client/v3/login", "", nil).Expect(t, 200, "")
		if raw := string(flows.Body); !strings.Contains(raw, `"oauth_aware_preferred":true`) || !strings.Contains(raw, `"type":"m.login.token"`) {
			t.Fatalf("GET /login: %s", raw)
		}
		for _, f := range flows.JSON["flows"].([]any) {
			fl := f.(map[string]any)
			if _, ok := fl["oauth_aware_preferred"]; ok != (fl["type"] == "m.login.sso") {
				t.Errorf("flow %v", fl)
			}
		}

		// Registration, twice: the same metadata gets the same client ID.
		reg := registerClient(t, s.URL, elementXMetadata()).expect(t, http.StatusCreated, "")
		clientID := reg.str("client_id")
		if clientID == "" || reg.str("application_type") != "native" || reg.str("token_endpoint_auth_method") != "none" ||
			fmt.Sprint(reg.json["redirect_uris"]) != "[io.element:/callback]" || fmt.Sprint(reg.json["grant_types"]) != "[authorization_code refresh_token]" ||
			reg.str("client_uri") != "https://element.io" || reg.str("client_name") != "Element" {
			t.Fatalf("registration: %s", reg.body)
		}
		if again := registered(t, s, elementXMetadata()); again != clientID {
			t.Fatalf("second registration got client %s, want %s", again, clientID)
		}

		// Authorization with PKCE and the unstable scopes, through the
		// provider's login and the consent page.
		c := oauthBrowser(t)
		q := authzQuery(clientID, elementXRedirect, "ELEMENTX01")
		consent := consentFor(t, s, c, q, "alice")
		for _, want := range []string{"Element", "(element.io)", "@alice:" + apitest.ServerName, "as a new session", "ELEMENTX01",
			`<html lang="en">`, `method="post"`, `href="https://element.io/privacy"`} {
			if !strings.Contains(consent.body, want) {
				t.Errorf("consent page lacks %q: %s", want, consent.body)
			}
		}
		if strings.Contains(consent.body, "<script") {
			t.Error("the consent page has a script")
		}
		if consent.header.Get("X-Frame-Options") != "DENY" || consent.header.Get("Content-Security-Policy") != "frame-ancestors 'none'" ||
			consent.header.Get("Cache-Control") != "no-store" {
			t.Errorf("consent page headers %v", consent.header)
		}
		got := callback(t, decide(t, s, c, consent, "allow"), "io.element:/callback?", "query")
		if got.Get("state") != "st-ELEMENTX01" || got.Get("code") == "" || len(got) != 2 {
			t.Fatalf("callback parameters %v", got)
		}

		// Token exchange.
		tok := exchange(t, s, clientID, elementXRedirect, got.Get("code"), testCodeVerifier).expect(t, 200, "")
		access, refresh := tok.str("access_token"), tok.str("refresh_token")
		if access == "" || refresh == "" || tok.str("token_type") != "Bearer" || tok.json["expires_in"] != float64(300) ||
			tok.str("scope") != unstableAPIScope+" "+unstableDeviceTok+"ELEMENTX01" {
			t.Fatalf("token answer: %s", tok.body)
		}
		who := whoami(s, access).Expect(t, 200, "")
		if who.String("user_id") != "@alice:"+apitest.ServerName || who.String("device_id") != "ELEMENTX01" {
			t.Fatalf("whoami: %s", who.Body)
		}
		dev := s.Do("GET", "/_matrix/client/v3/devices/ELEMENTX01", access, nil).Expect(t, 200, "")
		if dev.String("display_name") != "Element" {
			t.Errorf("device: %s", dev.Body)
		}
		// An ordinary user: the consent gate and the notices apply.
		s.Do("POST", "/_matrix/client/v3/createRoom", access, map[string]any{}).Expect(t, 403, "M_CONSENT_NOT_GIVEN")
		noticeRoom(t, s.Server, apitest.User{ID: who.String("user_id"), Token: access, DeviceID: "ELEMENTX01"})

		// Refresh rotates both tokens; the old access token is revoked at
		// once, the old refresh token once the new tokens are used.
		ref := refreshGrant(t, s, clientID, refresh).expect(t, 200, "")
		access2, refresh2 := ref.str("access_token"), ref.str("refresh_token")
		if access2 == "" || access2 == access || refresh2 == "" || refresh2 == refresh || ref.str("token_type") != "Bearer" ||
			ref.str("scope") != tok.str("scope") || ref.json["expires_in"] != float64(300) {
			t.Fatalf("refresh answer: %s", ref.body)
		}
		whoami(s, access).Expect(t, 401, "M_UNKNOWN_TOKEN")
		if whoami(s, access2).Expect(t, 200, "").String("device_id") != "ELEMENTX01" {
			t.Fatal("refreshed token lost its device")
		}
		refreshGrant(t, s, clientID, refresh).expect(t, 400, "invalid_grant")

		// Revocation logs the device out; unknown tokens are no error.
		postForm(t, s, "revoke", url.Values{"token": {access2}, "token_type_hint": {"access_token"}, "client_id": {clientID}}).expect(t, 200, "")
		whoami(s, access2).Expect(t, 401, "M_UNKNOWN_TOKEN")
		refreshGrant(t, s, clientID, refresh2).expect(t, 400, "invalid_grant")
		if _, err := s.App.DB.Device(t.Context(), "@alice:"+apitest.ServerName, "ELEMENTX01"); err == nil {
			t.Error("the revoked device still exists")
		}
		postForm(t, s, "revoke", url.Values{"token": {access2}}).expect(t, 200, "")
		postForm(t, s, "revoke", url.Values{"token": {"made-up"}}).expect(t, 200, "")
		postForm(t, s, "revoke", url.Values{}).expect(t, 400, "invalid_request")

		// Revoking by refresh token works the same.
		tok = exchange(t, s, clientID, elementXRedirect, authorizeCode(t, s, authzQuery(clientID, elementXRedirect, "ELEMENTX02"), "alice"), testCodeVerifier).expect(t, 200, "")
		postForm(t, s, "revoke", url.Values{"token": {tok.str("refresh_token")}, "token_type_hint": {"refresh_token"}}).expect(t, 200, "")
		whoami(s, tok.str("access_token")).Expect(t, 401, "M_UNKNOWN_TOKEN")

		// Browsers may call every JSON endpoint from another origin.
		for _, ep := range []string{"/_matrix/client/v1/auth_metadata", oauthPrefix + "register", oauthPrefix + "token", oauthPrefix + "revoke"} {
			req, _ := http.NewRequest("OPTIONS", s.URL+ep, nil)
			req.Header.Set("Origin", "https://app.element.io")
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type")
			a := oauthDo(t, req)
			if a.status != 200 || a.header.Get("Access-Control-Allow-Origin") != "*" ||
				!strings.Contains(a.header.Get("Access-Control-Allow-Methods"), "POST") ||
				!strings.Contains(a.header.Get("Access-Control-Allow-Headers"), "Content-Type") {
				t.Errorf("preflight %s: %d %v", ep, a.status, a.header)
			}
		}
		if a := postForm(t, s, "token", url.Values{}); a.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("token answer lacks CORS: %v", a.header)
		}
	})
}

func TestOAuthWebClient(t *testing.T) {
	forEachSSOServer(t, nil, func(t *testing.T, s *ssoServer) {
		clientID := registered(t, s, webMetadata())
		q := authzQuery(clientID, webClientRedirect, "WEBDEVICE1")
		q.Set("response_mode", "fragment")
		q.Set("scope", "openid "+stableAPIScope+" "+stableDeviceTok+"WEBDEVICE1")
		c := oauthBrowser(t)
		p := decide(t, s, c, consentFor(t, s, c, q, "bob"), "allow")
		got := callback(t, p, webClientRedirect+"#", "fragment")
		if got.Get("state") != "st-WEBDEVICE1" || got.Get("code") == "" {
			t.Fatalf("fragment parameters %v", got)
		}
		if u, _ := url.Parse(p.header.Get("Location")); u.RawQuery != "x=1" {
			t.Fatalf("the registered query was not kept: %s", u)
		}
		tok := exchange(t, s, clientID, webClientRedirect, got.Get("code"), testCodeVerifier).expect(t, 200, "")
		// "openid" is not granted; the stable tokens come back as asked.
		if tok.str("scope") != stableAPIScope+" "+stableDeviceTok+"WEBDEVICE1" {
			t.Fatalf("scope %q", tok.str("scope"))
		}
		if whoami(s, tok.str("access_token")).Expect(t, 200, "").String("device_id") != "WEBDEVICE1" {
			t.Fatal("wrong device")
		}

		// Deny: access_denied with the state, in the fragment.
		q = authzQuery(clientID, webClientRedirect, "WEBDEVICE2")
		q.Set("response_mode", "fragment")
		c = oauthBrowser(t)
		got = callback(t, decide(t, s, c, consentFor(t, s, c, q, "bob"), "deny"), webClientRedirect+"#", "fragment")
		if got.Get("error") != "access_denied" || got.Get("state") != "st-WEBDEVICE2" || got.Get("code") != "" {
			t.Fatalf("deny: %v", got)
		}
		if _, err := s.App.DB.Device(t.Context(), "@bob:"+apitest.ServerName, "WEBDEVICE2"); err == nil {
			t.Fatal("a denied authorization created a device")
		}
	})
}

func TestOAuthRegistrationRefusals(t *testing.T) {
	forEachSSOServer(t, nil, func(t *testing.T, s *ssoServer) {
		with := func(base map[string]any, changes map[string]any) map[string]any {
			for k, v := range changes {
				if v == nil {
					delete(base, k)
				} else {
					base[k] = v
				}
			}
			return base
		}
		x, web := elementXMetadata, webMetadata
		for _, tt := range []struct {
			name string
			md   any
			code string
		}{
			{"scheme not the reversed client_uri host", with(x(), map[string]any{"redirect_uris": []string{"com.example:/callback"}}), "invalid_redirect_uri"},
			{"scheme of a look-alike host", with(x(), map[string]any{"redirect_uris": []string{"io.elementx:/callback"}}), "invalid_redirect_uri"},
			{"private-use scheme with an authority", with(x(), map[string]any{"redirect_uris": []string{"io.element://callback"}}), "invalid_redirect_uri"},
			{"fragment", with(x(), map[string]any{"redirect_uris": []string{"io.element:/callback#x"}}), "invalid_redirect_uri"},
			{"loopback with a port", with(x(), map[string]any{"redirect_uris": []string{"http://127.0.0.1:8080/callback"}}), "invalid_redirect_uri"},
			{"http on another host", with(x(), map[string]any{"redirect_uris": []string{"http://element.io/callback"}}), "invalid_redirect_uri"},
			{"no redirect URIs", with(x(), map[string]any{"redirect_uris": nil}), "invalid_redirect_uri"},
			{"too many redirect URIs", with(x(), map[string]any{"redirect_uris": []string{"io.element:/1", "io.element:/2", "io.element:/3", "io.element:/4",
				"io.element:/5", "io.element:/6", "io.element:/7", "io.element:/8", "io.element:/9", "io.element:/10", "io.element:/11"}}), "invalid_redirect_uri"},
			{"redirect URI too long", with(x(), map[string]any{"redirect_uris": []string{"io.element:/" + strings.Repeat("a", 600)}}), "invalid_redirect_uri"},
			{"web client with a private-use scheme", with(web(), map[string]any{"redirect_uris": []string{"org.example.app:/callback"}}), "invalid_redirect_uri"},
			{"web client on another host", with(web(), map[string]any{"redirect_uris": []string{"https://evil.example/callback"}}), "invalid_redirect_uri"},
			{"web client on a look-alike host", with(web(), map[string]any{"redirect_uris": []string{"https://xapp.example.org/callback"}}), "invalid_redirect_uri"},
			{"web client on http localhost", with(web(), map[string]any{"redirect_uris": []string{"http://localhost/callback"}}), "invalid_redirect_uri"},
			{"https with a user", with(web(), map[string]any{"redirect_uris": []string{"https://u:p@app.example.org/callback"}}), "invalid_redirect_uri"},
			{"no client_uri", with(x(), map[string]any{"client_uri": nil}), "invalid_client_metadata"},
			{"http client_uri", with(x(), map[string]any{"client_uri": "http://element.io"}), "invalid_client_metadata"},
			{"logo on another host", with(x(), map[string]any{"logo_uri": "https://evil.example/logo.png"}), "invalid_client_metadata"},
			{"confidential client", with(x(), map[string]any{"token_endpoint_auth_method": "client_secret_basic"}), "invalid_client_metadata"},
			{"no authorization_code grant", with(x(), map[string]any{"grant_types": []string{"refresh_token"}}), "invalid_client_metadata"},
			{"no code response type", with(x(), map[string]any{"response_types": []string{"token"}}), "invalid_client_metadata"},
			{"unknown application type", with(x(), map[string]any{"application_type": "desktop"}), "invalid_client_metadata"},
			{"client_name too long", with(x(), map[string]any{"client_name": strings.Repeat("n", 300)}), "invalid_client_metadata"},
			{"client_name with control characters", with(x(), map[string]any{"client_name": "Ele\u0000ment"}), "invalid_client_metadata"},
			{"wrong type", with(x(), map[string]any{"redirect_uris": "io.element:/callback"}), "invalid_client_metadata"},
			{"not an object", []string{"x"}, "invalid_client_metadata"},
		} {
			t.Run(tt.name, func(t *testing.T) { registerClient(t, s.URL, tt.md).expect(t, 400, tt.code) })
		}
		// Accepted native forms: loopback, a subdomain's scheme, an opaque
		// path. Unknown grant types are dropped; defaults are filled in.
		ok := registerClient(t, s.URL, with(x(), map[string]any{
			"redirect_uris":              []string{"http://127.0.0.1/callback", "http://[::1]/cb", "http://localhost/", "io.element.app:/cb", "io.element:cb"},
			"grant_types":                []string{"authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange"},
			"token_endpoint_auth_method": nil, "response_types": nil, "client_name#fr": "Élément",
		})).expect(t, http.StatusCreated, "")
		if fmt.Sprint(ok.json["grant_types"]) != "[authorization_code refresh_token]" || ok.str("token_endpoint_auth_method") != "none" ||
			fmt.Sprint(ok.json["response_types"]) != "[code]" || strings.Contains(ok.body, "Élément") {
			t.Fatalf("registration: %s", ok.body)
		}
		if web := registerClient(t, s.URL, with(web(), map[string]any{"application_type": nil})).expect(t, http.StatusCreated, ""); web.str("application_type") != "web" {
			t.Fatalf("default application type: %s", web.body)
		}

		// New registrations are rate-limited per address; a repeated
		// registration is not.
		first := registered(t, s, elementXMetadata())
		var limited oauthAnswer
		for i := 0; i < 20; i++ {
			limited = registerClient(t, s.URL, with(web(), map[string]any{"client_name": fmt.Sprintf("Client %d", i)}))
			if limited.status != http.StatusCreated {
				break
			}
		}
		limited.expect(t, http.StatusTooManyRequests, "invalid_request")
		if limited.header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		if again := registered(t, s, elementXMetadata()); again != first {
			t.Fatalf("repeated registration: %s, want %s", again, first)
		}
	})
}

// authorizeAnswer sends an authorization request without following it.
func authorizeAnswer(t *testing.T, s *ssoServer, q url.Values) (int, string, string) {
	t.Helper()
	resp, err := noRedirects.Get(s.URL + oauthPrefix + "authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

func TestOAuthAuthorizeRefusals(t *testing.T) {
	forEachSSOServer(t, nil, func(t *testing.T, s *ssoServer) {
		md := elementXMetadata()
		md["redirect_uris"] = []string{elementXRedirect, "http://127.0.0.1/callback"}
		clientID := registered(t, s, md)

		// No redirect for an unknown client or redirect URI: an error page.
		for name, q := range map[string]url.Values{
			"unknown client":             authzQuery("NOSUCHCLIENT", elementXRedirect, "DEVICE0001"),
			"unregistered redirect URI":  authzQuery(clientID, "io.element:/elsewhere", "DEVICE0001"),
			"no redirect URI":            authzQuery(clientID, "", "DEVICE0001"),
			"loopback with another path": authzQuery(clientID, "http://127.0.0.1:4567/other", "DEVICE0001"),
			"loopback on another host":   authzQuery(clientID, "http://localhost:4567/callback", "DEVICE0001"),
			"redirect URI given twice": func() url.Values {
				q := authzQuery(clientID, elementXRedirect, "DEVICE0001")
				q.Add("redirect_uri", "io.element:/x")
				return q
			}(),
			"unknown client, bad everything": {"client_id": {"x"}, "redirect_uri": {"https://evil.example/"}},
		} {
			status, loc, body := authorizeAnswer(t, s, q)
			if status != 400 || loc != "" || !strings.Contains(body, "<h1>") {
				t.Errorf("%s: %d Location %q %s", name, status, loc, body)
			}
		}

		// Other refusals go back to the client with error and state.
		for _, tt := range []struct {
			name   string
			change func(q url.Values)
			code   string
		}{
			{"no code challenge", func(q url.Values) { q.Del("code_challenge") }, "invalid_request"},
			{"no challenge method (plain)", func(q url.Values) { q.Del("code_challenge_method") }, "invalid_request"},
			{"plain challenge", func(q url.Values) { q.Set("code_challenge_method", "plain"); q.Set("code_challenge", testCodeVerifier) }, "invalid_request"},
			{"malformed challenge", func(q url.Values) { q.Set("code_challenge", "short") }, "invalid_request"},
			{"no response type", func(q url.Values) { q.Del("response_type") }, "invalid_request"},
			{"implicit grant", func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type"},
			{"no scope", func(q url.Values) { q.Del("scope") }, "invalid_scope"},
			{"no device", func(q url.Values) { q.Set("scope", unstableAPIScope) }, "invalid_scope"},
			{"two devices", func(q url.Values) {
				q.Set("scope", unstableAPIScope+" "+unstableDeviceTok+"DEVICE0001 "+stableDeviceTok+"DEVICE0002")
			}, "invalid_scope"},
			{"no API scope", func(q url.Values) { q.Set("scope", unstableDeviceTok+"DEVICE0001") }, "invalid_scope"},
			{"short device ID", func(q url.Values) { q.Set("scope", stableAPIScope+" "+stableDeviceTok+"AB") }, "invalid_scope"},
			{"device ID with odd characters", func(q url.Values) { q.Set("scope", stableAPIScope+" "+stableDeviceTok+"ABC/DEF!") }, "invalid_scope"},
			{"unknown scope", func(q url.Values) { q.Set("scope", q.Get("scope")+" urn:synapse:admin:*") }, "invalid_scope"},
			{"prompt=create", func(q url.Values) { q.Set("prompt", "create") }, "invalid_request"},
			{"prompt=none", func(q url.Values) { q.Set("prompt", "none") }, "login_required"},
			{"a parameter twice", func(q url.Values) { q.Add("scope", "x") }, "invalid_request"},
		} {
			q := authzQuery(clientID, elementXRedirect, "DEVICE0001")
			tt.change(q)
			status, loc, body := authorizeAnswer(t, s, q)
			if status != http.StatusFound || !strings.HasPrefix(loc, "io.element:/callback?") {
				t.Errorf("%s: %d Location %q %s", tt.name, status, loc, body)
				continue
			}
			u, _ := url.Parse(loc)
			if got := u.Query(); got.Get("error") != tt.code || got.Get("state") != "st-DEVICE0001" || got.Get("code") != "" {
				t.Errorf("%s: parameters %v, want error %s", tt.name, got, tt.code)
			}
		}
		// With response_mode=fragment, the error is in the fragment too.
		q := authzQuery(clientID, elementXRedirect, "DEVICE0001")
		q.Set("response_mode", "fragment")
		q.Del("code_challenge")
		if _, loc, _ := authorizeAnswer(t, s, q); !strings.HasPrefix(loc, "io.element:/callback#") || !strings.Contains(loc, "error=invalid_request") {
			t.Errorf("fragment error: %s", loc)
		}

		// A valid request goes to single sign-on (with the authorization
		// cookie); a registered loopback URI accepts any port.
		for _, redirect := range []string{elementXRedirect, "http://127.0.0.1:45678/callback"} {
			status, loc, _ := authorizeAnswer(t, s, authzQuery(clientID, redirect, "DEVICE0001"))
			if status != http.StatusFound || !strings.Contains(loc, "/_matrix/client/v3/login/sso/redirect?redirectUrl=") {
				t.Errorf("%s: %d %s", redirect, status, loc)
			}
		}
		// The whole flow works with the loopback port.
		code := authorizeCodeFor(t, s, authzQuery(clientID, "http://127.0.0.1:45678/callback", "LOOPBACK01"), "carol", "http://127.0.0.1:45678/callback?")
		exchange(t, s, clientID, "http://127.0.0.1:45678/callback", code, testCodeVerifier).expect(t, 200, "")
	})
}

// authorizeCodeFor is authorizeCode for a redirect whose prefix is given.
func authorizeCodeFor(t *testing.T, s *ssoServer, q url.Values, user, prefix string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), prefix) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	got := callback(t, decide(t, s, c, consentFor(t, s, c, q, user), "allow"), prefix, "query")
	return got.Get("code")
}

func TestOAuthTokenRefusals(t *testing.T) {
	forEachSSOServer(t, nil, func(t *testing.T, s *ssoServer) {
		clientID := registered(t, s, elementXMetadata())
		other := registered(t, s, webMetadata())
		newCode := func(device string) string {
			return authorizeCode(t, s, authzQuery(clientID, elementXRedirect, device), "alice")
		}

		// A wrong verifier fails, and uses the code up.
		code := newCode("DEVICEA001")
		exchange(t, s, clientID, elementXRedirect, code, otherCodeVerifier).expect(t, 400, "invalid_grant")
		exchange(t, s, clientID, elementXRedirect, code, testCodeVerifier).expect(t, 400, "invalid_grant")
		// Another client, another redirect URI, a malformed verifier.
		exchange(t, s, other, elementXRedirect, newCode("DEVICEA002"), testCodeVerifier).expect(t, 400, "invalid_grant")
		exchange(t, s, clientID, "io.element:/other", newCode("DEVICEA003"), testCodeVerifier).expect(t, 400, "invalid_grant")
		exchange(t, s, clientID, elementXRedirect, newCode("DEVICEA004"), "short").expect(t, 400, "invalid_grant")
		for _, d := range []string{"DEVICEA001", "DEVICEA002", "DEVICEA003", "DEVICEA004"} {
			if _, err := s.App.DB.Device(t.Context(), "@alice:"+apitest.ServerName, d); err == nil {
				t.Errorf("refused exchange created device %s", d)
			}
		}

		// Replay: refused, and the tokens of the first exchange revoked.
		code = newCode("DEVICEA005")
		tok := exchange(t, s, clientID, elementXRedirect, code, testCodeVerifier).expect(t, 200, "")
		whoami(s, tok.str("access_token")).Expect(t, 200, "")
		exchange(t, s, clientID, elementXRedirect, code, testCodeVerifier).expect(t, 400, "invalid_grant")
		whoami(s, tok.str("access_token")).Expect(t, 401, "M_UNKNOWN_TOKEN")
		refreshGrant(t, s, clientID, tok.str("refresh_token")).expect(t, 400, "invalid_grant")

		// Expiry, on the server's clock.
		code = newCode("DEVICEA006")
		s.App.OAuth.SetClock(func() time.Time { return time.Now().Add(6 * time.Minute) })
		exchange(t, s, clientID, elementXRedirect, code, testCodeVerifier).expect(t, 400, "invalid_grant")
		s.App.OAuth.SetClock(nil)

		// Malformed requests.
		code = newCode("DEVICEA007")
		exchange(t, s, "NOSUCHCLIENT", elementXRedirect, code, testCodeVerifier).expect(t, 401, "invalid_client")
		exchange(t, s, "", elementXRedirect, code, testCodeVerifier).expect(t, 401, "invalid_client")
		exchange(t, s, clientID, elementXRedirect, code, "").expect(t, 400, "invalid_request")
		exchange(t, s, clientID, "", code, testCodeVerifier).expect(t, 400, "invalid_request")
		postForm(t, s, "token", url.Values{"grant_type": {"password"}, "client_id": {clientID}}).expect(t, 400, "unsupported_grant_type")
		postForm(t, s, "token", url.Values{"client_id": {clientID}}).expect(t, 400, "invalid_request")
		req, _ := http.NewRequest("POST", s.URL+oauthPrefix+"token", strings.NewReader(`{"grant_type":"authorization_code"}`))
		req.Header.Set("Content-Type", "application/json")
		oauthDo(t, req).expect(t, 400, "invalid_request")
		// Those did not use the code up: it still works once.
		tok = exchange(t, s, clientID, elementXRedirect, code, testCodeVerifier).expect(t, 200, "")

		// Refresh tokens belong to their client and to this API.
		refreshGrant(t, s, other, tok.str("refresh_token")).expect(t, 400, "invalid_grant")
		refreshGrant(t, s, clientID, "").expect(t, 400, "invalid_request")
		refreshGrant(t, s, clientID, "art_made-up").expect(t, 400, "invalid_grant")
		legacy := s.Do("POST", "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.token", "token": ssoSignIn(t, s, "alice"), "refresh_token": true}).Expect(t, 200, "")
		refreshGrant(t, s, clientID, legacy.String("refresh_token")).expect(t, 400, "invalid_grant")
		refreshGrant(t, s, clientID, tok.str("refresh_token")).expect(t, 200, "")
	})
}

func TestOAuthConsentCSRF(t *testing.T) {
	forEachSSOServer(t, nil, func(t *testing.T, s *ssoServer) {
		clientID := registered(t, s, elementXMetadata())
		c := oauthBrowser(t)
		consent := consentFor(t, s, c, authzQuery(clientID, elementXRedirect, "CSRFDEV001"), "alice")
		for name, form := range map[string]url.Values{
			"no token":    {"action": {"allow"}},
			"wrong token": {"action": {"allow"}, "csrf_token": {"forged"}},
		} {
			p := fetch(t, c, "POST", s.URL+oauthPrefix+"consent", form)
			if p.status != 403 || p.header.Get("Location") != "" || p.url.Path != oauthPrefix+"consent" {
				t.Errorf("%s: %d %s %s", name, p.status, p.url, p.body)
			}
		}
		// Another browser (no authorization cookie) gets nowhere either.
		m := csrfField.FindStringSubmatch(consent.body)
		p := fetch(t, oauthBrowser(t), "POST", s.URL+oauthPrefix+"consent", url.Values{"action": {"allow"}, "csrf_token": {html.UnescapeString(m[1])}})
		if p.status != 400 || p.url.Path != oauthPrefix+"consent" {
			t.Errorf("other browser: %d %s", p.status, p.body)
		}
		if g := fetch(t, oauthBrowser(t), "GET", s.URL+oauthPrefix+"consent", nil); g.status != 400 {
			t.Errorf("consent page without authorization: %d", g.status)
		}
		// The real form still works, once.
		got := callback(t, decide(t, s, c, consent, "deny"), "io.element:/callback?", "query")
		if got.Get("error") != "access_denied" || got.Get("state") != "st-CSRFDEV001" {
			t.Fatalf("deny: %v", got)
		}
		if p := decide(t, s, c, consent, "allow"); p.status != 400 {
			t.Errorf("second answer: %d %s", p.status, p.body)
		}
	})
}

func TestOAuthSignInNeedsAuthorization(t *testing.T) {
	forEachSSOServer(t, nil, func(t *testing.T, s *ssoServer) {
		// The legacy SSO redirect pointed at aula's continuation: the
		// sign-in leads nowhere without the authorization cookie, and no
		// login token is handed out.
		c := browser(t)
		form := fetch(t, c, "GET", s.URL+"/_matrix/client/v3/login/sso/redirect?redirectUrl="+
			url.QueryEscape(s.Config.PublicBaseURL+"_aula/oauth2/consent?authz=guess"), nil)
		p := submitLogin(t, c, form, "alice", "alice", "login")
		if p.status != 400 || strings.Contains(p.body, "loginToken") || p.url.Path != "/_aula/client/oidc/callback" {
			t.Fatalf("continuation without authorization: %d %s %s", p.status, p.url, p.body)
		}
		// An authorization cookie of another sign-in does not match either.
		clientID := registered(t, s, elementXMetadata())
		c = oauthBrowser(t)
		if p := fetch(t, c, "GET", s.URL+oauthPrefix+"authorize?"+authzQuery(clientID, elementXRedirect, "DEVICEB001").Encode(), nil); p.status != 200 {
			t.Fatalf("authorize: %d", p.status)
		}
		form = fetch(t, c, "GET", s.URL+"/_matrix/client/v3/login/sso/redirect?redirectUrl="+
			url.QueryEscape(s.Config.PublicBaseURL+"_aula/oauth2/consent?authz=guess"), nil)
		if p := submitLogin(t, c, form, "alice", "alice", "login"); p.status != 400 {
			t.Fatalf("mismatched continuation: %d %s", p.status, p.body)
		}
		// Back-channel logout reaches devices signed in through OAuth.
		code := authorizeCode(t, s, authzQuery(clientID, elementXRedirect, "DEVICEB002"), "bob")
		tok := exchange(t, s, clientID, elementXRedirect, code, testCodeVerifier).expect(t, 200, "")
		lt, err := s.idp.LogoutToken("bob")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.PostForm(s.URL+"/_aula/client/oidc/backchannel_logout", url.Values{"logout_token": {lt}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("back-channel logout: %d", resp.StatusCode)
		}
		whoami(s, tok.str("access_token")).Expect(t, 401, "M_UNKNOWN_TOKEN")
	})
}

func TestOAuthDisabled(t *testing.T) {
	check := func(t *testing.T, s *apitest.Server) {
		for _, path := range []string{"/_matrix/client/v1/auth_metadata", "/_matrix/client/unstable/org.matrix.msc2965/auth_metadata"} {
			s.Do("GET", path, "", nil).Expect(t, 404, "M_UNRECOGNIZED")
		}
		s.Do("POST", oauthPrefix+"register", "", elementXMetadata()).Expect(t, 404, "M_UNRECOGNIZED")
		s.Do("GET", oauthPrefix+"authorize?client_id=x", "", nil).Expect(t, 404, "M_UNRECOGNIZED")
		s.Do("GET", oauthPrefix+"account", "", nil).Expect(t, 404, "M_UNRECOGNIZED")
		if strings.Contains(string(s.Do("GET", "/_matrix/client/v3/login", "", nil).Expect(t, 200, "").Body), "oauth_aware_preferred") {
			t.Error("GET /login prefers SSO for OAuth-aware clients without the OAuth API")
		}
	}
	t.Run("oauth_api false", func(t *testing.T) {
		forEachSSOServer(t, func(c *config.Config) { c.SSO.OAuthAPI = false }, func(t *testing.T, s *ssoServer) {
			check(t, s.Server)
			// Single sign-on itself still works.
			tokenLogin(s, ssoSignIn(t, s, "alice")).Expect(t, 200, "")
		})
	})
	t.Run("no provider", func(t *testing.T) {
		apitest.ForEachServer(t, nil, check)
	})
}

// TestOAuthCrossSigningReset: a device signed in through the OAuth 2.0 API
// that replaces its cross-signing keys gets the m.oauth stage (spec v1.17),
// whose approval URL re-authenticates at the identity provider; then the
// session alone completes the request.
func TestOAuthCrossSigningReset(t *testing.T) {
	forEachSSOServer(t, nil, func(t *testing.T, s *ssoServer) {
		clientID := registered(t, s, elementXMetadata())
		code := authorizeCode(t, s, authzQuery(clientID, elementXRedirect, "RESETDEV01"), "carol")
		token := exchange(t, s, clientID, elementXRedirect, code, testCodeVerifier).expect(t, 200, "").str("access_token")
		user := whoami(s, token).Expect(t, 200, "").String("user_id")
		const upload = "/_matrix/client/v3/keys/device_signing/upload"

		// The first upload needs no authentication.
		s.Do("POST", upload, token, map[string]any{"master_key": crossKey(user, "master", newEdKey(t))}).Expect(t, 200, "")

		// Replacing it asks for m.oauth only, with the approval URL.
		replacement := crossKey(user, "master", newEdKey(t))
		body := map[string]any{"master_key": replacement}
		r := s.Do("POST", upload, token, body).Expect(t, 401, "")
		session := r.String("session")
		if got := fmt.Sprint(r.JSON["flows"]); got != "[map[stages:[m.oauth]]]" || session == "" {
			t.Fatalf("challenge: %s", r.Body)
		}
		params, _ := r.JSON["params"].(map[string]any)
		oauthParams, _ := params["m.oauth"].(map[string]any)
		approval, _ := oauthParams["url"].(string)
		if want := s.Config.PublicBaseURL + "_matrix/client/v3/auth/m.oauth/fallback/web?session=" + url.QueryEscape(session); approval != want {
			t.Fatalf("m.oauth url = %q, want %q", approval, want)
		}

		// The session alone does not do before the user approved.
		body["auth"] = map[string]any{"session": session}
		s.Do("POST", upload, token, body).Expect(t, 401, "")
		// Nor does naming the stage, or another stage.
		body["auth"] = map[string]any{"session": session, "type": "m.oauth"}
		s.Do("POST", upload, token, body).Expect(t, 401, "")
		body["auth"] = map[string]any{"session": session, "type": "m.login.password", "password": "x",
			"identifier": map[string]any{"type": "m.id.user", "user": user}}
		s.Do("POST", upload, token, body).Expect(t, 401, "M_UNRECOGNIZED")

		// Approval: the page, then the identity provider's login as carol.
		c := browser(t)
		fb := fetch(t, c, "GET", approval, nil)
		m := continueLink.FindStringSubmatch(fb.body)
		if fb.status != 200 || m == nil {
			t.Fatalf("approval page: %d %s", fb.status, fb.body)
		}
		form := fetch(t, c, "GET", html.UnescapeString(m[1]), nil)
		if got := submitLogin(t, c, form, "carol", "carol", "login"); got.status != 200 || !strings.Contains(got.body, "window.onAuthDone") {
			t.Fatalf("done page: %d %s", got.status, got.body)
		}
		body["auth"] = map[string]any{"session": session}
		s.Do("POST", upload, token, body).Expect(t, 200, "")
		q := s.Do("POST", "/_matrix/client/v3/keys/query", token, map[string]any{"device_keys": map[string]any{user: []string{}}}).Expect(t, 200, "")
		got, _ := q.JSON["master_keys"].(map[string]any)[user].(map[string]any)
		if fmt.Sprint(got["keys"]) != fmt.Sprint(replacement["keys"]) {
			t.Fatalf("master key after the reset = %v, want %v", got["keys"], replacement["keys"])
		}
		// The session is used up.
		s.Do("POST", upload, token, map[string]any{"master_key": crossKey(user, "master", newEdKey(t)), "auth": map[string]any{"session": session}}).Expect(t, 400, "M_UNKNOWN")

		// A device that signed in the classic way still gets m.login.sso.
		classic := tokenLogin(s, ssoSignIn(t, s, "carol")).Expect(t, 200, "").String("access_token")
		r = s.Do("POST", upload, classic, map[string]any{"master_key": crossKey(user, "master", newEdKey(t))}).Expect(t, 401, "")
		if raw := string(r.Body); !strings.Contains(raw, `{"stages":["m.login.sso"]}`) || strings.Contains(raw, "m.oauth") {
			t.Fatalf("classic device's challenge: %s", raw)
		}
	})
}

// TestOAuthAccountPage: the metadata's account management URL signs the
// browser in through the identity provider, lists the user's own sessions
// and signs one out; the spec's actions narrow the page to one session.
func TestOAuthAccountPage(t *testing.T) {
	forEachSSOServer(t, nil, func(t *testing.T, s *ssoServer) {
		md := s.Do("GET", "/_matrix/client/v1/auth_metadata", "", nil).Expect(t, 200, "")
		account := s.Config.PublicBaseURL + "_aula/oauth2/account"
		if md.String("account_management_uri") != account ||
			fmt.Sprint(md.JSON["account_management_actions_supported"]) != "[org.matrix.devices_list org.matrix.device_view org.matrix.device_delete org.matrix.sessions_list org.matrix.session_view org.matrix.session_end]" {
			t.Fatalf("metadata: %s", md.Body)
		}
		clientID := registered(t, s, elementXMetadata())
		code := authorizeCode(t, s, authzQuery(clientID, elementXRedirect, "PHONE00001"), "alice")
		phone := exchange(t, s, clientID, elementXRedirect, code, testCodeVerifier).expect(t, 200, "").str("access_token")
		laptop := tokenLogin(s, ssoSignIn(t, s, "alice")).Expect(t, 200, "")
		other := tokenLogin(s, ssoSignIn(t, s, "bob")).Expect(t, 200, "")

		// A form post without the account cookie is refused.
		c := browser(t)
		if p := fetch(t, c, "POST", account, url.Values{"device_id": {"PHONE00001"}}); p.status != http.StatusForbidden {
			t.Fatalf("post without sign-in: %d %s", p.status, p.body)
		}
		// The page sends the browser to the identity provider first.
		form := fetch(t, c, "GET", account+"?action=org.matrix.devices_list", nil)
		if form.status != 200 || !strings.Contains(form.body, "never use in production") {
			t.Fatalf("identity provider's login form: %d %s %s", form.status, form.url, form.body)
		}
		p := submitLogin(t, c, form, "alice", "alice", "login")
		if p.status != 200 || p.url.Path != "/_aula/oauth2/account" || p.url.Query().Get("action") != "org.matrix.devices_list" {
			t.Fatalf("account page: %d %s %s", p.status, p.url, p.body)
		}
		for _, want := range []string{"@alice:" + apitest.ServerName, "PHONE00001", laptop.String("device_id"), `name="csrf_token"`} {
			if !strings.Contains(p.body, want) {
				t.Errorf("account page lacks %q: %s", want, p.body)
			}
		}
		if strings.Contains(p.body, other.String("device_id")) {
			t.Errorf("account page shows another user's session: %s", p.body)
		}
		csrf := html.UnescapeString(csrfField.FindStringSubmatch(p.body)[1])

		// One session, for device_view and device_delete (and the draft's names).
		for _, action := range []string{"org.matrix.device_delete", "org.matrix.device_view", "org.matrix.session_end", "org.matrix.session_view"} {
			one := fetch(t, c, "GET", account+"?action="+action+"&device_id=PHONE00001", nil)
			if one.status != 200 || !strings.Contains(one.body, "PHONE00001") || strings.Contains(one.body, laptop.String("device_id")) {
				t.Fatalf("%s: %d %s", action, one.status, one.body)
			}
		}
		// devices_list ignores device_id.
		if all := fetch(t, c, "GET", account+"?action=org.matrix.devices_list&device_id=PHONE00001", nil); !strings.Contains(all.body, laptop.String("device_id")) {
			t.Fatalf("devices_list with a device_id: %d %s", all.status, all.body)
		}
		if p := fetch(t, c, "GET", account+"?action=org.matrix.device_view&device_id="+other.String("device_id"), nil); p.status != 404 {
			t.Fatalf("another user's session: %d %s", p.status, p.body)
		}

		// Signing out needs the page's CSRF token, and only the user's own sessions.
		if p := fetch(t, c, "POST", account, url.Values{"device_id": {"PHONE00001"}, "csrf_token": {"forged"}}); p.status != http.StatusForbidden {
			t.Fatalf("forged CSRF token: %d %s", p.status, p.body)
		}
		if p := fetch(t, c, "POST", account, url.Values{"device_id": {other.String("device_id")}, "csrf_token": {csrf}}); p.status != 404 {
			t.Fatalf("signing out another user's session: %d %s", p.status, p.body)
		}
		whoami(s, other.String("access_token")).Expect(t, 200, "")
		whoami(s, phone).Expect(t, 200, "")
		done := fetch(t, c, "POST", account, url.Values{"device_id": {"PHONE00001"}, "csrf_token": {csrf}})
		if done.status != 200 || !strings.Contains(done.body, "The session PHONE00001 was signed out") || strings.Contains(done.body, `value="PHONE00001"`) {
			t.Fatalf("after signing out: %d %s", done.status, done.body)
		}
		whoami(s, phone).Expect(t, 401, "M_UNKNOWN_TOKEN")
		whoami(s, laptop.String("access_token")).Expect(t, 200, "")

		// The account cookie lasts ten minutes.
		s.App.OAuth.SetClock(func() time.Time { return time.Now().Add(11 * time.Minute) })
		defer s.App.OAuth.SetClock(nil)
		if p := fetch(t, c, "POST", account, url.Values{"device_id": {laptop.String("device_id")}, "csrf_token": {csrf}}); p.status != http.StatusForbidden {
			t.Fatalf("expired account cookie: %d %s", p.status, p.body)
		}
	})
}
