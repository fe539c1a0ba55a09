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
# Other URL parameters are PostgreSQL settings for aula's sessions. With
# &synchronous_commit=off a commit no longer waits for the disk to flush:
# a power failure can then lose the last fraction of a second of writes (the
# database stays consistent, as SQLite in WAL mode here does), and a disk
# that stalls no longer stalls every request (docs/benchmarks.md).
database: {{printf "%q" .Database}}

# Unix socket on which the running server serves the admin API to local
# commands such as "aula group create" and "aula notice send", so that they
# work while the server runs. Only the server's user can use it (mode 0600;
# its directory must not be writable by others). A relative path is inside
# data_dir. "" turns it off: those commands then open the database
# themselves and must only be run while the server is stopped.
admin_socket: {{printf "%q" .D.AdminSocket}}

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

# Single sign-on with OpenID Connect providers (see docs/sso.md). Accounts
# are created on a user's first sign-in. Register aula at the provider with
# the redirect URI {{.PublicBaseURL}}_aula/client/oidc/callback
# (a server moving from Synapse may keep
# {{.PublicBaseURL}}_synapse/client/oidc/callback). Each entry:
#   - id: uni                      # stable ID, used in URLs and account links
#     name: "University Login"     # shown on the client's sign-in button
#     icon: ""                     # optional mxc:// URI of a logo
#     brand: ""                    # optional button style hint for clients
#     issuer: "https://login.uni.example/realms/uni"
#     client_id: "aula"
#     client_secret: ""            # or client_secret_file: /etc/aula/oidc-secret
#     scopes: [openid, profile, email]   # default [openid, profile]
#     pkce: true                   # send a S256 code challenge (default true)
#     userinfo: false              # also read claims from the userinfo endpoint
#     allow_existing_users: false  # link a first sign-in to an existing
#                                  # account of the same localpart
#     backchannel_logout: true     # accept back-channel logout tokens at
#                                  # {{.PublicBaseURL}}_aula/client/oidc/backchannel_logout
#     user_mapping:                # Go templates over the ID token's claims
#       localpart_template: "{{"{{ .preferred_username }}"}}"
#       display_name_template: "{{"{{ .name }}"}}"
#       email_template: "{{"{{ .email }}"}}"
#     attribute_requirements:      # claims that must match, e.g.
#       - attribute: affiliation
#         one_of: [staff, student]
# Once a provider is configured, consider password_login.enabled: false.
oidc_providers: []

sso:
  # Clients that receive the login token after single sign-on without a
  # "Continue to …?" confirmation page: host names (app.element.io) or URL
  # prefixes (https://chat.uni.example/). Others get the page, so a
  # phishing link cannot silently collect a login.
  client_whitelist: []
  # Serve the Matrix OAuth 2.0 API (auth_metadata, client registration,
  # authorization, token and revocation under /_aula/oauth2/; see
  # docs/oauth.md) while an oidc_providers entry is configured. Element X
  # signs in only through it; Element Web uses it when it is on. The
  # sign-in itself still happens at the provider. false leaves only
  # m.login.sso.
  oauth_api: {{.D.SSO.OAuthAPI}}

password_login:
  # Offer m.login.password on /login and as a confirmation step for
  # sensitive actions (deleting devices, deactivating the account). With
  # single sign-on only (oidc_providers), set this to false.
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
  # Join rules rooms may use (m.room.join_rules): invite (members-only),
  # knock (ask to join), restricted and knock_restricted (open to the
  # members of a space or room). Add public to allow rooms anyone on the
  # server can join without an invite; without it, creating a public room
  # or switching a room to public is refused.
  allowed_join_rules: [invite, knock, restricted, knock_restricted]
  # Allow history_visibility world_readable, which lets users who are not
  # members read a room's history. Off: rooms are read by members only.
  allow_world_readable: {{.D.Rooms.AllowWorldReadable}}

user_directory:
  # Who the user search (e.g. Element's "Start chat" dialog) finds: false
  # finds only users who share a room with the searcher; true finds every
  # user of this server. Deactivated users are never found.
  search_all_users: {{.D.UserDirectory.SearchAllUsers}}

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
  # used for rate limits and, if privacy.store_ip_addresses is on, for logs. Empty: the
  # header is ignored and the connection's peer counts as the client.
  trusted_proxies: []

