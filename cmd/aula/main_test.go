package main_test

// These tests treat the command line as a contract: they build the aula
// binary once and run it for real, as an admin would.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aula-chat/aula/storage/storagetest"
)

// aulaBin is the binary built by TestMain.
var aulaBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "aula-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	aulaBin = filepath.Join(dir, "aula")
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "the go command is needed to build aula:", err)
		return 1
	}
	build := exec.Command(goTool, "build", "-o", aulaBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "go build:", err)
		return 1
	}
	return m.Run()
}

// cmdTimeout bounds every one-shot command.
const cmdTimeout = 60 * time.Second

// env returns the environment for aula: this process's without any AULA_*
// variable (so the tests see only what they set), plus extra.
func env(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AULA_") {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// result is the outcome of one command.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run is one invocation of aula.
type run struct {
	args  []string
	env   []string // extra environment, KEY=VALUE
	dir   string   // working directory, default a fresh temp dir
	stdin string
}

func (c run) exec(t *testing.T) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, aulaBin, c.args...)
	cmd.Env = env(c.env...)
	cmd.Dir = c.dir
	if cmd.Dir == "" {
		cmd.Dir = t.TempDir()
	}
	cmd.Stdin = strings.NewReader(c.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		r.code = exitErr.ExitCode()
	default:
		t.Fatalf("aula %s: %v", strings.Join(c.args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("aula %s did not finish within %s", strings.Join(c.args, " "), cmdTimeout)
	}
	return r
}

// ok runs the command and fails the test unless it exits 0.
func (c run) ok(t *testing.T) result {
	t.Helper()
	r := c.exec(t)
	if r.code != 0 {
		t.Fatalf("aula %s: %s", strings.Join(c.args, " "), r)
	}
	return r
}

// fails runs the command and fails the test unless it exits non-zero with
// every one of want in its stderr.
func (c run) fails(t *testing.T, want ...string) result {
	t.Helper()
	r := c.exec(t)
	if r.code == 0 {
		t.Fatalf("aula %s succeeded, want a failure: %s", strings.Join(c.args, " "), r)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("aula %s: stderr does not mention %q: %s", strings.Join(c.args, " "), w, r)
		}
	}
	return r
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for a process to write while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// server is a running `aula` serving process.
type server struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string // http://ADDR
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's result, set before done is closed
}

// readyTimeout bounds how long a server may take to answer /versions.
const readyTimeout = 15 * time.Second

// startServer starts aula with args and waits until it answers
// GET /_matrix/client/versions with 200 on addr.
func startServer(t *testing.T, c run, addr string) *server {
	t.Helper()
	cmd := exec.Command(aulaBin, c.args...)
	cmd.Env = env(c.env...)
	cmd.Dir = c.dir
	if cmd.Dir == "" {
		cmd.Dir = t.TempDir()
	}
	s := &server{t: t, cmd: cmd, url: "http://" + addr, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.stderr, s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start aula %s: %v", strings.Join(c.args, " "), err)
	}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("aula %s output:\n%s", strings.Join(c.args, " "), s.stderr)
		}
	})

	deadline := time.Now().Add(readyTimeout)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-s.done:
			t.Fatalf("aula %s exited before serving (%v):\n%s", strings.Join(c.args, " "), s.err, s.stderr)
		default:
		}
		resp, err := client.Get(s.url + "/_matrix/client/versions")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("aula %s did not answer /versions with 200 within %s (last: %v):\n%s",
				strings.Join(c.args, " "), readyTimeout, err, s.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signal sends sig to the server process.
func (s *server) signal(sig os.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits up to d for the process to exit and returns its exit code.
func (s *server) wait(d time.Duration) int {
	s.t.Helper()
	select {
	case <-s.done:
	case <-time.After(d):
		s.t.Fatalf("aula did not exit within %s:\n%s", d, s.stderr)
	}
	var exitErr *exec.ExitError
	switch {
	case s.err == nil:
		return 0
	case errors.As(s.err, &exitErr):
		return exitErr.ExitCode()
	default:
		s.t.Fatalf("wait: %v", s.err)
		return -1
	}
}

// stop sends SIGTERM and checks the graceful exit: status 0, promptly,
// and nothing logged at ERROR level during the whole run.
func (s *server) stop() {
	s.t.Helper()
	s.signal(syscall.SIGTERM)
	if code := s.wait(5 * time.Second); code != 0 {
		s.t.Fatalf("aula exited with %d after SIGTERM, want 0:\n%s", code, s.stderr)
	}
	logs := s.stderr.String()
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, `"level":"ERROR"`) {
			s.t.Errorf("aula logged an error: %s", line)
		}
	}
	if !strings.Contains(logs, "shutting down") {
		s.t.Errorf("aula did not log its shutdown:\n%s", logs)
	}
}

