-- The user directory's search keys (storage/userdir.go): one row per user,
-- computed in Go (case- and accent-folded user ID, localpart and display
-- name words). source records the display name (and fold version) the key
-- was computed from; a search first recomputes rows whose source no longer
-- matches, so no code path that changes a display name can leave a stale key.
CREATE TABLE user_directory (
    user_id    TEXT PRIMARY KEY,
    source     TEXT NOT NULL,
    search_key TEXT NOT NULL,
    sort_key   TEXT NOT NULL
);
