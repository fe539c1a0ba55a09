-- End-to-end encryption keys (storage/keys.go): what clients upload so
-- that others can encrypt to their devices. The server never sees a
-- private key or plaintext.
--
-- device_keys holds each device's identity keys as the device signed and
-- uploaded them (the DeviceKeys object, stored exactly as sent).
CREATE TABLE device_keys (
    user_id   TEXT NOT NULL,
    device_id TEXT NOT NULL,
    key_json  TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

-- one_time_keys are consumed by /keys/claim, one per claim.
CREATE TABLE one_time_keys (
    user_id   TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    key_json  TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, algorithm, key_id)
);

-- fallback_keys hold one key per device and algorithm, handed out when no
-- one-time key is left; a claim marks it used instead of deleting it.
CREATE TABLE fallback_keys (
    user_id   TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    key_json  TEXT NOT NULL,
    used      BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (user_id, device_id, algorithm)
);

-- device_lists records, per user, the stream position of the last change
-- of their devices or cross-signing keys: /sync's device_lists.changed and
-- /keys/changes read it. Rows are only ever moved forwards.
CREATE TABLE device_lists (
    user_id    TEXT PRIMARY KEY,
    stream_pos BIGINT NOT NULL
);
CREATE INDEX device_lists_stream ON device_lists (stream_pos);
