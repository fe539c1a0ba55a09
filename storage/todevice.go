package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
)

// ToDeviceSend is one PUT /sendToDevice: a message of one type from a
// sending device to devices of local users.
type ToDeviceSend struct {
	Sender       string // the sending user
	SenderDevice string // the sending device, which scopes TxnID
	// TxnID identifies the request for idempotency; a TxnID the sending
	// device used before stores nothing. Empty: no idempotency.
	TxnID string
	Type  string
	// Messages maps recipient user ID → device ID → content (a JSON
	// object). Device ID "*" means every device of the user that has no
	// entry of its own. Unknown users and devices are skipped.
	Messages map[string]map[string]json.RawMessage
	// InboxLimit is the most messages one device's inbox keeps; when a
	// message would exceed it, the oldest ones are dropped.
	InboxLimit int
}

// ToDeviceResult says what SendToDevice did.
type ToDeviceResult struct {
	Duplicate bool // the transaction ID was used before: nothing stored
	Stored    int  // messages stored (one per device)
	// Overflows lists the inboxes that were full and lost their oldest
	// messages.
	Overflows []InboxOverflow
}

// InboxOverflow is a device inbox that was full: Dropped of its oldest
// messages were deleted to make room.
type InboxOverflow struct {
	UserID   string
	DeviceID string
	Dropped  int64
}

// ToDeviceMessage is a stored message waiting for a device.
type ToDeviceMessage struct {
	StreamPos int64
	Sender    string
	Type      string
	Content   json.RawMessage
}

// SendToDevice stores the messages of one request in one transaction, each
// at a stream position of its own (ChangeToDevice for the recipient's
// device), and records the transaction ID.
func (db *DB) SendToDevice(ctx context.Context, s ToDeviceSend) (ToDeviceResult, error) {
	var res ToDeviceResult
	users := make([]string, 0, len(s.Messages))
	for u, byDevice := range s.Messages {
		if len(byDevice) > 0 {
			users = append(users, u)
		}
	}
	sort.Strings(users)
	err := db.inTx(ctx, func(tx *Tx) error {
		res = ToDeviceResult{}
		if s.TxnID != "" {
			r, err := tx.ExecContext(ctx, `INSERT INTO to_device_txns (user_id, device_id, txn_id, created_ts)
				VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, device_id, txn_id) DO NOTHING`,
				s.Sender, s.SenderDevice, s.TxnID, nowMS())
			if err != nil {
				return fmt.Errorf("storage: record to-device transaction: %w", err)
			}
			if n, err := r.RowsAffected(); err != nil {
				return fmt.Errorf("storage: record to-device transaction: %w", err)
			} else if n == 0 {
				res.Duplicate = true
				return nil
			}
		}
		if len(users) == 0 {
			return nil
		}
		devices, err := devicesOf(ctx, db, tx, users)
		if err != nil {
			return err
		}
		for _, u := range users {
			byDevice := s.Messages[u]
			for _, d := range devices[u] { // sorted
				content, ok := byDevice[d]
				if !ok {
					if content, ok = byDevice["*"]; !ok {
						continue
					}
				}
				dropped, err := storeToDevice(ctx, tx, s, u, d, content)
				if err != nil {
					return err
				}
				res.Stored++
				if dropped > 0 {
					res.Overflows = append(res.Overflows, InboxOverflow{UserID: u, DeviceID: d, Dropped: dropped})
				}
			}
		}
		return nil
	})
	if err != nil {
		return ToDeviceResult{}, err
	}
	return res, nil
}

