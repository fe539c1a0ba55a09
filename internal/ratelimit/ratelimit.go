// Package ratelimit is a token bucket per key (a user, a client address):
// burst attempts at once, then one more every interval. Callers decide what
// counts as an attempt, e.g. failed logins only, so honest users are never
// slowed down.
package ratelimit

import (
	"sync"
	"time"
)

// Limiter is a token bucket per key: burst tokens, refilled one per every.
type Limiter struct {
	mu      sync.Mutex
	burst   float64
	every   time.Duration
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a limiter allowing burst attempts, then one per every.
func New(burst int, every time.Duration) *Limiter {
	return &Limiter{burst: float64(burst), every: every, buckets: make(map[string]*bucket)}
}

// refill brings b up to date; the caller holds l.mu.
func (l *Limiter) refill(b *bucket, now time.Time) {
	if now.Before(b.last) { // the clock went back: wait for it
		return
	}
	b.tokens += float64(now.Sub(b.last)) / float64(l.every)
	if b.tokens > l.burst {
		b.tokens = l.burst
	}
	b.last = now
}

// Wait returns how long key must wait at time now before its next attempt
// (0: it may try now).
func (l *Limiter) Wait(key string, now time.Time) time.Duration {
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

// Take records one attempt for key at time now.
func (l *Limiter) Take(key string, now time.Time) {
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
func (l *Limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.buckets, k)
		}
	}
}
