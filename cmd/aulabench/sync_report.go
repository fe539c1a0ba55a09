package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// syncReport is the outcome of a sync scenario; it is also the -json output.
type syncReport struct {
	Scenario     string  `json:"scenario"`
	Target       string  `json:"target"`
	Clients      int     `json:"clients"` // long-polling clients (sync-idle: 1)
	Rooms        int     `json:"rooms"`
	UsersCreated int     `json:"users_created"`
	SetupSeconds float64 `json:"setup_seconds"`
	LoadAvg      string  `json:"loadavg_before"`
	LoadAvgAfter string  `json:"loadavg_after"`
	Seconds      float64 `json:"seconds"` // of the measured phase
	Messages     int     `json:"messages"`
	// SetPresence is the set_presence the clients sent ("": none, which
	// means online).
	SetPresence string `json:"set_presence"`
	// Park is what getting every client to a parked long-poll took.
	Park *parkStats `json:"park,omitempty"`
	// PresenceEvents counts the presence events the clients received.
	PresenceEvents int64 `json:"presence_events"`

	// Requests: for sync-wake and sync-fanout "send" (PUT /send), "wake"
	// (/sync return − PUT /send return), "wake-from-start" (/sync return −
	// PUT /send start), "initial" and "longpoll"; for sync-idle "initial"
	// and "incremental".
	Requests []summary `json:"requests"`

	Expected   int           `json:"wakeups_expected,omitempty"`
	Received   int           `json:"wakeups_received,omitempty"`
	Missing    int           `json:"wakeups_missing"`
	Unexpected int           `json:"wakeups_unexpected"`
	Negative   int           `json:"wakeups_negative"` // wake before PUT /send returned
	Duplicates int           `json:"duplicates"`
	Limited    int64         `json:"limited_timelines"`
	PerMessage []messageStat `json:"per_message,omitempty"`

	// sync-idle
	InitialBytes     int `json:"initial_bytes,omitempty"`
	InitialRooms     int `json:"initial_rooms,omitempty"`
	NonEmptyIdle     int `json:"incremental_non_empty,omitempty"`
	IncrementalBytes int `json:"incremental_bytes,omitempty"`

	Errors         int64       `json:"errors"`
	ErrorSamples   []string    `json:"error_samples,omitempty"`
	MissingSamples []string    `json:"missing_samples,omitempty"`
	Server         *procResult `json:"server,omitempty"`
	Postgres       *procResult `json:"postgres,omitempty"`
	// sync-idle: the CPU of the initial syncs (Server and Postgres are of
	// the incremental ones).
	InitialServer   *procResult `json:"server_initial,omitempty"`
	InitialPostgres *procResult `json:"postgres_initial,omitempty"`
	// ClientCPU is aulabench's own CPU time in the measured phase: the
	// load generator shares the cores with the server.
	ClientCPU float64 `json:"client_cpu_seconds"`
	Op        string  `json:"op"` // what the CPU figures are per
	Summary   string  `json:"summary"`
}

// parkStats describes the start of a fleet: from the first initial sync
// to every client having a long-poll out.
type parkStats struct {
	Seconds        float64 `json:"seconds"`
	ServerCPU      float64 `json:"server_cpu_seconds"`
	ServerRSSKiB   int64   `json:"server_vm_rss_kib"`
	Answers        int64   `json:"longpolls_answered"` // long-polls answered meanwhile
	PresenceEvents int64   `json:"presence_events"`
}

// addRequests appends summaries and counts their errors.
func (r *syncReport) addRequests(ss ...summary) {
	for _, s := range ss {
		r.Requests = append(r.Requests, s)
		r.Errors += s.Errors
	}
}

// request returns the summary named name (zero if absent).
func (r *syncReport) request(name string) summary {
	for _, s := range r.Requests {
		if s.Name == name {
			return s
		}
	}
	return summary{}
}

// addWakes copies the wake-up figures of st into the report.
func (r *syncReport) addWakes(st wakeStats, ms []member) {
	r.Expected, r.Received, r.Missing = st.Expected, st.Received, st.Missing
	r.Unexpected, r.Negative, r.Duplicates = st.Unexpected, st.Negative, st.Duplicates
	for _, p := range st.MissingSamples {
		r.MissingSamples = append(r.MissingSamples, fmt.Sprintf("%s never saw message %d", ms[p[0]].userID, p[1]))
	}
	r.addRequests(latencySummary("wake", st.FromReturn), latencySummary("wake-from-start", st.FromStart))
}

func (r *syncReport) write(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	r.print(w)
	return nil
}

