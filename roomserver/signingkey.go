package roomserver

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/matrix-org/gomatrixserverlib"
)

// SigningKey is the server's ed25519 key that signs every event it creates.
type SigningKey struct {
	ID      gomatrixserverlib.KeyID // e.g. "ed25519:a_XyZ1"
	Private ed25519.PrivateKey
}

// LoadOrCreateSigningKey reads the signing key at path, or creates one there
// (mode 0600) if the file does not exist. The file format is Synapse's: one
// line "ed25519 <version> <unpadded base64 seed>", so a key can move between
// the two servers.
func LoadOrCreateSigningKey(path string) (SigningKey, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createSigningKey(path)
	}
	if err != nil {
		return SigningKey{}, fmt.Errorf("signing key: %w", err)
	}
	fields := strings.Fields(string(raw))
	if len(fields) != 3 || fields[0] != "ed25519" {
		return SigningKey{}, fmt.Errorf("signing key %s: want one line \"ed25519 VERSION SEED\"", path)
	}
	seed, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(fields[2], "="))
	if err != nil || len(seed) != ed25519.SeedSize {
		return SigningKey{}, fmt.Errorf("signing key %s: the seed is not %d bytes of base64", path, ed25519.SeedSize)
	}
	return SigningKey{
		ID:      gomatrixserverlib.KeyID("ed25519:" + fields[1]),
		Private: ed25519.NewKeyFromSeed(seed),
	}, nil
}

func createSigningKey(path string) (SigningKey, error) {
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	version := "a_" + rand.Text()[:4]
	line := "ed25519 " + version + " " + base64.RawStdEncoding.EncodeToString(seed) + "\n"
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return SigningKey{}, fmt.Errorf("signing key: %w", err)
	}
	// O_EXCL: two processes starting at once must not both write a key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadOrCreateSigningKey(path)
	}
	if err != nil {
		return SigningKey{}, fmt.Errorf("signing key: %w", err)
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return SigningKey{}, fmt.Errorf("signing key: %w", err)
	}
	if err := f.Close(); err != nil {
		return SigningKey{}, fmt.Errorf("signing key: %w", err)
	}
	return SigningKey{ID: gomatrixserverlib.KeyID("ed25519:" + version), Private: ed25519.NewKeyFromSeed(seed)}, nil
}
