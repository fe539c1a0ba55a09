package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Receipt types stored in the receipts table. Only ReceiptRead is public:
// every query that returns receipts to anyone but their owner keeps to it.
const (
	ReceiptRead        = "m.read"
	ReceiptReadPrivate = "m.read.private"
)

// NewReceipt is a receipt to store.
type NewReceipt struct {
	RoomID     string
	UserID     string
	Type       string // ReceiptRead or ReceiptReadPrivate
	ThreadID   string // "" for an unthreaded receipt, else "main" or a thread root's event ID
	EventID    string
	EventDepth int64 // the event's depth in the room
	TS         int64 // when the server received the receipt, in milliseconds
}

// Receipt is a stored receipt.
type Receipt struct {
	RoomID    string
	UserID    string
	Type      string
	ThreadID  string // "" for an unthreaded receipt
	EventID   string
	TS        int64
	StreamPos int64
}

// errReceiptNotNewer rolls back a receipt that would not move forwards.
var errReceiptNotNewer = errors.New("storage: receipt not newer")

// PutReceipt stores the user's receipt of its type and thread in the room,
// at a new stream position, which it returns. A receipt for the event the
// stored one points at, or for an earlier event (by depth), changes nothing
// and returns 0: receipts mark "read up to", so they only move forwards, as
// in Synapse.
func (db *DB) PutReceipt(ctx context.Context, r NewReceipt) (int64, error) {
	var pos int64
	err := db.inTx(ctx, func(tx *Tx) error {
		var err error
		stored := &Receipt{RoomID: r.RoomID, UserID: r.UserID, Type: r.Type, ThreadID: r.ThreadID, EventID: r.EventID, TS: r.TS}
		if pos, err = nextStreamPos(ctx, tx, Change{Kind: ChangeReceipt, RoomID: r.RoomID, UserID: r.UserID, Receipt: stored}); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO receipts
			(room_id, user_id, receipt_type, thread_id, event_id, event_depth, ts, stream_pos)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (room_id, user_id, receipt_type, thread_id) DO UPDATE SET
				event_id = excluded.event_id, event_depth = excluded.event_depth,
				ts = excluded.ts, stream_pos = excluded.stream_pos
			WHERE receipts.event_depth < excluded.event_depth`,
			r.RoomID, r.UserID, r.Type, r.ThreadID, r.EventID, r.EventDepth, r.TS, pos)
		if err != nil {
			return fmt.Errorf("storage: put receipt %s %s: %w", r.UserID, r.Type, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("storage: put receipt: %w", err)
		}
		if n == 0 {
			return errReceiptNotNewer // give the stream position back
		}
		return nil
	})
	if errors.Is(err, errReceiptNotNewer) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return pos, nil
}

const receiptColumns = `room_id, user_id, receipt_type, thread_id, event_id, ts, stream_pos`

// ReceiptsVisibleTo returns the receipts in the given rooms that changed
// after stream position since (all of them for since = 0) and that viewer
// may see: everyone's public m.read receipts and viewer's own receipts of
// every type. Other users' private receipts are never returned: the spec
// forbids sending an m.read.private receipt to anyone but its owner. The
// receipts come in stream order.
func (db *DB) ReceiptsVisibleTo(ctx context.Context, viewerID string, roomIDs []string, since int64) ([]Receipt, error) {
	if len(roomIDs) == 0 {
		return nil, nil
	}
	cond, arg := db.engine.anyOf("room_id", 1, roomIDs)
	return collectReceipts(db.read.QueryContext(ctx, `SELECT `+receiptColumns+` FROM receipts
		WHERE `+cond+` AND stream_pos > $2 AND (receipt_type = '`+ReceiptRead+`' OR user_id = $3)
		ORDER BY stream_pos`, arg, since, viewerID))
}

// OwnReceipts returns the user's own receipts in a room, public and
// private, of every thread (what notification counts start from).
func (db *DB) OwnReceipts(ctx context.Context, userID, roomID string) ([]Receipt, error) {
	return collectReceipts(db.read.QueryContext(ctx, `SELECT `+receiptColumns+` FROM receipts
		WHERE room_id = $1 AND user_id = $2 ORDER BY receipt_type, thread_id`, roomID, userID))
}

func collectReceipts(rows *sql.Rows, err error) ([]Receipt, error) {
	if err != nil {
		return nil, fmt.Errorf("storage: query receipts: %w", err)
	}
	defer rows.Close()
	var out []Receipt
	for rows.Next() {
		var r Receipt
		if err := rows.Scan(&r.RoomID, &r.UserID, &r.Type, &r.ThreadID, &r.EventID, &r.TS, &r.StreamPos); err != nil {
			return nil, fmt.Errorf("storage: scan receipt: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// HasThreadReplies reports whether the event has replies in a thread
// (m.thread relations) in the room, that is whether it is a thread root.
func (db *DB) HasThreadReplies(ctx context.Context, roomID, eventID string) (bool, error) {
	var one int
	err := db.read.QueryRowContext(ctx, `SELECT 1 FROM event_relations
		WHERE relates_to = $1 AND rel_type = 'm.thread' AND room_id = $2 LIMIT 1`, eventID, roomID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("storage: thread replies of %s: %w", eventID, err)
	}
	return true, nil
}
