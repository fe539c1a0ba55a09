package config

import (
	"fmt"
	"github.com/aula-chat/aula/internal/ids"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// Error lists every problem found in a configuration, each naming its key.
type Error struct {
	Problems []string
}

// Error returns the problems, one per line when there are several.
func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "config: " + e.Problems[0]
	}
	return "config: " + fmt.Sprint(len(e.Problems)) + " problems:\n  " + strings.Join(e.Problems, "\n  ")
}

// SupportedRoomVersions are the room versions aula can create.
var SupportedRoomVersions = []string{"10", "11", "12"}

// Validate checks every key and reports all problems at once.
func (c *Config) Validate() error {
	var p []string
	bad := func(key, format string, args ...any) {
		p = append(p, key+": "+fmt.Sprintf(format, args...))
	}
	if c.ServerName == "" {
		bad("server_name", "must be set (the domain of user IDs, e.g. chat.uni.example)")
	} else if !ids.ValidServerName(c.ServerName) {
		bad("server_name", "%q is not a valid server name (a host name with an optional :port)", c.ServerName)
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		bad("listen", "%q is not host:port (e.g. localhost:8008 or :8008)", c.Listen)
	}
	if u, err := url.Parse(c.PublicBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		bad("public_baseurl", "%q is not an http(s) URL", c.PublicBaseURL)
	}
	switch {
	case strings.HasPrefix(c.Database, "sqlite:"):
		if strings.TrimPrefix(c.Database, "sqlite:") == "" {
			bad("database", "sqlite: needs a file path, e.g. sqlite:/var/lib/aula/aula.db")
		}
	case strings.HasPrefix(c.Database, "postgres://"), strings.HasPrefix(c.Database, "postgresql://"), strings.HasPrefix(c.Database, "postgres:"):
	default:
		bad("database", "must be sqlite:PATH or a postgres:// URL")
	}
	if c.DataDir == "" {
		bad("data_dir", "must be set")
	}
	if c.SigningKeyPath == "" {
		bad("signing_key_path", "must be set (default: signing.key in data_dir)")
	}
	// Admin socket for local commands (config/adminsocket.go).
	if msg := c.validateAdminSocket(); msg != "" {
		bad("admin_socket", "%s", msg)
	}
	if c.Registration.SharedSecret != "" && len(c.Registration.SharedSecret) < 16 {
		bad("registration.shared_secret", "is too short: use at least 16 random characters")
	}
	for _, t := range c.Registration.Tokens {
		if t == "" || len(t) > 64 || strings.ContainsFunc(t, func(r rune) bool {
			return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '~' || r == '-')
		}) {
			bad("registration.tokens", "%q: tokens are 1-64 characters of A-Z a-z 0-9 . _ ~ -", t)
		}
	}
	if c.PasswordLogin.BcryptCost < 4 || c.PasswordLogin.BcryptCost > 31 {
		bad("password_login.bcrypt_cost", "%d is outside 4..31", c.PasswordLogin.BcryptCost)
	}
	if c.Login.AccessTokenLifetime.D() < 0 {
		bad("login.access_token_lifetime", "must not be negative")
	} else if c.Login.AccessTokenLifetime.D() != 0 && c.Login.AccessTokenLifetime.D().Seconds() < 10 {
		bad("login.access_token_lifetime", "%s is too short (at least 10s)", c.Login.AccessTokenLifetime)
	}
	if c.Login.RefreshTokenLifetime.D() < 0 {
		bad("login.refresh_token_lifetime", "must not be negative")
	}
	if !slices.Contains(SupportedRoomVersions, c.Rooms.DefaultVersion) {
		bad("rooms.default_version", "%q is not one of %s", c.Rooms.DefaultVersion, strings.Join(SupportedRoomVersions, ", "))
	}
	// Closed rooms.
	for _, r := range c.Rooms.AllowedJoinRules {
		if !slices.Contains([]string{"public", "invite", "knock", "restricted", "knock_restricted", "private"}, r) {
			bad("rooms.allowed_join_rules", "%q is not a join rule (public, invite, knock, restricted, knock_restricted, private)", r)
		}
	}
	if c.HTTP.MaxRequestBytes < 65536 {
		bad("http.max_request_bytes", "%d is below 65536 (one Matrix event may be 65536 bytes)", c.HTTP.MaxRequestBytes)
	}
	for _, p := range c.HTTP.TrustedProxies {
		if _, err := ParseProxy(p); err != nil {
			bad("http.trusted_proxies", "%q is not an IP address or CIDR range", p)
		}
	}
	if c.HTTP.ShutdownTimeout.D() < 0 {
		bad("http.shutdown_timeout", "must not be negative")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		bad("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		bad("log.format", "%q is not text or json", c.Log.Format)
	}
	p = append(p, c.validateConsent()...) // server_notices and consent (consent.go)
	p = append(p, c.Media.validate()...)  // media repository (media.go)
	p = append(p, c.Push.validate()...)   // pushers (push.go)
	c.validateSSO(bad)                    // oidc_providers and sso (oidc.go)
	c.validateCalls(bad)                  // turn, rtc, delayed_events (calls.go)
	c.validatePrivacy(bad)                // privacy and retention (privacy.go)
	if len(p) > 0 {
		return &Error{Problems: p}
	}
	return nil
}

// ParseProxy parses one entry of http.trusted_proxies: an IP address (a
// range of one) or a CIDR range.
func ParseProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}
