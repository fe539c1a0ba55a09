package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// LatestEventOfTypes returns the stream position of the room's latest
// event of one of the given types (simplified sliding sync's bump stamp),
// or 0 when it has none. It walks the room's events newest first, which
// the (room_id, depth) index answers without reading the whole room when
// such an event is recent.
func (db *DB) LatestEventOfTypes(ctx context.Context, roomID string, types []string) (int64, error) {
	cond, arg := db.engine.anyOf("e.type", 2, types)
	var pos int64
	err := db.read.QueryRowContext(ctx, `SELECT e.stream_pos FROM events e WHERE e.room_id = $1 AND `+cond+`
		ORDER BY e.depth DESC LIMIT 1`, roomID, arg).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("storage: latest event of %s: %w", roomID, err)
	}
	return pos, nil
}
