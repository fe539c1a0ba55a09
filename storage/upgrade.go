package storage

import (
	"context"
	"fmt"
)

// MoveAliases points every alias of room from at room to, keeping each
// alias's creator (who may still delete it), in one statement. Used when a
// room is upgraded; moving no alias is not an error.
func (db *DB) MoveAliases(ctx context.Context, from, to string) error {
	if _, err := db.write.ExecContext(ctx, `UPDATE room_aliases SET room_id = $2 WHERE room_id = $1`, from, to); err != nil {
		return fmt.Errorf("storage: move aliases of %s to %s: %w", from, to, err)
	}
	return nil
}
