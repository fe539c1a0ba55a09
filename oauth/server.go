package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/ratelimit"
	"github.com/aula-chat/aula/internal/sealed"
	"github.com/aula-chat/aula/storage"
)

// Paths of the authorization server's endpoints, under public_baseurl.
// auth/sso.go knows PathPrefix too: a sign-in that returns below it gets
// no login token.
const (
	PathPrefix    = "/_aula/oauth2/"
	AuthorizePath = PathPrefix + "authorize"
	ConsentPath   = PathPrefix + "consent"
	TokenPath     = PathPrefix + "token"
	RegisterPath  = PathPrefix + "register"
	RevokePath    = PathPrefix + "revoke"
)

// CookieName is the cookie that carries a pending authorization through
// the sign-in at the identity provider and the consent page.
const CookieName = "aula_oauth_session"

// Lifetimes.
const (
	// authorizationLifetime bounds the whole browser part: the sign-in at
	// the provider and the consent page.
	authorizationLifetime = 30 * time.Minute
	// codeLifetime is how long an authorization code waits for its
	// exchange (RFC 6749 §4.1.2 recommends at most 10 minutes).
	codeLifetime = 5 * time.Minute
)

// Server is the OAuth 2.0 authorization server. Build it with New.
type Server struct {
	db   *storage.DB
	cfg  *config.Config
	auth *auth.Service
	log  *slog.Logger

	cookies  *sealed.Sealer // signs the authorization cookie
	accounts *sealed.Sealer // signs the account cookie (account.go)

	registrations *ratelimit.Limiter // new client registrations per client address

	clock atomic.Pointer[func() time.Time] // nil: time.Now
}

// New returns the authorization server. It answers only while Enabled.
func New(db *storage.DB, cfg *config.Config, authSvc *auth.Service, log *slog.Logger) *Server {
	return &Server{
		db: db, cfg: cfg, auth: authSvc, log: log,
		// The key is a server secret of its own, kept in the database
		// like the SSO session cookie's.
		cookies: sealed.New("aula oauth authorization", func(ctx context.Context) ([]byte, error) {
			return db.ServerSecret(ctx, "oauth_cookie")
		}),
		// Its own purpose, so that one cookie never opens as the other.
		accounts: sealed.New("aula oauth account", func(ctx context.Context) ([]byte, error) {
			return db.ServerSecret(ctx, "oauth_cookie")
		}),
		// A university's clients share few distinct registrations (every
		// Element X shares one row), so new ones are rare: 10 at once,
		// then one every 30 s per address.
		registrations: ratelimit.New(10, 30*time.Second),
	}
}

// Enabled reports whether the OAuth 2.0 API is served: while an identity
// provider is configured (it is where users sign in) and sso.oauth_api is
// not false.
func (s *Server) Enabled() bool {
	return s != nil && s.cfg.SSO.OAuthAPI && len(s.cfg.OIDCProviders) > 0
}

// SetClock replaces the clock used for code and authorization lifetimes
// and rate limits, as auth.Service.SetClock does for tokens; nil restores
// the real clock.
func (s *Server) SetClock(now func() time.Time) {
	if now == nil {
		s.clock.Store(nil)
		return
	}
	s.clock.Store(&now)
}

func (s *Server) now() time.Time {
	if f := s.clock.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// endpoint is the public URL of one of the server's paths.
func (s *Server) endpoint(path string) string {
	return strings.TrimSuffix(s.cfg.PublicBaseURL, "/") + path
}

// Metadata is the authorization server metadata (RFC 8414) as the Matrix
// spec defines it for GET /_matrix/client/v1/auth_metadata.
type Metadata struct {
	Issuer                                 string   `json:"issuer"`
	AuthorizationEndpoint                  string   `json:"authorization_endpoint"`
	TokenEndpoint                          string   `json:"token_endpoint"`
	RegistrationEndpoint                   string   `json:"registration_endpoint"`
	RevocationEndpoint                     string   `json:"revocation_endpoint"`
	ResponseTypesSupported                 []string `json:"response_types_supported"`
	ResponseModesSupported                 []string `json:"response_modes_supported"`
	GrantTypesSupported                    []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported          []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported      []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported []string `json:"revocation_endpoint_auth_methods_supported"`
	AccountManagementURI                   string   `json:"account_management_uri"`
	AccountManagementActionsSupported      []string `json:"account_management_actions_supported"`
}

// Metadata returns the server metadata. The issuer is public_baseurl.
// prompt_values_supported is absent: accounts are created at the first
// sign-in at the provider, there is no separate registration.
func (s *Server) Metadata() Metadata {
	return Metadata{
		Issuer:                                 s.cfg.PublicBaseURL,
		AuthorizationEndpoint:                  s.endpoint(AuthorizePath),
		TokenEndpoint:                          s.endpoint(TokenPath),
		RegistrationEndpoint:                   s.endpoint(RegisterPath),
		RevocationEndpoint:                     s.endpoint(RevokePath),
		ResponseTypesSupported:                 []string{"code"},
		ResponseModesSupported:                 []string{"query", "fragment"},
		GrantTypesSupported:                    []string{grantAuthorizationCode, grantRefreshToken},
		CodeChallengeMethodsSupported:          []string{"S256"},
		TokenEndpointAuthMethodsSupported:      []string{"none"},
		RevocationEndpointAuthMethodsSupported: []string{"none"},
		AccountManagementURI:                   s.endpoint(AccountPath),
		AccountManagementActionsSupported:      AccountActions,
	}
}

// Error is an OAuth 2.0 error answer of the registration, token or
// revocation endpoint (RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 7009 §2.2.1),
// written as JSON with Status.
type Error struct {
	Status      int           `json:"-"`
	Code        string        `json:"error"`
	Description string        `json:"error_description,omitempty"`
	RetryAfter  time.Duration `json:"-"` // for 429
}

func (e *Error) Error() string { return "oauth: " + e.Code + ": " + e.Description }

func badRequest(code, desc string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Description: desc}
}

// invalidClient is the token endpoint's answer for a missing or unknown
// client_id; 401 as RFC 6749 §5.2 allows.
func invalidClient(desc string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "invalid_client", Description: desc}
}

// randomString returns n random bytes, base64url encoded.
func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashSecret is how codes are stored, and how auth stores access and
// refresh tokens (auth/tokens.go): SHA-256 of the whole value. The values
// carry 256 random bits, so a fast hash is enough.
func hashSecret(v string) []byte {
	sum := sha256.Sum256([]byte(v))
	return sum[:]
}

// errBadCookie is a cookie that is not ours, altered or expired.
var errBadCookie = errors.New("oauth: invalid or expired authorization cookie")

// seal encodes and signs v for the cookie.
func (s *Server) seal(ctx context.Context, v any) (string, error) { return s.cookies.Seal(ctx, v) }

// open checks a sealed value's signature and decodes it into v.
func (s *Server) open(ctx context.Context, value string, v any) error {
	err := s.cookies.Open(ctx, value, v)
	if errors.Is(err, sealed.ErrInvalid) {
		return errBadCookie
	}
	return err
}
