// Command aulabench is a small load generator for a running aula server. It
// speaks the Matrix client-server API over plain HTTP and only ever talks to
// this machine: a target whose host is not loopback (127.0.0.0/8, ::1,
// localhost) is refused, and every connection it dials is checked again.
// Every run is bounded by a request count (-n) and a wall time (-d).
//
// Scenarios:
//
//	login   N users (created once with shared-secret registration, or reused),
//	        C workers loop POST /login (m.login.password) → GET
//	        /account/whoami → POST /logout. Reports login+whoami ops/s and
//	        the latency of each request separately.
//	whoami  each worker logs in once, then loops GET /account/whoami.
//	send    user 0 creates R private rooms (-rooms), inviting every user, who joins;
//	        each worker logs in once, then sends text messages, operation k
//	        going to room k mod R. Reports events/s and PUT /send latency.
//	sync-wake, sync-fanout, sync-idle
//	        long-polling /sync clients: see sync.go.
//	fsync   no server: writes 8 KiB blocks to a file in -dir and syncs
//	        each to disk (fdatasync), as a database commit does, and
//	        reports how long the disk takes (fsync.go). A disk that stalls
//	        for tens of milliseconds stalls every commit waiting on it.
//
// By default the workers run closed-loop (each sends its next request as soon
// as the previous one is answered: the maximum throughput). With -rate the
// load is open-loop: operations are scheduled at a fixed arrival rate and
// latency is measured from the scheduled time, so a stalled server shows up
// in the percentiles instead of silently lowering the rate.
//
// With -pid the server's CPU time (utime+stime from /proc/PID/stat) per
// operation and its VmRSS/VmHWM before and after are reported; -pg-pid adds
// the CPU of a PostgreSQL postmaster and its backends. The load tool's own
// CPU per operation is always reported, since it shares the cores.
//
// Example:
//
//	aulabench -target http://127.0.0.1:8008 -secret S -scenario login -users 8 -c 4 -d 20s -pid 1234
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Limits that keep every run bounded whatever the flags say.
const (
	maxDuration = 10 * time.Minute
	maxOps      = 10_000_000

	setupTimeout = time.Minute // of one setup request
)

