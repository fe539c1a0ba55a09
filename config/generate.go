package config

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"text/template"
)

// GenerateOptions are the command-line choices of `aula generate-config`.
type GenerateOptions struct {
	ServerName string
	Listen     string // default localhost:8008
	DataDir    string // default /var/lib/aula
	Database   string // default sqlite:<DataDir>/aula.db
}

// Generate returns a complete, commented YAML configuration that works as it
// is. Secrets are generated fresh each time. The result is checked like a
// loaded file, so bad options (e.g. an invalid server name) are an error.
func Generate(o GenerateOptions) ([]byte, error) {
	if o.Listen == "" {
		o.Listen = "localhost:8008"
	}
	if o.DataDir == "" {
		o.DataDir = "/var/lib/aula"
	}
	if o.Database == "" {
		o.Database = "sqlite:" + filepath.Join(o.DataDir, "aula.db")
	}
	d := Default()
	data := map[string]any{
		"ServerName":    o.ServerName,
		"Listen":        o.Listen,
		"PublicBaseURL": publicBaseURL(o.ServerName, o.Listen),
		"DataDir":       o.DataDir,
		"Database":      o.Database,
		"SharedSecret":  randomHex(32),
		"D":             d,
	}
	var b bytes.Buffer
	if err := generateTemplate.Execute(&b, data); err != nil {
		return nil, err
	}
	c := Default()
	if err := Parse(b.Bytes(), c); err != nil {
		return nil, fmt.Errorf("generate-config: %w", err)
	}
	c.fillDerived()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// publicBaseURL guesses the URL clients use: the listener itself for a
// server on this machine, otherwise https on the server name (behind a TLS
// reverse proxy).
func publicBaseURL(serverName, listen string) string {
	host := serverName
	if h, _, err := net.SplitHostPort(serverName); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	switch host {
	case "localhost", "127.0.0.1", "::1":
		return listenURL(listen)
	}
	if strings.Contains(host, ":") { // an IPv6 address
		host = "[" + host + "]"
	}
	return "https://" + host + "/"
}

// listenURL is the plain-HTTP URL of the listener listen on this machine; a
// wildcard host (":8008", "0.0.0.0:8008", "[::]:8008") is reached as
// localhost.
func listenURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen + "/" // Validate reports the bad listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b)
}

var generateTemplate = template.Must(template.New("config").Parse(`# aula configuration.
# Every key can also be set from the environment: AULA_ + the key path in
# upper case with _ for each dot, e.g. AULA_DATABASE or
# AULA_REGISTRATION_SHARED_SECRET. Environment values override this file.
# Durations are written like 30s, 5m, 1h.

# The domain part of every user ID (@alice:{{.ServerName}}). It cannot be
# changed once users exist.
server_name: {{printf "%q" .ServerName}}

# Address and port the client API listens on (plain HTTP: put a TLS reverse
# proxy in front of it for anything but local testing).
listen: {{printf "%q" .Listen}}

# The URL clients use to reach this server, ending in "/". It is announced
# in /.well-known/matrix/client and used to build links.
public_baseurl: {{printf "%q" .PublicBaseURL}}

# Directory for the SQLite database, the signing key and media files.
data_dir: {{printf "%q" .DataDir}}

# The server's ed25519 key that signs every room event. It is created on
# first start if missing (empty: signing.key in data_dir). Back it up with
# the database.
signing_key_path: ""

# The database: "sqlite:PATH" (embedded, fine for a few hundred users) or a
# PostgreSQL URL such as postgres://aula:secret@localhost/aula?sslmode=disable.
database: {{printf "%q" .Database}}

registration:
  # Let anyone create an account through POST /register. Keep this off for
  # a university: accounts come from single sign-on or from admins.
  enabled: {{.D.Registration.Enabled}}
  # Secret for Synapse-compatible shared-secret registration
  # (/_synapse/admin/v1/register, e.g. with register_new_matrix_user).
  # Empty turns it off. At least 16 characters.
  shared_secret: {{printf "%q" .SharedSecret}}
  # When not empty, registration needs one of these tokens
  # (m.login.registration_token). 1-64 characters of A-Z a-z 0-9 . _ ~ -
  tokens: []

password_login:
  # Offer m.login.password on /login and as a confirmation step for
  # sensitive actions (deleting devices, deactivating the account).
  enabled: {{.D.PasswordLogin.Enabled}}
  # bcrypt work factor for new password hashes (4-31; each step doubles the
  # cost of a login).
  bcrypt_cost: {{.D.PasswordLogin.BcryptCost}}

login:
  # Lifetime of an access token issued together with a refresh token
  # (clients that send refresh_token: true). Tokens issued without a refresh
  # token do not expire.
  access_token_lifetime: {{.D.Login.AccessTokenLifetime}}
  # Lifetime of an unused refresh token; 0s keeps it until it is used.
  refresh_token_lifetime: {{.D.Login.RefreshTokenLifetime}}

rooms:
  # Room version of new rooms: 10, 11 or 12.
  default_version: {{printf "%q" .D.Rooms.DefaultVersion}}

presence:
  # Track who is online, idle or offline and show it (with a status
  # message) to the users who share a room with them. Turn it off if
  # students should not see when others are online: nothing is then
  # recorded and everyone appears offline.
  enabled: {{.D.Presence.Enabled}}

http:
  # Largest accepted request body for the JSON API, in bytes.
  max_request_bytes: {{.D.HTTP.MaxRequestBytes}}
  # On SIGTERM, how long running requests get to finish before the server
  # stops.
  shutdown_timeout: {{.D.HTTP.ShutdownTimeout}}
  # Reverse proxies (IPs or CIDR ranges, e.g. ["127.0.0.1/32", "10.0.0.0/8"])
  # whose X-Forwarded-For header is believed. The client address it names is
  # used for rate limits and, if log.ip_addresses is on, for logs. Empty: the
  # header is ignored and the connection's peer counts as the client.
  trusted_proxies: []

log:
  # debug, info, warn or error.
  level: {{printf "%q" .D.Log.Level}}
  # text (readable) or json (one object per line, for log collectors).
  format: {{printf "%q" .D.Log.Format}}
  # Record client IP addresses in the request log and in device records.
  # Off by default: the university keeps no IP addresses unless it must.
  ip_addresses: {{.D.Log.IPAddresses}}
`))
