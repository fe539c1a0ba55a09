// Package openid issues the OpenID tokens of POST
// /user/{userId}/openid/request_token and resolves them for
// /_matrix/federation/v1/openid/userinfo. A third party, such as the LiveKit
// JWT service of Element Call, uses them to learn a user's Matrix ID
// without seeing the user's access token.
//
// Tokens are 32 random bytes; only their SHA-256 hash is stored, so the
// database never holds a usable token and lookups compare no secret byte
// by byte.
package openid

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/aula-chat/aula/storage"
)

// Lifetime is how long an OpenID token is valid.
const Lifetime = time.Hour

// Service issues and resolves OpenID tokens.
type Service struct {
	db  *storage.DB
	now func() time.Time
}

// New builds the service.
func New(db *storage.DB) *Service { return &Service{db: db, now: time.Now} }

// Token is a newly issued OpenID token.
type Token struct {
	AccessToken string
	ExpiresIn   time.Duration
}

// Issue makes a new token for userID.
func (s *Service) Issue(ctx context.Context, userID string) (Token, error) {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics instead)
	tok := "aot_" + base64.RawURLEncoding.EncodeToString(b)
	now := s.now()
	if err := s.db.AddOpenIDToken(ctx, hash(tok), userID, now.Add(Lifetime).UnixMilli(), now.UnixMilli()); err != nil {
		return Token{}, fmt.Errorf("openid: issue: %w", err)
	}
	return Token{AccessToken: tok, ExpiresIn: Lifetime}, nil
}

// UserID returns the user a valid token belongs to, or "" if the token is
// unknown or expired.
func (s *Service) UserID(ctx context.Context, token string) (string, error) {
	if token == "" {
		return "", nil
	}
	return s.db.OpenIDTokenUser(ctx, hash(token), s.now().UnixMilli())
}

func hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
