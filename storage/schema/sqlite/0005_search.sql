-- Full-text search over room events (POST /search), as Synapse indexes
-- them: content.body of m.room.message, content.name of m.room.name, and
-- the plain-text topic of m.room.topic (the first text/plain entry of
-- content."m.topic"."m.text", else content.topic). Encrypted events have no
-- plaintext, so encrypted rooms have nothing indexed.
--
-- The index is kept by triggers on events, so the write path in Go does not
-- know about it: a row per indexed event whose rowid is the event's
-- stream_pos. A redaction rewrites events.json, which re-indexes the event
-- from its redacted JSON, where the text is gone.

-- The text an event contributes to the index, or NULL. json_valid guards
-- every other JSON function: a JSON error inside a trigger would fail the
-- event's INSERT. The event type decides the key, so events.type tells a
-- search which keys (content.body, content.name, content.topic) a hit has.
CREATE VIEW event_search_source AS
SELECT e.stream_pos, CASE WHEN json_valid(e.json) THEN
    CASE e.type
    WHEN 'm.room.message' THEN
        CASE WHEN json_type(e.json, '$.content.body') = 'text' THEN json_extract(e.json, '$.content.body') END
    WHEN 'm.room.name' THEN
        CASE WHEN json_type(e.json, '$.content.name') = 'text' THEN json_extract(e.json, '$.content.name') END
    WHEN 'm.room.topic' THEN COALESCE(
        (SELECT json_extract(t.value, '$.body') FROM json_each(e.json, '$.content."m.topic"."m.text"') AS t
         WHERE CASE WHEN t.type = 'object' THEN
                   json_type(t.value, '$.body') = 'text'
                   AND COALESCE(NULLIF(json_extract(t.value, '$.mimetype'), ''), 'text/plain') = 'text/plain'
               END
         ORDER BY t.key LIMIT 1),
        CASE WHEN json_type(e.json, '$.content.topic') = 'text' THEN json_extract(e.json, '$.content.topic') END)
    END
END AS value
FROM events AS e
WHERE e.type IN ('m.room.message', 'm.room.name', 'm.room.topic');

-- The porter stemmer matches what PostgreSQL's 'english' configuration
-- does ("messages" finds "message"); remove_diacritics 2 lets "cafe" find
-- "café".
CREATE VIRTUAL TABLE event_search USING fts5(value, tokenize = 'porter unicode61 remove_diacritics 2');

CREATE TRIGGER event_search_insert AFTER INSERT ON events
WHEN NEW.type IN ('m.room.message', 'm.room.name', 'm.room.topic')
BEGIN
    INSERT INTO event_search (rowid, value)
    SELECT stream_pos, value FROM event_search_source
    WHERE stream_pos = NEW.stream_pos AND value IS NOT NULL AND value <> '';
END;

CREATE TRIGGER event_search_update AFTER UPDATE OF json ON events
WHEN NEW.type IN ('m.room.message', 'm.room.name', 'm.room.topic')
BEGIN
    DELETE FROM event_search WHERE rowid = OLD.stream_pos;
    INSERT INTO event_search (rowid, value)
    SELECT stream_pos, value FROM event_search_source
    WHERE stream_pos = NEW.stream_pos AND value IS NOT NULL AND value <> '';
END;

CREATE TRIGGER event_search_delete AFTER DELETE ON events
WHEN OLD.type IN ('m.room.message', 'm.room.name', 'm.room.topic')
BEGIN
    DELETE FROM event_search WHERE rowid = OLD.stream_pos;
END;

-- Events stored before this migration.
INSERT INTO event_search (rowid, value)
SELECT stream_pos, value FROM event_search_source WHERE value IS NOT NULL AND value <> '';
