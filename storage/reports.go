package storage

import (
	"context"
	"database/sql"
	"fmt"
)

// Report is a user's report of an event (EventID set) or of a whole room.
type Report struct {
	ID         int64
	RoomID     string
	EventID    string
	Reporter   string
	Reason     string
	Score      *int64
	ReceivedTS int64
}

// AddReport stores a report.
func (db *DB) AddReport(ctx context.Context, r Report) error {
	var score sql.NullInt64
	if r.Score != nil {
		score = sql.NullInt64{Int64: *r.Score, Valid: true}
	}
	_, err := db.write.ExecContext(ctx, `INSERT INTO reports (room_id, event_id, reporter, reason, score, received_ts)
		VALUES ($1, $2, $3, $4, $5, $6)`, r.RoomID, nullString(r.EventID), r.Reporter, nullString(r.Reason), score, nowMS())
	if err != nil {
		return fmt.Errorf("storage: add report: %w", err)
	}
	return nil
}

// Reports lists reports newest first, at most limit of them.
func (db *DB) Reports(ctx context.Context, limit int) ([]Report, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, room_id, event_id, reporter, reason, score, received_ts
		FROM reports ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("storage: reports: %w", err)
	}
	defer rows.Close()
	var out []Report
	for rows.Next() {
		var r Report
		var ev, reason sql.NullString
		var score sql.NullInt64
		if err := rows.Scan(&r.ID, &r.RoomID, &ev, &r.Reporter, &reason, &score, &r.ReceivedTS); err != nil {
			return nil, fmt.Errorf("storage: scan report: %w", err)
		}
		r.EventID, r.Reason = ev.String, reason.String
		if score.Valid {
			s := score.Int64
			r.Score = &s
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
