package auth

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"

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

// errNoPassword is checked against a dummy hash so that a login for an
// unknown user costs as much as one for a known user.
var errNoPassword = errors.New("auth: account has no password")
