// Package sealed signs small values that the server hands to a browser and
// must get back unaltered, such as the state of a sign-in kept in a
// cookie. A sealed value is base64url(JSON) "." base64url(HMAC-SHA256),
// where the MAC covers a purpose string and the encoded JSON, so a value
// sealed for one purpose is never accepted for another. The key is a
// server secret loaded on first use, so that every restart agrees on it.
package sealed

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
)

// ErrInvalid is a value that was not sealed by this server for this
// purpose, or was altered.
var ErrInvalid = errors.New("sealed: invalid or altered value")

// Sealer seals and opens values for one purpose.
type Sealer struct {
	purpose string
	secret  func(context.Context) ([]byte, error)

	mu  sync.Mutex
	key []byte // loaded on first use
}

// New returns a sealer whose key comes from secret (called until it
// succeeds once) and whose MACs are bound to purpose.
func New(purpose string, secret func(context.Context) ([]byte, error)) *Sealer {
	return &Sealer{purpose: purpose, secret: secret}
}

func (s *Sealer) loadKey(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		k, err := s.secret(ctx)
		if err != nil {
			return nil, err
		}
		s.key = k
	}
	return s.key, nil
}

// Seal encodes v as JSON and signs it.
func (s *Sealer) Seal(ctx context.Context, v any) (string, error) {
	key, err := s.loadKey(ctx)
	if err != nil {
		return "", err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	body := base64.RawURLEncoding.EncodeToString(raw)
	return body + "." + base64.RawURLEncoding.EncodeToString(s.mac(key, body)), nil
}

// Open checks value's signature in constant time and decodes it into v;
// ErrInvalid if it is not a value Seal made.
func (s *Sealer) Open(ctx context.Context, value string, v any) error {
	key, err := s.loadKey(ctx)
	if err != nil {
		return err
	}
	body, mac, ok := strings.Cut(value, ".")
	if !ok {
		return ErrInvalid
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || !hmac.Equal(got, s.mac(key, body)) {
		return ErrInvalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || json.Unmarshal(raw, v) != nil {
		return ErrInvalid
	}
	return nil
}

func (s *Sealer) mac(key []byte, body string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s.purpose + "\x00" + body))
	return m.Sum(nil)
}
