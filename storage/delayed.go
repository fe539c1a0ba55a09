package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// DelayedEvent is an event of MSC4140 waiting to be sent (delayed_events).
type DelayedEvent struct {
	DelayID   string
	UserID    string
	DeviceID  string
	RoomID    string
	Type      string
	StateKey  *string // nil for a message event
	Content   json.RawMessage
	TxnID     string // the client's transaction ID (with the request path); "" for state events
	DelayMS   int64
	SendTS    int64 // when it is sent, ms
	CreatedTS int64
}

// ErrDelayedLimit is returned by AddDelayedEvent when the user already has
// the most delayed events allowed.
var ErrDelayedLimit = errors.New("storage: too many delayed events")

const delayedColumns = `delay_id, user_id, device_id, room_id, type, state_key, content, txn_id, delay_ms, send_ts, created_ts`

// AddDelayedEvent stores e unless the user already has maxPerUser delayed
// events (ErrDelayedLimit). If e has a transaction ID that the same device
// already used for a waiting event, nothing is stored and that event's
// delay ID is returned; otherwise e.DelayID is.
func (db *DB) AddDelayedEvent(ctx context.Context, e DelayedEvent, maxPerUser int) (string, error) {
	id := e.DelayID
	err := db.inTx(ctx, func(tx *Tx) error {
		if e.TxnID != "" {
			var existing string
			err := tx.QueryRowContext(ctx, `SELECT delay_id FROM delayed_events WHERE user_id = $1 AND device_id = $2 AND txn_id = $3`,
				e.UserID, e.DeviceID, e.TxnID).Scan(&existing)
			if err == nil {
				id = existing
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("storage: delayed event txn: %w", err)
			}
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM delayed_events WHERE user_id = $1`, e.UserID).Scan(&n); err != nil {
			return fmt.Errorf("storage: count delayed events: %w", err)
		}
		if n >= maxPerUser {
			return ErrDelayedLimit
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO delayed_events (`+delayedColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			e.DelayID, e.UserID, e.DeviceID, e.RoomID, e.Type, e.StateKey, string(e.Content), nullString(e.TxnID),
			e.DelayMS, e.SendTS, e.CreatedTS)
		if err != nil {
			return fmt.Errorf("storage: add delayed event: %w", err)
		}
		return nil
	})
	return id, err
}

// DelayedEventsOf lists a user's waiting delayed events, soonest first.
func (db *DB) DelayedEventsOf(ctx context.Context, userID string) ([]DelayedEvent, error) {
	return db.queryDelayed(ctx, `SELECT `+delayedColumns+` FROM delayed_events WHERE user_id = $1 ORDER BY send_ts, delay_id`, userID)
}

// DueDelayedEvents lists at most limit delayed events due at nowTS, soonest
// first.
func (db *DB) DueDelayedEvents(ctx context.Context, nowTS int64, limit int) ([]DelayedEvent, error) {
	return db.queryDelayed(ctx, `SELECT `+delayedColumns+` FROM delayed_events WHERE send_ts <= $1 ORDER BY send_ts, delay_id LIMIT $2`, nowTS, limit)
}

// NextDelayedSendTS returns the earliest send_ts of all delayed events, and
// false if there are none.
func (db *DB) NextDelayedSendTS(ctx context.Context) (int64, bool, error) {
	var ts sql.NullInt64
	if err := db.read.QueryRowContext(ctx, `SELECT MIN(send_ts) FROM delayed_events`).Scan(&ts); err != nil {
		return 0, false, fmt.Errorf("storage: next delayed event: %w", err)
	}
	return ts.Int64, ts.Valid, nil
}

// RestartDelayedEvent moves a delayed event's send time to nowTS plus its
// delay. It reports false if there is no such event.
func (db *DB) RestartDelayedEvent(ctx context.Context, delayID string, nowTS int64) (bool, error) {
	res, err := db.write.ExecContext(ctx, `UPDATE delayed_events SET send_ts = $2 + delay_ms WHERE delay_id = $1`, delayID, nowTS)
	if err != nil {
		return false, fmt.Errorf("storage: restart delayed event: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("storage: restart delayed event: %w", err)
	}
	return n > 0, nil
}

// DelayedEventByID returns a delayed event, or nil if there is none.
func (db *DB) DelayedEventByID(ctx context.Context, delayID string) (*DelayedEvent, error) {
	list, err := db.queryDelayed(ctx, `SELECT `+delayedColumns+` FROM delayed_events WHERE delay_id = $1`, delayID)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	return &list[0], nil
}

// DeleteDelayedEvent removes a delayed event. It reports false if there
// was no such event (already sent or cancelled).
func (db *DB) DeleteDelayedEvent(ctx context.Context, delayID string) (bool, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM delayed_events WHERE delay_id = $1`, delayID)
	if err != nil {
		return false, fmt.Errorf("storage: delete delayed event: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("storage: delete delayed event: %w", err)
	}
	return n > 0, nil
}

func (db *DB) queryDelayed(ctx context.Context, query string, args ...any) ([]DelayedEvent, error) {
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("storage: delayed events: %w", err)
	}
	defer rows.Close()
	var out []DelayedEvent
	for rows.Next() {
		var e DelayedEvent
		var stateKey, txn sql.NullString
		var content string
		if err := rows.Scan(&e.DelayID, &e.UserID, &e.DeviceID, &e.RoomID, &e.Type, &stateKey, &content, &txn,
			&e.DelayMS, &e.SendTS, &e.CreatedTS); err != nil {
			return nil, fmt.Errorf("storage: scan delayed event: %w", err)
		}
		if stateKey.Valid {
			s := stateKey.String
			e.StateKey = &s
		}
		e.Content, e.TxnID = json.RawMessage(content), txn.String
		out = append(out, e)
	}
	return out, rows.Err()
}

// CancelDelayedState drops the delayed state events for (roomID, type,
// stateKey) of every user but exceptUser, whose state was just replaced,
// and reports how many there were.
func (db *DB) CancelDelayedState(ctx context.Context, roomID, eventType, stateKey, exceptUser string) (int64, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM delayed_events
		WHERE room_id = $1 AND type = $2 AND state_key = $3 AND user_id <> $4`, roomID, eventType, stateKey, exceptUser)
	if err != nil {
		return 0, fmt.Errorf("storage: cancel delayed state: %w", err)
	}
	return res.RowsAffected()
}
