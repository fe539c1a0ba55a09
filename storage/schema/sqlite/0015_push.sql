-- Push (push package). Notification counts have no table: they are derived
-- from receipts and the event stream and cached in memory.
--
-- Pushers: one row per (user, app_id, pushkey), tied to the device that
-- created it, so deleting the device (logout) deletes its pushers.
CREATE TABLE pushers (
    user_id             TEXT NOT NULL,
    device_id           TEXT NOT NULL,
    kind                TEXT NOT NULL,
    app_id              TEXT NOT NULL,
    pushkey             TEXT NOT NULL,
    app_display_name    TEXT NOT NULL,
    device_display_name TEXT NOT NULL,
    profile_tag         TEXT NOT NULL DEFAULT '',
    lang                TEXT NOT NULL,
    data                TEXT NOT NULL,
    pushkey_ts          BIGINT NOT NULL,
    PRIMARY KEY (user_id, app_id, pushkey),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX pushers_key ON pushers (app_id, pushkey);

-- Notifications waiting to be delivered to a push gateway, so that delivery
-- survives a restart. A row goes with its pusher.
CREATE TABLE push_outbox (
    id          INTEGER PRIMARY KEY,
    user_id     TEXT NOT NULL,
    app_id      TEXT NOT NULL,
    pushkey     TEXT NOT NULL,
    body        TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_try_ts BIGINT NOT NULL,
    created_ts  BIGINT NOT NULL,
    FOREIGN KEY (user_id, app_id, pushkey) REFERENCES pushers (user_id, app_id, pushkey) ON DELETE CASCADE
);
CREATE INDEX push_outbox_next ON push_outbox (next_try_ts);
CREATE INDEX push_outbox_pusher ON push_outbox (user_id, app_id, pushkey);

-- What GET /notifications lists: the newest notifications of each user,
-- pruned to a bounded number per user (not used for counts).
CREATE TABLE push_notifications (
    id        INTEGER PRIMARY KEY,
    user_id   TEXT NOT NULL,
    room_id   TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    depth     BIGINT NOT NULL,
    thread_id TEXT NOT NULL,
    ts        BIGINT NOT NULL,
    highlight INTEGER NOT NULL,
    actions   TEXT NOT NULL
);
CREATE INDEX push_notifications_user ON push_notifications (user_id, id);