type options struct {
	target      string
	scenario    string
	secret      string
	users       int
	prefix      string
	password    string
	concurrency int
	duration    time.Duration
	ops         int
	rate        float64
	timeout     time.Duration
	pid         int
	pgPID       int
	json        bool
	rooms       int
	dir         string      // fsync: where the test file goes
	sync        syncOptions // the sync scenarios' flags (sync.go)
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "aulabench:", err)
		}
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("aulabench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.target, "target", "http://127.0.0.1:8008", "base URL of the server (loopback only)")
	fs.StringVar(&o.scenario, "scenario", "login", "login, whoami, send, sync-wake, sync-fanout, sync-idle or fsync")
	fs.IntVar(&o.rooms, "rooms", 1, "send, sync-wake: number of rooms the messages are spread over; sync-idle: rooms of the user")
	fs.StringVar(&o.secret, "secret", "", "registration shared secret, to create the users (empty: they must exist)")
	fs.IntVar(&o.users, "users", 8, "number of users")
	fs.StringVar(&o.prefix, "prefix", "bench", "user localparts are PREFIX-0 … PREFIX-(N-1)")
	fs.StringVar(&o.password, "password", "bench-password-1", "password of every bench user")
	fs.IntVar(&o.concurrency, "c", 4, "concurrent workers (connections)")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "wall time of the measured phase (at most 10m)")
	fs.IntVar(&o.ops, "n", 1_000_000, "at most this many operations (at most 10,000,000)")
	fs.Float64Var(&o.rate, "rate", 0, "open-loop arrival rate in operations/s (0: closed loop, as fast as possible)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "timeout of one request")
	fs.IntVar(&o.pid, "pid", 0, "server process ID: report its CPU per operation and its memory")
	fs.IntVar(&o.pgPID, "pg-pid", 0, "PostgreSQL postmaster process ID: report its CPU (with backends) per operation")
	fs.BoolVar(&o.json, "json", false, "print the result as JSON instead of a table")
	fs.StringVar(&o.dir, "dir", "", "fsync: directory on the disk to test (e.g. the database's)")
	addSyncFlags(fs, &o.sync)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.scenario != "login" && o.scenario != "whoami" && o.scenario != "send" && o.scenario != "fsync" && !isSyncScenario(o.scenario):
		return o, fmt.Errorf("unknown scenario %q (login, whoami, send, sync-wake, sync-fanout, sync-idle or fsync)", o.scenario)
	case o.scenario == "fsync" && o.dir == "":
		return o, errors.New("-scenario fsync needs -dir")
	case o.rooms < 1 || o.rooms > 10000:
		return o, errors.New("-rooms must be in [1, 10000]")
	case o.users < 1 || o.concurrency < 1:
		return o, errors.New("-users and -c must be at least 1")
	case o.duration <= 0 || o.duration > maxDuration:
		return o, fmt.Errorf("-d must be in (0, %v]", maxDuration)
	case o.ops < 1 || o.ops > maxOps:
		return o, fmt.Errorf("-n must be in [1, %d]", maxOps)
	case o.rate < 0:
		return o, errors.New("-rate must not be negative")
	case isSyncScenario(o.scenario):
		return o, validateSync(o)
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if o.scenario == "fsync" {
		return runFsync(o, stdout)
	}
	c, err := newClient(o.target, o.concurrency, o.timeout)
	if err != nil {
		return err
	}
	if isSyncScenario(o.scenario) {
		return runSync(o, c, stdout, stderr)
	}
	// Setup and teardown get their own bound on top of the measured phase.
	ctx, cancel := context.WithTimeout(context.Background(), o.duration+2*time.Minute)
	defer cancel()

	users := make([]string, o.users)
	for i := range users {
		users[i] = fmt.Sprintf("%s-%d", o.prefix, i)
	}
	created, err := ensureUsers(ctx, c.withTimeout(setupTimeout), o, users)
	if err != nil {
		return err
	}

	var res *result
	switch o.scenario {
	case "login":
		res, err = runLogin(ctx, c, o, users)
	case "whoami":
		res, err = runWhoami(ctx, c, o, users)
	case "send":
		res, err = runSend(ctx, c, o, users)
	}
	if err != nil {
		return err
	}
	res.UsersCreated = created
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	res.print(stdout)
	return nil
}

// ensureUsers registers the users that do not exist yet, c.concurrency at a
// time, and returns how many it created.
func ensureUsers(ctx context.Context, c *client, o options, users []string) (int, error) {
	if o.secret == "" {
		return 0, nil // the users must exist; the first login says if not
	}
	var created atomic.Int64
	errc := make(chan error, len(users))
	sem := make(chan struct{}, o.concurrency)
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			isNew, err := c.registerShared(ctx, o.secret, u, o.password)
			if err != nil {
				errc <- fmt.Errorf("register %s: %w", u, err)
				return
			}
			if isNew {
				created.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errc)
	return int(created.Load()), <-errc // nil when the channel is empty
}

// schedule hands out operation numbers to the workers and enforces the
// bounds: at most n operations, none started after the deadline, and with a
// rate, operation k not before start + k/rate.
type schedule struct {
	next     atomic.Int64
	n        int64
	start    time.Time
	deadline time.Time
	interval time.Duration // 0: closed loop
}

func newSchedule(o options) *schedule {
	s := &schedule{n: int64(o.ops), start: time.Now()}
	s.deadline = s.start.Add(o.duration)
	if o.rate > 0 {
		s.interval = time.Duration(float64(time.Second) / o.rate)
	}
	return s
}

