package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aula-chat/aula/internal/apitest"
)

func TestCheckLoopbackHost(t *testing.T) {
	for _, h := range []string{"127.0.0.1", "127.3.2.1", "::1", "localhost"} {
		if err := checkLoopbackHost(h); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	for _, h := range []string{"10.0.0.1", "192.168.1.1", "8.8.8.8", "example.org", "0.0.0.0", "::", ""} {
		if err := checkLoopbackHost(h); err == nil {
			t.Errorf("%s: accepted", h)
		}
	}
}

func TestLoopbackOnlyDialControl(t *testing.T) {
	if err := loopbackOnly("tcp", "127.0.0.1:80", nil); err != nil {
		t.Error(err)
	}
	if err := loopbackOnly("tcp", "[::1]:80", nil); err != nil {
		t.Error(err)
	}
	if err := loopbackOnly("tcp", "10.1.2.3:80", nil); err == nil {
		t.Error("10.1.2.3 accepted")
	}
}

func TestRefusesNonLoopbackTarget(t *testing.T) {
	err := run([]string{"-target", "http://192.168.0.10:8008", "-n", "1", "-d", "1s"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "not loopback") {
		t.Fatalf("got %v, want a refusal", err)
	}
}

func TestBounds(t *testing.T) {
	for _, args := range [][]string{{"-d", "11m"}, {"-d", "0s"}, {"-n", "0"}, {"-n", "10000001"}, {"-scenario", "sync"}} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for p, want := range map[float64]time.Duration{0.5: 50, 0.95: 95, 0.99: 99, 1: 100} {
		if got := percentile(d, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("empty")
	}
}

func TestParseProc(t *testing.T) {
	stat := "42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 8 0 100 1000 200"
	f, err := parseStat(stat)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := ticks(f, 14, 15); n != 300 {
		t.Errorf("utime+stime = %d, want 300", n)
	}
	if f[1] != "1" {
		t.Errorf("ppid = %s", f[1])
	}
	m, err := parseStatus("Name:\taula\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n")
	if err != nil || m.RSSKiB != 10240 || m.HWMKiB != 20480 {
		t.Errorf("got %+v, %v", m, err)
	}
	// This process exists, so the readers must work on it.
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Error(err)
	}
	if _, err := procMem(os.Getpid()); err != nil {
		t.Error(err)
	}
	if _, err := treeCPU(os.Getpid()); err != nil {
		t.Error(err)
	}
}

// TestAgainstServer runs both scenarios against the real server; the server
// runs in this process, so -pid is our own.
func TestAgainstServer(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		bench := func(args ...string) result {
			t.Helper()
			args = append([]string{"-target", s.URL, "-secret", apitest.SharedSecret, "-users", "2",
				"-c", "2", "-d", "10s", "-json", "-pid", fmt.Sprint(os.Getpid())}, args...)
			var out bytes.Buffer
			if err := run(args, &out, io.Discard); err != nil {
				t.Fatalf("aulabench %v: %v", args, err)
			}
			var r result
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("JSON output: %v\n%s", err, out.Bytes())
			}
			if r.Errors != 0 {
				t.Fatalf("errors: %+v", r.Requests)
			}
			if r.Server == nil || r.Server.Error != "" || r.Server.MemAfter.RSSKiB == 0 {
				t.Errorf("server figures missing: %+v", r.Server)
			}
			return r
		}
		r := bench("-scenario", "login", "-n", "20")
		if r.Ops != 20 || r.UsersCreated != 2 || len(r.Requests) != 3 {
			t.Errorf("login: ops %d, created %d, requests %d; want 20, 2, 3", r.Ops, r.UsersCreated, len(r.Requests))
		}
		r = bench("-scenario", "whoami", "-n", "50", "-rate", "500")
		if r.Ops != 50 || r.UsersCreated != 0 {
			t.Errorf("whoami: ops %d, created %d; want 50 and 0 (users reused)", r.Ops, r.UsersCreated)
		}
		r = bench("-scenario", "send", "-n", "30", "-rooms", "2", "-rate", "300")
		if r.Ops != 30 || r.Op != "event" || r.LoadTool == nil || r.LoadTool.CPUSeconds <= 0 {
			t.Errorf("send: ops %d (%s), load tool %+v; want 30 events and the tool's CPU", r.Ops, r.Op, r.LoadTool)
		}
		// Every bench device was logged out again.
		u := s.Login("bench-0", "bench-password-1")
		devs := s.Do("GET", "/_matrix/client/v3/devices", u.Token, nil).Expect(t, 200, "")
		if n := len(devs.JSON["devices"].([]any)); n != 1 {
			t.Errorf("bench-0 has %d devices, want 1 (ours)", n)
		}
	})
}

func TestTablePrints(t *testing.T) {
	r := &result{Scenario: "whoami", Op: "whoami", Ops: 10, Seconds: 1, OpsPerSec: 10,
		Requests: []summary{{Name: "whoami", Count: 11, Errors: 1, P50MS: 0.2, ErrorKinds: []string{"HTTP 500 M_UNKNOWN ×1"}}},
		Server:   &procResult{PID: 1, CPUSeconds: 0.01, CPUMicrosPerOp: 1000, MemAfter: memInfo{RSSKiB: 2048}}}
	var b bytes.Buffer
	r.print(&b)
	for _, want := range []string{"10.0 ops/s", "200µs", "HTTP 500 M_UNKNOWN ×1", "1000 µs per whoami", "2.0 MiB"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestFsyncScenario(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run([]string{"-scenario", "fsync", "-dir", dir, "-d", "300ms", "-n", "200", "-json"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var r fsyncResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	if r.Syncs < 1 || r.Syncs > 200 || r.P50MS <= 0 || r.MaxMS < r.P99MS || r.P99MS < r.P50MS {
		t.Errorf("implausible result %+v", r)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("test file left behind: %v", left)
	}
	if err := run([]string{"-scenario", "fsync"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "-dir") {
		t.Errorf("fsync without -dir: %v", err)
	}
}
