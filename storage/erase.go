package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Rewrite is the new JSON of one stored event: its redacted form, written
// by erasure and retention (docs/privacy.md) in place of the original.
type Rewrite struct {
	EventID string
	JSON    []byte
}

// RewriteEvents replaces the stored JSON of events of one room, in one
// transaction: each event is taken out of the search index and loses the
// relation it declared (as a redaction does, relations.go). The rows stay,
// so pagination tokens, receipts, reports and the state intervals that
// point at them keep working. /sync's notifier is told to forget the
// copies of the room's recent events it holds in memory (a ChangeEvent
// without an event), so no reader is served an original again.
//
// progress, if above zero, records that retention has purged the room up
// to that depth (retention.go); it never moves back.
func (db *DB) RewriteEvents(ctx context.Context, roomID string, rw []Rewrite, progress int64) error {
	if len(rw) == 0 && progress <= 0 {
		return nil
	}
	return db.inTx(ctx, func(tx *Tx) error {
		for _, r := range rw {
			var pos int64
			err := tx.QueryRowContext(ctx, `UPDATE events SET json = $3 WHERE event_id = $1 AND room_id = $2 RETURNING stream_pos`,
				r.EventID, roomID, string(r.JSON)).Scan(&pos)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return fmt.Errorf("storage: rewrite %s: %w", r.EventID, err)
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM event_search WHERE rowid = $1`, pos); err != nil {
				return fmt.Errorf("storage: unindex %s: %w", r.EventID, err)
			}
			// The same bookkeeping as a redaction: the relation the event
			// declared no longer counts.
			if err := recordRelations(ctx, tx, NewEvent{RoomID: roomID, Redacts: r.EventID, RedactedJSON: r.JSON}); err != nil {
				return err
			}
		}
		// The row keeps the position taken, so a restart cannot hand it
		// out again (stream.go).
		var pos int64
		if len(rw) > 0 {
			var err error
			if pos, err = nextStreamPos(ctx, tx, Change{Kind: ChangeEvent, RoomID: roomID}); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO event_rewrites (room_id, stream_pos, purged_depth) VALUES ($1, $2, $3)
			ON CONFLICT (room_id) DO UPDATE SET
				stream_pos = CASE WHEN excluded.stream_pos > event_rewrites.stream_pos THEN excluded.stream_pos ELSE event_rewrites.stream_pos END,
				purged_depth = CASE WHEN excluded.purged_depth > event_rewrites.purged_depth THEN excluded.purged_depth ELSE event_rewrites.purged_depth END`,
			roomID, pos, max(progress, 0)); err != nil {
			return fmt.Errorf("storage: record rewrite of %s: %w", roomID, err)
		}
		return nil
	})
}

// ErasableEvents returns up to limit events, oldest first, after stream
// position after, that erasing userID rewrites: every non-state event they
// sent and every m.room.member event about them (an invitation by someone
// else carries their display name), except events redacted already. Other
// state events they sent (a room's create event, name, topic, power
// levels) belong to the room and stay.
func (db *DB) ErasableEvents(ctx context.Context, userID string, after int64, limit int) ([]Event, error) {
	return collectEvents(db.read.QueryContext(ctx, `SELECT `+eventColumns+` FROM events e
		WHERE e.stream_pos > $2 AND e.redacted_by IS NULL
		AND ((e.sender = $1 AND e.state_key IS NULL) OR (e.type = 'm.room.member' AND e.state_key = $1))
		ORDER BY e.stream_pos LIMIT $3`, userID, after, limit))
}

// MarkErased records that userID's data was erased; the account itself is
// deactivated separately (DeactivateUser). Their account data (global and
// per room), push rules and sync filters are deleted with it.
func (db *DB) MarkErased(ctx context.Context, userID string) error {
	return db.inTx(ctx, func(tx *Tx) error {
		// The row holds a stream position, so that deleting the account
		// data cannot delete the row with the highest one (stream.go).
		pos, err := nextStreamPos(ctx, tx, Change{Kind: ChangeAccountData, UserID: userID})
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO erased_users (user_id, erased_ts, stream_pos) VALUES ($1, $2, $3)
			ON CONFLICT (user_id) DO UPDATE SET stream_pos = excluded.stream_pos`, userID, nowMS(), pos); err != nil {
			return fmt.Errorf("storage: mark %s erased: %w", userID, err)
		}
		for _, q := range []string{
			`DELETE FROM account_data WHERE user_id = $1`,
			`DELETE FROM push_rules WHERE user_id = $1`,
			`DELETE FROM filters WHERE user_id = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, userID); err != nil {
				return fmt.Errorf("storage: erase account data of %s: %w", userID, err)
			}
		}
		return nil
	})
}

// IsErased reports whether userID's data was erased.
func (db *DB) IsErased(ctx context.Context, userID string) (bool, error) {
	var one int
	err := db.read.QueryRowContext(ctx, `SELECT 1 FROM erased_users WHERE user_id = $1`, userID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("storage: erased %s: %w", userID, err)
	}
	return true, nil
}

// ForgetIPAddresses removes every recorded client IP address from the
// device records: called at start-up when privacy.store_ip_addresses is
// off, so that turning it off also drops what was recorded while it was on.
func (db *DB) ForgetIPAddresses(ctx context.Context) error {
	if _, err := db.write.ExecContext(ctx, `UPDATE devices SET last_seen_ip = NULL WHERE last_seen_ip IS NOT NULL`); err != nil {
		return fmt.Errorf("storage: forget IP addresses: %w", err)
	}
	return nil
}