log:
  # debug, info, warn or error.
  level: {{printf "%q" .D.Log.Level}}
  # text (readable) or json (one object per line, for log collectors).
  format: {{printf "%q" .D.Log.Format}}
  # Older name of privacy.store_ip_addresses, kept so existing files work:
  # true here also records IP addresses. Leave it false and use privacy.
  ip_addresses: {{.D.Log.IPAddresses}}

# --- Privacy and data rights (docs/privacy.md) --------------------------------
privacy:
  # Record client IP addresses in the request log and in device records
  # (last_seen_ip). Off by default: the university keeps no IP addresses
  # unless it must; no IP address or user agent is then written to the
  # database or the logs, and devices keep only the time they were last
  # seen.
  store_ip_addresses: {{.D.Privacy.StoreIPAddresses}}

retention:
  # Remove the content of messages (every non-state event) older than this
  # from every room, e.g. 8760h for one year. The room itself, its members,
  # name and other state stay. 0s keeps history forever.
  max_lifetime: {{.D.Retention.MaxLifetime}}
  # How often the removal runs when max_lifetime is set.
  purge_interval: {{.D.Retention.PurgeInterval}}

# --- Push notifications to phones (docs/push.md) -----------------------------
push:
  # Push gateway URLs that pushers may use, e.g.
  # ["https://sygnal.uni.example/_matrix/push/v1/notify"]. Empty allows any
  # gateway: the server then sends requests to whatever URL a client gives.
  gateway_allowlist: []
  # Send the sender, room name and message content to the gateway for
  # pushers that did not ask for format event_id_only. Off, every push
  # carries only event and room IDs and the unread count.
  include_content: {{.D.Push.IncludeContent}}

# --- Media repository (docs/media.md) -----------------------------------------
media:
  # Largest accepted upload in bytes (52428800 = 50 MiB). A reverse proxy
  # in front of aula must allow at least this much (nginx:
  # client_max_body_size).
  max_upload_size: {{.D.Media.MaxUploadSize}}
  # Which media the old unauthenticated download and thumbnail endpoints
  # (/_matrix/media/v3/...) refuse: "all" keeps every file behind login
  # (clients use the authenticated /_matrix/client/v1/media/... since spec
  # v1.11), "none" serves everything there, or a date (2024-09-01 or RFC
  # 3339): files uploaded from then on are refused there.
  freeze_unauthenticated: {{printf "%q" .D.Media.FreezeUnauthenticated}}
  # Thumbnail sizes, "WIDTHxHEIGHT METHOD": crop cuts to exactly that size,
  # scale fits the image inside it. A request gets the smallest listed
  # size at least as large as asked for. Generated on first use, then kept.
  thumbnail_sizes: [{{range $i, $s := .D.Media.ThumbnailSizes}}{{if $i}}, {{end}}{{printf "%q" $s}}{{end}}]
  # Largest image (width x height in pixels) thumbnails are made of. Larger
  # images are refused from their header, before decoding (image bombs).
  max_image_pixels: {{.D.Media.MaxImagePixels}}
  # Most bytes of media one user may store; 0 is no limit.
  user_quota: {{.D.Media.UserQuota}}
  # How many media IDs a user may create ahead of their upload
  # (POST /_matrix/media/v1/create) and not yet use.
  max_pending_uploads: {{.D.Media.MaxPendingUploads}}
  # How long such a media ID waits for its upload before it is dropped.
  unused_expiry: {{.D.Media.UnusedExpiry}}
  # Link previews (GET /_matrix/client/v1/media/preview_url).
  url_preview:
    # Link previews: the server fetches web pages users link to and returns
    # their title and description. Off by default: it then fetches nothing
    # from the web, and previews reveal to sites who reads a link.
    enabled: {{.D.Media.URLPreview.Enabled}}
    # Previews never fetch from private, loopback, link-local or other
    # internal addresses, except from these (IPs or CIDR ranges, e.g.
    # ["10.1.2.0/24"] for an intranet).
    allow_ips: []