// call sends a JSON request to the server and decodes the JSON answer.
func (s *server) call(method, path, token string, body any) (int, map[string]any) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(s.t.Context(), method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		s.t.Fatalf("%s %s: %d, body not a JSON object: %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// login logs in with a password and returns the status and answer.
func (s *server) login(user, password string) (int, map[string]any) {
	s.t.Helper()
	return s.call("POST", "/_matrix/client/v3/login", "", map[string]any{
		"type":       "m.login.password",
		"identifier": map[string]string{"type": "m.id.user", "user": user},
		"password":   password,
	})
}

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLifecycle is the admin's path on every database engine:
// generate-config, check-config, create-account, serve, log in, SIGTERM.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		dir := t.TempDir()
		dataDir := filepath.Join(dir, "data")
		addr := freeAddr(t)
		args := []string{"generate-config", "--server-name", "chat.uni.example", "--listen", addr, "--data-dir", dataDir}
		sqlite := strings.HasPrefix(dsn, "sqlite:")
		if !sqlite {
			args = append(args, "--database", dsn)
		}
		gen := run{args: args}.ok(t)
		if gen.stderr != "" {
			t.Errorf("generate-config wrote to stderr: %s", gen.stderr)
		}
		wantDB := dsn
		if sqlite {
			wantDB = "sqlite:" + filepath.Join(dataDir, "aula.db") // the default
		}
		for _, want := range []string{
			`server_name: "chat.uni.example"`, fmt.Sprintf("listen: %q", addr),
			fmt.Sprintf("data_dir: %q", dataDir), fmt.Sprintf("database: %q", wantDB),
		} {
			if !strings.Contains(gen.stdout, want) {
				t.Errorf("generated config lacks %s:\n%s", want, gen.stdout)
			}
		}
		cfg := writeFile(t, dir, "aula.yaml", gen.stdout)

		check := run{args: []string{"check-config", "--config", cfg}}.ok(t)
		if !strings.Contains(check.stdout, "OK") {
			t.Errorf("check-config did not say OK: %s", check)
		}

		// Accounts made from the command line, password on stdin.
		const password = "correct horse battery staple"
		created := run{args: []string{"create-account", "--config", cfg, "--user", "alice", "--admin"}, stdin: password + "\n"}.ok(t)
		if !strings.Contains(created.stdout, "@alice:chat.uni.example") {
			t.Errorf("create-account did not print the user ID: %s", created)
		}
		run{args: []string{"create-account", "--config", cfg, "--user", "alice"}, stdin: "other password\n"}.
			fails(t, "already taken")
		run{args: []string{"create-account", "--config", cfg, "--user", "bob"}, stdin: ""}.
			fails(t, "no password")
		run{args: []string{"create-account", "--config", cfg, "--user", "bob"}, stdin: "\n"}.
			fails(t, "no password")
		run{args: []string{"create-account", "--config", cfg, "--user", "bad user!"}, stdin: "pw\n"}.
			fails(t, "User ID can only contain")
		run{args: []string{"create-account", "--config", cfg}, stdin: "pw\n"}.
			fails(t, "--user")
		// A full user ID of this server names the same account; another server's does not.
		if out := (run{args: []string{"create-account", "--config", cfg, "--user", "@dave:chat.uni.example"}, stdin: "pw\n"}).ok(t); !strings.Contains(out.stdout, "@dave:chat.uni.example") {
			t.Errorf("create-account with a full user ID: %s", out)
		}
		run{args: []string{"create-account", "--config", cfg, "--user", "@erin:elsewhere.example"}, stdin: "pw\n"}.
			fails(t, "not a user ID of this server")
		// The password is the whole first line, spaces included.
		run{args: []string{"create-account", "--config", cfg, "--user", "carol"}, stdin: " spaced out \nsecond line\n"}.ok(t)

		s := startServer(t, run{args: []string{"--config", cfg}}, addr)
		if sqlite {
			if _, err := os.Stat(filepath.Join(dataDir, "aula.db")); err != nil {
				t.Errorf("no SQLite database in the data directory: %v", err)
			}
		}
		if !strings.Contains(s.stderr.String(), "aula is serving") {
			t.Errorf("no startup log line:\n%s", s.stderr)
		}
		status, body := s.login("alice", password)
		if status != 200 || body["user_id"] != "@alice:chat.uni.example" || body["access_token"] == nil {
			t.Fatalf("login as alice: %d %v", status, body)
		}
		if status, body := s.call("GET", "/_matrix/client/v3/account/whoami", body["access_token"].(string), nil); status != 200 ||
			body["user_id"] != "@alice:chat.uni.example" {
			t.Fatalf("whoami: %d %v", status, body)
		}
		if status, body := s.login("alice", "other password"); status != 403 || body["errcode"] != "M_FORBIDDEN" {
			t.Fatalf("login with the duplicate's password: %d %v", status, body)
		}
		if status, body := s.login("carol", " spaced out "); status != 200 {
			t.Fatalf("login as carol with the whole first line: %d %v", status, body)
		}
		// Registration is off in a generated config.
		status, body = s.call("POST", "/_matrix/client/v3/register", "", map[string]any{
			"username": "mallory", "password": "pw-12345678", "auth": map[string]string{"type": "m.login.dummy"},
		})
		if status != 403 {
			t.Errorf("open registration in a generated config: %d %v", status, body)
		}
		s.stop()
	})
}

