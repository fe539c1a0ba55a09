-- Privacy and data rights (docs/privacy.md).

-- Accounts whose owner asked for erasure (deactivation with erase: true).
-- Their events were rewritten in place with the room version's redaction
-- algorithm and their account data deleted; the row says so to admins
-- (the "erased" field of the admin API). stream_pos holds the stream
-- position the erasure took, so that deleting the account data never
-- deletes the row with the highest position.
CREATE TABLE erased_users (
    user_id    TEXT PRIMARY KEY,
    erased_ts  BIGINT NOT NULL,
    stream_pos BIGINT NOT NULL
);

-- Rooms whose stored events were rewritten in place (erasure, retention).
-- stream_pos is the position of the latest rewrite: /sync's notifier then
-- forgets its in-memory copies of the room's recent events, and the row
-- keeps that position taken. purged_depth is how far retention has gone:
-- every non-state event at or below it has lost its content.
CREATE TABLE event_rewrites (
    room_id      TEXT PRIMARY KEY,
    stream_pos   BIGINT NOT NULL,
    purged_depth BIGINT NOT NULL
);
