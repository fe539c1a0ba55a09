-- Rooms. Rooms do not federate, so each room's events form one chain; its
-- head is the event with the highest depth (see events_room_depth).
CREATE TABLE rooms (
    room_id         TEXT PRIMARY KEY,
    room_version    TEXT NOT NULL,
    creator         TEXT NOT NULL,
    created_ts      BIGINT NOT NULL
);

-- Every event, as the exact JSON served to clients (redacted in place when a
-- redaction arrives). stream_pos orders events across rooms for sync; depth
-- orders them within their room.
CREATE TABLE events (
    stream_pos       BIGINT PRIMARY KEY,
    event_id         TEXT NOT NULL UNIQUE,
    room_id          TEXT NOT NULL REFERENCES rooms (room_id),
    depth            BIGINT NOT NULL,
    type             TEXT NOT NULL,
    state_key        TEXT,
    sender           TEXT NOT NULL,
    origin_server_ts BIGINT NOT NULL,
    json             TEXT NOT NULL,
    redacted_by      TEXT
);
CREATE UNIQUE INDEX events_room_depth ON events (room_id, depth);

-- Room state as intervals: a state event holds its (type, state_key) from
-- the depth of the event that set it up to (not including) the depth of the
-- event that replaced it. Current state is to_depth IS NULL; the state at
-- depth d is from_depth <= d AND (to_depth IS NULL OR to_depth > d). No
-- state is ever copied.
CREATE TABLE room_state (
    room_id    TEXT NOT NULL,
    type       TEXT NOT NULL,
    state_key  TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    membership TEXT,
    from_depth BIGINT NOT NULL,
    to_depth   BIGINT,
    PRIMARY KEY (room_id, type, state_key, from_depth)
);
CREATE INDEX room_state_current ON room_state (room_id, type, state_key) WHERE to_depth IS NULL;
CREATE INDEX room_state_member ON room_state (state_key, room_id) WHERE type = 'm.room.member' AND to_depth IS NULL;

-- Transaction IDs of sent events, so a retried PUT /send returns the event
-- it created the first time.
CREATE TABLE event_txns (
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    txn_id     TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, txn_id)
);

-- Rooms a user has forgotten (left and asked not to see again).
CREATE TABLE forgotten_rooms (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    PRIMARY KEY (user_id, room_id)
);

-- Room aliases (#name:server) of this server.
CREATE TABLE room_aliases (
    alias      TEXT PRIMARY KEY,
    room_id    TEXT NOT NULL REFERENCES rooms (room_id),
    creator    TEXT NOT NULL,
    created_ts BIGINT NOT NULL
);
CREATE INDEX room_aliases_room ON room_aliases (room_id);

-- Reports of events and rooms, for the admins to review.
CREATE TABLE reports (
    id          BIGSERIAL PRIMARY KEY,
    room_id     TEXT NOT NULL,
    event_id    TEXT,
    reporter    TEXT NOT NULL,
    reason      TEXT,
    score       BIGINT,
    received_ts BIGINT NOT NULL
);
