package storage

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// relThread is the relation type of thread replies, which the threads
// table follows.
const relThread = "m.thread"

// relatesTo is the relation an event's content declares, if any.
type relatesTo struct {
	relType string
	parent  string
}

// parseRelation reads content."m.relates_to" from an event's JSON. Only
// relations with a non-empty string rel_type and event_id count (the spec
// ignores relations that do not match the schema); values holding a NUL
// are ignored too, as no event ID or relation type contains one and
// PostgreSQL refuses it in text.
func parseRelation(eventJSON []byte) (relatesTo, bool) {
	// Most events relate to none, and stored event JSON is canonical (no
	// key is escaped), so this spares the write path a parse.
	if !bytes.Contains(eventJSON, []byte(`"m.relates_to"`)) {
		return relatesTo{}, false
	}
	var ev struct {
		Content struct {
			RelatesTo json.RawMessage `json:"m.relates_to"`
		} `json:"content"`
	}
	if json.Unmarshal(eventJSON, &ev) != nil || len(ev.Content.RelatesTo) == 0 {
		return relatesTo{}, false
	}
	var rel struct {
		RelType any `json:"rel_type"`
		EventID any `json:"event_id"`
	}
	if json.Unmarshal(ev.Content.RelatesTo, &rel) != nil {
		return relatesTo{}, false
	}
	relType, ok1 := rel.RelType.(string)
	parent, ok2 := rel.EventID.(string)
	if !ok1 || !ok2 || relType == "" || parent == "" || strings.ContainsRune(relType+parent, 0) {
		return relatesTo{}, false
	}
	return relatesTo{relType: relType, parent: parent}, true
}