// take returns the time the next operation is due (now for a closed loop)
// after waiting for it, or false when the run is over.
func (s *schedule) take(ctx context.Context) (time.Time, bool) {
	k := s.next.Add(1) - 1
	if k >= s.n {
		return time.Time{}, false
	}
	due := time.Now()
	if s.interval > 0 {
		due = s.start.Add(time.Duration(k) * s.interval)
		if wait := time.Until(due); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return time.Time{}, false
			}
		}
	}
	if due.After(s.deadline) || time.Now().After(s.deadline) || ctx.Err() != nil {
		return time.Time{}, false
	}
	return due, true
}

// runLogin measures login → whoami → logout loops.
func runLogin(ctx context.Context, c *client, o options, users []string) (*result, error) {
	login, whoami, logout := newRecorder("login"), newRecorder("whoami"), newRecorder("logout")
	m := startMeasure(o)
	sched := newSchedule(o)
	var ok atomic.Int64
	var wg sync.WaitGroup
	for w := range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := users[w%len(users)]
			for {
				due, more := sched.take(ctx)
				if !more {
					return
				}
				// Open loop: the first request's latency counts from when it was due.
				t, err := c.login(ctx, user, o.password)
				login.add(time.Since(due), err)
				if err != nil {
					continue
				}
				start := time.Now()
				_, err = c.whoami(ctx, t.AccessToken)
				whoami.add(time.Since(start), err)
				start = time.Now()
				lerr := c.logout(ctx, t.AccessToken) // so devices do not pile up
				logout.add(time.Since(start), lerr)
				if err == nil && lerr == nil {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	res := m.finish(o, "login+whoami", ok.Load(), login, whoami, logout)
	return res, nil
}

// runWhoami logs every worker in once, then measures a whoami loop.
func runWhoami(ctx context.Context, c *client, o options, users []string) (*result, error) {
	setup := c.withTimeout(setupTimeout)
	tokens := make([]string, o.concurrency)
	for w := range tokens {
		t, err := setup.login(ctx, users[w%len(users)], o.password)
		if err != nil {
			return nil, fmt.Errorf("login %s: %w", users[w%len(users)], err)
		}
		tokens[w] = t.AccessToken
	}
	defer func() {
		for _, tok := range tokens {
			setup.logout(context.WithoutCancel(ctx), tok)
		}
	}()
	// One whoami per token first: the server records a device's first
	// activity with a database write, which is not what this scenario measures.
	for _, tok := range tokens {
		if _, err := setup.whoami(ctx, tok); err != nil {
			return nil, fmt.Errorf("warm-up whoami: %w", err)
		}
	}

	whoami := newRecorder("whoami")
	m := startMeasure(o)
	sched := newSchedule(o)
	var ok atomic.Int64
	var wg sync.WaitGroup
	for w := range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				due, more := sched.take(ctx)
				if !more {
					return
				}
				_, err := c.whoami(ctx, tokens[w])
				whoami.add(time.Since(due), err)
				if err == nil {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return m.finish(o, "whoami", ok.Load(), whoami), nil
}

// runSend sets up rooms and members, then measures PUT /send.
func runSend(ctx context.Context, c *client, o options, users []string) (*result, error) {
	setup := c.withTimeout(setupTimeout)
	tokens := make([]string, len(users))
	var invite []string // everyone but the rooms' creator
	for i, u := range users {
		t, err := setup.login(ctx, u, o.password)
		if err != nil {
			return nil, fmt.Errorf("login %s: %w", u, err)
		}
		tokens[i] = t.AccessToken
		if i > 0 {
			invite = append(invite, t.UserID)
		}
	}
	defer func() {
		for _, tok := range tokens {
			setup.logout(context.WithoutCancel(ctx), tok)
		}
	}()
	rooms := make([]string, o.rooms)
	for i := range rooms {
		id, err := setup.createRoom(ctx, tokens[0], invite)
		if err != nil {
			return nil, fmt.Errorf("create room: %w", err)
		}
		rooms[i] = id
		for _, tok := range tokens[1:] {
			if err := setup.join(ctx, tok, id); err != nil {
				return nil, fmt.Errorf("join %s: %w", id, err)
			}
		}
	}

	send := newRecorder("send")
	m := startMeasure(o)
	sched := newSchedule(o)
	run := time.Now().UnixNano() // transaction IDs must not repeat across runs
	var ok atomic.Int64
	var wg sync.WaitGroup
	for w := range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := tokens[w%len(tokens)]
			sendOne := c.send
			if rc, ok := newRawConn(o.target, o.timeout); ok { // rawhttp.go: less of the cores for the load tool
				defer rc.close()
				sendOne = rc.send
			}
			for i := 0; ; i++ {
				due, more := sched.take(ctx)
				if !more {
					return
				}
				room := rooms[(w+i*o.concurrency)%len(rooms)]
				_, err := sendOne(ctx, tok, room, fmt.Sprintf("%d-%d-%d", run, w, i), "benchmark message")
				send.add(time.Since(due), err)
				if err == nil {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return m.finish(o, "event", ok.Load(), send), nil
}

// measure holds what is sampled before the measured phase.
type measure struct {
	start             time.Time
	cpu0, pgCPU0      float64
	selfCPU0          float64 // the load tool's own
	mem0              memInfo
	load0             string
	serverErr, pgErrs error
}

func startMeasure(o options) *measure {
	m := &measure{start: time.Now(), load0: loadAvg()}
	m.selfCPU0, _ = procCPU(os.Getpid())
	if o.pid > 0 {
		m.cpu0, m.serverErr = procCPU(o.pid)
		if m.serverErr == nil {
			m.mem0, m.serverErr = procMem(o.pid)
		}
	}
	if o.pgPID > 0 {
		m.pgCPU0, m.pgErrs = treeCPU(o.pgPID)
	}
	return m
}

func (m *measure) finish(o options, opName string, ok int64, recs ...*recorder) *result {
	elapsed := time.Since(m.start)
	res := &result{
		Scenario:    o.scenario,
		Target:      o.target,
		Users:       o.users,
		Concurrency: o.concurrency,
		Rate:        o.rate,
		Op:          opName,
		Seconds:     elapsed.Seconds(),
		Ops:         ok,
		OpsPerSec:   float64(ok) / elapsed.Seconds(),
		LoadAvg:     m.load0,
	}
	for _, r := range recs {
		s := r.summary()
		res.Requests = append(res.Requests, s)
		res.Errors += s.Errors
	}
	if o.pid > 0 {
		res.Server = &procResult{PID: o.pid}
		if m.serverErr != nil {
			res.Server.Error = m.serverErr.Error()
		} else if cpu1, err := procCPU(o.pid); err != nil {
			res.Server.Error = err.Error()
		} else if mem1, err := procMem(o.pid); err != nil {
			res.Server.Error = err.Error()
		} else {
			res.Server.CPUSeconds = cpu1 - m.cpu0
			res.Server.MemBefore, res.Server.MemAfter = m.mem0, mem1
			if ok > 0 {
				res.Server.CPUMicrosPerOp = res.Server.CPUSeconds / float64(ok) * 1e6
			}
		}
	}
	if cpu1, err := procCPU(os.Getpid()); err == nil {
		res.LoadTool = &procResult{PID: os.Getpid(), CPUSeconds: cpu1 - m.selfCPU0}
		if ok > 0 {
			res.LoadTool.CPUMicrosPerOp = res.LoadTool.CPUSeconds / float64(ok) * 1e6
		}
	}
	if o.pgPID > 0 {
		res.Postgres = &procResult{PID: o.pgPID}
		if cpu1, err := treeCPU(o.pgPID); err != nil || m.pgErrs != nil {
			res.Postgres.Error = fmt.Sprint(errors.Join(m.pgErrs, err))
		} else {
			res.Postgres.CPUSeconds = cpu1 - m.pgCPU0
			if ok > 0 {
				res.Postgres.CPUMicrosPerOp = res.Postgres.CPUSeconds / float64(ok) * 1e6
			}
		}
	}
	return res
}

// result is the outcome of one run; it is also the -json output.
type result struct {
	Scenario     string      `json:"scenario"`
	Target       string      `json:"target"`
	Users        int         `json:"users"`
	UsersCreated int         `json:"users_created"`
	Concurrency  int         `json:"concurrency"`
	Rate         float64     `json:"rate,omitempty"` // 0: closed loop
	Op           string      `json:"op"`             // what one operation is
	Seconds      float64     `json:"seconds"`
	Ops          int64       `json:"ops"` // completed without error
	OpsPerSec    float64     `json:"ops_per_sec"`
	Errors       int64       `json:"errors"`
	LoadAvg      string      `json:"loadavg_before"`
	Requests     []summary   `json:"requests"`
	Server       *procResult `json:"server,omitempty"`
	Postgres     *procResult `json:"postgres,omitempty"`
	LoadTool     *procResult `json:"load_tool,omitempty"` // aulabench itself
}

type procResult struct {
	PID            int     `json:"pid"`
	CPUSeconds     float64 `json:"cpu_seconds"`
	CPUMicrosPerOp float64 `json:"cpu_us_per_op"`
	MemBefore      memInfo `json:"mem_before"`
	MemAfter       memInfo `json:"mem_after"`
	Error          string  `json:"error,omitempty"`
}

func (r *result) print(w io.Writer) {
	mode := "closed loop"
	if r.Rate > 0 {
		mode = fmt.Sprintf("open loop at %.0f/s", r.Rate)
	}
	fmt.Fprintf(w, "scenario %s: %s, %d users (%d created), %d workers, %s\n",
		r.Scenario, r.Target, r.Users, r.UsersCreated, r.Concurrency, mode)
	fmt.Fprintf(w, "load average before: %s\n", r.LoadAvg)
	fmt.Fprintf(w, "%s: %d ops in %.1f s = %.1f ops/s, %d errors\n\n", r.Op, r.Ops, r.Seconds, r.OpsPerSec, r.Errors)
	fmt.Fprintf(w, "%-8s %8s %7s %9s %9s %9s %9s\n", "request", "count", "errors", "p50", "p95", "p99", "max")
	for _, s := range r.Requests {
		fmt.Fprintf(w, "%-8s %8d %7d %9s %9s %9s %9s\n", s.Name, s.Count, s.Errors,
			fmtMS(s.P50MS), fmtMS(s.P95MS), fmtMS(s.P99MS), fmtMS(s.MaxMS))
	}
	for _, s := range r.Requests {
		if len(s.ErrorKinds) > 0 {
			fmt.Fprintf(w, "%s errors: %s\n", s.Name, strings.Join(s.ErrorKinds, "; "))
		}
	}
	for _, p := range []struct {
		name string
		r    *procResult
	}{{"server", r.Server}, {"postgres", r.Postgres}, {"load tool", r.LoadTool}} {
		if p.r == nil {
			continue
		}
		if p.r.Error != "" {
			fmt.Fprintf(w, "%s (pid %d): %s\n", p.name, p.r.PID, p.r.Error)
			continue
		}
		fmt.Fprintf(w, "%s (pid %d): CPU %.2f s = %.0f µs per %s", p.name, p.r.PID, p.r.CPUSeconds, p.r.CPUMicrosPerOp, r.Op)
		if p.r.MemAfter.RSSKiB > 0 {
			fmt.Fprintf(w, "; VmRSS %s → %s, VmHWM %s → %s",
				fmtKiB(p.r.MemBefore.RSSKiB), fmtKiB(p.r.MemAfter.RSSKiB),
				fmtKiB(p.r.MemBefore.HWMKiB), fmtKiB(p.r.MemAfter.HWMKiB))
		}
		fmt.Fprintln(w)
	}
}

func fmtMS(ms float64) string {
	if ms < 1 {
		return fmt.Sprintf("%.0fµs", ms*1000)
	}
	return fmt.Sprintf("%.1fms", ms)
}

func fmtKiB(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }
