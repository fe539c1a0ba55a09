package oauth

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/storage"
)

// maxStateLen bounds the client's state, which travels in the cookie.
const maxStateLen = 512

// codeChallengePattern is an S256 code challenge: base64url without
// padding of a SHA-256 hash (RFC 7636 §4.2).
var codeChallengePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// pending is an authorization waiting for the user, sealed in the
// authorization cookie: the validated request, then (after the sign-in)
// the user and the consent page's CSRF token.
type pending struct {
	ID          string `json:"i"` // binds the sign-in's return to this cookie
	ClientID    string `json:"c"`
	RedirectURI string `json:"r"`
	Mode        string `json:"m"` // query or fragment
	State       string `json:"s,omitempty"`
	Challenge   string `json:"x"`
	DeviceID    string `json:"d"`
	Scope       string `json:"o"`
	Expires     int64  `json:"e"` // unix seconds

	UserID    string `json:"u,omitempty"`
	Provider  string `json:"p,omitempty"`
	SessionID string `json:"sid,omitempty"`
	CSRF      string `json:"t,omitempty"`
}

// Refusal is an authorization request refused with an error for the
// client: the browser goes to RedirectURL, the client's redirect URI with
// error and state (RFC 6749 §4.1.2.1).
type Refusal struct {
	Code        string
	RedirectURL string
}

func (r *Refusal) Error() string { return "oauth: authorization refused: " + r.Code }

// pageError is a failure shown to the user as an HTML page, for requests
// whose client or redirect URI cannot be trusted with a redirect.
func pageError(status int, title, msg string) *auth.PageError {
	return &auth.PageError{Status: status, Title: title, Message: msg}
}

var errSessionPage = pageError(http.StatusBadRequest, "Sign-in session expired",
	"This sign-in has expired or was started in another browser. Please start again from your app.")

// Started is an authorization request that passed validation.
type Started struct {
	// Cookie is the value of the authorization cookie to set.
	Cookie string
	// ContinueURL is where the single sign-on returns (its redirectUrl):
	// aula's consent page, marked with this authorization.
	ContinueURL string
}

// Authorize validates an authorization request (the authorization
// endpoint's query). A request without a known client and one of its
// redirect URIs is refused with a *auth.PageError, never with a
// redirect; other refusals are a *Refusal.
func (s *Server) Authorize(ctx context.Context, q url.Values) (*Started, error) {
	for _, k := range []string{"client_id", "redirect_uri"} {
		if len(q[k]) > 1 {
			return nil, pageError(http.StatusBadRequest, "Invalid sign-in request", "The app sent "+k+" more than once.")
		}
	}
	client, err := s.client(ctx, q.Get("client_id"))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, pageError(http.StatusBadRequest, "Unknown app", "The app that sent you here is not registered with this server. Please start again from your app.")
	}
	if err != nil {
		return nil, err
	}
	redirect := q.Get("redirect_uri")
	if redirect == "" || !client.redirectAllowed(redirect) {
		return nil, pageError(http.StatusBadRequest, "Invalid sign-in request",
			"The app asked to return to an address it did not register. For your safety the sign-in stops here.")
	}

	p := pending{ClientID: client.ClientID, RedirectURI: redirect, Mode: "query", State: q.Get("state")}
	refuse := func(code, desc string) (*Started, error) {
		return nil, &Refusal{Code: code, RedirectURL: p.respond(url.Values{"error": {code}, "error_description": {desc}})}
	}
	if mode := q.Get("response_mode"); mode == "fragment" || mode == "query" {
		p.Mode = mode
	} else if mode != "" {
		return refuse("invalid_request", "response_mode must be query or fragment")
	}
	for k, v := range q {
		if len(v) > 1 {
			return refuse("invalid_request", k+" is given more than once")
		}
	}
	if len(p.State) > maxStateLen {
		p.State = ""
		return refuse("invalid_request", "state is too long")
	}
	switch rt := q.Get("response_type"); rt {
	case "code":
	case "":
		return refuse("invalid_request", "response_type is required")
	default:
		return refuse("unsupported_response_type", "Only response_type=code is supported")
	}
	prompts := strings.Fields(q.Get("prompt"))
	if slices.Contains(prompts, "none") {
		return refuse("login_required", "The user must sign in")
	}
	if slices.Contains(prompts, "create") {
		// OpenID Connect Prompt Create §4: an unsupported prompt value is
		// invalid_request. Accounts are created at the first sign-in.
		return refuse("invalid_request", "prompt=create is not supported: accounts are created when a user first signs in")
	}
	p.Challenge = q.Get("code_challenge")
	switch method := q.Get("code_challenge_method"); {
	case p.Challenge == "":
		return refuse("invalid_request", "code_challenge is required (PKCE with S256)")
	case method == "":
		return refuse("invalid_request", "code_challenge_method is required and must be S256")
	case method != "S256":
		return refuse("invalid_request", "code_challenge_method must be S256")
	case !codeChallengePattern.MatchString(p.Challenge):
		return refuse("invalid_request", "code_challenge is not an S256 challenge")
	}
	g, serr := parseScope(q.Get("scope"))
	if serr != nil {
		return refuse(serr.Code, serr.Description)
	}
	p.DeviceID, p.Scope = g.DeviceID, g.Scope
	p.ID = randomString(16)
	p.Expires = s.now().Add(authorizationLifetime).Unix()
	cookie, err := s.seal(ctx, p)
	if err != nil {
		return nil, err
	}
	return &Started{Cookie: cookie, ContinueURL: s.endpoint(ConsentPath) + "?authz=" + p.ID}, nil
}

