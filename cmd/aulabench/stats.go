package main

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// recorder collects the latencies and errors of one kind of request.
type recorder struct {
	name string

	mu        sync.Mutex
	latencies []time.Duration // of successful requests
	errors    map[string]int  // error kind → count
}

func newRecorder(name string) *recorder {
	return &recorder{name: name, errors: make(map[string]int)}
}

func (r *recorder) add(d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errors[errorKind(err)]++
		return
	}
	r.latencies = append(r.latencies, d)
}

// summary is what a recorder reports; latencies are of successful requests.
type summary struct {
	Name       string   `json:"name"`
	Count      int64    `json:"count"` // successful and failed
	Errors     int64    `json:"errors"`
	P50MS      float64  `json:"p50_ms"`
	P95MS      float64  `json:"p95_ms"`
	P99MS      float64  `json:"p99_ms"`
	MaxMS      float64  `json:"max_ms"`
	ErrorKinds []string `json:"error_kinds,omitempty"` // "HTTP 500 M_UNKNOWN ×3"
}

func (r *recorder) summary() summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	lat := slices.Clone(r.latencies)
	slices.Sort(lat)
	s := summary{
		Name:  r.name,
		P50MS: ms(percentile(lat, 0.50)),
		P95MS: ms(percentile(lat, 0.95)),
		P99MS: ms(percentile(lat, 0.99)),
		MaxMS: ms(percentile(lat, 1)),
	}
	for kind, n := range r.errors {
		s.Errors += int64(n)
		s.ErrorKinds = append(s.ErrorKinds, fmt.Sprintf("%s ×%d", kind, n))
	}
	slices.Sort(s.ErrorKinds)
	s.Count = int64(len(lat)) + s.Errors
	return s
}

// percentile returns the nearest-rank p-quantile of sorted (0 when empty).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
