package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aula-chat/aula/config"
)

// unixClient is an HTTP client that talks to the Unix socket at path.
func unixClient(path string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
}

// TestAdminSocketServe: Serve opens the admin socket (mode 0600) next to
// the TCP listener, serves the admin API on it without a token, refuses to
// start a second server on it, and removes it on shutdown.
func TestAdminSocketServe(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.ServerName = "uni.example"
	cfg.Listen = "localhost:0"
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Database = "sqlite:" + filepath.Join(cfg.DataDir, "aula.db")
	cfg.SigningKeyPath = filepath.Join(cfg.DataDir, "signing.key")
	cfg.PublicBaseURL = "http://localhost/"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := New(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, func(net.Addr) { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	path := filepath.Join(cfg.DataDir, "admin.sock")
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin socket mode %v, want a socket with 0600", fi.Mode())
	}
	resp, err := unixClient(path).Get("http://admin/_synapse/admin/v2/users/@administrator:uni.example")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"name":"@administrator:uni.example"`) {
		t.Errorf("admin API on the socket: %d %s", resp.StatusCode, body)
	}
	if _, err := listenAdminSocket(path, http.NotFoundHandler(), log); err == nil || !strings.Contains(err.Error(), "another server") {
		t.Errorf("second server on the socket: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("admin socket left behind after shutdown: %v", err)
	}
	entries, _ := os.ReadDir(cfg.DataDir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".as") {
			t.Errorf("temporary socket directory %s left behind", e.Name())
		}
	}
}

// TestAdminSocketStartChecks: a stale socket is replaced; a file that is
// not a socket and a directory others may write to are refused.
func TestAdminSocketStartChecks(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	path := filepath.Join(dir, "admin.sock")

	// A socket nobody answers on, as a crashed server leaves it.
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	s, err := listenAdminSocket(path, http.NotFoundHandler(), log)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	if err := s.shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(path, []byte("not a socket"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := listenAdminSocket(path, http.NotFoundHandler(), log); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file at the socket path: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "not a socket" {
		t.Error("the regular file was touched")
	}

	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := listenAdminSocket(filepath.Join(open, "admin.sock"), http.NotFoundHandler(), log); err == nil || !strings.Contains(err.Error(), "writable by other users") {
		t.Errorf("world-writable directory: %v", err)
	}
}

// TestAdminSocketConfig: relative paths are inside data_dir, "" turns the
// socket off, and paths too long for a Unix socket are refused.
func TestAdminSocketConfig(t *testing.T) {
	c := config.Default()
	c.DataDir = "/var/lib/aula"
	if got := c.AdminSocketPath(); got != "/var/lib/aula/admin.sock" {
		t.Errorf("default admin socket %q", got)
	}
	c.AdminSocket = "/run/aula/admin.sock"
	if got := c.AdminSocketPath(); got != "/run/aula/admin.sock" {
		t.Errorf("absolute admin socket %q", got)
	}
	c.AdminSocket = ""
	if got := c.AdminSocketPath(); got != "" {
		t.Errorf("turned-off admin socket %q", got)
	}
	c.ServerName, c.PublicBaseURL, c.Database, c.SigningKeyPath = "uni.example", "http://localhost/", "sqlite:x.db", "k"
	c.AdminSocket = "/" + strings.Repeat("a", 120) + "/admin.sock"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "admin_socket") {
		t.Errorf("too long admin_socket: %v", err)
	}
	c.AdminSocket = ""
	if err := c.Validate(); err != nil {
		t.Errorf("admin_socket off: %v", err)
	}
}
