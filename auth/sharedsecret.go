package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aula-chat/aula/internal/mxerr"
)

// nonceLifetime is how long a shared-secret registration nonce is valid.
const nonceLifetime = time.Minute

// nonceStore hands out single-use nonces for shared-secret registration.
type nonceStore struct {
	mu     sync.Mutex
	nonces map[string]time.Time
}

func newNonceStore() *nonceStore { return &nonceStore{nonces: make(map[string]time.Time)} }

func (n *nonceStore) issue(now time.Time) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, exp := range n.nonces {
		if now.After(exp) {
			delete(n.nonces, k)
		}
	}
	nonce := hex.EncodeToString([]byte(rand.Text()))
	n.nonces[nonce] = now.Add(nonceLifetime)
	return nonce
}

// use consumes a nonce at time now, reporting whether it was valid.
func (n *nonceStore) use(nonce string, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	exp, ok := n.nonces[nonce]
	delete(n.nonces, nonce)
	return ok && now.Before(exp)
}

// SharedSecretEnabled reports whether shared-secret registration is on.
func (s *Service) SharedSecretEnabled() bool { return s.cfg.Registration.SharedSecret != "" }

// SharedSecretNonce returns a new nonce for shared-secret registration.
func (s *Service) SharedSecretNonce() (string, error) {
	if !s.SharedSecretEnabled() {
		return "", mxerr.New(http.StatusBadRequest, "M_UNKNOWN", "Shared secret registration is not enabled")
	}
	return s.nonces.issue(s.now()), nil
}

// SharedSecretRequest is the body of POST /_synapse/admin/v1/register.
type SharedSecretRequest struct {
	Nonce       string `json:"nonce"`
	Username    string `json:"username"`
	DisplayName string `json:"displayname"`
	Password    string `json:"password"`
	Admin       bool   `json:"admin"`
	UserType    string `json:"user_type"`
	MAC         string `json:"mac"`
}

// SharedSecretMAC computes the MAC Synapse's shared-secret registration
// expects: hex HMAC-SHA1 over nonce, username, password and the admin flag
// (and the user type, when given), separated by NUL bytes.
func SharedSecretMAC(secret string, r SharedSecretRequest) string {
	m := hmac.New(sha1.New, []byte(secret))
	admin := "notadmin"
	if r.Admin {
		admin = "admin"
	}
	m.Write([]byte(r.Nonce + "\x00" + r.Username + "\x00" + r.Password + "\x00" + admin))
	if r.UserType != "" {
		m.Write([]byte("\x00" + r.UserType))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// RegisterWithSharedSecret creates an account (and a device with tokens)
// for admin tooling that knows the shared secret.
func (s *Service) RegisterWithSharedSecret(ctx context.Context, r SharedSecretRequest) (*Tokens, error) {
	if !s.SharedSecretEnabled() {
		return nil, mxerr.New(http.StatusBadRequest, "M_UNKNOWN", "Shared secret registration is not enabled")
	}
	if r.Nonce == "" || r.Username == "" || r.MAC == "" {
		return nil, mxerr.MissingParam("nonce, username and mac are required")
	}
	// The nonce is used up even if the rest of the request is wrong.
	if !s.nonces.use(r.Nonce, s.now()) {
		return nil, mxerr.New(http.StatusBadRequest, "M_UNKNOWN", "Unrecognised nonce")
	}
	// The MAC separates fields with NUL bytes, so they cannot hold one.
	if strings.ContainsRune(r.Username, 0) || strings.ContainsRune(r.Password, 0) {
		return nil, mxerr.InvalidParam("username and password cannot contain NUL characters")
	}
	want := SharedSecretMAC(s.cfg.Registration.SharedSecret, r)
	if !hmac.Equal([]byte(want), []byte(r.MAC)) {
		return nil, mxerr.Forbidden("HMAC incorrect")
	}
	if r.UserType != "" && r.UserType != "bot" && r.UserType != "support" {
		return nil, mxerr.InvalidParam("Invalid user type")
	}
	if !validText(r.DisplayName) {
		return nil, mxerr.InvalidParam("displayname must be valid UTF-8 without NUL characters")
	}
	// The MAC covers the username as sent; the account gets it in lower
	// case, as in Synapse.
	userID, err := s.CreateAccount(ctx, strings.ToLower(r.Username), r.Password, r.Admin, r.UserType)
	if err != nil {
		return nil, err
	}
	if r.DisplayName != "" {
		if err := s.db.SetDisplayName(ctx, userID, r.DisplayName); err != nil {
			return nil, err
		}
	}
	s.log.Info("registered account with shared secret", "user_id", userID, "admin", r.Admin)
	return s.IssueTokens(ctx, userID, "", "", false)
}
