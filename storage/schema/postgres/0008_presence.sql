-- Presence: each user's status as other users were last told it (see
-- syncapi/presence.go). A change of state, status message or
-- currently_active takes a new global stream position, so /sync finds the
-- rows changed since its token with the stream_pos index. last_active_ts
-- alone is written without a new position, and rarely: the server keeps
-- the newest activity in memory. A user without a row is offline.
CREATE TABLE presence (
    user_id          TEXT PRIMARY KEY REFERENCES users (user_id),
    state            TEXT NOT NULL,
    status_msg       TEXT NOT NULL DEFAULT '',
    last_active_ts   BIGINT NOT NULL DEFAULT 0,
    currently_active BOOLEAN NOT NULL DEFAULT FALSE,
    stream_pos       BIGINT NOT NULL
);
CREATE INDEX presence_stream ON presence (stream_pos);
