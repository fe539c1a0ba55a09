package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole server configuration. The yaml tags are the key names
// admins write; each key path also maps to an environment variable (see Env).
type Config struct {
	// ServerName is the domain part of user IDs (@alice:ServerName).
	ServerName string `yaml:"server_name"`
	// Listen is the host:port the client API is served on.
	Listen string `yaml:"listen"`
	// PublicBaseURL is the URL clients reach the server at, ending in "/".
	PublicBaseURL string `yaml:"public_baseurl"`
	// Database is "sqlite:PATH" or a postgres:// URL.
	Database string `yaml:"database"`
	// DataDir holds the SQLite database, keys and media.
	DataDir string `yaml:"data_dir"`
	// SigningKeyPath is the file holding the server's ed25519 signing key.
	SigningKeyPath string `yaml:"signing_key_path"`

	Registration  Registration  `yaml:"registration"`
	PasswordLogin PasswordLogin `yaml:"password_login"`
	Login         Login         `yaml:"login"`
	Rooms         Rooms         `yaml:"rooms"`
	Presence      Presence      `yaml:"presence"`
	HTTP          HTTP          `yaml:"http"`
	Log           Log           `yaml:"log"`
	// Media repository (config/media.go).
	Media Media `yaml:"media"`
	// Voice and video calls (types in calls.go).
	Turn          Turn          `yaml:"turn"`
	RTC           RTC           `yaml:"rtc"`
	DelayedEvents DelayedEvents `yaml:"delayed_events"`
	// Server notices and terms-of-service consent.
	ServerNotices ServerNotices `yaml:"server_notices"`
	Consent       Consent       `yaml:"consent"`
	// User directory search.
	UserDirectory UserDirectory `yaml:"user_directory"`
	// Single sign-on with OpenID Connect (config/oidc.go).
	OIDCProviders []OIDCProvider `yaml:"oidc_providers"`
	SSO           SSO            `yaml:"sso"`
	// Privacy and data rights (config/privacy.go).
	Privacy   Privacy   `yaml:"privacy"`
	Retention Retention `yaml:"retention"`
	// Pushers and push gateways (config/push.go).
	Push Push `yaml:"push"`
	// AdminSocket is the Unix socket the running server serves the admin
	// API on for local commands (aula group create, aula notice send): a
	// path, relative ones inside data_dir; "" turns it off. Use
	// AdminSocketPath for the resolved path.
	AdminSocket string `yaml:"admin_socket"`
}

// Registration controls POST /register and shared-secret registration.
type Registration struct {
	// Enabled opens POST /register to anyone (with the configured stages).
	Enabled bool `yaml:"enabled"`
	// SharedSecret enables Synapse-compatible /_synapse/admin/v1/register.
	SharedSecret string `yaml:"shared_secret"`
	// Tokens, when not empty, makes registration require one of these tokens
	// (m.login.registration_token).
	Tokens []string `yaml:"tokens"`
}

// PasswordLogin controls m.login.password.
type PasswordLogin struct {
	// Enabled offers m.login.password on /login and as an auth stage.
	Enabled bool `yaml:"enabled"`
	// BcryptCost is the bcrypt work factor for new password hashes.
	BcryptCost int `yaml:"bcrypt_cost"`
}

// Login controls token lifetimes.
type Login struct {
	// AccessTokenLifetime is how long an access token lives when the client
	// asked for a refresh token. Tokens without refresh never expire.
	AccessTokenLifetime Duration `yaml:"access_token_lifetime"`
	// RefreshTokenLifetime is how long an unused refresh token stays valid;
	// 0 means until used.
	RefreshTokenLifetime Duration `yaml:"refresh_token_lifetime"`
}

// Rooms holds room defaults and the closed-room policy.
type Rooms struct {
	// DefaultVersion is the room version of new rooms.
	DefaultVersion string `yaml:"default_version"`
	// AllowedJoinRules are the m.room.join_rules values rooms may have
	// (public is not among them by default: rooms are closed).
	AllowedJoinRules []string `yaml:"allowed_join_rules"`
	// AllowWorldReadable lets rooms set history_visibility world_readable.
	AllowWorldReadable bool `yaml:"allow_world_readable"`
}

// UserDirectory controls POST /user_directory/search.
type UserDirectory struct {
	// SearchAllUsers makes every local user findable, not only those who
	// share a room with the searcher.
	SearchAllUsers bool `yaml:"search_all_users"`
}

// Presence controls online status (m.presence).
type Presence struct {
	// Enabled tracks whether users are online and shows it to the users
	// who share a room with them. Off, nothing is tracked or shown: GET
	// /presence answers offline and PUT /presence is accepted and ignored.
	Enabled bool `yaml:"enabled"`
}

