package storage

import "context"

// EventsSentBy returns up to limit events userID sent, oldest first, after
// stream position after: one page of a data export (admin/export.go).
// There is no index on the sender, since only exports ask: each page is a
// scan of the events table.
func (db *DB) EventsSentBy(ctx context.Context, userID string, after int64, limit int) ([]Event, error) {
	return collectEvents(db.read.QueryContext(ctx, `SELECT `+eventColumns+` FROM events e
		WHERE e.sender = $1 AND e.stream_pos > $2 ORDER BY e.stream_pos LIMIT $3`, userID, after, limit))
}
