-- Read receipts: the event each user has read up to in a room, one row per
-- receipt type (m.read, m.read.private) and thread: thread_id is '' for an
-- unthreaded receipt, 'main' or a thread root's event ID for a threaded one.
-- event_depth is the depth of event_id in the room, so that a receipt only
-- ever moves forwards. Every change takes a new global stream position, so
-- /sync finds the receipts changed since its token with the
-- (room_id, stream_pos) index.
CREATE TABLE receipts (
    room_id      TEXT NOT NULL REFERENCES rooms (room_id),
    user_id      TEXT NOT NULL,
    receipt_type TEXT NOT NULL,
    thread_id    TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    event_depth  BIGINT NOT NULL,
    ts           BIGINT NOT NULL,
    stream_pos   BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id, receipt_type, thread_id)
);
CREATE INDEX receipts_room_stream ON receipts (room_id, stream_pos);
