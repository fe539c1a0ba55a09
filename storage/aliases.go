package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// PutAlias points a new alias at a room; ErrAliasTaken if it exists.
func (db *DB) PutAlias(ctx context.Context, alias, roomID, creator string) error {
	return db.inTx(ctx, func(tx *Tx) error {
		return insertAlias(ctx, tx, alias, roomID, creator, nowMS())
	})
}

// AliasCreator returns who created an alias, or ErrNotFound.
func (db *DB) AliasCreator(ctx context.Context, alias string) (roomID, creator string, err error) {
	err = db.read.QueryRowContext(ctx, `SELECT room_id, creator FROM room_aliases WHERE alias = $1`, alias).Scan(&roomID, &creator)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", ErrNotFound
	}
	if err != nil {
		return "", "", fmt.Errorf("storage: alias %s: %w", alias, err)
	}
	return roomID, creator, nil
}

// DeleteAlias removes an alias; ErrNotFound if it does not exist.
func (db *DB) DeleteAlias(ctx context.Context, alias string) error {
	return db.execOne(ctx, `DELETE FROM room_aliases WHERE alias = $1`, alias)
}

// RoomAliases lists the local aliases of a room, sorted.
func (db *DB) RoomAliases(ctx context.Context, roomID string) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT alias FROM room_aliases WHERE room_id = $1 ORDER BY alias`, roomID)
	if err != nil {
		return nil, fmt.Errorf("storage: aliases of %s: %w", roomID, err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, fmt.Errorf("storage: scan alias: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
