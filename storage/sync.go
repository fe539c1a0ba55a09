package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Queries that /sync needs beyond the ones the room endpoints share.

// StateChanges returns the room's state as it was right after the event at
// depth at, keeping only entries set after depth after (0: the whole
// state). Member events are kept only for the users in members, or all of
// them when allMembers is true. Events come ordered by type and state key.
func (db *DB) StateChanges(ctx context.Context, roomID string, after, at int64, members []string, allMembers bool) ([]Event, error) {
	q := `SELECT ` + eventColumns + ` FROM room_state s JOIN events e ON e.event_id = s.event_id
		WHERE s.room_id = $1 AND s.from_depth > $2 AND s.from_depth <= $3 AND (s.to_depth IS NULL OR s.to_depth > $3)`
	args := []any{roomID, after, at}
	if !allMembers {
		if len(members) == 0 {
			q += ` AND s.type <> 'm.room.member'`
		} else {
			cond, arg := db.engine.anyOf("s.state_key", 4, members)
			q += ` AND (s.type <> 'm.room.member' OR ` + cond + `)`
			args = append(args, arg)
		}
	}
	return collectEvents(db.read.QueryContext(ctx, q+` ORDER BY s.type, s.state_key`, args...))
}

// MemberSummary is what /sync's room summary needs: how many members are
// joined and invited, and the first few members by the time of their
// current member event.
type MemberSummary struct {
	Joined, Invited int
	// First holds up to limit joined or invited members, by the order of
	// their member events; when there are none, the members who left or
	// were banned.
	First []string
}

// RoomMemberSummary counts the room's current members and lists the
// first ones (see MemberSummary), leaving out exclude, in one query: the
// counts are window aggregates over every member row, and the rows come
// joined and invited members first, then those who left or were banned,
// each by the order of their member events.
func (db *DB) RoomMemberSummary(ctx context.Context, roomID, exclude string, limit int) (MemberSummary, error) {
	var ms MemberSummary
	rows, err := db.read.QueryContext(ctx, `SELECT state_key, COALESCE(membership, ''),
			SUM(CASE WHEN membership = 'join' THEN 1 ELSE 0 END) OVER (),
			SUM(CASE WHEN membership = 'invite' THEN 1 ELSE 0 END) OVER ()
		FROM room_state WHERE room_id = $1 AND type = 'm.room.member' AND to_depth IS NULL
		ORDER BY CASE WHEN state_key = $2 THEN 2 WHEN membership IN ('join', 'invite') THEN 0 ELSE 1 END, from_depth
		LIMIT $3`, roomID, exclude, limit+1)
	if err != nil {
		return ms, fmt.Errorf("storage: member summary: %w", err)
	}
	defer rows.Close()
	var present, gone []string
	for rows.Next() {
		var u, m string
		if err := rows.Scan(&u, &m, &ms.Joined, &ms.Invited); err != nil {
			return ms, fmt.Errorf("storage: scan member summary: %w", err)
		}
		switch {
		case u == exclude:
		case m == "join" || m == "invite":
			present = append(present, u)
		case m == "leave" || m == "ban":
			gone = append(gone, u)
		}
	}
	if err := rows.Err(); err != nil {
		return ms, fmt.Errorf("storage: member summary: %w", err)
	}
	ms.First = present
	if len(present) == 0 {
		ms.First = gone
	}
	if len(ms.First) > limit {
		ms.First = ms.First[:limit]
	}
	return ms, nil
}

// TxnIDs returns the transaction IDs with which the device sent the given
// events, keyed by event ID (events it did not send are left out).
func (db *DB) TxnIDs(ctx context.Context, userID, deviceID string, eventIDs []string) (map[string]string, error) {
	out := map[string]string{}
	if len(eventIDs) == 0 {
		return out, nil
	}
	cond, arg := db.engine.anyOf("event_id", 3, eventIDs)
	rows, err := db.read.QueryContext(ctx, `SELECT event_id, txn_id FROM event_txns
		WHERE user_id = $1 AND device_id = $2 AND `+cond, userID, deviceID, arg)
	if err != nil {
		return nil, fmt.Errorf("storage: transaction IDs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ev, txn string
		if err := rows.Scan(&ev, &txn); err != nil {
			return nil, fmt.Errorf("storage: scan transaction ID: %w", err)
		}
		out[ev] = txn
	}
	return out, rows.Err()
}

// PushRulesPos returns the stream position of the user's last push-rule
// change, or 0 if they never changed them.
func (db *DB) PushRulesPos(ctx context.Context, userID string) (int64, error) {
	var pos int64
	err := db.read.QueryRowContext(ctx, `SELECT stream_pos FROM push_rules WHERE user_id = $1`, userID).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("storage: push rules position: %w", err)
	}
	return pos, nil
}
