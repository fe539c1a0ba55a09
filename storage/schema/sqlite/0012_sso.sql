-- Single sign-on (storage/sso.go).
--
-- user_external_ids links a subject at an OpenID Connect provider to the
-- account it signs in as, so later sign-ins find the same account even if
-- the provider's username claim changes.
CREATE TABLE user_external_ids (
    auth_provider TEXT NOT NULL,
    external_id   TEXT NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (user_id),
    created_ts    BIGINT NOT NULL,
    PRIMARY KEY (auth_provider, external_id)
);
CREATE INDEX user_external_ids_user ON user_external_ids (user_id);

-- Third-party identifiers (e-mail addresses) bound to accounts, e.g. the
-- email claim of the first sign-in.
CREATE TABLE user_threepids (
    medium       TEXT NOT NULL,
    address      TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (user_id),
    validated_ts BIGINT NOT NULL,
    added_ts     BIGINT NOT NULL,
    PRIMARY KEY (medium, address)
);
CREATE INDEX user_threepids_user ON user_threepids (user_id);

-- Single-use login tokens (m.login.token), stored as SHA-256 hashes.
-- auth_provider and session_id name the provider session the token came
-- from, so that the device it creates can be logged out by the provider.
CREATE TABLE login_tokens (
    token_hash    BLOB PRIMARY KEY,
    user_id       TEXT NOT NULL,
    expires_ts    BIGINT NOT NULL,
    auth_provider TEXT NOT NULL,
    session_id    TEXT NOT NULL
);

-- The provider session (OpenID Connect sid) each device was created from,
-- for back-channel logout.
CREATE TABLE device_sso_sessions (
    user_id       TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    auth_provider TEXT NOT NULL,
    session_id    TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX device_sso_sessions_session ON device_sso_sessions (auth_provider, session_id);

-- Server secrets created on first use, e.g. the key that signs the SSO
-- session cookie.
CREATE TABLE server_secrets (
    name   TEXT PRIMARY KEY,
    secret BLOB NOT NULL
);
