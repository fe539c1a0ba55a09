package ratelimit

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	l := New(3, 10*time.Second)

	if w := l.Wait("k", t0); w != 0 {
		t.Fatalf("unknown key waits %v, want 0", w)
	}
	for i := range 3 {
		if w := l.Wait("k", t0); w != 0 {
			t.Fatalf("attempt %d waits %v within the burst", i+1, w)
		}
		l.Take("k", t0)
	}
	if w := l.Wait("k", t0); w != 10*time.Second {
		t.Fatalf("after the burst: wait %v, want 10s", w)
	}
	if w := l.Wait("other", t0); w != 0 {
		t.Fatalf("another key waits %v, want 0", w)
	}
	if w := l.Wait("k", t0.Add(4*time.Second)); w != 6*time.Second {
		t.Fatalf("4s later: wait %v, want 6s", w)
	}
	if w := l.Wait("k", t0.Add(10*time.Second)); w != 0 {
		t.Fatalf("10s later: wait %v, want 0", w)
	}
	// A clock going backwards does not earn or cost tokens.
	if w := l.Wait("k", t0.Add(-time.Hour)); w != 0 {
		t.Fatalf("clock went back: wait %v, want 0 (one token earned before)", w)
	}
	// Refill is capped at the burst.
	later := t0.Add(24 * time.Hour)
	for range 3 {
		l.Take("k", later)
	}
	if w := l.Wait("k", later); w == 0 {
		t.Fatalf("burst refilled beyond its size")
	}
}
