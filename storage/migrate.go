package storage

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed schema
var schemaFS embed.FS

// migration is one numbered schema file.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the engine's embedded migrations in version order.
func migrations(e engine) ([]migration, error) {
	entries, err := fs.ReadDir(schemaFS, e.schemaDir())
	if err != nil {
		return nil, fmt.Errorf("storage: read schema: %w", err)
	}
	var ms []migration
	for _, ent := range entries {
		name := ent.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("storage: schema file %s: name must be NNNN_name.sql", name)
		}
		body, err := fs.ReadFile(schemaFS, path.Join(e.schemaDir(), name))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// SchemaVersion returns the newest schema version this binary knows.
func (db *DB) SchemaVersion() int {
	ms, err := migrations(db.engine)
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// Migrate applies every embedded migration the database does not have yet,
// each in its own transaction. It refuses a database whose schema is newer
// than this binary, so that an older binary never writes to it.
func (db *DB) Migrate(ctx context.Context) error {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_ts BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("storage: create schema_migrations: %w", err)
	}
	ms, err := migrations(db.engine)
	if err != nil {
		return err
	}
	applied := map[int]bool{}
	rows, err := db.write.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("storage: read schema versions: %w", err)
	}
	current := 0
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("storage: read schema versions: %w", err)
		}
		applied[v] = true
		current = max(current, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("storage: read schema versions: %w", err)
	}
	if latest := db.SchemaVersion(); current > latest {
		return fmt.Errorf("storage: the database has schema version %d but this aula knows only up to %d: run a newer aula", current, latest)
	}
	// Every migration the database lacks is applied, in order, even one
	// numbered below the newest applied (a branch that added it late).
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		err := db.inTx(ctx, func(tx *Tx) error {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("storage: migration %s: %w", m.name, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_ts) VALUES ($1, $2, $3)`, m.version, m.name, nowMS())
			return err
		})
		if err != nil {
			return err
		}
	}
	// The stream continues after the highest position stored.
	return db.stream.init(ctx, db)
}
