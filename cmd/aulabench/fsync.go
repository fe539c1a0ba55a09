package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// The fsync scenario measures the disk the way a database commit uses it:
// a small write into a preallocated file, then a data sync that must reach
// stable storage before the commit may be reported. PostgreSQL with
// synchronous_commit on waits for exactly this on every commit, so each
// stall of the disk stalls every request that commits during it, however
// fast the server is.
const (
	fsyncBlock    = 8 << 10  // bytes written per sync (one WAL page)
	fsyncFileSize = 16 << 20 // the file the blocks cycle through (one WAL segment)
	stallAt       = 10 * time.Millisecond
)

// fsyncResult is the outcome of the fsync scenario (also its -json output).
type fsyncResult struct {
	Scenario      string    `json:"scenario"`
	Dir           string    `json:"dir"`
	Seconds       float64   `json:"seconds"`
	Syncs         int       `json:"syncs"`
	P50MS         float64   `json:"p50_ms"`
	P99MS         float64   `json:"p99_ms"`
	P999MS        float64   `json:"p999_ms"`
	MaxMS         float64   `json:"max_ms"`
	Stalls        int       `json:"stalls_over_10ms"`
	Stalls50      int       `json:"stalls_over_50ms"`
	StalledShare  float64   `json:"stalled_share"` // of the wall time, spent in syncs of 10 ms or more
	LongestStalls []float64 `json:"longest_stalls_ms"`
}

// runFsync writes and syncs blocks for o.duration (at most o.ops syncs).
func runFsync(o options, stdout io.Writer) error {
	f, err := os.CreateTemp(o.dir, "aulabench-fsync-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	// Preallocate and sync once, as PostgreSQL does for a WAL segment, so
	// the measured syncs write data only, not file growth.
	if _, err := f.Write(make([]byte, fsyncFileSize)); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	block := make([]byte, fsyncBlock)
	var lat []time.Duration
	var stalled time.Duration
	start := time.Now()
	end := start.Add(o.duration)
	for off := int64(0); len(lat) < o.ops && time.Now().Before(end); off = (off + fsyncBlock) % fsyncFileSize {
		block[0]++ // a changed page, so nothing can skip the write
		t := time.Now()
		if _, err := f.WriteAt(block, off); err != nil {
			return err
		}
		if err := datasync(f); err != nil {
			return err
		}
		d := time.Since(t)
		lat = append(lat, d)
		if d >= stallAt {
			stalled += d
		}
	}
	elapsed := time.Since(start)
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	r := fsyncResult{
		Scenario: "fsync", Dir: o.dir, Seconds: elapsed.Seconds(), Syncs: len(lat),
		P50MS: ms(percentile(sorted, 0.50)), P99MS: ms(percentile(sorted, 0.99)),
		P999MS: ms(percentile(sorted, 0.999)), MaxMS: ms(percentile(sorted, 1)),
		StalledShare: stalled.Seconds() / elapsed.Seconds(),
	}
	for i := len(sorted) - 1; i >= 0 && sorted[i] >= stallAt; i-- {
		r.Stalls++
		if sorted[i] >= 50*time.Millisecond {
			r.Stalls50++
		}
		if len(r.LongestStalls) < 5 {
			r.LongestStalls = append(r.LongestStalls, ms(sorted[i]))
		}
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(stdout, "scenario fsync: %s, %d KiB write + data sync, %.1f s\n", o.dir, fsyncBlock>>10, r.Seconds)
	fmt.Fprintf(stdout, "syncs: %d (%.0f/s) p50 %s p99 %s p99.9 %s max %s\n", r.Syncs, float64(r.Syncs)/r.Seconds,
		fmtMS(r.P50MS), fmtMS(r.P99MS), fmtMS(r.P999MS), fmtMS(r.MaxMS))
	fmt.Fprintf(stdout, "stalls of 10 ms or more: %d (%d of 50 ms or more), %.1f%% of the time; longest:",
		r.Stalls, r.Stalls50, 100*r.StalledShare)
	for _, s := range r.LongestStalls {
		fmt.Fprintf(stdout, " %s", fmtMS(s))
	}
	fmt.Fprintln(stdout)
	return nil
}