// devicesOf returns the device IDs of the users, sorted, by user.
func devicesOf(ctx context.Context, db *DB, tx *Tx, users []string) (map[string][]string, error) {
	cond, arg := db.engine.anyOf("user_id", 1, users)
	rows, err := tx.QueryContext(ctx, `SELECT user_id, device_id FROM devices WHERE `+cond+` ORDER BY user_id, device_id`, arg)
	if err != nil {
		return nil, fmt.Errorf("storage: devices of to-device recipients: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var u, d string
		if err := rows.Scan(&u, &d); err != nil {
			return nil, fmt.Errorf("storage: scan device: %w", err)
		}
		out[u] = append(out[u], d)
	}
	return out, rows.Err()
}

// storeToDevice inserts one message into a device's inbox and trims the
// inbox to s.InboxLimit, returning how many old messages it dropped.
func storeToDevice(ctx context.Context, tx *Tx, s ToDeviceSend, userID, deviceID string, content json.RawMessage) (int64, error) {
	pos, err := nextStreamPos(ctx, tx, Change{Kind: ChangeToDevice, UserID: userID, DeviceID: deviceID})
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO to_device_inbox (user_id, device_id, stream_pos, sender, type, content)
		VALUES ($1, $2, $3, $4, $5, $6)`, userID, deviceID, pos, s.Sender, s.Type, string(content)); err != nil {
		return 0, fmt.Errorf("storage: store to-device message for %s/%s: %w", userID, deviceID, err)
	}
	if s.InboxLimit <= 0 {
		return 0, nil
	}
	// Everything at or below the (limit+1)-th newest message goes; the
	// subquery is NULL (nothing deleted) while the inbox is within limit.
	r, err := tx.ExecContext(ctx, `DELETE FROM to_device_inbox WHERE user_id = $1 AND device_id = $2 AND stream_pos <=
		(SELECT stream_pos FROM to_device_inbox WHERE user_id = $1 AND device_id = $2 ORDER BY stream_pos DESC LIMIT 1 OFFSET $3)`,
		userID, deviceID, s.InboxLimit)
	if err != nil {
		return 0, fmt.Errorf("storage: trim the to-device inbox of %s/%s: %w", userID, deviceID, err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("storage: trim the to-device inbox of %s/%s: %w", userID, deviceID, err)
	}
	return n, nil
}

// ToDeviceMessages returns up to limit messages of the device's inbox with
// stream positions in (after, upto], in stream order.
func (db *DB) ToDeviceMessages(ctx context.Context, userID, deviceID string, after, upto int64, limit int) ([]ToDeviceMessage, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT stream_pos, sender, type, content FROM to_device_inbox
		WHERE user_id = $1 AND device_id = $2 AND stream_pos > $3 AND stream_pos <= $4
		ORDER BY stream_pos LIMIT $5`, userID, deviceID, after, upto, max(limit, 0))
	if err != nil {
		return nil, fmt.Errorf("storage: to-device messages of %s/%s: %w", userID, deviceID, err)
	}
	defer rows.Close()
	var out []ToDeviceMessage
	for rows.Next() {
		var m ToDeviceMessage
		var content string
		if err := rows.Scan(&m.StreamPos, &m.Sender, &m.Type, &content); err != nil {
			return nil, fmt.Errorf("storage: scan to-device message: %w", err)
		}
		m.Content = json.RawMessage(content)
		out = append(out, m)
	}
	return out, rows.Err()
}

// DeleteToDevice deletes the device's messages at or below stream position
// acked (the client has received them). It writes nothing when there is
// nothing to delete, so calling it on every /sync costs one read.
func (db *DB) DeleteToDevice(ctx context.Context, userID, deviceID string, acked int64) error {
	var found sql.NullInt64
	if err := db.read.QueryRowContext(ctx, `SELECT MAX(stream_pos) FROM to_device_inbox
		WHERE user_id = $1 AND device_id = $2 AND stream_pos <= $3`, userID, deviceID, acked).Scan(&found); err != nil {
		return fmt.Errorf("storage: acknowledged to-device messages of %s/%s: %w", userID, deviceID, err)
	}
	if !found.Valid {
		return nil
	}
	return db.inTx(ctx, func(tx *Tx) error {
		var high sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(stream_pos) FROM to_device_inbox
			WHERE user_id = $1 AND device_id = $2 AND stream_pos <= $3`, userID, deviceID, acked).Scan(&high); err != nil {
			return fmt.Errorf("storage: acknowledged to-device messages of %s/%s: %w", userID, deviceID, err)
		}
		if !high.Valid {
			return nil // deleted meanwhile
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM to_device_inbox WHERE user_id = $1 AND device_id = $2 AND stream_pos <= $3`,
			userID, deviceID, high.Int64); err != nil {
			return fmt.Errorf("storage: delete to-device messages of %s/%s: %w", userID, deviceID, err)
		}
		return keepDeletedPos(ctx, tx, userID, high.Int64)
	})
}

// keepDeletedPos records that the user's to-device messages up to pos were
// deleted, so that the stream never hands pos out again (see the
// to_device_deleted table).
func keepDeletedPos(ctx context.Context, tx *Tx, userID string, pos int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO to_device_deleted (user_id, stream_pos) VALUES ($1, $2)
		ON CONFLICT (user_id) DO UPDATE SET stream_pos = excluded.stream_pos
		WHERE to_device_deleted.stream_pos < excluded.stream_pos`, userID, pos)
	if err != nil {
		return fmt.Errorf("storage: record deleted to-device position of %s: %w", userID, err)
	}
	return nil
}

// dropDeletedDeviceInboxes deletes the to-device inboxes and transaction
// IDs of the user's devices that no longer exist. The functions deleting
// devices (devices.go) call it in their transaction, after the delete.
func dropDeletedDeviceInboxes(ctx context.Context, tx *Tx, userID string) error {
	const gone = ` WHERE user_id = $1 AND NOT EXISTS
		(SELECT 1 FROM devices d WHERE d.user_id = $1 AND d.device_id = t.device_id)`
	var high sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(stream_pos) FROM to_device_inbox t`+gone, userID).Scan(&high); err != nil {
		return fmt.Errorf("storage: to-device inboxes of deleted devices of %s: %w", userID, err)
	}
	for _, table := range []string{"to_device_inbox", "to_device_txns"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` AS t`+gone, userID); err != nil {
			return fmt.Errorf("storage: delete %s of deleted devices of %s: %w", table, userID, err)
		}
	}
	if !high.Valid {
		return nil
	}
	return keepDeletedPos(ctx, tx, userID, high.Int64)
}
