package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
)

// PutFilter stores a filter and returns its ID. Clients such as Element
// upload the same filter at every start, so an identical filter already
// stored for the user is reused instead of stored again.
func (db *DB) PutFilter(ctx context.Context, userID string, filterJSON []byte) (string, error) {
	// Two concurrent calls for one user can pick the same next ID on
	// PostgreSQL; the loser's insert violates the primary key and is retried.
	for attempt := 1; ; attempt++ {
		id, err := db.putFilter(ctx, userID, filterJSON)
		if err == nil || !isUniqueViolation(err) || attempt == 20 {
			return id, err
		}
	}
}

func (db *DB) putFilter(ctx context.Context, userID string, filterJSON []byte) (string, error) {
	var id int64
	err := db.inTx(ctx, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT filter_id FROM filters WHERE user_id = $1 AND filter_json = $2`,
			userID, string(filterJSON)).Scan(&id)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("storage: find filter: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(filter_id) + 1, 0) FROM filters WHERE user_id = $1`,
			userID).Scan(&id); err != nil {
			return fmt.Errorf("storage: next filter id: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO filters (user_id, filter_id, filter_json) VALUES ($1, $2, $3)`,
			userID, id, string(filterJSON)); err != nil {
			return fmt.Errorf("storage: insert filter: %w", err)
		}
		return nil
	})
	return strconv.FormatInt(id, 10), err
}

// Filter returns a stored filter, or ErrNotFound.
func (db *DB) Filter(ctx context.Context, userID, filterID string) ([]byte, error) {
	id, err := strconv.ParseInt(filterID, 10, 64)
	if err != nil || strconv.FormatInt(id, 10) != filterID { // "01" and "+1" are not IDs we gave out
		return nil, ErrNotFound
	}
	var f string
	err = db.read.QueryRowContext(ctx, `SELECT filter_json FROM filters WHERE user_id = $1 AND filter_id = $2`,
		userID, id).Scan(&f)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: filter: %w", err)
	}
	return []byte(f), nil
}
