-- The search index is kept by the Go write path instead of triggers (see
-- storage/search.go): PersistEvents computes an event's text in Go and
-- indexes it with the event; a redaction deletes the row. PostgreSQL's
-- triggers parsed the whole event JSON in PL/pgSQL for every message, most
-- of what its index cost, and both engines keep the index the same way.
-- The rows indexed before this migration stay: 0005 found their text by
-- the same rules.

DROP TRIGGER event_search_insert;
DROP TRIGGER event_search_update;
DROP TRIGGER event_search_delete;
DROP VIEW event_search_source;
