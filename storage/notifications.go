package storage

import (
	"context"
	"fmt"
	"math"
	"strings"
)

// Notification is an entry of GET /notifications: an event that notified a
// user. Only these listed entries are stored, a bounded number per user;
// unread counts never read this table.
type Notification struct {
	ID        int64
	UserID    string
	RoomID    string
	EventID   string
	Depth     int64
	ThreadID  string
	TS        int64
	Highlight bool
	Actions   []byte // the matched rule's actions, JSON array
}

// AddNotifications stores notifications, in one statement per 100.
func (db *DB) AddNotifications(ctx context.Context, ns []Notification) error {
	if len(ns) == 0 {
		return nil
	}
	return db.inTx(ctx, func(tx *Tx) error {
		for len(ns) > 0 {
			batch := ns[:min(len(ns), 100)]
			ns = ns[len(batch):]
			var q strings.Builder
			q.WriteString(`INSERT INTO push_notifications (user_id, room_id, event_id, depth, thread_id, ts, highlight, actions) VALUES `)
			args := make([]any, 0, len(batch)*8)
			for i, n := range batch {
				if i > 0 {
					q.WriteByte(',')
				}
				b := i * 8
				fmt.Fprintf(&q, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d)", b+1, b+2, b+3, b+4, b+5, b+6, b+7, b+8)
				args = append(args, n.UserID, n.RoomID, n.EventID, n.Depth, n.ThreadID, n.TS, n.Highlight, string(n.Actions))
			}
			if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
				return fmt.Errorf("storage: add notifications: %w", err)
			}
		}
		return nil
	})
}

// Notifications returns up to limit of the user's notifications with an ID
// below before (0: from the newest), newest first; only highlights when
// onlyHighlight.
func (db *DB) Notifications(ctx context.Context, userID string, before int64, limit int, onlyHighlight bool) ([]Notification, error) {
	q := `SELECT id, user_id, room_id, event_id, depth, thread_id, ts, highlight, actions FROM push_notifications
		WHERE user_id = $1 AND id < $2`
	if before <= 0 {
		before = math.MaxInt64
	}
	args := []any{userID, before, limit}
	if onlyHighlight {
		q += ` AND highlight = $4`
		args = append(args, true)
	}
	q += ` ORDER BY id DESC LIMIT $3`
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("storage: notifications of %s: %w", userID, err)
	}
	defer rows.Close()
	var out []Notification
	for rows.Next() {
		var n Notification
		var actions string
		if err := rows.Scan(&n.ID, &n.UserID, &n.RoomID, &n.EventID, &n.Depth, &n.ThreadID, &n.TS, &n.Highlight, &actions); err != nil {
			return nil, fmt.Errorf("storage: scan notification: %w", err)
		}
		n.Actions = []byte(actions)
		out = append(out, n)
	}
	return out, rows.Err()
}

// PruneNotifications keeps each user's newest keep notifications and drops
// those older than beforeTS, returning how many it removed.
func (db *DB) PruneNotifications(ctx context.Context, keep int, beforeTS int64) (int64, error) {
	var n int64
	err := db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM push_notifications WHERE ts < $2 OR id IN (
			SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY id DESC) AS rn
				FROM push_notifications) ranked WHERE rn > $1)`, keep, beforeTS)
		if err != nil {
			return fmt.Errorf("storage: prune notifications: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}