// HTTP holds listener limits.
type HTTP struct {
	// MaxRequestBytes limits request bodies of the JSON API.
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// ShutdownTimeout is how long in-flight requests get to finish on SIGTERM.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// TrustedProxies are the addresses (IPs or CIDR ranges) of reverse
	// proxies whose X-Forwarded-For header names the real client.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// Log controls logging.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
	// IPAddresses is the older name of privacy.store_ip_addresses, kept
	// as an alias so existing files work; use Config.StoreIPAddresses.
	IPAddresses bool `yaml:"ip_addresses"`
}

// ServerNotices configures the system account that sends server notices
// and the per-user notices rooms it creates.
type ServerNotices struct {
	// Localpart of the system account (@localpart:server_name). It is
	// created at start-up if missing and cannot log in.
	Localpart string `yaml:"localpart"`
	// DisplayName and AvatarURL (mxc://) of the system account.
	DisplayName string `yaml:"display_name"`
	AvatarURL   string `yaml:"avatar_url"`
	// RoomName is the name of every notices room.
	RoomName string `yaml:"room_name"`
	// AutoJoin joins users to their notices room instead of inviting them.
	AutoJoin bool `yaml:"auto_join"`
}

// Consent configures terms-of-service consent: the policy users must agree
// to before they may create or change anything others see.
type Consent struct {
	// Enabled turns the consent notice and the gate on.
	Enabled bool `yaml:"enabled"`
	// Version is the current policy version; raising it makes every user
	// agree again.
	Version string `yaml:"version"`
	// TemplateDir holds <version>.<lang>.html policy templates; empty uses
	// the templates built into aula.
	TemplateDir string `yaml:"template_dir"`
	// FormSecret is the HMAC key of the personal consent links.
	FormSecret string `yaml:"form_secret"`
	// ServerNoticeContent is the notice text; %(consent_uri)s is replaced by
	// the user's consent link.
	ServerNoticeContent string `yaml:"server_notice_content"`
	// BlockEventsError is the error message of blocked requests, with
	// %(consent_uri)s replaced by the user's consent link.
	BlockEventsError string `yaml:"block_events_error"`
	// RequireAtRegistration adds the m.login.terms stage to POST /register,
	// so people who register agree before their account exists.
	RequireAtRegistration bool `yaml:"require_at_registration"`
}

// Duration is a time.Duration written as "90s", "5m" or "1h" in YAML and
// in the environment.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats the duration the way it is written in the config.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML parses "5m"-style durations.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("expected a duration like 30s, 5m or 1h")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not a duration like 30s, 5m or 1h", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Default returns the configuration every file starts from.
func Default() *Config {
	return &Config{
		Listen:        "localhost:8008",
		DataDir:       "./aula-data",
		PasswordLogin: PasswordLogin{Enabled: true, BcryptCost: 12},
		Login: Login{
			AccessTokenLifetime: Duration(5 * time.Minute),
		},
		Rooms: Rooms{
			DefaultVersion: "11",
			// Closed rooms: no public join rule by default.
			AllowedJoinRules: []string{"invite", "knock", "restricted", "knock_restricted"},
		},
		Presence: Presence{
			Enabled: true,
		},
		HTTP: HTTP{
			MaxRequestBytes: 1 << 20,
			ShutdownTimeout: Duration(10 * time.Second),
		},
		Log: Log{Level: "info", Format: "text"},
		// Privacy and data rights (privacy.go): no IP addresses, no retention limit.
		Retention: Retention{PurgeInterval: Duration(time.Hour)},
		// Pushers (push.go): any gateway, no content in pushes.
		Push: Push{GatewayAllowlist: []string{}},
		// Admin socket for local commands: <data_dir>/admin.sock.
		AdminSocket: "admin.sock",
		// Single sign-on (oidc.go): no providers by default.
		OIDCProviders: []OIDCProvider{},
		SSO:           SSO{ClientWhitelist: []string{}, OAuthAPI: true},
		// Media repository (media.go).
		Media: defaultMedia(),
		// Calls (calls.go).
		Turn:          defaultTurn,
		DelayedEvents: defaultDelayedEvents,
		// Server notices and consent: consent is off unless enabled.
		ServerNotices: ServerNotices{Localpart: "administrator", DisplayName: "Server Notices", RoomName: "Server Notices"},
		Consent: Consent{
			Version:             "1.0",
			ServerNoticeContent: "To continue using this server you must review and agree to the terms of use and privacy policy at %(consent_uri)s",
			BlockEventsError:    "To continue using this server you must review and agree to the terms of use and privacy policy at %(consent_uri)s",
		},
	}
}

