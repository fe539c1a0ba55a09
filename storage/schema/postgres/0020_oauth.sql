-- The OAuth 2.0 authorization server (storage/oauth.go, docs/oauth.md).
--
-- oauth_clients holds the dynamically registered clients. Registrations
-- with identical metadata share one row (metadata_hash), so every install
-- of one app shares a client_id; each registration renews registered_ts,
-- and a client without sessions is dropped a day after its last one.
CREATE TABLE oauth_clients (
    client_id     TEXT PRIMARY KEY,
    metadata      TEXT NOT NULL,
    metadata_hash BYTEA NOT NULL UNIQUE,
    created_ts    BIGINT NOT NULL,
    registered_ts BIGINT NOT NULL
);

-- Authorization codes, stored as SHA-256 hashes: short-lived, single use
-- (used_ts is set by the first exchange and kept until expiry, so that a
-- replay is recognised), bound to client, redirect URI, user, device
-- scope and PKCE challenge. auth_provider and session_id name the
-- identity provider session the user signed in with.
CREATE TABLE oauth_codes (
    code_hash      BYTEA PRIMARY KEY,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    device_id      TEXT NOT NULL,
    scope          TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    auth_provider  TEXT NOT NULL,
    session_id     TEXT NOT NULL,
    expires_ts     BIGINT NOT NULL,
    used_ts        BIGINT
);

-- The device each authorization code created, with its client and the
-- granted scope; the row goes with the device.
CREATE TABLE oauth_sessions (
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    code_hash  BYTEA NOT NULL,
    created_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX oauth_sessions_client ON oauth_sessions (client_id);
CREATE INDEX oauth_sessions_code ON oauth_sessions (code_hash);
