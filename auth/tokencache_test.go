package auth

import (
	"testing"
	"time"

	"github.com/aula-chat/aula/storage"
)

func TestTokenCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newTokenCache(time.Minute, 3)
	alice := storage.TokenOwner{UserID: "@alice:x", DeviceID: "A"}
	bob := storage.TokenOwner{UserID: "@bob:x", DeviceID: "B"}

	_, ok, gen := c.get([]byte("a"), now)
	if ok {
		t.Fatal("empty cache hit")
	}
	c.put([]byte("a"), alice, gen, now)
	c.put([]byte("b"), bob, gen, now)
	if o, ok, _ := c.get([]byte("a"), now); !ok || o.UserID != alice.UserID || o.DeviceID != alice.DeviceID {
		t.Fatalf("get a = %v %v", o, ok)
	}
	// Entries expire after the TTL.
	if _, ok, _ := c.get([]byte("a"), now.Add(2*time.Minute)); ok {
		t.Error("expired entry returned")
	}
	// Revoking one user's tokens forgets only theirs.
	c.forgetUser(alice.UserID)
	if _, ok, _ := c.get([]byte("a"), now); ok {
		t.Error("revoked user's token still cached")
	}
	if _, ok, _ := c.get([]byte("b"), now); !ok {
		t.Error("other user's token forgotten")
	}
	// A lookup that started before a revocation must not be cached.
	_, _, gen = c.get([]byte("a"), now)
	c.forgetUser(alice.UserID)
	c.put([]byte("a"), alice, gen, now)
	if _, ok, _ := c.get([]byte("a"), now); ok {
		t.Error("stale lookup was cached across a revocation")
	}
	// The cache is bounded.
	_, _, gen = c.get(nil, now)
	for i := 0; i < 10; i++ {
		c.put([]byte{byte(i)}, bob, gen, now)
	}
	if len(c.byHash) > 3 {
		t.Errorf("cache holds %d entries, max 3", len(c.byHash))
	}
}
