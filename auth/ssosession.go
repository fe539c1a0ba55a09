package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"time"

	"github.com/aula-chat/aula/internal/sealed"
)

// SSOCookieName is the cookie that binds a single sign-on attempt to the
// browser that started it.
const SSOCookieName = "aula_sso_session"

// ssoSessionLifetime bounds how long a user may take at the provider.
const ssoSessionLifetime = 30 * time.Minute

// ssoSession is the state of one sign-on attempt, kept in the browser's
// cookie and signed with a server key, so that a callback is accepted only
// in the browser that started it and only for the state it was sent with.
type ssoSession struct {
	Provider    string `json:"p"`
	State       string `json:"s"`
	Nonce       string `json:"n"`
	Verifier    string `json:"v,omitempty"` // PKCE code verifier
	RedirectURL string `json:"r,omitempty"` // the client's redirectUrl (login)
	UIASession  string `json:"u,omitempty"` // the UIA session (re-authentication)
	UserID      string `json:"uid,omitempty"`
	Expires     int64  `json:"e"` // unix seconds
}

// randomString returns n random bytes, base64url encoded.
func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// seal encodes and signs a session for the cookie.
func (s *SSO) seal(ctx context.Context, sess ssoSession) (string, error) {
	return s.cookies.Seal(ctx, sess)
}

// errBadSession is a cookie that is not ours, altered or expired.
var errBadSession = errors.New("invalid or expired sign-in session")

// open checks a cookie's signature and expiry and decodes it.
func (s *SSO) open(ctx context.Context, value string) (*ssoSession, error) {
	var sess ssoSession
	if err := s.cookies.Open(ctx, value, &sess); errors.Is(err, sealed.ErrInvalid) {
		return nil, errBadSession
	} else if err != nil {
		return nil, err
	}
	if time.Now().Unix() > sess.Expires {
		return nil, errBadSession
	}
	return &sess, nil
}
