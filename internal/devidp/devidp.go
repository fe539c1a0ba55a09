// Package devidp is the development OpenID Provider of `aula --dev`: an
// OpenID Connect provider built on github.com/zitadel/oidc/v3/pkg/op with
// a login form and a few demo users, so single sign-on can be tried in
// Element or Cinny on a fresh machine. Nothing in the configuration turns
// it on: only cmd/aula's --dev path and tests construct it, and every page
// it shows says it must never be used in production.
package devidp

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/crypto"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// PathPrefix is where the provider is mounted on the homeserver's
// listener; its issuer is the public base URL + "_aula/dev-idp".
const PathPrefix = "/_aula/dev-idp"

// ClientID is the client ID the provider knows aula by.
const ClientID = "aula-dev"

// User is a demo account of the development provider.
type User struct {
	Subject     string // stable ID (the "sub" claim)
	Username    string // preferred_username, what the login form asks for
	Password    string
	Name        string
	Email       string
	Affiliation string // a custom claim, for attribute requirements
}

// DemoUsers are the accounts every development provider starts with.
// Their passwords are documented in docs/sso.md; they are not secrets.
func DemoUsers() []User {
	return []User{
		{Subject: "dev-0001", Username: "alice", Password: "alice", Name: "Alice Example", Email: "alice@example.org", Affiliation: "student"},
		{Subject: "dev-0002", Username: "bob", Password: "bob", Name: "Bob Example", Email: "bob@example.org", Affiliation: "staff"},
		{Subject: "dev-0003", Username: "carol", Password: "carol", Name: "Carol Example", Email: "carol@example.org", Affiliation: "student"},
	}
}

// Provider is a running development OpenID Provider.
type Provider struct {
	issuer  string
	store   *store
	op      *op.Provider
	handler http.Handler
}

// New returns a provider with the given issuer (ending in PathPrefix, on
// the host it is served from), the client secret aula uses, and the
// redirect URIs aula may ask for.
func New(issuer, clientSecret string, redirectURIs []string) (*Provider, error) {
	issuer = strings.TrimSuffix(issuer, "/")
	u, err := url.Parse(issuer)
	if err != nil || !strings.HasSuffix(u.Path, PathPrefix) {
		return nil, fmt.Errorf("devidp: issuer %q must end in %s", issuer, PathPrefix)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("devidp: key: %w", err)
	}
	users := DemoUsers()
	s := &store{
		client:   &client{id: ClientID, secret: clientSecret, redirectURIs: redirectURIs},
		requests: map[string]*authRequest{}, codes: map[string]string{}, tokens: map[string]*accessToken{},
		sessions: map[string]string{}, key: &signingKey{id: randomID(), key: key},
	}
	for i := range users {
		s.users = append(s.users, &users[i])
	}
	s.client.loginURL = func(id string) string { return u.Path + "/login?authRequestID=" + url.QueryEscape(id) }
	var cryptoKey [32]byte
	rand.Read(cryptoKey[:])
	cryptoKey = sha256.Sum256(cryptoKey[:])
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:                         cryptoKey,
		CodeMethodS256:                    true,
		AuthMethodPost:                    true,
		BackChannelLogoutSupported:        true,
		BackChannelLogoutSessionSupported: true,
	}, s, op.StaticIssuer(issuer), op.WithAllowInsecure())
	if err != nil {
		return nil, fmt.Errorf("devidp: %w", err)
	}
	p := &Provider{issuer: issuer, store: s, op: provider}
	mux := http.NewServeMux()
	login := op.NewIssuerInterceptor(provider.IssuerFromRequest)
	mux.Handle("/login", login.HandlerFunc(p.login))
	mux.Handle("/", provider)
	p.handler = http.StripPrefix(u.Path, mux)
	return p, nil
}

// Issuer returns the provider's issuer URL.
func (p *Provider) Issuer() string { return p.issuer }

