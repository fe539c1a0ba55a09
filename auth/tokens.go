package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// Token prefixes say what a token is when one turns up in a log or a bug
// report; the random part carries 256 bits.
const (
	accessTokenPrefix  = "aat_"
	refreshTokenPrefix = "art_"
)

// newToken returns a new random token with the given prefix.
func newToken(prefix string) string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics instead)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// hashToken is how tokens are stored: SHA-256 of the whole token. A token
// has 256 bits of entropy, so a fast hash is enough; the database never
// holds a usable token.
func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// newDeviceID returns a random device ID: ten characters of A-Z and 2-7.
func newDeviceID() string {
	return rand.Text()[:10]
}
