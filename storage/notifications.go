package storage

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// GET /notifications keeps no table: push evaluates the user's rules on the
// events of their rooms when asked (push/notifications.go). These are the
// two reads it needs.

// MemberIntervals returns every membership the user had in each of the
// given rooms, oldest first, with each member event's JSON (for the display
// name). Rooms without a member event of the user are left out.
func (db *DB) MemberIntervals(ctx context.Context, userID string, roomIDs []string) (map[string][]StateInterval, error) {
	out := make(map[string][]StateInterval, len(roomIDs))
	if len(roomIDs) == 0 {
		return out, nil
	}
	cond, arg := db.engine.anyOf("s.room_id", 2, roomIDs)
	rows, err := db.read.QueryContext(ctx, `SELECT s.room_id, s.event_id, s.membership, s.from_depth, s.to_depth, e.json
		FROM room_state s JOIN events e ON e.event_id = s.event_id
		WHERE s.type = 'm.room.member' AND s.state_key = $1 AND `+cond+`
		ORDER BY s.room_id, s.from_depth`, userID, arg)
	if err != nil {
		return nil, fmt.Errorf("storage: member intervals of %s: %w", userID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var roomID, js string
		var si StateInterval
		var membership sql.NullString
		var to sql.NullInt64
		if err := rows.Scan(&roomID, &si.EventID, &membership, &si.FromDepth, &to, &js); err != nil {
			return nil, fmt.Errorf("storage: scan member interval: %w", err)
		}
		si.Membership, si.ToDepth, si.Content = membership.String, to.Int64, []byte(js)
		out[roomID] = append(out[roomID], si)
	}
	return out, rows.Err()
}

// ScanRoom is one room of a NotificationScan, with the highest stream
// position to read in it (0: no bound; for rooms the user left, the
// position of their leave).
type ScanRoom struct {
	RoomID string
	Upto   int64
}

// ScannedEvent is an event with its origin_server_ts.
type ScannedEvent struct {
	Event
	TS int64
}

// NotificationScan returns up to limit events of the given rooms with a
// stream position below before that were not sent by userID, newest first
// (by stream position), in one query over all the rooms.
func (db *DB) NotificationScan(ctx context.Context, userID string, rooms []ScanRoom, before int64, limit int) ([]ScannedEvent, error) {
	if len(rooms) == 0 || limit <= 0 {
		return nil, nil
	}
	args := []any{userID, before, limit}
	var open []string
	var clauses []string
	for _, r := range rooms {
		if r.Upto <= 0 {
			open = append(open, r.RoomID)
			continue
		}
		args = append(args, r.RoomID, r.Upto)
		clauses = append(clauses, fmt.Sprintf("(e.room_id = $%d AND e.stream_pos <= $%d)", len(args)-1, len(args)))
	}
	if len(open) > 0 {
		cond, arg := db.engine.anyOf("e.room_id", len(args)+1, open)
		args = append(args, arg)
		clauses = append(clauses, cond)
	}
	q := `SELECT ` + eventColumns + `, e.origin_server_ts FROM events e
		WHERE e.sender <> $1 AND e.stream_pos < $2 AND (` + strings.Join(clauses, " OR ") + `)
		ORDER BY e.stream_pos DESC LIMIT $3`
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("storage: notification scan of %s: %w", userID, err)
	}
	defer rows.Close()
	var out []ScannedEvent
	for rows.Next() {
		var ev ScannedEvent
		var stateKey, redactedBy sql.NullString
		var js string
		if err := rows.Scan(&ev.StreamPos, &ev.Depth, &ev.EventID, &ev.RoomID, &ev.Type, &stateKey, &ev.Sender, &js, &redactedBy, &ev.TS); err != nil {
			return nil, fmt.Errorf("storage: scan event: %w", err)
		}
		if stateKey.Valid {
			ev.StateKey = &stateKey.String
		}
		ev.JSON, ev.RedactedBy = []byte(js), redactedBy.String
		out = append(out, ev)
	}
	return out, rows.Err()
}
