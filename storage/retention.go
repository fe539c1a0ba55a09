package storage

import (
	"context"
	"database/sql"
	"fmt"
)

// RoomIDs returns the ID of every room, in order.
func (db *DB) RoomIDs(ctx context.Context) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT room_id FROM rooms ORDER BY room_id`)
	if err != nil {
		return nil, fmt.Errorf("storage: room IDs: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("storage: scan room ID: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// RetentionBatch returns the next events retention removes from a room:
// up to limit non-state events, oldest first, that are older than before
// (ms) and not redacted yet, past the depth the room was purged to. upto
// is the depth the room counts as purged to once they are rewritten (pass
// it to RewriteEvents); 0 when there is nothing new to purge. The walk stops at the first event, state or not,
// that is not old enough yet, so that events of one room are purged in
// order even when clocks went backwards. State events are never returned:
// the room's current state, and the history of its state, stay.
func (db *DB) RetentionBatch(ctx context.Context, roomID string, before int64, limit int) (evs []Event, upto int64, err error) {
	var done int64
	err = db.read.QueryRowContext(ctx, `SELECT COALESCE((SELECT purged_depth FROM event_rewrites WHERE room_id = $1), 0)`, roomID).Scan(&done)
	if err != nil {
		return nil, 0, fmt.Errorf("storage: retention progress of %s: %w", roomID, err)
	}
	// The first event not old enough, or one past the latest event.
	var young sql.NullInt64
	err = db.read.QueryRowContext(ctx, `SELECT MIN(depth) FROM events WHERE room_id = $1 AND depth > $2 AND origin_server_ts >= $3`,
		roomID, done, before).Scan(&young)
	if err != nil {
		return nil, 0, fmt.Errorf("storage: retention limit of %s: %w", roomID, err)
	}
	stop := young.Int64
	if !young.Valid {
		if err := db.read.QueryRowContext(ctx, `SELECT COALESCE(MAX(depth), 0) + 1 FROM events WHERE room_id = $1`, roomID).Scan(&stop); err != nil {
			return nil, 0, fmt.Errorf("storage: latest depth of %s: %w", roomID, err)
		}
	}
	if stop-1 <= done {
		return nil, 0, nil
	}
	evs, err = collectEvents(db.read.QueryContext(ctx, `SELECT `+eventColumns+` FROM events e
		WHERE e.room_id = $1 AND e.depth > $2 AND e.depth < $3 AND e.state_key IS NULL AND e.redacted_by IS NULL
		ORDER BY e.depth LIMIT $4`, roomID, done, stop, limit))
	if err != nil {
		return nil, 0, err
	}
	upto = stop - 1
	if len(evs) == limit {
		upto = evs[len(evs)-1].Depth
	}
	return evs, upto, nil
}
