package storage

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"sync/atomic"
)

// maxPrepared bounds the statement cache; queries beyond it run unprepared.
const maxPrepared = 512

// pool is a connection pool whose queries run as prepared statements,
// each query text prepared once per connection and then reused. Parsing SQL
// is a large share of a small query's cost (SQLite especially), and the
// hot paths run the same few texts over and over. Texts with a ";" (several
// statements, e.g. migrations) are never prepared.
type pool struct {
	*sql.DB
	stmts   sync.Map // query text → *sql.Stmt
	n       atomic.Int64
	queries atomic.Int64 // statements and transactions run, for Queries
}

func newPool(db *sql.DB) *pool { return &pool{DB: db} }

// cached returns the statement for query if it has been prepared.
func (p *pool) cached(query string) *sql.Stmt {
	if st, ok := p.stmts.Load(query); ok {
		return st.(*sql.Stmt)
	}
	return nil
}

// prepared returns the cached statement for query, preparing it on first
// use, or nil when the query should run unprepared. Preparing takes a
// connection of its own, so it must not be called while holding one (in a
// transaction): with SQLite's single write connection that would wait
// forever.
func (p *pool) prepared(ctx context.Context, query string) *sql.Stmt {
	if st := p.cached(query); st != nil {
		return st
	}
	if strings.Contains(query, ";") || p.n.Load() >= maxPrepared {
		return nil
	}
	st, err := p.DB.PrepareContext(ctx, query)
	if err != nil {
		return nil // the unprepared run reports the error
	}
	if old, loaded := p.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return old.(*sql.Stmt)
	}
	p.n.Add(1)
	return st
}

// ExecContext runs a statement, prepared when possible.
func (p *pool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	p.queries.Add(1)
	if st := p.prepared(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return p.DB.ExecContext(ctx, query, args...)
}

// QueryContext runs a query, prepared when possible.
func (p *pool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	p.queries.Add(1)
	if st := p.prepared(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.DB.QueryContext(ctx, query, args...)
}

// QueryRowContext runs a single-row query, prepared when possible.
func (p *pool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	p.queries.Add(1)
	if st := p.prepared(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.DB.QueryRowContext(ctx, query, args...)
}

// Close closes the cached statements and the pool.
func (p *pool) Close() error {
	p.stmts.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
	return p.DB.Close()
}

// Tx is a write transaction. Its statements use the pool's prepared
// statements, bound to the transaction's connection; a text not prepared
// yet runs unprepared and is prepared after the transaction ends.
type Tx struct {
	*sql.Tx
	p         *pool
	missing   []string
	stream    *stream
	positions []int64  // stream positions taken, finished when the transaction ends
	changes   []Change // what the transaction changed, for /sync (changes.go)
}

func (tx *Tx) stmt(ctx context.Context, query string) *sql.Stmt {
	if st := tx.p.cached(query); st != nil {
		return tx.Tx.StmtContext(ctx, st)
	}
	tx.missing = append(tx.missing, query)
	return nil
}

// prepareMissing prepares the texts the transaction ran unprepared; call it
// once the transaction has ended and released its connection.
func (tx *Tx) prepareMissing(ctx context.Context) {
	for _, q := range tx.missing {
		tx.p.prepared(ctx, q)
	}
}

// ExecContext runs a statement in the transaction, prepared when possible.
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := tx.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.Tx.ExecContext(ctx, query, args...)
}

// QueryContext runs a query in the transaction, prepared when possible.
func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := tx.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return tx.Tx.QueryContext(ctx, query, args...)
}

// QueryRowContext runs a single-row query in the transaction, prepared when
// possible.
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := tx.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.Tx.QueryRowContext(ctx, query, args...)
}
