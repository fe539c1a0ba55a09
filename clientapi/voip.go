package clientapi

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
)

// staticTURNTTL is the ttl announced with fixed TURN credentials, which do
// not expire: clients ask again after about this long.
const staticTURNTTL = 24 * time.Hour

// turnServer answers GET /voip/turnServer: credentials for the configured
// TURN servers. With turn.shared_secret (coturn's use-auth-secret) the
// username is "<expiry unix seconds>:<user ID>" and the password the
// base64 HMAC-SHA1 of the username under the secret, so the TURN server
// checks them without asking aula. Without any TURN server the answer is
// {} (as Synapse's), and clients call without a relay.
func (a *API) turnServer(r *http.Request, d *auth.Device) (any, error) {
	if wait := a.calls.turnLimit.take(d.UserID, time.Now()); wait > 0 {
		return nil, mxerr.LimitExceeded(wait.Milliseconds())
	}
	t := a.cfg.Turn
	if len(t.URIs) == 0 {
		return emptyObject, nil
	}
	secret, err := t.Secret()
	if err != nil {
		return nil, fmt.Errorf("turn: shared secret: %w", err)
	}
	switch {
	case secret != "":
		lifetime := t.UserLifetime.D()
		username, password := turnCredentials(secret, d.UserID, time.Now().Add(lifetime))
		return turnResponse{Username: username, Password: password, URIs: t.URIs, TTL: int64(lifetime.Seconds())}, nil
	case t.Username != "":
		return turnResponse{Username: t.Username, Password: t.Password, URIs: t.URIs, TTL: int64(staticTURNTTL.Seconds())}, nil
	}
	return emptyObject, nil
}

// turnResponse is the body of GET /voip/turnServer.
type turnResponse struct {
	Username string   `json:"username"`
	Password string   `json:"password"`
	URIs     []string `json:"uris"`
	TTL      int64    `json:"ttl"`
}

// turnCredentials are the TURN REST API credentials (coturn's
// use-auth-secret) of userID valid until expiry.
func turnCredentials(secret, userID string, expiry time.Time) (username, password string) {
	username = strconv.FormatInt(expiry.Unix(), 10) + ":" + userID
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// callLimiter is a token bucket per key (burst requests, then one per
// every), for endpoints that are cheap but should not be hammered.
type callLimiter struct {
	mu      sync.Mutex
	burst   float64
	every   time.Duration
	buckets map[string]*callBucket
}

type callBucket struct {
	tokens float64
	last   time.Time
}

func newCallLimiter(burst int, every time.Duration) *callLimiter {
	return &callLimiter{burst: float64(burst), every: every, buckets: map[string]*callBucket{}}
}

// take spends one request of key at now. It returns 0 if the request may
// go ahead, else how long to wait.
func (l *callLimiter) take(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) > 100000 {
			l.buckets = map[string]*callBucket{} // forgetting is harmless: buckets start full
		}
		b = &callBucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if now.After(b.last) {
		b.tokens = min(l.burst, b.tokens+float64(now.Sub(b.last))/float64(l.every))
		b.last = now
	}
	if b.tokens < 1 {
		return max(time.Duration((1-b.tokens)*float64(l.every)), time.Millisecond)
	}
	b.tokens--
	return 0
}