// recordRelations keeps event_relations and threads in step with one
// persisted event: it records the relation the event declares, and when
// the event redacts another, drops that event's relation (a redacted
// relation no longer counts) and moves its thread's latest reply back.
// PersistEvents calls it inside its transaction.
func recordRelations(ctx context.Context, tx *Tx, ev NewEvent) error {
	if rel, ok := parseRelation(ev.JSON); ok {
		if _, err := tx.ExecContext(ctx, `INSERT INTO event_relations (event_id, room_id, relates_to, rel_type, type, sender, depth)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			ev.EventID, ev.RoomID, rel.parent, rel.relType, ev.Type, ev.Sender, ev.Depth); err != nil {
			return fmt.Errorf("storage: record relation of %s: %w", ev.EventID, err)
		}
		if rel.relType == relThread {
			if _, err := tx.ExecContext(ctx, `INSERT INTO threads (room_id, root_id, latest_depth) VALUES ($1, $2, $3)
				ON CONFLICT (room_id, root_id) DO UPDATE SET latest_depth =
					CASE WHEN excluded.latest_depth > threads.latest_depth THEN excluded.latest_depth ELSE threads.latest_depth END`,
				ev.RoomID, rel.parent, ev.Depth); err != nil {
				return fmt.Errorf("storage: record thread of %s: %w", ev.EventID, err)
			}
		}
	}
	if ev.Redacts == "" || ev.RedactedJSON == nil {
		return nil
	}
	var parent, relType string
	err := tx.QueryRowContext(ctx, `DELETE FROM event_relations WHERE event_id = $1 AND room_id = $2 RETURNING relates_to, rel_type`,
		ev.Redacts, ev.RoomID).Scan(&parent, &relType)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage: drop relation of %s: %w", ev.Redacts, err)
	}
	if relType != relThread {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM threads WHERE room_id = $1 AND root_id = $2
		AND NOT EXISTS (SELECT 1 FROM event_relations r WHERE r.relates_to = $2 AND r.rel_type = 'm.thread' AND r.room_id = $1)`,
		ev.RoomID, parent); err != nil {
		return fmt.Errorf("storage: drop thread %s: %w", parent, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE threads SET latest_depth =
			(SELECT MAX(r.depth) FROM event_relations r WHERE r.relates_to = $2 AND r.rel_type = 'm.thread' AND r.room_id = $1)
		WHERE room_id = $1 AND root_id = $2`, ev.RoomID, parent); err != nil {
		return fmt.Errorf("storage: update thread %s: %w", parent, err)
	}
	return nil
}

// RelationsQuery selects the events that relate to one event, for
// GET /relations.
type RelationsQuery struct {
	RoomID    string
	EventID   string // the parent
	RelType   string // only children with this rel_type, if set
	EventType string // only children of this event type, if set
	// Levels is how many relations deep to follow: 1 for the direct
	// children only. With more, the filters apply at every level, so an
	// event related through a child that does not match is left out.
	Levels int
	// After and Before bound the children's depths (exclusive); 0 leaves
	// that end open.
	After, Before int64
	Backwards     bool // newest first; oldest first otherwise
	Limit         int
}

// Relations returns up to q.Limit events of q.RoomID that relate to
// q.EventID (directly, or through up to q.Levels relations), in depth
// order.
func (db *DB) Relations(ctx context.Context, q RelationsQuery) ([]Event, error) {
	var filter strings.Builder
	args := []any{q.EventID, q.RoomID}
	if q.RelType != "" {
		args = append(args, q.RelType)
		fmt.Fprintf(&filter, ` AND r.rel_type = $%d`, len(args))
	}
	if q.EventType != "" {
		args = append(args, q.EventType)
		fmt.Fprintf(&filter, ` AND r.type = $%d`, len(args))
	}
	// Direct children are bounded and ordered by event_relations.depth,
	// which the (relates_to, rel_type, depth) index serves; the walk
	// through several levels by the events' depth.
	col := "r.depth"
	if q.Levels > 1 {
		col = "e.depth"
	}
	var where strings.Builder
	args = append(args, q.After)
	fmt.Fprintf(&where, `%s > $%d`, col, len(args))
	if q.Before > 0 {
		args = append(args, q.Before)
		fmt.Fprintf(&where, ` AND %s < $%d`, col, len(args))
	}
	order := col
	if q.Backwards {
		order += ` DESC`
	}
	var query string
	if q.Levels <= 1 {
		query = `SELECT ` + eventColumns + ` FROM event_relations r JOIN events e ON e.event_id = r.event_id
			WHERE r.relates_to = $1 AND r.room_id = $2` + filter.String() + ` AND ` + where.String()
	} else {
		args = append(args, q.Levels)
		// Each event has one parent, so the walk down the tree meets
		// every event once; the level bound ends it.
		query = fmt.Sprintf(`WITH RECURSIVE related (event_id, level) AS (
				SELECT r.event_id, 1 FROM event_relations r
				WHERE r.relates_to = $1 AND r.room_id = $2%[1]s
				UNION ALL
				SELECT r.event_id, related.level + 1 FROM event_relations r JOIN related ON r.relates_to = related.event_id
				WHERE related.level < $%[2]d AND r.room_id = $2%[1]s
			)
			SELECT `+eventColumns+` FROM related JOIN events e ON e.event_id = related.event_id
			WHERE `+where.String(), filter.String(), len(args))
	}
	args = append(args, max(q.Limit, 0))
	query += fmt.Sprintf(` ORDER BY %s LIMIT $%d`, order, len(args))
	evs, err := collectEvents(db.read.QueryContext(ctx, query, args...))
	if err != nil {
		return nil, fmt.Errorf("storage: relations of %s: %w", q.EventID, err)
	}
	return evs, nil
}

// Child is an event that relates to another, as event_relations records
// it: enough to check its visibility and count it without its JSON.
type Child struct {
	EventID string
	Parent  string
	RelType string
	Type    string
	Sender  string
	Depth   int64
}

// Children returns the events of roomID that relate to one of parents with
// one of relTypes, oldest first.
func (db *DB) Children(ctx context.Context, roomID string, parents, relTypes []string) ([]Child, error) {
	if len(parents) == 0 || len(relTypes) == 0 {
		return nil, nil
	}
	parentCond, parentArg := db.engine.anyOf("r.relates_to", 2, parents)
	typeCond, typeArg := db.engine.anyOf("r.rel_type", 3, relTypes)
	rows, err := db.read.QueryContext(ctx, `SELECT r.event_id, r.relates_to, r.rel_type, r.type, r.sender, r.depth
		FROM event_relations r WHERE r.room_id = $1 AND `+parentCond+` AND `+typeCond+` ORDER BY r.depth`,
		roomID, parentArg, typeArg)
	if err != nil {
		return nil, fmt.Errorf("storage: children: %w", err)
	}
	defer rows.Close()
	var out []Child
	for rows.Next() {
		var c Child
		if err := rows.Scan(&c.EventID, &c.Parent, &c.RelType, &c.Type, &c.Sender, &c.Depth); err != nil {
			return nil, fmt.Errorf("storage: scan child: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Edit is an m.replace event with the event it replaces.
type Edit struct {
	Original string
	Event    Event
}

// Edits returns the m.replace events of roomID for the given originals
// that pass the spec's checks the database can make: the edit and the
// original are in the room, have the same sender and type, neither is a
// state event, the original is not redacted and is not an edit itself.
// (Whether the edit has m.new_content is for the caller to check.) Newest
// first by origin_server_ts, then by event ID, the spec's order for "most
// recent".
func (db *DB) Edits(ctx context.Context, roomID string, originals []string) ([]Edit, error) {
	if len(originals) == 0 {
		return nil, nil
	}
	cond, arg := db.engine.anyOf("r.relates_to", 2, originals)
	rows, err := db.read.QueryContext(ctx, `SELECT r.relates_to, `+eventColumns+`
		FROM event_relations r
		JOIN events e ON e.event_id = r.event_id
		JOIN events p ON p.event_id = r.relates_to
		WHERE r.room_id = $1 AND `+cond+` AND r.rel_type = 'm.replace'
			AND p.room_id = r.room_id AND e.sender = p.sender AND e.type = p.type
			AND e.state_key IS NULL AND p.state_key IS NULL AND p.redacted_by IS NULL
			AND NOT EXISTS (SELECT 1 FROM event_relations pr WHERE pr.event_id = p.event_id AND pr.rel_type = 'm.replace')
		ORDER BY e.origin_server_ts DESC, e.event_id DESC`, roomID, arg)
	if err != nil {
		return nil, fmt.Errorf("storage: edits: %w", err)
	}
	defer rows.Close()
	var out []Edit
	for rows.Next() {
		var ed Edit
		var sk, redactedBy sql.NullString
		var js string
		ev := &ed.Event
		if err := rows.Scan(&ed.Original, &ev.StreamPos, &ev.Depth, &ev.EventID, &ev.RoomID, &ev.Type, &sk, &ev.Sender, &js, &redactedBy); err != nil {
			return nil, fmt.Errorf("storage: scan edit: %w", err)
		}
		if sk.Valid {
			k := sk.String
			ev.StateKey = &k
		}
		ev.JSON, ev.RedactedBy = []byte(js), redactedBy.String
		out = append(out, ed)
	}
	return out, rows.Err()
}

// RelationOf returns the relation type and parent an event declares, as
// recorded (ErrNotFound if it declares none, or was redacted).
func (db *DB) RelationOf(ctx context.Context, eventID string) (relType, parent string, err error) {
	err = db.read.QueryRowContext(ctx, `SELECT rel_type, relates_to FROM event_relations WHERE event_id = $1`, eventID).Scan(&relType, &parent)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", ErrNotFound
	}
	if err != nil {
		return "", "", fmt.Errorf("storage: relation of %s: %w", eventID, err)
	}
	return relType, parent, nil
}

// Thread is one thread of a room: its root and the depth of its latest
// reply.
type Thread struct {
	RootID      string
	LatestDepth int64
}

// Threads returns up to limit threads of a room whose latest reply is at or
// before depth through (0: no bound), latest reply first. With
// participant set, only threads whose root or one of whose replies that
// user sent are returned.
func (db *DB) Threads(ctx context.Context, roomID string, through int64, participant string, limit int) ([]Thread, error) {
	q := `SELECT t.root_id, t.latest_depth FROM threads t WHERE t.room_id = $1`
	args := []any{roomID}
	if through > 0 {
		args = append(args, through)
		q += fmt.Sprintf(` AND t.latest_depth <= $%d`, len(args))
	}
	if participant != "" {
		args = append(args, participant)
		n := len(args)
		q += fmt.Sprintf(` AND (EXISTS (SELECT 1 FROM events e WHERE e.event_id = t.root_id AND e.room_id = t.room_id AND e.sender = $%d)
			OR EXISTS (SELECT 1 FROM event_relations r WHERE r.relates_to = t.root_id AND r.rel_type = 'm.thread'
				AND r.room_id = t.room_id AND r.sender = $%d))`, n, n)
	}
	args = append(args, max(limit, 0))
	q += fmt.Sprintf(` ORDER BY t.latest_depth DESC LIMIT $%d`, len(args))
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("storage: threads of %s: %w", roomID, err)
	}
	defer rows.Close()
	var out []Thread
	for rows.Next() {
		var t Thread
		if err := rows.Scan(&t.RootID, &t.LatestDepth); err != nil {
			return nil, fmt.Errorf("storage: scan thread: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
