package clientapi_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/apitest"
)

const turnPath = "/_matrix/client/v3/voip/turnServer"

func TestTurnServerNotConfigured(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		s.Do("GET", turnPath, "", nil).Expect(t, 401, "M_MISSING_TOKEN")
		alice := s.Register("alice", "pw-alice-123")
		r := s.Do("GET", turnPath, alice.Token, nil).Expect(t, 200, "")
		if strings.TrimSpace(string(r.Body)) != "{}" {
			t.Errorf("no TURN configured: body %s, want {}", r.Body)
		}
	})
}

func TestTurnServerSharedSecret(t *testing.T) {
	uris := []string{"turn:turn.uni.example:3478?transport=udp", "turns:turn.uni.example:5349?transport=tcp"}
	apitest.ForEachServer(t, func(c *config.Config) {
		c.Turn.URIs = uris
		c.Turn.SharedSecret = "turn-secret"
		c.Turn.UserLifetime = config.Duration(90 * time.Minute)
	}, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		before := time.Now()
		r := s.Do("GET", turnPath, alice.Token, nil).Expect(t, 200, "")
		user, pass := r.String("username"), r.String("password")
		expiry, id, ok := strings.Cut(user, ":")
		if !ok || id != alice.ID {
			t.Fatalf("username %q, want <expiry>:%s", user, alice.ID)
		}
		exp, err := strconv.ParseInt(expiry, 10, 64)
		if err != nil || exp < before.Add(90*time.Minute).Unix() || exp > time.Now().Add(90*time.Minute).Unix()+1 {
			t.Errorf("expiry %q, want now+90m", expiry)
		}
		mac := hmac.New(sha1.New, []byte("turn-secret"))
		mac.Write([]byte(user))
		if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); pass != want {
			t.Errorf("password %q, want %q", pass, want)
		}
		if ttl, _ := r.JSON["ttl"].(float64); ttl != 5400 {
			t.Errorf("ttl %v, want 5400", r.JSON["ttl"])
		}
		got, _ := r.JSON["uris"].([]any)
		if len(got) != 2 || got[0] != uris[0] || got[1] != uris[1] {
			t.Errorf("uris %v, want %v", got, uris)
		}
	})
}

func TestTurnServerSecretFileAndStatic(t *testing.T) {
	file := filepath.Join(t.TempDir(), "turn.secret")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	apitest.ForEachServer(t, func(c *config.Config) {
		c.Turn.URIs = []string{"turn:turn.uni.example:3478"}
		c.Turn.SharedSecretFile = file
	}, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		r := s.Do("GET", turnPath, alice.Token, nil).Expect(t, 200, "")
		mac := hmac.New(sha1.New, []byte("from-file"))
		mac.Write([]byte(r.String("username")))
		if r.String("password") != base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
			t.Errorf("password not made with the file's secret: %s", r.Body)
		}
	})
	apitest.ForEachServer(t, func(c *config.Config) {
		c.Turn.URIs = []string{"turn:turn.uni.example:3478"}
		c.Turn.Username, c.Turn.Password = "fixed", "fixed-pw"
	}, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		r := s.Do("GET", turnPath, alice.Token, nil).Expect(t, 200, "")
		if r.String("username") != "fixed" || r.String("password") != "fixed-pw" || r.JSON["ttl"] != float64(86400) {
			t.Errorf("static credentials: %s", r.Body)
		}
	})
}

func TestTurnServerRateLimited(t *testing.T) {
	apitest.ForEachServer(t, func(c *config.Config) {
		c.Turn.URIs = []string{"turn:turn.uni.example:3478"}
		c.Turn.SharedSecret = "turn-secret"
	}, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")
		var last *apitest.Response
		for range 11 {
			last = s.Do("GET", turnPath, alice.Token, nil)
		}
		last.Expect(t, 429, "M_LIMIT_EXCEEDED")
		if ms, _ := last.JSON["retry_after_ms"].(float64); ms <= 0 || ms > 6000 {
			t.Errorf("retry_after_ms %v, want 1..6000", last.JSON["retry_after_ms"])
		}
		// The limit is per user.
		s.Do("GET", turnPath, bob.Token, nil).Expect(t, 200, "")
	})
}

func TestTurnConfigValidation(t *testing.T) {
	c := apitest.Config(t, "sqlite:x.db")
	c.Turn.URIs = []string{"http://nope"}
	c.Turn.SharedSecret = "a"
	c.Turn.Username = "u"
	c.RTC.LivekitServiceURL = "ftp://x"
	c.DelayedEvents.MaxDelay = config.Duration(-time.Second)
	err := c.Validate()
	if err == nil {
		t.Fatal("bad turn config accepted")
	}
	for _, key := range []string{"turn.uris", "turn.username", "rtc.livekit_service_url", "delayed_events.max_delay"} {
		if !slices.ContainsFunc(err.(*config.Error).Problems, func(p string) bool { return strings.HasPrefix(p, key+":") }) {
			t.Errorf("no problem reported for %s: %v", key, err)
		}
	}
}
