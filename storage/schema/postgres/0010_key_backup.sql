-- Server-side key backup (storage/keybackup.go). A user's backup versions
-- are numbered 1, 2, … and never reused: a deleted version keeps its row
-- with deleted set, so the next version still counts up and deleting it
-- again succeeds. The current version is the highest one not deleted.
-- etag counts the changes to the version's keys and key_count is the
-- number of its sessions; both are kept by the functions that write
-- key_backup_sessions, under the user's lock.
CREATE TABLE key_backup_versions (
    user_id   TEXT NOT NULL REFERENCES users (user_id),
    version   BIGINT NOT NULL,
    algorithm TEXT NOT NULL,
    auth_data TEXT NOT NULL,
    etag      BIGINT NOT NULL DEFAULT 0,
    key_count BIGINT NOT NULL DEFAULT 0,
    deleted   BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (user_id, version)
);

-- One backed-up megolm session key per (user, version, room, session).
-- session_data is the client's encrypted JSON object, stored compacted.
CREATE TABLE key_backup_sessions (
    user_id             TEXT NOT NULL,
    version             BIGINT NOT NULL,
    room_id             TEXT NOT NULL,
    session_id          TEXT NOT NULL,
    first_message_index BIGINT NOT NULL,
    forwarded_count     BIGINT NOT NULL,
    is_verified         BOOLEAN NOT NULL,
    session_data        TEXT NOT NULL,
    PRIMARY KEY (user_id, version, room_id, session_id),
    FOREIGN KEY (user_id, version) REFERENCES key_backup_versions (user_id, version)
);
