package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
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

// cookieKey returns the HMAC key for session cookies, kept in the database
// so that every restart (and every process) agrees on it.
func (s *SSO) cookieKey(ctx context.Context) ([]byte, error) {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if s.key == nil {
		k, err := s.db.ServerSecret(ctx, "sso_cookie")
		if err != nil {
			return nil, err
		}
		s.key = k
	}
	return s.key, nil
}

// seal encodes and signs a session for the cookie.
func (s *SSO) seal(ctx context.Context, sess ssoSession) (string, error) {
	key, err := s.cookieKey(ctx)
	if err != nil {
		return "", err
	}
	raw, err := json.Marshal(sess)
	if err != nil {
		return "", err
	}
	body := base64.RawURLEncoding.EncodeToString(raw)
	return body + "." + base64.RawURLEncoding.EncodeToString(sign(key, body)), nil
}

// errBadSession is a cookie that is not ours, altered or expired.
var errBadSession = errors.New("invalid or expired sign-in session")

// open checks a cookie's signature and expiry and decodes it.
func (s *SSO) open(ctx context.Context, value string) (*ssoSession, error) {
	key, err := s.cookieKey(ctx)
	if err != nil {
		return nil, err
	}
	body, mac, ok := strings.Cut(value, ".")
	if !ok {
		return nil, errBadSession
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || !hmac.Equal(got, sign(key, body)) {
		return nil, errBadSession
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, errBadSession
	}
	var sess ssoSession
	if err := json.Unmarshal(raw, &sess); err != nil {
		return nil, errBadSession
	}
	if time.Now().Unix() > sess.Expires {
		return nil, errBadSession
	}
	return &sess, nil
}

func sign(key []byte, body string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("aula sso session\x00" + body))
	return m.Sum(nil)
}
