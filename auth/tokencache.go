package auth

import (
	"sync"
	"time"

	"github.com/aula-chat/aula/storage"
)

// tokenCache remembers what access tokens resolve to, so that an
// authenticated request does not need a database query. Every path that
// revokes tokens goes through the Service, which calls forgetUser after the
// revocation is stored; entries also expire after ttl as a second line of
// defence. A lookup that raced with a revocation is not cached (see gen).
type tokenCache struct {
	mu     sync.Mutex
	ttl    time.Duration
	max    int
	gen    uint64 // bumped by every revocation
	byHash map[string]cachedToken
	byUser map[string]map[string]struct{}
}

type cachedToken struct {
	owner storage.TokenOwner
	until time.Time
}

func newTokenCache(ttl time.Duration, max int) *tokenCache {
	return &tokenCache{ttl: ttl, max: max, byHash: map[string]cachedToken{}, byUser: map[string]map[string]struct{}{}}
}

// get returns a cached owner, and the generation to pass to put after a
// database lookup when there is none.
func (c *tokenCache) get(hash []byte, now time.Time) (storage.TokenOwner, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byHash[string(hash)]
	if !ok || now.After(e.until) {
		return storage.TokenOwner{}, false, c.gen
	}
	return e.owner, true, c.gen
}

// put caches an owner read from the database, unless a revocation happened
// since gen was read.
func (c *tokenCache) put(hash []byte, o storage.TokenOwner, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.byHash) >= c.max {
		clear(c.byHash)
		clear(c.byUser)
	}
	k := string(hash)
	c.byHash[k] = cachedToken{owner: o, until: now.Add(c.ttl)}
	if c.byUser[o.UserID] == nil {
		c.byUser[o.UserID] = map[string]struct{}{}
	}
	c.byUser[o.UserID][k] = struct{}{}
}

// forgetUser drops every cached token of the user. Call it after storing a
// revocation of any of the user's tokens.
func (c *tokenCache) forgetUser(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k := range c.byUser[userID] {
		delete(c.byHash, k)
	}
	delete(c.byUser, userID)
}