// respond is the client's redirect URI with params added in the
// requested response mode, state included.
func (p *pending) respond(params url.Values) string {
	if p.State != "" {
		params.Set("state", p.State)
	}
	if p.Mode == "fragment" {
		return p.RedirectURI + "#" + params.Encode() // registered URIs have no fragment
	}
	sep := "?"
	if strings.Contains(p.RedirectURI, "?") {
		sep = "&" // keep the registered query as it is (RFC 6749 §3.1.2)
	}
	return p.RedirectURI + sep + params.Encode()
}

// load opens the authorization cookie and checks its expiry.
func (s *Server) load(ctx context.Context, cookie string) (*pending, error) {
	if cookie == "" {
		return nil, errSessionPage
	}
	var p pending
	if err := s.open(ctx, cookie, &p); err != nil {
		if errors.Is(err, errBadCookie) {
			return nil, errSessionPage
		}
		return nil, err
	}
	if s.now().Unix() > p.Expires {
		return nil, errSessionPage
	}
	return &p, nil
}

// SignIn is a completed single sign-on for an authorization.
type SignIn struct {
	UserID      string
	Provider    string // the identity provider
	SessionID   string // its session (sid), may be empty
	ContinueURL string // the redirectUrl the sign-on returned to
}

// SignedIn attaches the user who signed in to the pending authorization
// in cookie and returns the cookie's new value. The sign-on must have
// been started for this very authorization (its ContinueURL).
func (s *Server) SignedIn(ctx context.Context, cookie string, in SignIn) (string, error) {
	p, err := s.load(ctx, cookie)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(in.ContinueURL)
	if err != nil || subtle.ConstantTimeCompare([]byte(u.Query().Get("authz")), []byte(p.ID)) != 1 {
		return "", errSessionPage
	}
	user, err := s.db.User(ctx, in.UserID)
	if err != nil {
		return "", err
	}
	if user.Deactivated {
		return "", pageError(http.StatusForbidden, "Account deactivated", "This account has been deactivated.")
	}
	p.UserID, p.Provider, p.SessionID, p.CSRF = in.UserID, in.Provider, in.SessionID, randomString(24)
	return s.seal(ctx, p)
}

// Consent is what the consent page shows.
type Consent struct {
	ClientName string
	ClientHost string
	TOSURI     string
	PolicyURI  string
	UserID     string
	DeviceID   string
	CSRF       string // the form's CSRF token
}

// ConsentPage returns the consent page's content for the authorization
// in cookie, whose user has signed in.
func (s *Server) ConsentPage(ctx context.Context, cookie string) (*Consent, error) {
	p, err := s.load(ctx, cookie)
	if err != nil {
		return nil, err
	}
	if p.UserID == "" {
		return nil, errSessionPage
	}
	c, err := s.client(ctx, p.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errSessionPage
	}
	if err != nil {
		return nil, err
	}
	return &Consent{
		ClientName: c.Name(), ClientHost: c.Host(), TOSURI: c.TOSURI, PolicyURI: c.PolicyURI,
		UserID: p.UserID, DeviceID: p.DeviceID, CSRF: p.CSRF,
	}, nil
}

// Decide completes the authorization in cookie with the user's answer on
// the consent page, whose form carried csrf. It returns where to send the
// browser: the client's redirect URI with a code, or with
// error=access_denied when the user declined.
func (s *Server) Decide(ctx context.Context, cookie, csrf string, allow bool) (string, error) {
	p, err := s.load(ctx, cookie)
	if err != nil {
		return "", err
	}
	if p.UserID == "" || p.CSRF == "" || subtle.ConstantTimeCompare([]byte(csrf), []byte(p.CSRF)) != 1 {
		return "", pageError(http.StatusForbidden, "Request not accepted",
			"This answer did not come from the consent page of this sign-in. Please start again from your app.")
	}
	if !allow {
		return p.respond(url.Values{"error": {"access_denied"}, "error_description": {"The user declined the sign-in"}}), nil
	}
	code := "aoc_" + randomString(32)
	now := s.now()
	err = s.db.CreateOAuthCode(ctx, hashSecret(code), storage.OAuthCode{
		ClientID: p.ClientID, RedirectURI: p.RedirectURI, UserID: p.UserID, DeviceID: p.DeviceID, Scope: p.Scope,
		CodeChallenge: p.Challenge, AuthProvider: p.Provider, SessionID: p.SessionID,
		ExpiresTS: now.Add(codeLifetime).UnixMilli(),
	}, now.UnixMilli())
	if err != nil {
		return "", err
	}
	return p.respond(url.Values{"code": {code}}), nil
}
