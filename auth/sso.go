package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/internal/sealed"
	"github.com/aula-chat/aula/storage"
)

// Stage name of single sign-on in user-interactive authentication.
const StageSSO = "m.login.sso"

// SSO implements single sign-on with OpenID Connect providers: the
// browser flow, the mapping of provider subjects to accounts, login
// tokens, re-authentication for user-interactive auth and back-channel
// logout (docs/sso.md).
type SSO struct {
	svc       *Service
	db        *storage.DB
	cfg       *config.Config
	log       *slog.Logger
	providers []*oidcProvider
	byID      map[string]*oidcProvider

	cookies *sealed.Sealer // signs the session cookie (ssosession.go)

	mapMu sync.Mutex // serialises first sign-ins, so two cannot race for a localpart
}

// IdentityProvider is a provider as GET /login lists it.
type IdentityProvider struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Icon  string `json:"icon,omitempty"`
	Brand string `json:"brand,omitempty"`
}

// NewSSO returns the single sign-on service for the configured providers.
// client is used for every request to a provider (nil: a client with a
// 15 s timeout). Providers are contacted only when first used.
func NewSSO(svc *Service, db *storage.DB, cfg *config.Config, log *slog.Logger, client *http.Client) *SSO {
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	s := &SSO{svc: svc, db: db, cfg: cfg, log: log, byID: map[string]*oidcProvider{},
		// The key is kept in the database, so that every restart (and
		// every process) agrees on it.
		cookies: sealed.New("aula sso session", func(ctx context.Context) ([]byte, error) { return db.ServerSecret(ctx, "sso_cookie") })}
	for _, p := range cfg.OIDCProviders {
		op := &oidcProvider{cfg: p, client: client, redirectURL: cfg.PublicBaseURL + "_aula/client/oidc/callback"}
		s.providers = append(s.providers, op)
		s.byID[p.ID] = op
	}
	svc.uia.setSSO(s)
	return s
}

// Enabled reports whether any provider is configured.
func (s *SSO) Enabled() bool { return s != nil && len(s.providers) > 0 }

// Providers lists the configured providers in configuration order.
func (s *SSO) Providers() []IdentityProvider {
	out := []IdentityProvider{}
	for _, p := range s.providers {
		name := p.cfg.Name
		if name == "" {
			name = p.cfg.ID
		}
		out = append(out, IdentityProvider{ID: p.cfg.ID, Name: name, Icon: p.cfg.Icon, Brand: p.cfg.Brand})
	}
	return out
}

// HasProvider reports whether id names a configured provider.
func (s *SSO) HasProvider(id string) bool { _, ok := s.byID[id]; return ok }

// PageError is a single sign-on failure for the browser: it is shown on an
// HTML page with its status; Err (not shown) is logged.
type PageError struct {
	Status  int
	Title   string
	Message string
	Err     error
}

func (e *PageError) Error() string {
	if e.Err != nil {
		return e.Title + ": " + e.Err.Error()
	}
	return e.Title
}

func pageError(status int, title, msg string, err error) *PageError {
	return &PageError{Status: status, Title: title, Message: msg, Err: err}
}

// StartRequest begins a sign-on at a provider: a login for a client
// (RedirectURL) or the re-authentication of UserID for a UIA session.
type StartRequest struct {
	ProviderID  string
	RedirectURL string
	UIASession  string
	UserID      string
}

// Start returns the provider's authorization URL to send the browser to
// and the value of the session cookie to set with it.
func (s *SSO) Start(ctx context.Context, r StartRequest) (authURL, cookie string, err error) {
	p, ok := s.byID[r.ProviderID]
	if !ok {
		return "", "", pageError(http.StatusNotFound, "Unknown identity provider", "This server has no identity provider called "+r.ProviderID+".", nil)
	}
	prov, err := p.discover()
	if err != nil {
		return "", "", pageError(http.StatusServiceUnavailable, "The sign-in service is unavailable",
			"The identity provider "+p.cfg.Name+" cannot be reached right now. Please try again in a few minutes.", err)
	}
	oc, err := p.oauth2Config(prov)
	if err != nil {
		return "", "", err
	}
	sess := ssoSession{
		Provider: p.cfg.ID, State: randomString(24), Nonce: randomString(24),
		RedirectURL: r.RedirectURL, UIASession: r.UIASession, UserID: r.UserID,
		Expires: time.Now().Add(ssoSessionLifetime).Unix(),
	}
	opts := []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("nonce", sess.Nonce)}
	if p.cfg.UsesPKCE() {
		sess.Verifier = oauth2.GenerateVerifier()
		opts = append(opts, oauth2.S256ChallengeOption(sess.Verifier))
	}
	cookie, err = s.seal(ctx, sess)
	if err != nil {
		return "", "", err
	}
	return oc.AuthCodeURL(sess.State, opts...), cookie, nil
}

