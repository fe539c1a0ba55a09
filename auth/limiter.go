package auth

import (
	"sync"
	"time"

	"github.com/aula-chat/aula/internal/mxerr"
)

// limiter is a token bucket per key: burst tokens, refilled one per every.
// It counts failures only, so honest users are never slowed down.
type limiter struct {
	mu      sync.Mutex
	burst   float64
	every   time.Duration
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(burst int, every time.Duration) *limiter {
	return &limiter{burst: float64(burst), every: every, buckets: make(map[string]*bucket)}
}

// refill brings b up to date; the caller holds l.mu.
func (l *limiter) refill(b *bucket, now time.Time) {
	if now.Before(b.last) { // the clock went back: wait for it
		return
	}
	b.tokens += float64(now.Sub(b.last)) / float64(l.every)
	if b.tokens > l.burst {
		b.tokens = l.burst
	}
	b.last = now
}

// wait returns how long key must wait at time now before its next attempt
// (0: it may try now).
func (l *limiter) wait(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		return 0
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(l.every))
}

// take records one attempt for key at time now.
func (l *limiter) take(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) > 100000 {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	b.tokens--
}

// sweep drops buckets that have refilled completely; the caller holds l.mu.
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// limitExceeded is the 429 for a wait of d, rounded up to whole
// milliseconds so that a client waiting exactly that long gets through.
func limitExceeded(d time.Duration) error {
	return mxerr.LimitExceeded(int64((d + time.Millisecond - 1) / time.Millisecond))
}
