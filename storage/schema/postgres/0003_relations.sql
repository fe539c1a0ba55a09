-- Relations between events (content."m.relates_to" with a string rel_type
-- and event_id): one row per child event, written with the event and
-- deleted when the child is redacted, so that a redacted relation no longer
-- counts. relates_to may name an unknown event or one of another room;
-- readers join it to events in the same room. type, sender and depth are
-- the child's, so that filters, visibility checks and thread counts need
-- no event JSON.
CREATE TABLE event_relations (
    event_id   TEXT PRIMARY KEY,
    room_id    TEXT NOT NULL,
    relates_to TEXT NOT NULL,
    rel_type   TEXT NOT NULL,
    type       TEXT NOT NULL,
    sender     TEXT NOT NULL,
    depth      BIGINT NOT NULL
);
CREATE INDEX event_relations_parent ON event_relations (relates_to, rel_type, depth);

-- Threads of a room by their latest reply (the depth of the newest m.thread
-- child that is not redacted), for GET /threads.
CREATE TABLE threads (
    room_id      TEXT NOT NULL,
    root_id      TEXT NOT NULL,
    latest_depth BIGINT NOT NULL,
    PRIMARY KEY (room_id, root_id)
);
CREATE INDEX threads_latest ON threads (room_id, latest_depth);

-- Events stored before this migration. Redacted events have no
-- m.relates_to left in their content. The JSON is read as json, not jsonb,
-- which would refuse a \u0000 escape anywhere in an event, and events with
-- one are skipped (->> would fail on it; PersistEvents skips relations
-- holding a NUL too).
INSERT INTO event_relations (event_id, room_id, relates_to, rel_type, type, sender, depth)
SELECT event_id, room_id, rel->>'event_id', rel->>'rel_type', type, sender, depth
FROM (
    SELECT event_id, room_id, type, sender, depth,
           CASE WHEN json NOT LIKE '%\\u0000%' THEN json::json->'content'->'m.relates_to' END AS rel
    FROM events
    WHERE json LIKE '%m.relates_to%'
) AS e
WHERE json_typeof(rel->'event_id') = 'string'
  AND json_typeof(rel->'rel_type') = 'string'
  AND rel->>'event_id' <> ''
  AND rel->>'rel_type' <> '';

INSERT INTO threads (room_id, root_id, latest_depth)
SELECT room_id, relates_to, MAX(depth) FROM event_relations
WHERE rel_type = 'm.thread' GROUP BY room_id, relates_to;
