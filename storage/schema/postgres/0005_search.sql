-- Full-text search over room events (POST /search), as Synapse indexes
-- them: content.body of m.room.message, content.name of m.room.name, and
-- the plain-text topic of m.room.topic (the first text/plain entry of
-- content."m.topic"."m.text", else content.topic). Encrypted events have no
-- plaintext, so encrypted rooms have nothing indexed.
--
-- The index is kept by triggers on events, so the write path in Go does not
-- know about it: a row per indexed event, keyed by the event's stream_pos.
-- The key column is called rowid, as SQLite's FTS5 table must call it, so
-- that both engines share one query text. A redaction rewrites events.json,
-- which re-indexes the event from its redacted JSON, where the text is gone.

-- The text an event contributes to the index, or NULL. The event type
-- decides the key, so events.type tells a search which keys (content.body,
-- content.name, content.topic) a hit has.
CREATE FUNCTION event_search_text(event_type TEXT, event_json TEXT) RETURNS TEXT
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    content JSON;
    topic   TEXT;
BEGIN
    -- PostgreSQL cannot turn \u0000 or a lone surrogate escape into text
    -- and would fail the event's insert: such texts are not indexed. This
    -- test replaces an EXCEPTION handler, which would cost a
    -- subtransaction for every message stored. (Events always hold valid
    -- JSON: the server builds them.)
    IF strpos(event_json, '\u') > 0 AND event_json ~ '\\u(0000|[dD][89a-fA-F])' THEN
        RETURN NULL;
    END IF;
    content := event_json::json -> 'content';
    IF event_type = 'm.room.message' AND json_typeof(content -> 'body') = 'string' THEN
        RETURN content ->> 'body';
    ELSIF event_type = 'm.room.name' AND json_typeof(content -> 'name') = 'string' THEN
        RETURN content ->> 'name';
    ELSIF event_type = 'm.room.topic' THEN
        IF json_typeof(content -> 'm.topic' -> 'm.text') = 'array' THEN
            SELECT r ->> 'body' INTO topic
            FROM json_array_elements(content -> 'm.topic' -> 'm.text') WITH ORDINALITY AS t (r, n)
            WHERE json_typeof(r) = 'object' AND json_typeof(r -> 'body') = 'string'
              AND COALESCE(NULLIF(r ->> 'mimetype', ''), 'text/plain') = 'text/plain'
            ORDER BY n LIMIT 1;
        END IF;
        IF topic IS NULL AND json_typeof(content -> 'topic') = 'string' THEN
            topic := content ->> 'topic';
        END IF;
        RETURN topic;
    END IF;
    RETURN NULL;
END
$$;

CREATE TABLE event_search (
    rowid  BIGINT PRIMARY KEY,
    vector TSVECTOR NOT NULL
);
CREATE INDEX event_search_vector ON event_search USING GIN (vector);

-- Indexes NEW (after an INSERT, or an UPDATE of json: redactions) and
-- forgets OLD (after an UPDATE or a DELETE).
CREATE FUNCTION event_search_sync() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    value TEXT;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM event_search WHERE rowid = OLD.stream_pos;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        value := event_search_text(NEW.type, NEW.json);
        IF value <> '' THEN
            INSERT INTO event_search (rowid, vector) VALUES (NEW.stream_pos, to_tsvector('english', value));
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER event_search_insert AFTER INSERT ON events FOR EACH ROW
WHEN (NEW.type IN ('m.room.message', 'm.room.name', 'm.room.topic'))
EXECUTE FUNCTION event_search_sync();

CREATE TRIGGER event_search_update AFTER UPDATE OF json ON events FOR EACH ROW
WHEN (NEW.type IN ('m.room.message', 'm.room.name', 'm.room.topic'))
EXECUTE FUNCTION event_search_sync();

CREATE TRIGGER event_search_delete AFTER DELETE ON events FOR EACH ROW
WHEN (OLD.type IN ('m.room.message', 'm.room.name', 'm.room.topic'))
EXECUTE FUNCTION event_search_sync();

-- Events stored before this migration.
INSERT INTO event_search (rowid, vector)
SELECT stream_pos, to_tsvector('english', value)
FROM (SELECT stream_pos, event_search_text(type, json) AS value FROM events
      WHERE type IN ('m.room.message', 'm.room.name', 'm.room.topic')) AS t
WHERE value <> '';
