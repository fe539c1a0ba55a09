package config

import (
	"net/url"
	"os"
	"strings"
	"time"
)

// Turn configures GET /voip/turnServer: the TURN servers clients use to
// relay call media, and how their credentials are made.
type Turn struct {
	// URIs are the TURN/STUN servers handed to clients, e.g.
	// "turn:turn.uni.example:3478?transport=udp". Empty: no TURN server.
	URIs []string `yaml:"uris"`
	// SharedSecret is coturn's static-auth-secret (use-auth-secret): each
	// user gets a time-limited username and an HMAC password.
	SharedSecret string `yaml:"shared_secret"`
	// SharedSecretFile reads the shared secret from a file instead (read at
	// each request, so the secret can be rotated without a restart).
	SharedSecretFile string `yaml:"shared_secret_file"`
	// Username and Password are fixed credentials handed to every user,
	// for TURN servers without the shared-secret scheme.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// UserLifetime is how long shared-secret credentials stay valid.
	UserLifetime Duration `yaml:"user_lifetime"`
	// AllowGuests hands credentials to guest accounts too.
	AllowGuests bool `yaml:"allow_guests"`
}

// Secret returns the shared secret, read from SharedSecretFile if that is
// set; "" when the shared-secret scheme is not configured.
func (t Turn) Secret() (string, error) {
	if t.SharedSecretFile == "" {
		return t.SharedSecret, nil
	}
	raw, err := os.ReadFile(t.SharedSecretFile)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(raw)), nil
}

// RTC configures MatrixRTC (Element Call) group calls.
type RTC struct {
	// LivekitServiceURL is the URL of the LiveKit JWT service
	// (lk-jwt-service) in front of the university's LiveKit SFU. It is
	// announced in /.well-known/matrix/client (org.matrix.msc4143.rtc_foci)
	// and /rtc/transports. Empty: no group calls through an SFU.
	LivekitServiceURL string `yaml:"livekit_service_url"`
}

// DelayedEvents configures MSC4140 delayed events.
type DelayedEvents struct {
	// MaxDelay is the longest delay a client may ask for; 0 turns delayed
	// events off.
	MaxDelay Duration `yaml:"max_delay"`
}

// defaultTurn, defaultDelayedEvents are the defaults Default() uses.
var (
	defaultTurn          = Turn{URIs: []string{}, UserLifetime: Duration(time.Hour)}
	defaultDelayedEvents = DelayedEvents{MaxDelay: Duration(24 * time.Hour)}
)

// validateCalls checks turn, rtc and delayed_events.
func (c *Config) validateCalls(bad func(key, format string, args ...any)) {
	t := c.Turn
	for _, u := range t.URIs {
		if !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") && !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "stuns:") {
			bad("turn.uris", "%q is not a turn:, turns: or stun: URI", u)
		}
	}
	if t.SharedSecret != "" && t.SharedSecretFile != "" {
		bad("turn.shared_secret_file", "set either shared_secret or shared_secret_file, not both")
	}
	if t.SharedSecretFile != "" {
		if s, err := t.Secret(); err != nil {
			bad("turn.shared_secret_file", "cannot be read: %v", err)
		} else if s == "" {
			bad("turn.shared_secret_file", "%s is empty", t.SharedSecretFile)
		}
	}
	secret := t.SharedSecret != "" || t.SharedSecretFile != ""
	if (t.Username == "") != (t.Password == "") {
		bad("turn.username", "username and password go together: set both or neither")
	}
	if secret && t.Username != "" {
		bad("turn.username", "set either a shared secret or a username and password, not both")
	}
	if t.UserLifetime.D() < time.Second {
		bad("turn.user_lifetime", "%s is too short (at least 1s)", t.UserLifetime)
	}
	if s := c.RTC.LivekitServiceURL; s != "" {
		if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("rtc.livekit_service_url", "%q is not an http(s) URL", s)
		}
	}
	if c.DelayedEvents.MaxDelay.D() < 0 {
		bad("delayed_events.max_delay", "must not be negative")
	}
}
