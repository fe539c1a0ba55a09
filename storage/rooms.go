package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// NewRoom is a room being created together with its first events.
type NewRoom struct {
	RoomID  string
	Version string
	Creator string
	Alias   string // optional alias to reserve for the room
}

// NewEvent is an event to persist. JSON is stored exactly as given.
type NewEvent struct {
	EventID    string
	RoomID     string
	Type       string
	StateKey   *string
	Sender     string
	OriginTS   int64
	Depth      int64
	JSON       []byte
	Membership string // content.membership of m.room.member events

	// Txn, when UserID is set, records the transaction ID that created it.
	Txn Txn

	// Redacts and RedactedJSON, when set, replace the JSON of the redacted
	// event (in the same room) with its redacted form, and take it out of
	// the search index.
	Redacts      string
	RedactedJSON []byte
}

// txn is the client transaction that sent ev, nil when none.
func (ev *NewEvent) txn() *Txn {
	if ev.Txn.UserID == "" {
		return nil
	}
	return &ev.Txn
}

// ErrDuplicateTxn is returned by PersistEvents, which then stores nothing,
// when an event's transaction ID was used before: the client retried, and
// the event of the first attempt (TxnEvent) is the answer.
var ErrDuplicateTxn = errors.New("storage: duplicate transaction")

// Txn identifies a client transaction: PUT /send from one device.
type Txn struct {
	UserID   string
	DeviceID string
	TxnID    string
}

// Event is a stored event.
type Event struct {
	StreamPos  int64
	Depth      int64
	EventID    string
	RoomID     string
	Type       string
	StateKey   *string
	Sender     string
	JSON       []byte
	RedactedBy string
}

// RoomInfo is what the room server needs to append to a room.
type RoomInfo struct {
	RoomID        string
	Version       string
	Creator       string
	LatestEventID string
	LatestDepth   int64
}

