-- Terms-of-service consent and server notices (storage/consent.go).
--
-- consent_records keeps every policy version a user agreed to, with the
-- time (ms); agreeing to a new version adds a row, so earlier consent
-- stays on record.
CREATE TABLE consent_records (
    user_id TEXT NOT NULL,
    version TEXT NOT NULL,
    ts      BIGINT NOT NULL,
    PRIMARY KEY (user_id, version)
);

-- consent_notices records the versions whose consent notice a user was
-- sent, so each version's notice goes out once.
CREATE TABLE consent_notices (
    user_id TEXT NOT NULL,
    version TEXT NOT NULL,
    ts      BIGINT NOT NULL,
    PRIMARY KEY (user_id, version)
);

-- server_notice_rooms points to each user's current notices room.
CREATE TABLE server_notice_rooms (
    user_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL
);