// TestGeneratePostgresURL checks that a PostgreSQL URL given to
// generate-config lands in the file and passes check-config.
func TestGeneratePostgresURL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, url := range []string{
		"postgres://aula:s3cret@db.uni.example:5432/aula?sslmode=verify-full",
		"postgres:host=/run/postgresql dbname=aula user=aula",
	} {
		gen := run{args: []string{"generate-config", "--server-name", "chat.uni.example", "--database", url}}.ok(t)
		if !strings.Contains(gen.stdout, fmt.Sprintf("database: %q", url)) {
			t.Fatalf("generated config lacks database %s:\n%s", url, gen.stdout)
		}
		cfg := writeFile(t, dir, "pg.yaml", gen.stdout)
		run{args: []string{"check-config", "--config", cfg}}.ok(t)
	}
	run{args: []string{"generate-config", "--server-name", "chat.uni.example", "--database", "mysql://x"}}.
		fails(t, "database")
	run{args: []string{"generate-config", "--listen", "127.0.0.1:8008"}}.
		fails(t, "--server-name")
	run{args: []string{"generate-config", "--server-name", "not a name!"}}.
		fails(t, "server_name")
}

// TestCheckConfigProblems checks that check-config fails on broken files
// and names every key at fault.
func TestCheckConfigProblems(t *testing.T) {
	t.Parallel()
	const base = "server_name: chat.uni.example\nlisten: 127.0.0.1:8008\ndata_dir: /tmp/aula-x\n"
	cases := []struct {
		name    string
		content string
		env     []string
		want    []string
	}{
		{name: "unknown key", content: base + "frobnicate: 1\n", want: []string{"frobnicate", "line 4"}},
		{name: "unknown nested key", content: base + "log:\n  colour: red\n", want: []string{"colour"}},
		{name: "bad log level", content: base + "log:\n  level: loud\n", want: []string{"log.level", "loud"}},
		{name: "bad database", content: base + "database: mysql://db/aula\n", want: []string{"database", "sqlite:PATH"}},
		{name: "empty sqlite path", content: base + "database: \"sqlite:\"\n", want: []string{"database"}},
		{name: "missing server_name", content: "listen: 127.0.0.1:8008\n", want: []string{"server_name", "must be set"}},
		{name: "bad server_name", content: "server_name: \"uni example\"\n", want: []string{"server_name"}},
		{name: "bad listen", content: base + "listen: nowhere\n", want: []string{"listen"}},
		{name: "short shared secret", content: base + "registration:\n  shared_secret: short\n", want: []string{"registration.shared_secret"}},
		{name: "several problems", content: "database: mysql://db\nlog:\n  level: loud\n  format: xml\nrooms:\n  default_version: \"9\"\nhttp:\n  max_request_bytes: 10\n",
			want: []string{"problems", "server_name", "database", "log.level", "log.format", "rooms.default_version", "http.max_request_bytes"}},
		{name: "not YAML", content: "server_name: [chat\n", want: []string{"line 1"}},
		{name: "two documents", content: base + "---\nfrobnicate: 1\n", want: []string{"second YAML document"}},
		{name: "bad environment value", content: base, env: []string{"AULA_HTTP_SHUTDOWN_TIMEOUT=soon"},
			want: []string{"http.shutdown_timeout", "AULA_HTTP_SHUTDOWN_TIMEOUT", "soon"}},
		{name: "environment overrides the file", content: base, env: []string{"AULA_LOG_LEVEL=loud"}, want: []string{"log.level", "loud"}},

		// Type errors name their key, and every problem is reported at once.
		{name: "bad duration names its key", content: base + "http:\n  shutdown_timeout: soon\n",
			want: []string{"http.shutdown_timeout"}},
		{name: "bad number names its key", content: base + "password_login:\n  bcrypt_cost: abc\n",
			want: []string{"password_login.bcrypt_cost"}},
		{name: "unknown key and bad value both named", content: base + "frobnicate: 1\nlog:\n  level: loud\n",
			want: []string{"frobnicate", "log.level"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := writeFile(t, dir, "aula.yaml", c.content)
			r := run{args: []string{"check-config", "--config", cfg}, env: c.env}.fails(t, c.want...)
			if strings.Contains(r.stdout, "OK") {
				t.Errorf("check-config said OK on a broken file: %s", r)
			}
			// serving refuses the same file with the same report.
			run{args: []string{"--config", cfg}, env: c.env}.fails(t, c.want...)
		})
	}
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.yaml")
		run{args: []string{"check-config", "--config", path}}.fails(t, "nope.yaml")
		run{args: []string{"--config", path}}.fails(t, "nope.yaml")
	})
}

