-- The global stream: one counter that numbers everything /sync returns.
CREATE TABLE stream_position (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    pos BIGINT NOT NULL
);
INSERT INTO stream_position (id, pos) VALUES (1, 0);

-- Accounts. password_hash is NULL for accounts that cannot use a password.
CREATE TABLE users (
    user_id       TEXT PRIMARY KEY,
    localpart     TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    user_type     TEXT,
    deactivated   BOOLEAN NOT NULL DEFAULT FALSE,
    created_ts    BIGINT NOT NULL,
    displayname   TEXT,
    avatar_url    TEXT
);

-- Devices. last_seen_ip stays NULL unless log.ip_addresses is on.
CREATE TABLE devices (
    user_id      TEXT NOT NULL REFERENCES users (user_id),
    device_id    TEXT NOT NULL,
    display_name TEXT,
    created_ts   BIGINT NOT NULL,
    last_seen_ts BIGINT,
    last_seen_ip TEXT,
    PRIMARY KEY (user_id, device_id)
);

-- Refresh tokens, stored as SHA-256 hashes. prev_hash is the token this one
-- replaced; it stays usable until this one (or its access token) is used.
CREATE TABLE refresh_tokens (
    token_hash BYTEA PRIMARY KEY,
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    expires_ts BIGINT,
    prev_hash  BYTEA,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);

-- Access tokens, stored as SHA-256 hashes; expires_ts is NULL for tokens that
-- never expire (logins without refresh tokens).
CREATE TABLE access_tokens (
    token_hash   BYTEA PRIMARY KEY,
    user_id      TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    created_ts   BIGINT NOT NULL,
    expires_ts   BIGINT,
    refresh_hash BYTEA,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX access_tokens_device ON access_tokens (user_id, device_id);

-- Account data, global (room_id = '') and per room.
CREATE TABLE account_data (
    user_id    TEXT NOT NULL,
    room_id    TEXT NOT NULL,
    type       TEXT NOT NULL,
    content    TEXT NOT NULL,
    stream_pos BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, type)
);
CREATE INDEX account_data_stream ON account_data (user_id, stream_pos);

-- Sync filters; filter_id counts up per user.
CREATE TABLE filters (
    user_id     TEXT NOT NULL,
    filter_id   BIGINT NOT NULL,
    filter_json TEXT NOT NULL,
    PRIMARY KEY (user_id, filter_id)
);

-- The user's changes to the default push rules, as one JSON document.
CREATE TABLE push_rules (
    user_id    TEXT PRIMARY KEY,
    rules      TEXT NOT NULL,
    stream_pos BIGINT NOT NULL
);
