package storage

import (
	"context"
	"fmt"
)

// EventsAroundTS returns up to limit events of a room starting from the
// first event at or after ts (forwards, oldest first), or from the last
// event at or before ts (backwards, newest first).
func (db *DB) EventsAroundTS(ctx context.Context, roomID string, ts int64, backwards bool, limit int) ([]Event, error) {
	q := `SELECT ` + eventColumns + ` FROM events e WHERE e.room_id = $1 AND e.origin_server_ts >= $2 ORDER BY e.depth LIMIT $3`
	if backwards {
		q = `SELECT ` + eventColumns + ` FROM events e WHERE e.room_id = $1 AND e.origin_server_ts <= $2 ORDER BY e.depth DESC LIMIT $3`
	}
	evs, err := collectEvents(db.read.QueryContext(ctx, q, roomID, ts, limit))
	if err != nil {
		return nil, fmt.Errorf("storage: events around %d: %w", ts, err)
	}
	return evs, nil
}
