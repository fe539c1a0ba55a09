package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "github.com/lib/pq"  // PostgreSQL driver
	_ "modernc.org/sqlite" // SQLite driver (pure Go)
)

// ErrNotFound is returned when a requested row does not exist.
var ErrNotFound = errors.New("storage: not found")

// ErrConflict is returned when a row that must be unique already exists.
var ErrConflict = errors.New("storage: conflict")

// DB is the database behind the server. SQLite gets one write connection
// (SQLite allows one writer at a time; queuing in Go beats spinning on
// SQLITE_BUSY) and a separate pool for reads; PostgreSQL uses one pool for both.
type DB struct {
	engine engine
	write  *pool
	read   *pool
	stream stream

	// messages stores messages in batches (eventbatch.go); PostgreSQL only.
	messages *messageWriter
}

// Open connects to the database named by dsn: "sqlite:PATH" or a
// "postgres://" / "postgresql://" URL (libpq key=value strings starting with
// "postgres:" are accepted too). It does not migrate; call Migrate.
func Open(ctx context.Context, dsn string) (*DB, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		return openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn)
	case strings.HasPrefix(dsn, "postgres:"):
		return openPostgres(ctx, strings.TrimPrefix(dsn, "postgres:"))
	}
	return nil, fmt.Errorf("storage: database %q: must start with sqlite: or postgres://", dsn)
}

// sqlitePragmas are applied to every SQLite connection. busy_timeout comes
// first so that switching to WAL waits for other connections instead of
// failing; WAL lets readers run beside the writer; synchronous=NORMAL is
// durable in WAL mode except on power loss of the last transactions;
// foreign_keys enforces the REFERENCES clauses.
var sqlitePragmas = []string{
	"busy_timeout(10000)",
	"journal_mode(WAL)",
	"synchronous(NORMAL)",
	"foreign_keys(on)",
}

// sqliteURIPath escapes the characters that end or change the path part of
// a SQLite "file:" URI; SQLite decodes %HH escapes in it.
var sqliteURIPath = strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23")

func openSQLite(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("storage: sqlite: empty path")
	}
	q := url.Values{}
	for _, p := range sqlitePragmas {
		q.Add("_pragma", p)
	}
	q.Set("_time_format", "sqlite")
	writeQ := url.Values{}
	for k, v := range q {
		writeQ[k] = v
	}
	writeQ.Set("_txlock", "immediate")
	uri := "file:" + sqliteURIPath.Replace(path)
	write, err := sql.Open("sqlite", uri+"?"+writeQ.Encode())
	if err != nil {
		return nil, fmt.Errorf("storage: open sqlite %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("storage: open sqlite %s: %w", path, err)
	}
	q.Add("_pragma", "query_only(on)")
	read, err := sql.Open("sqlite", uri+"?"+q.Encode())
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("storage: open sqlite %s: %w", path, err)
	}
	read.SetMaxOpenConns(8)
	read.SetMaxIdleConns(8)
	return &DB{engine: engineSQLite, write: newPool(write), read: newPool(read)}, nil
}

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return nil, fmt.Errorf("storage: open postgres: %w", err)
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32) // as many as may be open: a closed one costs PostgreSQL a new backend
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: connect postgres: %w", err)
	}
	var syncCommit string
	if err := db.QueryRowContext(ctx, `SHOW synchronous_commit`).Scan(&syncCommit); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: postgres: synchronous_commit: %w", err)
	}
	p := newPool(db)
	return &DB{engine: enginePostgres, write: p, read: p, messages: newMessageWriter(p, messageWriters(syncCommit))}, nil
}

// Engine returns "sqlite" or "postgres".
func (db *DB) Engine() string { return db.engine.String() }

// Close closes all connections.
func (db *DB) Close() error {
	if db.messages != nil {
		db.messages.close()
	}
	err := db.write.Close()
	if db.read != db.write {
		err = errors.Join(err, db.read.Close())
	}
	return err
}

// Queries returns how many statements and write transactions the server
// has run against the database since it opened it (statements inside a
// transaction count with it). Tests use it to check that a path runs no
// SQL.
func (db *DB) Queries() int64 {
	n := db.write.queries.Load()
	if db.read != db.write {
		n += db.read.queries.Load()
	}
	return n
}

// inTx runs fn in one write transaction, committing if fn returns nil.
func (db *DB) inTx(ctx context.Context, fn func(tx *Tx) error) error {
	db.write.queries.Add(1)
	sqlTx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("storage: begin: %w", err)
	}
	tx := &Tx{Tx: sqlTx, p: db.write, stream: &db.stream}
	defer tx.prepareMissing(context.WithoutCancel(ctx))
	if err := fn(tx); err != nil {
		tx.Rollback()
		db.stream.finish(tx.positions, false, nil)
		return err
	}
	err = tx.Commit()
	db.stream.finish(tx.positions, err == nil, tx.changes)
	if err != nil {
		return fmt.Errorf("storage: commit: %w", err)
	}
	return nil
}

// nextStreamPos takes the next position of the global stream for a row
// written in tx (see stream.go), and records the change for /sync
// (changes.go) with that position. It never fails; the error keeps the
// callers' shape.
func nextStreamPos(_ context.Context, tx *Tx, c Change) (int64, error) {
	pos := tx.stream.next()
	tx.positions = append(tx.positions, pos)
	c.Pos = pos
	if c.Event != nil {
		c.Event.StreamPos = pos
	}
	if c.Receipt != nil {
		c.Receipt.StreamPos = pos
	}
	if c.Presence != nil {
		c.Presence.StreamPos = pos
	}
	tx.changes = append(tx.changes, c)
	return pos, nil
}

// StreamPosition returns the position of the global stream up to which
// every write has finished: a reader that has seen everything up to it
// will never find a row at or below it later.
func (db *DB) StreamPosition(ctx context.Context) (int64, error) {
	return db.stream.position(), nil
}

// nowMS is the current time in milliseconds since the epoch, the unit of
// every timestamp column.
func nowMS() int64 { return time.Now().UnixMilli() }
