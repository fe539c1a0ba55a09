package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// AccountData is one account-data entry; RoomID is empty for global data.
type AccountData struct {
	RoomID    string
	Type      string
	Content   []byte
	StreamPos int64
}

// PutAccountData stores (replacing) one entry at a new stream position and
// returns that position.
func (db *DB) PutAccountData(ctx context.Context, userID, roomID, typ string, content []byte) (int64, error) {
	var pos int64
	err := db.inTx(ctx, func(tx *Tx) error {
		var err error
		if pos, err = nextStreamPos(ctx, tx, Change{Kind: ChangeAccountData, UserID: userID, RoomID: roomID, Type: typ}); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO account_data (user_id, room_id, type, content, stream_pos)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (user_id, room_id, type) DO UPDATE SET content = excluded.content, stream_pos = excluded.stream_pos`,
			userID, roomID, typ, string(content), pos)
		if err != nil {
			return fmt.Errorf("storage: put account data %s %s: %w", userID, typ, err)
		}
		return nil
	})
	return pos, err
}

// AccountData returns one entry's content, or ErrNotFound.
func (db *DB) AccountData(ctx context.Context, userID, roomID, typ string) ([]byte, error) {
	var content string
	err := db.read.QueryRowContext(ctx, `SELECT content FROM account_data WHERE user_id = $1 AND room_id = $2 AND type = $3`,
		userID, roomID, typ).Scan(&content)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: account data %s %s: %w", userID, typ, err)
	}
	return []byte(content), nil
}

// AccountDataSince returns the user's entries written after stream position
// since (all entries for since = 0), in stream order.
func (db *DB) AccountDataSince(ctx context.Context, userID string, since int64) ([]AccountData, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT room_id, type, content, stream_pos FROM account_data
		WHERE user_id = $1 AND stream_pos > $2 ORDER BY stream_pos`, userID, since)
	if err != nil {
		return nil, fmt.Errorf("storage: account data of %s: %w", userID, err)
	}
	defer rows.Close()
	var out []AccountData
	for rows.Next() {
		var a AccountData
		var content string
		if err := rows.Scan(&a.RoomID, &a.Type, &content, &a.StreamPos); err != nil {
			return nil, fmt.Errorf("storage: scan account data: %w", err)
		}
		a.Content = []byte(content)
		out = append(out, a)
	}
	return out, rows.Err()
}

// UpdateAccountData reads one entry, lets update change it and stores the
// result at a new stream position, in one transaction: concurrent updates
// of the same entry cannot lose each other's changes. current is nil when
// the entry does not exist. An error from update stores nothing.
func (db *DB) UpdateAccountData(ctx context.Context, userID, roomID, typ string, update func(current []byte) ([]byte, error)) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if err := db.engine.lockKey(ctx, tx, "account_data|"+userID+"|"+roomID+"|"+typ); err != nil {
			return err
		}
		pos, err := nextStreamPos(ctx, tx, Change{Kind: ChangeAccountData, UserID: userID, RoomID: roomID, Type: typ})
		if err != nil {
			return err
		}
		var current []byte
		var content string
		err = tx.QueryRowContext(ctx, `SELECT content FROM account_data WHERE user_id = $1 AND room_id = $2 AND type = $3`,
			userID, roomID, typ).Scan(&content)
		switch {
		case err == nil:
			current = []byte(content)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("storage: account data %s %s: %w", userID, typ, err)
		}
		next, err := update(current)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO account_data (user_id, room_id, type, content, stream_pos)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (user_id, room_id, type) DO UPDATE SET content = excluded.content, stream_pos = excluded.stream_pos`,
			userID, roomID, typ, string(next), pos)
		if err != nil {
			return fmt.Errorf("storage: put account data %s %s: %w", userID, typ, err)
		}
		return nil
	})
}