// TestEnvironment checks that AULA_* variables configure the server, with
// or without a file.
func TestEnvironment(t *testing.T) {
	t.Parallel()
	t.Run("empty file", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		dataDir := filepath.Join(dir, "state")
		cfg := writeFile(t, dir, "empty.yaml", "")
		addr := freeAddr(t)
		vars := []string{"AULA_SERVER_NAME=env.uni.example", "AULA_LISTEN=" + addr, "AULA_DATA_DIR=" + dataDir}

		// Without the variables the empty file is incomplete.
		run{args: []string{"check-config", "--config", cfg}}.fails(t, "server_name")
		run{args: []string{"check-config", "--config", cfg}, env: vars}.ok(t)

		s := startServer(t, run{args: []string{"--config", cfg}, env: vars}, addr)
		if _, err := os.Stat(filepath.Join(dataDir, "aula.db")); err != nil {
			t.Errorf("AULA_DATA_DIR not used for the database: %v", err)
		}
		status, body := s.call("GET", "/.well-known/matrix/client", "", nil)
		hs, _ := body["m.homeserver"].(map[string]any)
		if status != 200 || hs["base_url"] != "http://"+addr+"/" {
			t.Errorf("well-known: %d %v, want base_url http://%s/ derived from AULA_LISTEN", status, body, addr)
		}
		if !strings.Contains(s.stderr.String(), "server_name=env.uni.example") {
			t.Errorf("AULA_SERVER_NAME not used:\n%s", s.stderr)
		}
		s.stop()
	})
	t.Run("override the file", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		cfg := writeFile(t, dir, "aula.yaml", "server_name: file.uni.example\ndata_dir: "+filepath.Join(dir, "data")+"\n")
		r := run{args: []string{"create-account", "--config", cfg, "--user", "dan"}, stdin: "pw\n",
			env: []string{"AULA_SERVER_NAME=env.uni.example", "AULA_PASSWORD_LOGIN_BCRYPT_COST=4"}}.ok(t)
		if !strings.Contains(r.stdout, "@dan:env.uni.example") {
			t.Errorf("AULA_SERVER_NAME did not override the file: %s", r)
		}
	})
}

