package storage_test

import (
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/aula-chat/aula/storage"
)

// hash stands in for the SHA-256 token hashes the auth package stores.
func hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// createUser creates an ordinary user with the given localpart.
func createUser(t *testing.T, db *storage.DB, localpart string) string {
	t.Helper()
	id := "@" + localpart + ":example.org"
	if err := db.CreateUser(t.Context(), storage.User{UserID: id, Localpart: localpart}); err != nil {
		t.Fatalf("CreateUser(%s): %v", id, err)
	}
	return id
}

// login creates (or re-logs in) a device with the given access and, if not
// empty, refresh token.
func login(t *testing.T, db *storage.DB, userID, deviceID, access, refresh string) {
	t.Helper()
	tok := storage.NewTokens{AccessHash: hash(access)}
	if refresh != "" {
		tok.RefreshHash = hash(refresh)
	}
	if err := db.LoginDevice(t.Context(), userID, deviceID, "", tok); err != nil {
		t.Fatalf("LoginDevice(%s, %s): %v", userID, deviceID, err)
	}
}

// wantErr fails the test unless err matches want (nil meaning success).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// liveToken reports whether the access token resolves, failing the test on
// errors other than ErrNotFound.
func liveToken(t *testing.T, db *storage.DB, access string) bool {
	t.Helper()
	_, err := db.TokenOwner(t.Context(), hash(access))
	if errors.Is(err, storage.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatalf("TokenOwner(%s): %v", access, err)
	}
	return true
}
