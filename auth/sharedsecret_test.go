package auth

import (
	"testing"
	"time"
)

// The expected MACs were computed independently (Python's hmac module,
// following Synapse's documentation of shared-secret registration).
func TestSharedSecretMAC(t *testing.T) {
	const secret = "s3cret-s3cret-s3cret"
	for _, c := range []struct {
		req  SharedSecretRequest
		want string
	}{
		{SharedSecretRequest{Nonce: "abc123", Username: "alice", Password: "wonderland"}, "701c55515156b91a388759f1ec668dcf53ac36a5"},
		{SharedSecretRequest{Nonce: "abc123", Username: "alice", Password: "wonderland", Admin: true}, "b16830147aabe6364ec04847e8427f76baebbf00"},
		{SharedSecretRequest{Nonce: "abc123", Username: "Bot.One", Password: "pässwörd", UserType: "bot"}, "3e14b682339c75a34daa70415bd7787208789796"},
	} {
		if got := SharedSecretMAC(secret, c.req); got != c.want {
			t.Errorf("SharedSecretMAC(%+v) = %s, want %s", c.req, got, c.want)
		}
	}
}

func TestNonceStore(t *testing.T) {
	n := newNonceStore()
	t0 := time.Unix(1_700_000_000, 0)
	a := n.issue(t0)
	b := n.issue(t0)
	if a == b || len(a) < 32 {
		t.Fatalf("nonces %q and %q: want distinct and long", a, b)
	}
	if !n.use(a, t0.Add(nonceLifetime-time.Second)) {
		t.Fatalf("fresh nonce refused")
	}
	if n.use(a, t0) {
		t.Fatalf("nonce accepted twice")
	}
	if n.use(b, t0.Add(nonceLifetime+time.Second)) {
		t.Fatalf("expired nonce accepted")
	}
	if n.use("never-issued", t0) {
		t.Fatalf("unknown nonce accepted")
	}
	// Issuing sweeps expired nonces.
	n.issue(t0)
	n.issue(t0.Add(2 * nonceLifetime))
	if len(n.nonces) != 1 {
		t.Fatalf("%d nonces kept, want only the fresh one", len(n.nonces))
	}
}