# --- Voice and video calls (docs/calls.md) ------------------------------------
turn:
  # TURN (and STUN) servers clients relay call media through when a direct
  # connection fails, e.g. ["turn:turn.uni.example:3478?transport=udp",
  # "turn:turn.uni.example:3478?transport=tcp",
  # "turns:turn.uni.example:5349?transport=tcp"]. Empty: no TURN server
  # (GET /voip/turnServer answers {}). Media never flows through aula.
  uris: []
  # coturn's static-auth-secret (use-auth-secret): users get a username
  # "<expiry>:<user ID>" and an HMAC-SHA1 password that the TURN server
  # checks with the same secret. Set this or shared_secret_file.
  shared_secret: ""
  # A file holding the shared secret (read at each request, so it can be
  # rotated without a restart).
  shared_secret_file: ""
  # Fixed credentials for every user, for TURN servers without the shared
  # secret scheme (not recommended: anyone with an account can read them).
  username: ""
  # The password that goes with username.
  password: ""
  # How long shared-secret credentials stay valid (at least 1s).
  user_lifetime: {{.D.Turn.UserLifetime}}
  # Hand TURN credentials to guest accounts too.
  allow_guests: {{.D.Turn.AllowGuests}}

rtc:
  # URL of the LiveKit JWT service (lk-jwt-service) in front of the
  # university's LiveKit SFU, for Element Call group calls, e.g.
  # "https://livekit-jwt.uni.example". It is announced to clients in
  # /.well-known/matrix/client. Empty: no SFU for group calls.
  livekit_service_url: ""

delayed_events:
  # Longest delay a client may give a delayed event (MSC4140; Element Call
  # uses them to end a call membership when a client disappears). 0s turns
  # delayed events off.
  max_delay: {{.D.DelayedEvents.MaxDelay}}

# --- Server notices and consent ----------------------------------------------
server_notices:
  # Localpart of the system account that sends server notices
  # (@localpart:server_name). It is created at start-up and cannot log in.
  localpart: {{printf "%q" .D.ServerNotices.Localpart}}
  # Display name of the system account.
  display_name: {{printf "%q" .D.ServerNotices.DisplayName}}
  # Avatar of the system account (an mxc:// URI; empty for none).
  avatar_url: {{printf "%q" .D.ServerNotices.AvatarURL}}
  # Name of each user's notices room.
  room_name: {{printf "%q" .D.ServerNotices.RoomName}}
  # Join users to their notices room instead of inviting them (the invite
  # is the Matrix recommendation; Element X shows joined rooms more reliably).
  auto_join: {{.D.ServerNotices.AutoJoin}}

consent:
  # Require users to agree to the terms of use before they may create
  # rooms, send, join, invite or change their profile. They get a notice
  # with a personal link at their first request.
  enabled: {{.D.Consent.Enabled}}
  # The current policy version. Raising it makes every user agree again.
  version: {{printf "%q" .D.Consent.Version}}
  # Directory with your own policy texts, one per version and language:
  # <version>.<lang>.html (e.g. 1.0.de.html, 1.0.en.html). Empty uses the
  # texts built into aula (version 1.0, German and English).
  template_dir: ""
  # Secret key of the personal consent links (HMAC-SHA256, as Synapse's
  # form_secret: copy Synapse's value here so its links keep working after
  # a migration). Empty: a key derived from the signing key. Keep it secret.
  form_secret: {{printf "%q" .D.Consent.FormSecret}}
  # Text of the consent notice; %(consent_uri)s becomes the user's link.
  server_notice_content: {{printf "%q" .D.Consent.ServerNoticeContent}}
  # Error message of blocked requests; %(consent_uri)s becomes the link.
  block_events_error: {{printf "%q" .D.Consent.BlockEventsError}}
  # With registration on: POST /register asks for agreement to the policy
  # (the m.login.terms stage) before the account is created. Accounts made
  # by single sign-on get the notice at their first request instead.
  require_at_registration: {{.D.Consent.RequireAtRegistration}}
`))