// Mount serves the provider under PathPrefix and everything else with
// next.
func (p *Provider) Mount(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == PathPrefix || strings.HasPrefix(r.URL.Path, PathPrefix+"/") {
			p.handler.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// SetUsername changes a demo user's preferred_username (tests use it to
// show that accounts follow the stable subject, not the name).
func (p *Provider) SetUsername(oldName, newName string) error {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	for _, u := range p.store.users {
		if u.Username == oldName {
			u.Username = newName
			return nil
		}
	}
	return fmt.Errorf("devidp: no user %q", oldName)
}

// LogoutToken returns a signed back-channel logout token for the latest
// sign-in session of the user called username, as the provider would send
// it to aula.
func (p *Provider) LogoutToken(username string) (string, error) {
	p.store.mu.Lock()
	var sub, sid string
	for _, u := range p.store.users {
		if u.Username == username {
			sub, sid = u.Subject, p.store.sessions[u.Subject]
		}
	}
	p.store.mu.Unlock()
	if sub == "" || sid == "" {
		return "", fmt.Errorf("devidp: %q has not signed in", username)
	}
	claims := oidc.NewLogoutTokenClaims(p.issuer, sub, oidc.Audience{ClientID}, time.Now().Add(2*time.Minute), randomID(), sid, 0)
	signer, err := op.SignerFromKey(p.store.key)
	if err != nil {
		return "", err
	}
	return crypto.Sign(claims, signer)
}

// login serves the login form (GET) and checks it (POST).
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id := r.Form.Get("authRequestID")
	p.store.mu.Lock()
	req, ok := p.store.requests[id]
	p.store.mu.Unlock()
	if !ok {
		renderLogin(w, http.StatusBadRequest, loginPage{Error: "Unknown or expired sign-in request. Start again from your Matrix client."})
		return
	}
	if r.Method != http.MethodPost {
		renderLogin(w, http.StatusOK, loginPage{ID: id, Users: DemoUsers()})
		return
	}
	if r.Form.Get("action") == "cancel" {
		q := url.Values{"error": {"access_denied"}, "error_description": {"The user declined the sign-in"}, "state": {req.state}}
		http.Redirect(w, r, req.redirectURI+"?"+q.Encode(), http.StatusFound)
		return
	}
	user, err := p.check(r.Form.Get("username"), r.Form.Get("password"))
	if err != nil {
		renderLogin(w, http.StatusOK, loginPage{ID: id, Users: DemoUsers(), Error: err.Error()})
		return
	}
	p.store.mu.Lock()
	req.userID, req.done, req.authTime = user.Subject, true, time.Now()
	req.sessionID = randomID()
	p.store.sessions[user.Subject] = req.sessionID
	p.store.mu.Unlock()
	http.Redirect(w, r, op.AuthCallbackURL(p.op)(r.Context(), id), http.StatusFound)
}

func (p *Provider) check(username, password string) (*User, error) {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	for _, u := range p.store.users {
		if u.Username == username && u.Password == password {
			return u, nil
		}
	}
	return nil, errors.New("wrong username or password")
}

type loginPage struct {
	ID    string
	Error string
	Users []User
}

func renderLogin(w http.ResponseWriter, status int, page loginPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = loginTemplate.Execute(w, page)
}

var loginTemplate = template.Must(template.New("login").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Development identity provider</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 30em; margin: 2em auto; padding: 0 1em; }
.banner { background: #b00020; color: #fff; padding: .8em; font-weight: bold; text-align: center; border-radius: .3em; }
label { display: block; margin-top: .8em; } input { font-size: 1em; padding: .3em; width: 100%; box-sizing: border-box; }
button { margin-top: 1em; padding: .5em 1.2em; font-size: 1em; } .error { color: #b00020; }
</style></head>
<body>
<p class="banner">development identity provider — never use in production</p>
<h1>Sign in</h1>
{{if .Error}}<p class="error" id="error">{{.Error}}</p>{{end}}
{{if .ID}}<form method="post" action="login">
<input type="hidden" name="authRequestID" value="{{.ID}}">
<label>Username <input name="username" autocomplete="username" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit" name="action" value="login">Sign in</button>
<button type="submit" name="action" value="cancel">Cancel</button>
</form>
<p>Demo users (the password is the username):{{range .Users}} <code>{{.Username}}</code>{{end}}</p>{{end}}
</body></html>
`))