// TestDevMode checks `aula --dev`: SQLite in ./aula-data, the URL to point
// a client at, open registration.
func TestDevMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr := freeAddr(t)
	s := startServer(t, run{args: []string{"--dev"}, env: []string{"AULA_LISTEN=" + addr}, dir: dir}, addr)
	if _, err := os.Stat(filepath.Join(dir, "aula-data", "aula.db")); err != nil {
		t.Errorf("--dev did not create ./aula-data/aula.db: %v", err)
	}
	if want := "http://" + addr + "/"; !strings.Contains(s.stderr.String(), want) {
		t.Errorf("--dev did not print the URL %s to point a client at:\n%s", want, s.stderr)
	}
	status, body := s.call("POST", "/_matrix/client/v3/register", "", map[string]any{
		"username": "dev", "password": "dev-password", "auth": map[string]string{"type": "m.login.dummy"},
	})
	if status != 200 || body["user_id"] != "@dev:localhost" || body["access_token"] == nil {
		t.Fatalf("register in --dev: %d %v", status, body)
	}
	if status, body := s.login("dev", "dev-password"); status != 200 {
		t.Fatalf("login in --dev: %d %v", status, body)
	}
	s.stop()
}

// TestGracefulShutdown checks that SIGTERM lets a running request finish,
// and that a second signal ends a shutdown that is taking too long.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	// start serves a dev server with a long shutdown timeout and opens a
	// login request whose body is not yet complete, so it stays running.
	start := func(t *testing.T) (*server, net.Conn, string) {
		addr := freeAddr(t)
		s := startServer(t, run{args: []string{"--dev"}, dir: t.TempDir(),
			env: []string{"AULA_LISTEN=" + addr, "AULA_HTTP_SHUTDOWN_TIMEOUT=60s"}}, addr)
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		body := `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"nobody"},"password":"x"}`
		fmt.Fprintf(conn, "POST /_matrix/client/v3/login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			addr, len(body), body[:10])
		time.Sleep(200 * time.Millisecond) // let the server start reading the body
		return s, conn, body[10:]
	}

	t.Run("running request finishes", func(t *testing.T) {
		t.Parallel()
		s, conn, rest := start(t)
		s.signal(syscall.SIGTERM)
		select {
		case <-s.done:
			t.Fatalf("aula exited with a request still running:\n%s", s.stderr)
		case <-time.After(500 * time.Millisecond):
		}
		if _, err := http.Get(s.url + "/_matrix/client/versions"); err == nil {
			t.Errorf("aula accepted a new connection while shutting down")
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, rest); err != nil {
			t.Fatal(err)
		}
		reply, err := io.ReadAll(conn)
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("read the answer of the running request: %v", err)
		}
		if !strings.HasPrefix(string(reply), "HTTP/1.1 403") || !strings.Contains(string(reply), "M_FORBIDDEN") {
			t.Fatalf("the running request got %q, want its 403 answer", reply)
		}
		if code := s.wait(5 * time.Second); code != 0 {
			t.Fatalf("exit %d after a graceful shutdown, want 0:\n%s", code, s.stderr)
		}
	})

	t.Run("second signal stops at once", func(t *testing.T) {
		t.Parallel()
		s, _, _ := start(t)
		s.signal(syscall.SIGTERM)
		time.Sleep(300 * time.Millisecond)
		select {
		case <-s.done:
			t.Fatalf("aula exited with a request still running:\n%s", s.stderr)
		default:
		}
		s.signal(syscall.SIGTERM)
		if code := s.wait(3 * time.Second); code == 0 {
			t.Errorf("exit 0 after an interrupted shutdown, want non-zero")
		}
	})
}

// TestUsageErrors checks that a wrong command line fails with the usage.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "aula.yaml", "server_name: chat.uni.example\ndata_dir: "+dir+"\n")
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"--dev", "--config", cfg},
		{"--no-such-flag"},
		{"--config", cfg, "extra"},
		{"check-config", "--bogus"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := run{args: args}.fails(t, "Usage:")
			if r.stdout != "" {
				t.Errorf("usage error wrote to stdout: %s", r)
			}
		})
	}
	run{args: []string{"frobnicate"}}.fails(t, `unknown command "frobnicate"`)
	run{args: []string{"--dev", "--config", cfg}}.fails(t, "--dev", "--config")
	run{args: []string{"check-config"}}.fails(t, "--config")

	// Asking for help is not an error.
	if r := (run{args: []string{"help"}}).ok(t); !strings.Contains(r.stdout, "Usage:") {
		t.Errorf("aula help: %s", r)
	}
	if r := (run{args: []string{"--help"}}).ok(t); !strings.Contains(r.stdout+r.stderr, "Usage:") {
		t.Errorf("aula --help: %s", r)
	}
}