// CallbackResult is a completed sign-on.
type CallbackResult struct {
	UserID string
	// RedirectURL is the client's URL with the loginToken added (login).
	RedirectURL string
	// UIASession is the UIA session whose m.login.sso stage is now
	// complete (re-authentication).
	UIASession string
	// Internal marks a sign-in that continues inside aula (RedirectURL is
	// under internalPrefix): no login token was issued. Provider and
	// SessionID name the provider session, for the device it leads to.
	Internal            bool
	Provider, SessionID string
}

// Callback completes a sign-on from the provider's redirect: cookie is
// the session cookie's value (empty if the browser sent none) and query
// the callback's parameters. Errors are *PageError for the browser, or
// internal errors.
func (s *SSO) Callback(ctx context.Context, cookie string, query url.Values) (*CallbackResult, error) {
	if e := query.Get("error"); e != "" {
		if e == "access_denied" {
			return nil, pageError(http.StatusForbidden, "Sign-in cancelled", "You declined the sign-in at the identity provider. Nothing was changed.", nil)
		}
		return nil, pageError(http.StatusBadRequest, "Sign-in failed", "The identity provider reported an error: "+e+" "+query.Get("error_description"), nil)
	}
	if cookie == "" {
		return nil, pageError(http.StatusBadRequest, "Sign-in session missing",
			"Your browser did not send the sign-in session cookie. Please start again from your Matrix client, in the same browser, with cookies allowed.", nil)
	}
	sess, err := s.open(ctx, cookie)
	if err != nil {
		if errors.Is(err, errBadSession) {
			return nil, pageError(http.StatusBadRequest, "Sign-in session invalid", "The sign-in session has expired or is not valid. Please start again from your Matrix client.", err)
		}
		return nil, err
	}
	state := query.Get("state")
	if state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(sess.State)) != 1 {
		return nil, pageError(http.StatusBadRequest, "Sign-in session mismatch", "This sign-in answer does not belong to the sign-in started in this browser. Please start again from your Matrix client.", nil)
	}
	code := query.Get("code")
	if code == "" {
		return nil, pageError(http.StatusBadRequest, "Sign-in failed", "The identity provider sent no authorization code.", nil)
	}
	p, ok := s.byID[sess.Provider]
	if !ok {
		return nil, pageError(http.StatusBadRequest, "Unknown identity provider", "The identity provider of this sign-in is no longer configured.", nil)
	}
	claims, sid, err := p.exchange(ctx, code, sess.Verifier, sess.Nonce)
	if err != nil {
		if errors.Is(err, errProviderUnavailable) {
			return nil, pageError(http.StatusServiceUnavailable, "The sign-in service is unavailable", "The identity provider cannot be reached right now. Please try again in a few minutes.", err)
		}
		return nil, pageError(http.StatusBadGateway, "Sign-in failed", "The answer of the identity provider could not be verified. Please start again from your Matrix client.", err)
	}
	subject, _ := claims["sub"].(string)
	if sess.UIASession != "" {
		return s.finishReauth(ctx, p, sess, subject)
	}
	if !meetsRequirements(p.cfg.AttributeRequirements, claims) {
		return nil, pageError(http.StatusForbidden, "Not authorised", "You are not authorised to use this server: your account at the identity provider lacks a required attribute.", fmt.Errorf("attribute requirements not met for subject of %s", p.cfg.ID))
	}
	userID, err := s.mapUser(ctx, p, subject, claims)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(sess.RedirectURL, s.cfg.PublicBaseURL+internalPrefix) {
		return &CallbackResult{UserID: userID, RedirectURL: sess.RedirectURL, Internal: true, Provider: p.cfg.ID, SessionID: sid}, nil
	}
	token, err := s.issueLoginToken(ctx, userID, p.cfg.ID, sid)
	if err != nil {
		return nil, err
	}
	return &CallbackResult{UserID: userID, RedirectURL: withLoginToken(sess.RedirectURL, token)}, nil
}