func (r *syncReport) print(w io.Writer) {
	fmt.Fprintf(w, "scenario %s: %s, %d clients, %d rooms, %d users created, setup %.1f s\n",
		r.Scenario, r.Target, r.Clients, r.Rooms, r.UsersCreated, r.SetupSeconds)
	fmt.Fprintf(w, "load average before: %s; after: %s\n", r.LoadAvg, r.LoadAvgAfter)
	presence := r.SetPresence
	if presence == "" {
		presence = "left out (online)"
	}
	fmt.Fprintf(w, "set_presence: %s; presence events received: %d\n", presence, r.PresenceEvents)
	if p := r.Park; p != nil {
		fmt.Fprintf(w, "start: initial syncs and parking took %.1f s, server CPU %.1f s, VmRSS then %s; %d long-polls answered meanwhile, with %d presence events\n",
			p.Seconds, p.ServerCPU, fmtKiB(p.ServerRSSKiB), p.Answers, p.PresenceEvents)
	}
	if r.Op == "wake-up" {
		fmt.Fprintf(w, "measured phase %.1f s, %d messages sent without error, %d request errors\n\n", r.Seconds, r.Messages, r.Errors)
	} else {
		fmt.Fprintf(w, "measured phase %.1f s (the %ss), %d request errors\n\n", r.Seconds, r.Op, r.Errors)
	}
	fmt.Fprintf(w, "%-16s %8s %7s %9s %9s %9s %9s\n", "request", "count", "errors", "p50", "p95", "p99", "max")
	for _, s := range r.Requests {
		fmt.Fprintf(w, "%-16s %8d %7d %9s %9s %9s %9s\n", s.Name, s.Count, s.Errors,
			fmtSignedMS(s.P50MS), fmtSignedMS(s.P95MS), fmtSignedMS(s.P99MS), fmtSignedMS(s.MaxMS))
	}
	for _, s := range r.Requests {
		if len(s.ErrorKinds) > 0 {
			fmt.Fprintf(w, "%s errors: %s\n", s.Name, strings.Join(s.ErrorKinds, "; "))
		}
	}
	if r.Expected > 0 || r.Missing > 0 {
		fmt.Fprintf(w, "\nwake-ups: %d of %d expected received, %d missing, %d unexpected, %d duplicate, %d before PUT /send returned; %d answers had a limited timeline\n",
			r.Received, r.Expected, r.Missing, r.Unexpected, r.Duplicates, r.Negative, r.Limited)
	}
	if len(r.PerMessage) > 0 && len(r.PerMessage) <= 20 {
		fmt.Fprintf(w, "\n%-5s %5s %9s %9s %9s %9s %9s\n", "msg", "room", "send", "received", "p50", "p99", "max")
		for _, m := range r.PerMessage {
			fmt.Fprintf(w, "%-5d %5d %9s %4d/%-4d %9s %9s %9s\n", m.Seq, m.Room, fmtSignedMS(m.SendMS), m.Received, m.Expected,
				fmtSignedMS(m.P50MS), fmtSignedMS(m.P99MS), fmtSignedMS(m.MaxMS))
		}
	}
	if r.InitialRooms > 0 {
		fmt.Fprintf(w, "\ninitial sync: %d joined rooms, %.1f KiB; incremental sync: %d bytes, %d of them not empty\n",
			r.InitialRooms, float64(r.InitialBytes)/1024, r.IncrementalBytes, r.NonEmptyIdle)
	}
	for _, s := range r.MissingSamples {
		fmt.Fprintf(w, "missing: %s\n", s)
	}
	for _, s := range r.ErrorSamples {
		fmt.Fprintf(w, "error: %s\n", s)
	}
	for _, p := range []struct {
		name, op string
		r        *procResult
	}{
		{"server", "initial sync", r.InitialServer}, {"postgres", "initial sync", r.InitialPostgres},
		{"server", r.Op, r.Server}, {"postgres", r.Op, r.Postgres},
	} {
		if p.r == nil {
			continue
		}
		if p.r.Error != "" {
			fmt.Fprintf(w, "%s (pid %d): %s\n", p.name, p.r.PID, p.r.Error)
			continue
		}
		fmt.Fprintf(w, "%s (pid %d): CPU %.2f s = %.0f µs per %s", p.name, p.r.PID, p.r.CPUSeconds, p.r.CPUMicrosPerOp, p.op)
		if p.r.MemAfter.RSSKiB > 0 {
			fmt.Fprintf(w, "; VmRSS %s → %s, VmHWM %s → %s",
				fmtKiB(p.r.MemBefore.RSSKiB), fmtKiB(p.r.MemAfter.RSSKiB),
				fmtKiB(p.r.MemBefore.HWMKiB), fmtKiB(p.r.MemAfter.HWMKiB))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "client (aulabench, pid %d): CPU %.2f s in the measured phase\n", os.Getpid(), r.ClientCPU)
	fmt.Fprintf(w, "summary: %s\n", r.Summary)
}

// wakeSummary is the one-line summary of sync-wake and sync-fanout.
func (r *syncReport) wakeSummary(label string) string {
	wk := r.request("wake")
	s := fmt.Sprintf("%s: wake p50 %s p95 %s p99 %s max %s; %d/%d wake-ups, %d missing, %d errors",
		label, fmtSignedMS(wk.P50MS), fmtSignedMS(wk.P95MS), fmtSignedMS(wk.P99MS), fmtSignedMS(wk.MaxMS),
		r.Received, r.Expected, r.Missing, r.Errors)
	s += r.serverSummary()
	if p := r.Park; p != nil {
		s += fmt.Sprintf("; start %.0f s (server CPU %.0f s, %d answers, %d presence events)", p.Seconds, p.ServerCPU, p.Answers, p.PresenceEvents)
	}
	return s
}

// serverSummary is the server's part of a one-line summary.
func (r *syncReport) serverSummary() string {
	s := ""
	if r.Server != nil && r.Server.Error == "" {
		s += fmt.Sprintf("; server CPU %.1f s, VmRSS %s, VmHWM %s", r.Server.CPUSeconds,
			fmtKiB(r.Server.MemAfter.RSSKiB), fmtKiB(r.Server.MemAfter.HWMKiB))
	}
	if r.Postgres != nil && r.Postgres.Error == "" {
		s += fmt.Sprintf("; PostgreSQL CPU %.1f s", r.Postgres.CPUSeconds)
	}
	return s
}

// fmtSignedMS formats milliseconds that may be negative.
func fmtSignedMS(v float64) string {
	if math.Abs(v) < 1 {
		return fmt.Sprintf("%.0fµs", v*1000)
	}
	return fmt.Sprintf("%.1fms", v)
}
