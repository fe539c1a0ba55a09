package clientapi_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/apitest"
)

// requireTurnEnv makes the coturn test fail instead of skipping when
// coturn is missing; scripts/test sets it after installing coturn.
const requireTurnEnv = "AULA_REQUIRE_TURN"

// TestTurnWithCoturn starts a real coturn on loopback with use-auth-secret
// and the server's turn.shared_secret, and checks with turnutils_uclient
// that the credentials of GET /voip/turnServer allocate a relay, that a
// tampered password does not, and that they stop working when they expire.
func TestTurnWithCoturn(t *testing.T) {
	turnserver, err1 := exec.LookPath("turnserver")
	uclient, err2 := exec.LookPath("turnutils_uclient")
	if err1 != nil || err2 != nil {
		if os.Getenv(requireTurnEnv) != "" {
			t.Fatalf("coturn (turnserver, turnutils_uclient) is not installed but %s is set; run scripts/test", requireTurnEnv)
		}
		t.Skip("coturn is not installed; scripts/test installs it (Debian package coturn)")
	}
	const secret = "coturn-test-secret-0123456789"
	port := freeTurnPort(t)
	coturn := startCoturn(t, turnserver, port, secret)

	c := apitest.Config(t, "sqlite:"+filepath.Join(t.TempDir(), "aula.db"))
	c.Turn.URIs = []string{fmt.Sprintf("turn:127.0.0.1:%d?transport=udp", port)}
	c.Turn.SharedSecret = secret
	const lifetime = 3 * time.Second
	c.Turn.UserLifetime = config.Duration(lifetime)
	s := apitest.Start(t, c)
	alice := s.Register("alice", "pw-alice-123")

	creds := s.Do("GET", turnPath, alice.Token, nil).Expect(t, 200, "")
	fetched := time.Now()
	user, pass := creds.String("username"), creds.String("password")
	if err := allocate(t, uclient, port, user, pass); err != nil {
		t.Fatalf("allocation with the server's credentials failed: %v\ncoturn log:\n%s", err, coturn.String())
	}
	tampered := []byte(pass)
	tampered[0] ^= 0x01
	if err := allocate(t, uclient, port, user, string(tampered)); err == nil {
		t.Error("allocation with a tampered password succeeded")
	}
	if err := allocate(t, uclient, port, user[:len(user)-1]+"x", pass); err == nil {
		t.Error("allocation with another user's name succeeded")
	}
	time.Sleep(time.Until(fetched.Add(lifetime + 1500*time.Millisecond)))
	if err := allocate(t, uclient, port, user, pass); err == nil {
		t.Error("allocation with expired credentials succeeded")
	}
	// Fresh credentials work again.
	fresh := s.Do("GET", turnPath, alice.Token, nil).Expect(t, 200, "")
	if err := allocate(t, uclient, port, fresh.String("username"), fresh.String("password")); err != nil {
		t.Errorf("allocation with fresh credentials failed: %v", err)
	}
}

// freeTurnPort finds a loopback port free for both UDP and TCP.
func freeTurnPort(t *testing.T) int {
	t.Helper()
	for range 20 {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		u.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free port for coturn")
	return 0
}

// lockedBuffer collects a process's output safely.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startCoturn runs coturn on 127.0.0.1:port until the test ends and waits
// until it accepts connections. It returns its log.
func startCoturn(t *testing.T, bin string, port int, secret string) *lockedBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-n",
		"--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--listening-port="+strconv.Itoa(port),
		"--use-auth-secret", "--static-auth-secret="+secret, "--realm=aula.test",
		"--no-tls", "--no-dtls", "--allow-loopback-peers", "--no-cli",
		"--log-file=stdout", "--simple-log", "--pidfile="+filepath.Join(t.TempDir(), "turnserver.pid"),
		"--userdb="+filepath.Join(t.TempDir(), "turndb"))
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start coturn: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("coturn did not start listening on %d:\n%s", port, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// allocate runs turnutils_uclient against the coturn on port: it
// allocates a relay (UDP) with the credentials and sends one message
// through it. nil means the allocation worked.
func allocate(t *testing.T, uclient string, port int, user, pass string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, uclient, "-y", "-n", "1", "-u", user, "-w", pass,
		"-p", strconv.Itoa(port), "-e", "127.0.0.1", "127.0.0.1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, lastLines(out, 5))
	}
	return nil
}

// lastLines returns the last n lines of out.
func lastLines(out []byte, n int) []byte {
	lines := bytes.Split(bytes.TrimRight(out, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return bytes.Join(lines, []byte("\n"))
}