// Dev returns the development configuration behind `aula --dev`: server name
// localhost, SQLite under ./aula-data, http://localhost:8008, open
// registration.
func Dev() *Config {
	c := devBase()
	c.fillDerived()
	return c
}

func devBase() *Config {
	c := Default()
	c.ServerName = "localhost"
	c.Registration.Enabled = true
	// Show the terms-of-use flow the university runs: a notice, a link,
	// and no chatting until the user agrees.
	c.Consent.Enabled = true
	return c
}

// LoadDev returns the development configuration with the AULA_* environment
// variables applied, validated.
func LoadDev() (*Config, error) { return load(devBase(), "") }

// Load reads the YAML file at path (if path is not empty), applies the AULA_*
// environment variables on top, fills derived defaults and validates. The
// error lists every problem found.
func Load(path string) (*Config, error) { return load(Default(), path) }

func load(c *Config, path string) (*Config, error) {
	var problems []string
	collect := func(err error) error {
		var e *Error
		if errors.As(err, &e) {
			problems = append(problems, e.Problems...)
			return nil
		}
		return err
	}
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := collect(Parse(raw, c)); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := collect(applyEnv(c, os.LookupEnv)); err != nil {
		return nil, err
	}
	c.fillDerived()
	if err := collect(c.Validate()); err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return c, nil
}

// Parse decodes YAML into c. Every unknown key and every value of the wrong
// type is reported in one *Error, each naming its dotted key path and line.
func Parse(raw []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) { // an empty file
			return nil
		}
		return &Error{Problems: []string{strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	// A second document would be ignored silently, unknown keys and all.
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil && len(extra.Content) > 0 && extra.Content[0].ShortTag() != "!!null":
		return &Error{Problems: []string{fmt.Sprintf("line %d: a second YAML document (after \"---\"); the file must hold one", extra.Line)}}
	case err != nil && !errors.Is(err, io.EOF):
		return &Error{Problems: []string{strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	if len(doc.Content) == 0 || doc.Content[0].ShortTag() == "!!null" {
		return nil // only comments
	}
	var problems []string
	decodeInto(doc.Content[0], reflect.ValueOf(c).Elem(), "", &problems)
	if len(problems) > 0 {
		return &Error{Problems: problems}
	}
	return nil
}

// decodeInto decodes the mapping n into the struct v key by key, so that a
// problem can name the key's full path.
func decodeInto(n *yaml.Node, v reflect.Value, prefix string, problems *[]string) {
	if n.Kind != yaml.MappingNode {
		*problems = append(*problems, fmt.Sprintf("%s (line %d): must be a section of keys", strings.TrimSuffix(prefix, "."), n.Line))
		return
	}
	fields := map[string]reflect.Value{}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = v.Field(i)
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		path := prefix + key.Value
		f, ok := fields[key.Value]
		switch {
		case !ok:
			*problems = append(*problems, fmt.Sprintf("%s (line %d): unknown key", path, key.Line))
		case f.Kind() == reflect.Struct && f.Type() != durationType:
			decodeInto(val, f, path+".", problems)
		default:
			if err := val.Decode(f.Addr().Interface()); err != nil {
				msg := expected(f)
				var typeErr *yaml.TypeError
				if !errors.As(err, &typeErr) {
					msg = err.Error() // a value's own UnmarshalYAML says it best
				}
				*problems = append(*problems, fmt.Sprintf("%s (line %d): %s", path, val.Line, msg))
			}
		}
	}
}

// expected describes the kind of value a field takes, for error messages.
func expected(f reflect.Value) string {
	if f.Type() == durationType {
		return "expected a duration like 30s, 5m or 1h"
	}
	switch f.Kind() {
	case reflect.Bool:
		return "expected true or false"
	case reflect.Int, reflect.Int64:
		return "expected a whole number"
	case reflect.Slice:
		return "expected a list of strings"
	}
	return "expected a string"
}

// fillDerived sets defaults that depend on other keys.
func (c *Config) fillDerived() {
	if c.Database == "" && c.DataDir != "" {
		c.Database = "sqlite:" + filepath.Join(c.DataDir, "aula.db")
	}
	if c.SigningKeyPath == "" && c.DataDir != "" {
		c.SigningKeyPath = filepath.Join(c.DataDir, "signing.key")
	}
	if c.PublicBaseURL == "" && c.Listen != "" {
		c.PublicBaseURL = listenURL(c.Listen)
	}
	if c.PublicBaseURL != "" && !strings.HasSuffix(c.PublicBaseURL, "/") {
		c.PublicBaseURL += "/"
	}
}
