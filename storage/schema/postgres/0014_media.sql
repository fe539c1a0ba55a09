-- Media repository (storage/media.go, media/): one row per local mxc://
-- URI. The bytes live under data_dir/media, named by their SHA-256, so
-- identical uploads share one file; a file is removed when no media or
-- thumbnail row names its hash any more.
--
-- A row created by POST /_matrix/media/v1/create is pending until its
-- upload: sha256 and uploaded_ts are NULL, and unused_expires_ts says
-- when an unused ID is dropped. quarantined_by is the admin who
-- quarantined the item (it then answers 404).
CREATE TABLE media (
    media_id          TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL,
    content_type      TEXT NOT NULL DEFAULT '',
    upload_name       TEXT,
    size              BIGINT NOT NULL DEFAULT 0,
    sha256            TEXT,
    created_ts        BIGINT NOT NULL,
    uploaded_ts       BIGINT,
    unused_expires_ts BIGINT,
    last_access_ts    BIGINT NOT NULL,
    quarantined_by    TEXT
);
CREATE INDEX media_user ON media (user_id, created_ts);
CREATE INDEX media_sha256 ON media (sha256);
CREATE INDEX media_last_access ON media (last_access_ts);

-- Thumbnails generated on first request, one per media item, size and
-- method; their bytes are in the same content-addressed store.
CREATE TABLE media_thumbnails (
    media_id     TEXT NOT NULL REFERENCES media (media_id) ON DELETE CASCADE,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    method       TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    PRIMARY KEY (media_id, width, height, method)
);
CREATE INDEX media_thumbnails_sha256 ON media_thumbnails (sha256);
