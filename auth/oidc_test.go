package auth

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TestVerifyIDToken checks that ID tokens with a wrong issuer, audience,
// nonce, signature or expiry are refused.
func TestVerifyIDToken(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	const iss, aud, nonce = "https://idp.example", "aula", "n0nce"
	sign := func(k *rsa.PrivateKey, c map[string]any) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k}, nil)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := jwt.Signed(s).Claims(c).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	claims := func(change func(map[string]any)) map[string]any {
		c := map[string]any{"iss": iss, "aud": aud, "sub": "s1", "nonce": nonce,
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()}
		if change != nil {
			change(c)
		}
		return c
	}
	v := oidc.NewVerifier(iss, &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{&key.PublicKey}}, &oidc.Config{ClientID: aud})
	if c, err := verifyIDToken(t.Context(), v, sign(key, claims(nil)), nonce); err != nil || c["sub"] != "s1" {
		t.Fatalf("good token: %v %v", c, err)
	}
	for name, tc := range map[string]struct {
		raw   string
		nonce string
		want  string
	}{
		"wrong issuer":    {sign(key, claims(func(c map[string]any) { c["iss"] = "https://evil.example" })), nonce, "different provider"},
		"wrong audience":  {sign(key, claims(func(c map[string]any) { c["aud"] = "someone-else" })), nonce, "audience"},
		"expired":         {sign(key, claims(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })), nonce, "expired"},
		"wrong signature": {sign(other, claims(nil)), nonce, "signature"},
		"wrong nonce":     {sign(key, claims(nil)), "other", "nonce"},
		"no subject":      {sign(key, claims(func(c map[string]any) { delete(c, "sub") })), nonce, "subject"},
	} {
		if _, err := verifyIDToken(t.Context(), v, tc.raw, tc.nonce); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one mentioning %q", name, err, tc.want)
		}
	}
}

func TestMapLocalpart(t *testing.T) {
	for in, want := range map[string]string{
		"Alice": "alice", "jdoe@uni.example": "jdoe=40uni.example", "_x": "=5fx", "a b": "a=20b", "a=b": "a=3db",
	} {
		if got := mapLocalpart(in); got != want {
			t.Errorf("mapLocalpart(%q) = %q, want %q", in, got, want)
		}
	}
}