// finishReauth completes the m.login.sso stage of a UIA session when the
// provider's subject belongs to the user the session was started for.
func (s *SSO) finishReauth(ctx context.Context, p *oidcProvider, sess *ssoSession, subject string) (*CallbackResult, error) {
	userID, err := s.db.UserByExternalID(ctx, p.cfg.ID, subject)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	if err != nil || userID != sess.UserID {
		return nil, pageError(http.StatusForbidden, "Wrong account", "You signed in at the identity provider as someone else than the account that asked for confirmation.", nil)
	}
	// One re-authentication completes either stage the session offers.
	if err := s.svc.completeStagesExternally(sess.UIASession, userID, StageSSO, StageOAuth); err != nil {
		return nil, pageError(http.StatusBadRequest, "Confirmation expired", "The request you were confirming has expired. Please try again from your Matrix client.", err)
	}
	return &CallbackResult{UserID: userID, UIASession: sess.UIASession}, nil
}

// internalPrefix is where, below public_baseurl, a sign-in continues
// inside aula: the OAuth 2.0 authorization server (oauth.PathPrefix,
// docs/oauth.md). Such a sign-in gets no login token, so none can leak
// from a URL, and the browser goes on without a confirmation page.
const internalPrefix = "_aula/oauth2/"

// withLoginToken adds loginToken to the client's redirect URL, replacing
// any loginToken it had.
func withLoginToken(redirect, token string) string {
	u, err := url.Parse(redirect)
	if err != nil {
		return redirect // checked when the sign-in started
	}
	q := u.Query()
	q.Set("loginToken", token)
	u.RawQuery = q.Encode()
	return u.String()
}

// ValidRedirectURL checks a client's redirectUrl: an absolute URL.
func ValidRedirectURL(redirect string) error {
	u, err := url.Parse(redirect)
	if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "" && u.Path == "") {
		return mxerr.InvalidParam("redirectUrl must be an absolute URL")
	}
	if u.Scheme == "javascript" || u.Scheme == "data" {
		return mxerr.InvalidParam("redirectUrl must not be a %s: URL", u.Scheme)
	}
	return nil
}

// Trusted reports whether redirect goes to a client in
// sso.client_whitelist (a host name or a URL prefix), which receives the
// login token without a confirmation page.
func (s *SSO) Trusted(redirect string) bool {
	u, err := url.Parse(redirect)
	if err != nil {
		return false
	}
	for _, w := range s.cfg.SSO.ClientWhitelist {
		if strings.Contains(w, "://") {
			if strings.HasPrefix(redirect, w) {
				return true
			}
		} else if u.Host != "" && strings.EqualFold(u.Hostname(), w) {
			return true
		}
	}
	return false
}

// meetsRequirements checks attribute_requirements: every listed claim
// must exist and, with value or one_of, have (or for a list, contain) one
// of the given values.
func meetsRequirements(reqs []config.AttributeRequirement, claims map[string]any) bool {
	for _, r := range reqs {
		v, ok := claims[r.Attribute]
		if !ok || v == nil {
			return false
		}
		allowed := r.OneOf
		if r.Value != "" {
			allowed = append(slices.Clone(allowed), r.Value)
		}
		if len(allowed) == 0 {
			continue
		}
		var values []string
		if list, isList := v.([]any); isList {
			for _, item := range list {
				values = append(values, fmt.Sprint(item))
			}
		} else {
			values = []string{fmt.Sprint(v)}
		}
		if !slices.ContainsFunc(values, func(x string) bool { return slices.Contains(allowed, x) }) {
			return false
		}
	}
	return true
}

// LinkedProviders lists the configured providers userID signs in with.
func (s *SSO) LinkedProviders(ctx context.Context, userID string) ([]IdentityProvider, error) {
	links, err := s.db.ExternalIDs(ctx, userID)
	if err != nil {
		return nil, err
	}
	var out []IdentityProvider
	for _, p := range s.Providers() {
		if slices.ContainsFunc(links, func(l storage.ExternalID) bool { return l.AuthProvider == p.ID }) {
			out = append(out, p)
		}
	}
	return out, nil
}

// ThreePIDs returns the third-party identifiers recorded for userID.
func (s *SSO) ThreePIDs(ctx context.Context, userID string) ([]storage.ThreePID, error) {
	return s.db.ThreePIDs(ctx, userID)
}
