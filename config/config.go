package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

	Registration  Registration  `yaml:"registration"`
	PasswordLogin PasswordLogin `yaml:"password_login"`
	Login         Login         `yaml:"login"`
	Rooms         Rooms         `yaml:"rooms"`
	HTTP          HTTP          `yaml:"http"`
	Log           Log           `yaml:"log"`
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

// Rooms holds room defaults.
type Rooms struct {
	// DefaultVersion is the room version of new rooms.
	DefaultVersion string `yaml:"default_version"`
}

// HTTP holds listener limits.
type HTTP struct {
	// MaxRequestBytes limits request bodies of the JSON API.
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// ShutdownTimeout is how long in-flight requests get to finish on SIGTERM.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// Log controls logging.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
	// IPAddresses records client IP addresses in logs and device records.
	IPAddresses bool `yaml:"ip_addresses"`
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
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 30s, 5m or 1h", n.Line, n.Value)
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
		Rooms: Rooms{DefaultVersion: "11"},
		HTTP: HTTP{
			MaxRequestBytes: 1 << 20,
			ShutdownTimeout: Duration(10 * time.Second),
		},
		Log: Log{Level: "info", Format: "text"},
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
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := Parse(raw, c); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(c, os.LookupEnv); err != nil {
		return nil, err
	}
	c.fillDerived()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse decodes YAML into c, refusing unknown keys.
func Parse(raw []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, io.EOF) { // an empty file
			return nil
		}
		return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	// A second document would be ignored silently, unknown keys and all.
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil && len(extra.Content) > 0 && extra.Content[0].ShortTag() != "!!null":
		return fmt.Errorf("line %d: a second YAML document (after \"---\"); the file must hold one", extra.Line)
	case err != nil && !errors.Is(err, io.EOF):
		return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return nil
}

// fillDerived sets defaults that depend on other keys.
func (c *Config) fillDerived() {
	if c.Database == "" && c.DataDir != "" {
		c.Database = "sqlite:" + filepath.Join(c.DataDir, "aula.db")
	}
	if c.PublicBaseURL == "" && c.Listen != "" {
		c.PublicBaseURL = listenURL(c.Listen)
	}
	if c.PublicBaseURL != "" && !strings.HasSuffix(c.PublicBaseURL, "/") {
		c.PublicBaseURL += "/"
	}
}
