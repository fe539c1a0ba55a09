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
-- m.relates_to left in their content. Events with a \u0000 escape are
-- skipped, as PersistEvents skips relations holding a NUL.
INSERT INTO event_relations (event_id, room_id, relates_to, rel_type, type, sender, depth)
SELECT event_id, room_id,
       json_extract(json, '$.content."m.relates_to".event_id'),
       json_extract(json, '$.content."m.relates_to".rel_type'),
       type, sender, depth
FROM events
WHERE json LIKE '%m.relates_to%' AND json NOT LIKE '%\u0000%'
  AND json_type(json, '$.content."m.relates_to".event_id') = 'text'
  AND json_type(json, '$.content."m.relates_to".rel_type') = 'text'
  AND json_extract(json, '$.content."m.relates_to".event_id') <> ''
  AND json_extract(json, '$.content."m.relates_to".rel_type') <> '';

INSERT INTO threads (room_id, root_id, latest_depth)
SELECT room_id, relates_to, MAX(depth) FROM event_relations
WHERE rel_type = 'm.thread' GROUP BY room_id, relates_to;
