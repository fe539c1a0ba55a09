package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"runtime"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// maxPasswordBytes bounds passwords so hashing cost stays predictable.
const maxPasswordBytes = 512

// bcryptInput returns what is fed to bcrypt: the password itself, or for a
// password longer than bcrypt's 72-byte limit its SHA-256 in base64, so that
// every byte of a long password counts.
func bcryptInput(password string) []byte {
	if len(password) <= 72 {
		return []byte(password)
	}
	sum := sha256.Sum256([]byte(password))
	return []byte(base64.StdEncoding.EncodeToString(sum[:]))
}

// HashPassword returns the bcrypt hash of password at the given cost.
func HashPassword(password string, cost int) (string, error) {
	h, err := bcrypt.GenerateFromPassword(bcryptInput(password), cost)
	if err != nil {
		return "", err
	}
	return string(h), nil
}

// CheckPassword reports whether password matches hash. bcrypt compares in
// constant time.
func CheckPassword(hash, password string) bool {
	if hash == "" {
		return false
	}
	err := bcrypt.CompareHashAndPassword([]byte(hash), bcryptInput(password))
	return err == nil
}

// hasher runs bcrypt for the service. bcrypt is deliberately slow (about
// 0.25 s of CPU at cost 12), so a burst of logins would otherwise take every
// core and stall all other requests: at most slots hashes run at once, and
// the rest wait their turn (or give up when the request ends).
type hasher struct {
	cost  int
	slots chan struct{}

	// dummy is checked when a login names an unknown user, so that both
	// cases take the same time. It is made on first use, not at start-up.
	dummyOnce sync.Once
	dummy     string
}

func newHasher(cost int) *hasher {
	return &hasher{cost: cost, slots: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))}
}

func (h *hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *hasher) release() { <-h.slots }

// hash returns the bcrypt hash of password.
func (h *hasher) hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return HashPassword(password, h.cost)
}

// check reports whether password matches hash; an empty hash is checked
// against the dummy hash and never matches.
func (h *hasher) check(ctx context.Context, hash, password string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	if hash == "" {
		h.dummyOnce.Do(func() { h.dummy, _ = HashPassword(newToken(""), h.cost) })
		CheckPassword(h.dummy, password)
		return false, nil
	}
	return CheckPassword(hash, password), nil
}
