-- Send-to-device messages (storage/todevice.go).
--
-- to_device_inbox holds the messages waiting for each device, in the order
-- of their global stream positions. /sync sends them and deletes them once
-- the client acknowledges them by syncing with a later token. The inbox of
-- a device is bounded (the oldest messages are dropped when it is full)
-- and goes when the device is deleted.
CREATE TABLE to_device_inbox (
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    stream_pos BIGINT NOT NULL,
    sender     TEXT NOT NULL,
    type       TEXT NOT NULL,
    content    TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, stream_pos)
);

-- The transaction IDs of PUT /sendToDevice per sending device, so that a
-- retried request stores nothing new. txn_id holds the event type and the
-- client's ID (the spec scopes transaction IDs to the request path).
CREATE TABLE to_device_txns (
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    txn_id     TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, txn_id)
);

-- The highest stream position among each user's deleted to-device
-- messages. Deleting inbox rows could delete the row holding the highest
-- position of the whole stream; this table (listed in streamTables) keeps
-- that position, so a restarted server never hands it out again.
CREATE TABLE to_device_deleted (
    user_id    TEXT PRIMARY KEY,
    stream_pos BIGINT NOT NULL
);
