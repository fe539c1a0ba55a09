-- Voice and video calls (storage/openid.go, storage/delayed.go).
--
-- openid_tokens holds the short-lived OpenID tokens of
-- POST /user/{userId}/openid/request_token, which a third party (the LiveKit
-- JWT service of Element Call) exchanges for the user's ID at
-- /_matrix/federation/v1/openid/userinfo. Only the SHA-256 hash of a token
-- is stored (hex), never the token itself.
CREATE TABLE openid_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    expires_ts BIGINT NOT NULL
);
CREATE INDEX openid_tokens_expiry ON openid_tokens (expires_ts);

-- delayed_events holds the events of MSC4140 (PUT /send or /state with
-- org.matrix.msc4140.delay) waiting to be sent at send_ts. state_key is
-- NULL for message events. A row goes when the event is sent or cancelled;
-- rows survive restarts, and any that came due while the server was down
-- are sent at start-up. txn_id is the client transaction ID of PUT /send (the
-- request path and ID), so that a retried request schedules nothing new.
CREATE TABLE delayed_events (
    delay_id   TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    room_id    TEXT NOT NULL,
    type       TEXT NOT NULL,
    state_key  TEXT,
    content    TEXT NOT NULL,
    txn_id     TEXT,
    delay_ms   BIGINT NOT NULL,
    send_ts    BIGINT NOT NULL,
    created_ts BIGINT NOT NULL
);
CREATE INDEX delayed_events_user ON delayed_events (user_id, send_ts);
CREATE INDEX delayed_events_due ON delayed_events (send_ts);
