package storage

import (
	"context"
	"database/sql"
	"fmt"
)

// The queries of the spaces hierarchy and room summaries read many rooms at
// once: a space's children are loaded together, not one room at a time.

// RoomVersions returns the room version of each known room among roomIDs;
// unknown rooms are left out.
func (db *DB) RoomVersions(ctx context.Context, roomIDs []string) (map[string]string, error) {
	out := make(map[string]string, len(roomIDs))
	if len(roomIDs) == 0 {
		return out, nil
	}
	cond, arg := db.engine.anyOf("room_id", 1, roomIDs)
	rows, err := db.read.QueryContext(ctx, `SELECT room_id, room_version FROM rooms WHERE `+cond, arg)
	if err != nil {
		return nil, fmt.Errorf("storage: room versions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, version string
		if err := rows.Scan(&id, &version); err != nil {
			return nil, fmt.Errorf("storage: scan room version: %w", err)
		}
		out[id] = version
	}
	return out, rows.Err()
}

// CurrentStateOfTypes returns the current state events of the given types
// (any state key) of every room among roomIDs, in no particular order.
func (db *DB) CurrentStateOfTypes(ctx context.Context, roomIDs, types []string) ([]Event, error) {
	if len(roomIDs) == 0 || len(types) == 0 {
		return nil, nil
	}
	roomCond, roomArg := db.engine.anyOf("s.room_id", 1, roomIDs)
	typeCond, typeArg := db.engine.anyOf("s.type", 2, types)
	return collectEvents(db.read.QueryContext(ctx, `SELECT `+eventColumns+`
		FROM room_state s JOIN events e ON e.event_id = s.event_id
		WHERE `+roomCond+` AND `+typeCond+` AND s.to_depth IS NULL`, roomArg, typeArg))
}

// MembershipsIn returns the user's current membership in each room among
// roomIDs that they have a member event in.
func (db *DB) MembershipsIn(ctx context.Context, userID string, roomIDs []string) (map[string]string, error) {
	out := make(map[string]string, len(roomIDs))
	if len(roomIDs) == 0 {
		return out, nil
	}
	cond, arg := db.engine.anyOf("room_id", 2, roomIDs)
	rows, err := db.read.QueryContext(ctx, `SELECT room_id, membership FROM room_state
		WHERE type = 'm.room.member' AND state_key = $1 AND to_depth IS NULL AND `+cond, userID, arg)
	if err != nil {
		return nil, fmt.Errorf("storage: memberships of %s: %w", userID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var membership sql.NullString
		if err := rows.Scan(&id, &membership); err != nil {
			return nil, fmt.Errorf("storage: scan membership: %w", err)
		}
		out[id] = membership.String
	}
	return out, rows.Err()
}

// JoinedMemberCounts returns the number of joined members of each room
// among roomIDs; rooms without any are left out.
func (db *DB) JoinedMemberCounts(ctx context.Context, roomIDs []string) (map[string]int64, error) {
	out := make(map[string]int64, len(roomIDs))
	if len(roomIDs) == 0 {
		return out, nil
	}
	cond, arg := db.engine.anyOf("room_id", 1, roomIDs)
	rows, err := db.read.QueryContext(ctx, `SELECT room_id, COUNT(*) FROM room_state
		WHERE type = 'm.room.member' AND membership = 'join' AND to_depth IS NULL AND `+cond+`
		GROUP BY room_id`, arg)
	if err != nil {
		return nil, fmt.Errorf("storage: joined member counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("storage: scan joined member count: %w", err)
		}
		out[id] = n
	}
	return out, rows.Err()
}
