package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Presence states (spec: m.presence).
const (
	PresenceOnline      = "online"
	PresenceUnavailable = "unavailable"
	PresenceOffline     = "offline"
)

// Presence is a user's stored presence: what other users were last told.
type Presence struct {
	UserID          string
	State           string // PresenceOnline, PresenceUnavailable or PresenceOffline
	StatusMsg       string // "" for none
	LastActiveTS    int64  // milliseconds; 0 if never active
	CurrentlyActive bool
	StreamPos       int64
}

// SetPresence stores the user's presence at a new stream position, which
// it returns, and tells /sync (ChangePresence). Call it only for a change
// others must hear about (state, status message or currently_active):
// every call wakes the syncs of everyone sharing a room with the user. The
// stored last_active_ts never moves backwards.
func (db *DB) SetPresence(ctx context.Context, p Presence) (int64, error) {
	var pos int64
	err := db.inTx(ctx, func(tx *Tx) error {
		var err error
		stored := p
		if pos, err = nextStreamPos(ctx, tx, Change{Kind: ChangePresence, UserID: p.UserID, Presence: &stored}); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO presence
			(user_id, state, status_msg, last_active_ts, currently_active, stream_pos)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (user_id) DO UPDATE SET
				state = excluded.state, status_msg = excluded.status_msg,
				last_active_ts = CASE WHEN excluded.last_active_ts > presence.last_active_ts
					THEN excluded.last_active_ts ELSE presence.last_active_ts END,
				currently_active = excluded.currently_active, stream_pos = excluded.stream_pos`,
			p.UserID, p.State, p.StatusMsg, p.LastActiveTS, p.CurrentlyActive, pos)
		if err != nil {
			return fmt.Errorf("storage: set presence of %s: %w", p.UserID, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return pos, nil
}

// PresenceTouch is a newer last-active time of a user.
type PresenceTouch struct {
	UserID       string
	LastActiveTS int64
}

// TouchPresence records newer last-active times in one transaction,
// without a stream position: nobody is told, since last_active_ago is
// computed when presence is read. Users without a presence row, and times
// older than the stored one, are left alone.
func (db *DB) TouchPresence(ctx context.Context, touches []PresenceTouch) error {
	if len(touches) == 0 {
		return nil
	}
	return db.inTx(ctx, func(tx *Tx) error {
		for _, t := range touches {
			if _, err := tx.ExecContext(ctx, `UPDATE presence SET last_active_ts = $2
				WHERE user_id = $1 AND last_active_ts < $2`, t.UserID, t.LastActiveTS); err != nil {
				return fmt.Errorf("storage: touch presence of %s: %w", t.UserID, err)
			}
		}
		return nil
	})
}

const presenceColumns = `p.user_id, p.state, p.status_msg, p.last_active_ts, p.currently_active, p.stream_pos`

// UserPresence returns the user's stored presence, or ErrNotFound if it
// was never set (the user is offline).
func (db *DB) UserPresence(ctx context.Context, userID string) (Presence, error) {
	list, err := collectPresence(db.read.QueryContext(ctx, `SELECT `+presenceColumns+`
		FROM presence p WHERE p.user_id = $1`, userID))
	if err != nil {
		return Presence{}, err
	}
	if len(list) == 0 {
		return Presence{}, ErrNotFound
	}
	return list[0], nil
}

// PresenceNotOffline returns every stored presence that is not offline:
// after a restart, the users whose syncs must be timed out again.
func (db *DB) PresenceNotOffline(ctx context.Context) ([]Presence, error) {
	return collectPresence(db.read.QueryContext(ctx, `SELECT `+presenceColumns+`
		FROM presence p WHERE p.state <> '`+PresenceOffline+`' ORDER BY p.user_id`))
}

// PresenceQuery selects the presence a user may see (PresenceVisibleTo).
type PresenceQuery struct {
	UserID string
	// Since and Upto bound the stream positions of the rows returned:
	// Since < stream_pos <= Upto. Since 0 returns everything.
	Since, Upto int64
	// IncludeOffline returns offline users too (an incremental sync must
	// hear that someone went offline; an initial sync need not).
	IncludeOffline bool
	// NewRooms are rooms the user joined after Since: the presence of
	// their other joined members is returned whatever its position (up
	// to Upto).
	NewRooms []string
}

// sharesJoinedRoom is the condition "p.user_id and the user in $1 are both
// joined to some room", on the current member rows of room_state.
const sharesJoinedRoom = `EXISTS (SELECT 1 FROM room_state theirs JOIN room_state mine ON mine.room_id = theirs.room_id
	WHERE theirs.type = 'm.room.member' AND theirs.state_key = p.user_id AND theirs.membership = 'join' AND theirs.to_depth IS NULL
	AND mine.type = 'm.room.member' AND mine.state_key = $1 AND mine.membership = 'join' AND mine.to_depth IS NULL)`

// PresenceVisibleTo returns, in one query and in stream order, the
// presence rows the query's user may see that changed in (Since, Upto]:
// their own and those of the users who share a joined room with them,
// plus the members of NewRooms whatever their position.
func (db *DB) PresenceVisibleTo(ctx context.Context, q PresenceQuery) ([]Presence, error) {
	changed := `p.stream_pos > $2 AND (p.user_id = $1 OR ` + sharesJoinedRoom + `)`
	args := []any{q.UserID, q.Since, q.Upto}
	if len(q.NewRooms) > 0 {
		cond, arg := db.engine.anyOf("c.room_id", 4, q.NewRooms)
		changed = `(` + changed + ` OR p.user_id <> $1 AND EXISTS (SELECT 1 FROM room_state c WHERE ` + cond + `
			AND c.type = 'm.room.member' AND c.state_key = p.user_id AND c.membership = 'join' AND c.to_depth IS NULL))`
		args = append(args, arg)
	}
	offline := ``
	if !q.IncludeOffline {
		offline = ` AND p.state <> '` + PresenceOffline + `'`
	}
	return collectPresence(db.read.QueryContext(ctx, `SELECT `+presenceColumns+` FROM presence p
		WHERE p.stream_pos <= $3`+offline+` AND `+changed+` ORDER BY p.stream_pos`, args...))
}

// ShareJoinedRoom reports whether both users are joined to some room.
func (db *DB) ShareJoinedRoom(ctx context.Context, a, b string) (bool, error) {
	var one int
	err := db.read.QueryRowContext(ctx, `SELECT 1 FROM room_state x JOIN room_state y ON y.room_id = x.room_id
		WHERE x.type = 'm.room.member' AND x.state_key = $1 AND x.membership = 'join' AND x.to_depth IS NULL
		AND y.type = 'm.room.member' AND y.state_key = $2 AND y.membership = 'join' AND y.to_depth IS NULL
		LIMIT 1`, a, b).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("storage: shared rooms of %s and %s: %w", a, b, err)
	}
	return true, nil
}

func collectPresence(rows *sql.Rows, err error) ([]Presence, error) {
	if err != nil {
		return nil, fmt.Errorf("storage: query presence: %w", err)
	}
	defer rows.Close()
	var out []Presence
	for rows.Next() {
		var p Presence
		if err := rows.Scan(&p.UserID, &p.State, &p.StatusMsg, &p.LastActiveTS, &p.CurrentlyActive, &p.StreamPos); err != nil {
			return nil, fmt.Errorf("storage: scan presence: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
