-- The search index is kept by the Go write path instead of triggers (see
-- storage/search.go): PersistEvents computes an event's text in Go and
-- indexes it in the statement that inserts the event; a redaction deletes
-- the row. Parsing the whole event JSON in PL/pgSQL for every message was
-- most of what the index cost.
--
-- event_search now keeps the text it indexes, as SQLite's FTS5 table does,
-- so both engines write the same (rowid, value) rows and search highlights
-- need not parse the event either. The tsvector is a generated column.

DROP TRIGGER event_search_insert ON events;
DROP TRIGGER event_search_update ON events;
DROP TRIGGER event_search_delete ON events;
DROP FUNCTION event_search_sync();

CREATE TABLE event_search_new (
    rowid  BIGINT PRIMARY KEY,
    value  TEXT NOT NULL,
    vector TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', value)) STORED
);

-- Rows indexed before this migration, with their text: the rows of
-- event_search are the events whose text 0005 found, by the same rules.
INSERT INTO event_search_new (rowid, value)
SELECT e.stream_pos, event_search_text(e.type, e.json)
FROM event_search AS s JOIN events AS e ON e.stream_pos = s.rowid;

DROP TABLE event_search;
DROP FUNCTION event_search_text(TEXT, TEXT);
ALTER TABLE event_search_new RENAME TO event_search;
ALTER INDEX event_search_new_pkey RENAME TO event_search_pkey;
CREATE INDEX event_search_vector ON event_search USING GIN (vector);