// PersistEvents stores events of one room, in order, in one transaction:
// it creates the room first when room is not nil, gives each event the
// next stream position, updates the state intervals, indexes the search
// text (search.go) and records transaction IDs. The caller (the room
// server) holds the room's lock, so depths follow the stored latest depth.
// It returns the stream positions.
func (db *DB) PersistEvents(ctx context.Context, room *NewRoom, events []NewEvent) ([]int64, error) {
	if len(events) == 0 {
		return nil, nil
	}
	if room == nil && len(events) == 1 && db.messages != nil && isMessage(events[0]) {
		pos, err := db.persistMessage(&events[0]) // eventbatch.go
		if err != nil {
			return nil, err
		}
		return []int64{pos}, nil
	}
	positions := make([]int64, 0, len(events))
	err := db.inTx(ctx, func(tx *Tx) error {
		positions = positions[:0]
		now := nowMS()
		if room != nil {
			if _, err := tx.ExecContext(ctx, `INSERT INTO rooms (room_id, room_version, creator, created_ts)
				VALUES ($1, $2, $3, $4)`, room.RoomID, room.Version, room.Creator, now); err != nil {
				if isUniqueViolation(err) {
					return ErrConflict
				}
				return fmt.Errorf("storage: create room %s: %w", room.RoomID, err)
			}
			if room.Alias != "" {
				if err := insertAlias(ctx, tx, room.Alias, room.RoomID, room.Creator, now); err != nil {
					return err
				}
			}
		}
		for _, ev := range events {
			pos, err := nextStreamPos(ctx, tx, eventChange(ev))
			if err != nil {
				return err
			}
			if err := db.engine.insertEvent(ctx, tx, pos, &ev, ev.txn(), now); err != nil {
				return insertEventError(&ev, err)
			}
			if ev.StateKey != nil {
				if err := updateState(ctx, tx, ev); err != nil {
					return err
				}
			}
			if ev.Redacts != "" && ev.RedactedJSON != nil {
				if _, err := tx.ExecContext(ctx, `UPDATE events SET json = $3, redacted_by = $2
					WHERE event_id = $1 AND room_id = $4`, ev.Redacts, ev.EventID, string(ev.RedactedJSON), ev.RoomID); err != nil {
					return fmt.Errorf("storage: redact %s: %w", ev.Redacts, err)
				}
				// The redacted form has no text to search.
				if _, err := tx.ExecContext(ctx, `DELETE FROM event_search
					WHERE rowid = (SELECT stream_pos FROM events WHERE event_id = $1 AND room_id = $2)`, ev.Redacts, ev.RoomID); err != nil {
					return fmt.Errorf("storage: unindex %s: %w", ev.Redacts, err)
				}
			}
			if err := recordRelations(ctx, tx, ev); err != nil { // relations.go
				return err
			}
			if ev.Type == "m.room.member" && ev.StateKey != nil && ev.Membership == "join" {
				if _, err := tx.ExecContext(ctx, `DELETE FROM forgotten_rooms WHERE user_id = $1 AND room_id = $2`,
					*ev.StateKey, ev.RoomID); err != nil {
					return fmt.Errorf("storage: unforget room: %w", err)
				}
			}
			positions = append(positions, pos)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return positions, nil
}

// eventChange is the Change that storing ev records for /sync.
func eventChange(ev NewEvent) Change {
	c := Change{Kind: ChangeEvent, RoomID: ev.RoomID, Txn: ev.Txn, Event: &Event{
		Depth: ev.Depth, EventID: ev.EventID, RoomID: ev.RoomID, Type: ev.Type,
		StateKey: ev.StateKey, Sender: ev.Sender, JSON: ev.JSON,
	}}
	if ev.Type == "m.room.member" && ev.StateKey != nil {
		c.UserID, c.Membership = *ev.StateKey, ev.Membership
	}
	return c
}

// updateState closes the interval of the state the event replaces and
// opens the event's own.
func updateState(ctx context.Context, tx *Tx, ev NewEvent) error {
	if _, err := tx.ExecContext(ctx, `UPDATE room_state SET to_depth = $4
		WHERE room_id = $1 AND type = $2 AND state_key = $3 AND to_depth IS NULL`,
		ev.RoomID, ev.Type, *ev.StateKey, ev.Depth); err != nil {
		return fmt.Errorf("storage: close state interval: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO room_state (room_id, type, state_key, event_id, membership, from_depth)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		ev.RoomID, ev.Type, *ev.StateKey, ev.EventID, nullString(ev.Membership), ev.Depth); err != nil {
		return fmt.Errorf("storage: open state interval: %w", err)
	}
	return nil
}

// Room returns a room's version and latest event, or ErrNotFound.
func (db *DB) Room(ctx context.Context, roomID string) (RoomInfo, error) {
	var r RoomInfo
	// The head is derived from the events (the newest by depth, found
	// through events_room_depth) rather than kept in a column that every
	// event would have to update.
	err := db.read.QueryRowContext(ctx, `SELECT r.room_id, r.room_version, r.creator,
		COALESCE((SELECT e.event_id FROM events e WHERE e.room_id = r.room_id ORDER BY e.depth DESC LIMIT 1), ''),
		COALESCE((SELECT MAX(e.depth) FROM events e WHERE e.room_id = r.room_id), 0)
		FROM rooms r WHERE r.room_id = $1`, roomID).Scan(&r.RoomID, &r.Version, &r.Creator, &r.LatestEventID, &r.LatestDepth)
	if errors.Is(err, sql.ErrNoRows) {
		return RoomInfo{}, ErrNotFound
	}
	if err != nil {
		return RoomInfo{}, fmt.Errorf("storage: room %s: %w", roomID, err)
	}
	return r, nil
}

const eventColumns = `e.stream_pos, e.depth, e.event_id, e.room_id, e.type, e.state_key, e.sender, e.json, e.redacted_by`

func scanEvent(s interface{ Scan(...any) error }) (Event, error) {
	var ev Event
	var sk, redactedBy sql.NullString
	var js string
	if err := s.Scan(&ev.StreamPos, &ev.Depth, &ev.EventID, &ev.RoomID, &ev.Type, &sk, &ev.Sender, &js, &redactedBy); err != nil {
		return Event{}, err
	}
	if sk.Valid {
		k := sk.String
		ev.StateKey = &k
	}
	ev.JSON, ev.RedactedBy = []byte(js), redactedBy.String
	return ev, nil
}

func collectEvents(rows *sql.Rows, err error) ([]Event, error) {
	if err != nil {
		return nil, fmt.Errorf("storage: query events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("storage: scan event: %w", err)
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}

// Event returns one event by ID, or ErrNotFound.
func (db *DB) Event(ctx context.Context, eventID string) (Event, error) {
	ev, err := scanEvent(db.read.QueryRowContext(ctx, `SELECT `+eventColumns+` FROM events e WHERE e.event_id = $1`, eventID))
	if errors.Is(err, sql.ErrNoRows) {
		return Event{}, ErrNotFound
	}
	if err != nil {
		return Event{}, fmt.Errorf("storage: event %s: %w", eventID, err)
	}
	return ev, nil
}

// CurrentState returns the room's current state events.
func (db *DB) CurrentState(ctx context.Context, roomID string) ([]Event, error) {
	return collectEvents(db.read.QueryContext(ctx, `SELECT `+eventColumns+`
		FROM room_state s JOIN events e ON e.event_id = s.event_id
		WHERE s.room_id = $1 AND s.to_depth IS NULL ORDER BY e.depth`, roomID))
}

// StateAt returns the room's state after the event at the given depth.
func (db *DB) StateAt(ctx context.Context, roomID string, depth int64) ([]Event, error) {
	return collectEvents(db.read.QueryContext(ctx, `SELECT `+eventColumns+`
		FROM room_state s JOIN events e ON e.event_id = s.event_id
		WHERE s.room_id = $1 AND s.from_depth <= $2 AND (s.to_depth IS NULL OR s.to_depth > $2)
		ORDER BY e.depth`, roomID, depth))
}

// StateEventAt returns one state event as it was after the event at depth
// (depth 0: current state), or ErrNotFound.
func (db *DB) StateEventAt(ctx context.Context, roomID, typ, stateKey string, depth int64) (Event, error) {
	q := `SELECT ` + eventColumns + ` FROM room_state s JOIN events e ON e.event_id = s.event_id
		WHERE s.room_id = $1 AND s.type = $2 AND s.state_key = $3 AND s.to_depth IS NULL`
	args := []any{roomID, typ, stateKey}
	if depth > 0 {
		q = `SELECT ` + eventColumns + ` FROM room_state s JOIN events e ON e.event_id = s.event_id
			WHERE s.room_id = $1 AND s.type = $2 AND s.state_key = $3 AND s.from_depth <= $4
			ORDER BY s.from_depth DESC LIMIT 1`
		args = append(args, depth)
	}
	ev, err := scanEvent(db.read.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Event{}, ErrNotFound
	}
	if err != nil {
		return Event{}, fmt.Errorf("storage: state event: %w", err)
	}
	return ev, nil
}

// RoomEvents returns up to limit events of a room with depth in the open
// interval (after, before), oldest first, or newest first when backwards.
// Use 0 for an open end: after=0 means from the start, before=0 means to the
// latest event.
func (db *DB) RoomEvents(ctx context.Context, roomID string, after, before int64, backwards bool, limit int) ([]Event, error) {
	var q strings.Builder
	q.WriteString(`SELECT ` + eventColumns + ` FROM events e WHERE e.room_id = $1 AND e.depth > $2`)
	args := []any{roomID, after}
	if before > 0 {
		q.WriteString(` AND e.depth < $3`)
		args = append(args, before)
	}
	if backwards {
		q.WriteString(` ORDER BY e.depth DESC`)
	} else {
		q.WriteString(` ORDER BY e.depth`)
	}
	fmt.Fprintf(&q, ` LIMIT $%d`, len(args)+1)
	args = append(args, max(limit, 0))
	return collectEvents(db.read.QueryContext(ctx, q.String(), args...))
}

// TxnEvent returns the event a transaction created, or ErrNotFound.
func (db *DB) TxnEvent(ctx context.Context, t Txn) (string, error) {
	var id string
	err := db.read.QueryRowContext(ctx, `SELECT event_id FROM event_txns WHERE user_id = $1 AND device_id = $2 AND txn_id = $3`,
		t.UserID, t.DeviceID, t.TxnID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("storage: transaction: %w", err)
	}
	return id, nil
}

// Membership is a user's current membership in one room.
type Membership struct {
	RoomID     string
	Membership string
	EventID    string
	Depth      int64
	StreamPos  int64 // the member event's stream position
}

// MembershipsOf returns the user's current membership in every room they
// have a member event in, except rooms they forgot.
func (db *DB) MembershipsOf(ctx context.Context, userID string) ([]Membership, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT s.room_id, s.membership, s.event_id, s.from_depth, e.stream_pos
		FROM room_state s JOIN events e ON e.event_id = s.event_id
		WHERE s.type = 'm.room.member' AND s.state_key = $1 AND s.to_depth IS NULL
		AND NOT EXISTS (SELECT 1 FROM forgotten_rooms f WHERE f.user_id = $1 AND f.room_id = s.room_id)
		ORDER BY s.room_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("storage: memberships of %s: %w", userID, err)
	}
	defer rows.Close()
	var out []Membership
	for rows.Next() {
		var m Membership
		var membership sql.NullString
		if err := rows.Scan(&m.RoomID, &membership, &m.EventID, &m.Depth, &m.StreamPos); err != nil {
			return nil, fmt.Errorf("storage: scan membership: %w", err)
		}
		m.Membership = membership.String
		out = append(out, m)
	}
	return out, rows.Err()
}

// ForgetRoom records that the user forgot the room.
func (db *DB) ForgetRoom(ctx context.Context, userID, roomID string) error {
	return db.inTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO forgotten_rooms (user_id, room_id) VALUES ($1, $2)
			ON CONFLICT (user_id, room_id) DO NOTHING`, userID, roomID)
		if err != nil {
			return fmt.Errorf("storage: forget room: %w", err)
		}
		tx.changes = append(tx.changes, Change{Kind: ChangeForget, UserID: userID, RoomID: roomID})
		return nil
	})
}

func nullStringPtr(s *string) sql.NullString {
	if s == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: *s, Valid: true}
}

// ErrAliasTaken is returned when a room alias is already in use.
var ErrAliasTaken = errors.New("storage: alias taken")

func insertAlias(ctx context.Context, tx *Tx, alias, roomID, creator string, now int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO room_aliases (alias, room_id, creator, created_ts) VALUES ($1, $2, $3, $4)`,
		alias, roomID, creator, now)
	if isUniqueViolation(err) {
		return ErrAliasTaken
	}
	if err != nil {
		return fmt.Errorf("storage: insert alias %s: %w", alias, err)
	}
	return nil
}

// AliasRoom returns the room an alias points to, or ErrNotFound.
func (db *DB) AliasRoom(ctx context.Context, alias string) (string, error) {
	var roomID string
	err := db.read.QueryRowContext(ctx, `SELECT room_id FROM room_aliases WHERE alias = $1`, alias).Scan(&roomID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("storage: alias %s: %w", alias, err)
	}
	return roomID, nil
}

// StateInterval is one value a (type, state_key) had over a range of depths.
type StateInterval struct {
	EventID    string
	Membership string
	FromDepth  int64
	ToDepth    int64 // 0: still current
	Content    []byte
}

// VisibilityIntervals returns, in one query, what history visibility
// checks need: every value the room's m.room.history_visibility and the
// user's m.room.member ever had, oldest first, with each event's JSON.
func (db *DB) VisibilityIntervals(ctx context.Context, roomID, userID string) (vis, mem []StateInterval, err error) {
	rows, err := db.read.QueryContext(ctx, `SELECT s.type, s.event_id, s.membership, s.from_depth, s.to_depth, e.json
		FROM room_state s JOIN events e ON e.event_id = s.event_id
		WHERE s.room_id = $1 AND ((s.type = 'm.room.history_visibility' AND s.state_key = '')
			OR (s.type = 'm.room.member' AND s.state_key = $2))
		ORDER BY s.from_depth`, roomID, userID)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: visibility intervals: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ string
		var si StateInterval
		var membership sql.NullString
		var to sql.NullInt64
		var js string
		if err := rows.Scan(&typ, &si.EventID, &membership, &si.FromDepth, &to, &js); err != nil {
			return nil, nil, fmt.Errorf("storage: scan visibility interval: %w", err)
		}
		si.Membership, si.ToDepth, si.Content = membership.String, to.Int64, []byte(js)
		if typ == "m.room.member" {
			mem = append(mem, si)
		} else {
			vis = append(vis, si)
		}
	}
	return vis, mem, rows.Err()
}

// RoomMembers returns the member events of a room after the event at depth
// (depth 0: now), ordered by user ID.
func (db *DB) RoomMembers(ctx context.Context, roomID string, depth int64) ([]Event, error) {
	if depth == 0 {
		return collectEvents(db.read.QueryContext(ctx, `SELECT `+eventColumns+`
			FROM room_state s JOIN events e ON e.event_id = s.event_id
			WHERE s.room_id = $1 AND s.type = 'm.room.member' AND s.to_depth IS NULL ORDER BY s.state_key`, roomID))
	}
	return collectEvents(db.read.QueryContext(ctx, `SELECT `+eventColumns+`
		FROM room_state s JOIN events e ON e.event_id = s.event_id
		WHERE s.room_id = $1 AND s.type = 'm.room.member' AND s.from_depth <= $2 AND (s.to_depth IS NULL OR s.to_depth > $2)
		ORDER BY s.state_key`, roomID, depth))
}

// EventsByID returns the stored events among ids, keyed by event ID; unknown
// IDs are left out.
func (db *DB) EventsByID(ctx context.Context, ids []string) (map[string]Event, error) {
	out := make(map[string]Event, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	cond, arg := db.engine.anyOf("e.event_id", 1, ids)
	evs, err := collectEvents(db.read.QueryContext(ctx, `SELECT `+eventColumns+` FROM events e WHERE `+cond, arg))
	if err != nil {
		return nil, err
	}
	for _, ev := range evs {
		out[ev.EventID] = ev
	}
	return out, nil
}

// StateEventsAt returns the state events of one type with the given state
// keys as they were after the event at depth (depth 0: current state).
// Keys without state are left out.
func (db *DB) StateEventsAt(ctx context.Context, roomID, typ string, stateKeys []string, depth int64) ([]Event, error) {
	if len(stateKeys) == 0 {
		return nil, nil
	}
	cond, arg := db.engine.anyOf("s.state_key", 3, stateKeys)
	q := `SELECT ` + eventColumns + ` FROM room_state s JOIN events e ON e.event_id = s.event_id
		WHERE s.room_id = $1 AND s.type = $2 AND ` + cond + ` AND s.to_depth IS NULL ORDER BY s.state_key`
	args := []any{roomID, typ, arg}
	if depth > 0 {
		q = `SELECT ` + eventColumns + ` FROM room_state s JOIN events e ON e.event_id = s.event_id
			WHERE s.room_id = $1 AND s.type = $2 AND ` + cond + ` AND s.from_depth <= $4 AND (s.to_depth IS NULL OR s.to_depth > $4)
			ORDER BY s.state_key`
		args = append(args, depth)
	}
	return collectEvents(db.read.QueryContext(ctx, q, args...))
}

// DepthAtStream returns the depth of the room's last event at or before the
// global stream position pos (0 if the room has none), which turns a /sync
// token into a place in the room's history. Within a room stream positions
// grow with depth, so the walk down the (room_id, depth) index stops at the
// first match, which for a recent token is at once.
func (db *DB) DepthAtStream(ctx context.Context, roomID string, pos int64) (int64, error) {
	var depth int64
	err := db.read.QueryRowContext(ctx, `SELECT depth FROM events WHERE room_id = $1 AND stream_pos <= $2
		ORDER BY depth DESC LIMIT 1`, roomID, pos).Scan(&depth)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("storage: depth at stream position %d: %w", pos, err)
	}
	return depth, nil
}

// Forgotten reports whether the user has forgotten the room (and not
// joined it again since).
func (db *DB) Forgotten(ctx context.Context, userID, roomID string) (bool, error) {
	var one int
	err := db.read.QueryRowContext(ctx, `SELECT 1 FROM forgotten_rooms WHERE user_id = $1 AND room_id = $2`,
		userID, roomID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("storage: forgotten room: %w", err)
	}
	return true, nil
}
