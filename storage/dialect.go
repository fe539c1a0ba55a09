package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/lib/pq"
	"modernc.org/sqlite"
)

// engine names the database engine behind a DB. This file is the only place
// that branches on it.
type engine int

const (
	engineSQLite engine = iota
	enginePostgres
)

func (e engine) String() string {
	if e == enginePostgres {
		return "postgres"
	}
	return "sqlite"
}

// schemaDir is the folder of embedded migrations for the engine.
func (e engine) schemaDir() string { return "schema/" + e.String() }

// SQLite extended result codes for constraint violations that mean "this row
// already exists".
const (
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

// isUniqueViolation reports whether err is a unique or primary-key violation.
func isUniqueViolation(err error) bool {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		return pqErr.Code == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		c := sqErr.Code()
		return c == sqliteConstraintPrimaryKey || c == sqliteConstraintUnique
	}
	return false
}

// anyOf returns the SQL condition "col is one of the values in parameter $n"
// and the argument to bind for it.
func (e engine) anyOf(col string, n int, values []string) (string, any) {
	p := "$" + strconv.Itoa(n)
	if e == enginePostgres {
		return col + " = ANY(" + p + ")", pq.Array(values)
	}
	return col + " IN (SELECT value FROM json_each(" + p + "))", jsonArray(values)
}

func jsonArray(values []string) string {
	b, _ := json.Marshal(values) // []string always marshals
	return string(b)
}

// forUpdate is the row-locking suffix for a SELECT inside a write
// transaction. SQLite needs none: its write transactions are exclusive.
func (e engine) forUpdate() string {
	if e == enginePostgres {
		return " FOR UPDATE"
	}
	return ""
}

// Full-text search (search.go). SQLite searches the FTS5 table event_search
// with FTS5's query syntax and ranks by bm25; PostgreSQL searches the
// tsvector column of its event_search table with a tsquery in the 'english'
// configuration and ranks by ts_rank. Both tables are keyed by rowid, the
// event's stream_pos, and keep the indexed text in value (see search.go).

// searchQuery turns search words into the engine's query text: every word
// must match, the last one also as the prefix of a longer word. Each word is
// quoted, so nothing a user types can change the query's syntax.
func (e engine) searchQuery(words []string) string {
	var b strings.Builder
	for i, w := range words {
		last := i == len(words)-1
		if e == enginePostgres {
			if i > 0 {
				b.WriteString(" & ")
			}
			b.WriteString("'" + strings.NewReplacer(`'`, `''`, `\`, `\\`).Replace(w) + "'")
			if last {
				b.WriteString(":*")
			}
			continue
		}
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(`"` + strings.ReplaceAll(w, `"`, `""`) + `"`)
		if last {
			b.WriteString("*")
		}
	}
	return b.String()
}

// searchMatch is the condition that an event_search row matches the query
// text bound to parameter $n.
func (e engine) searchMatch(n int) string {
	p := "$" + strconv.Itoa(n)
	if e == enginePostgres {
		return "event_search.vector @@ to_tsquery('english', " + p + ")"
	}
	return "event_search MATCH " + p
}

// searchRank is how well an event_search row matches the query text bound
// to parameter $n: higher is better (bm25 is lower for better matches).
// ts_rank's normalisation 1 divides by the log of the text's length, so a
// short message with the words ranks above a long one, as with bm25.
func (e engine) searchRank(n int) string {
	p := "$" + strconv.Itoa(n)
	if e == enginePostgres {
		return "ts_rank(event_search.vector, to_tsquery('english', " + p + "), 1)"
	}
	return "-bm25(event_search)"
}

// searchHighlight is the indexed text of a matching event_search row, with
// each word the query text bound to parameter $n matched between the
// characters searchMarkStart and searchMarkEnd.
func (e engine) searchHighlight(n int) string {
	p := "$" + strconv.Itoa(n)
	if e == enginePostgres {
		return "ts_headline('english', event_search.value, to_tsquery('english', " + p + "), " +
			`'HighlightAll=true, StartSel="' || chr(2) || '", StopSel="' || chr(3) || '"')`
	}
	return "highlight(event_search, 0, char(2), char(3))"
}

// oneStatementEvent reports whether storing ev takes a single statement,
// so that PersistEvents may run it without a transaction around it: on
// PostgreSQL, an event without state key, redaction or relation
// (insertEvent folds its search text and transaction ID into the event's
// own statement). SQLite runs in the process and gains nothing.
func (e engine) oneStatementEvent(ev NewEvent) bool {
	if e != enginePostgres || ev.StateKey != nil || ev.Redacts != "" {
		return false
	}
	_, related := parseRelation(ev.JSON)
	return !related
}

// insertEvent runs insert, a statement that stores an event with its
// stream position as parameter $1 (args holds the parameters). Unless text
// is empty it also indexes text (searchText) under that position, and
// unless txn is nil it records the client's transaction ID, returning
// ErrDuplicateTxn if the ID was used before. PostgreSQL takes all rows in
// one statement, the other inserts in a WITH ahead of the event's: every
// statement is a round trip to the server, which costs the two processes
// more than the rows themselves. SQLite runs in the process and takes one
// statement per row.
func (e engine) insertEvent(ctx context.Context, tx *Tx, insert string, args []any, text string, txn *Txn, eventID string, now int64) error {
	if e == enginePostgres {
		var with []string
		if text != "" {
			with = append(with, "indexed AS (INSERT INTO event_search (rowid, value) VALUES ($1, $"+strconv.Itoa(len(args)+1)+"))")
			args = append(args, text)
		}
		if txn != nil {
			n := len(args)
			with = append(with, fmt.Sprintf("txn AS (INSERT INTO event_txns (user_id, device_id, txn_id, event_id, created_ts) VALUES ($%d, $%d, $%d, $%d, $%d))", n+1, n+2, n+3, n+4, n+5))
			args = append(args, txn.UserID, txn.DeviceID, txn.TxnID, eventID, now)
		}
		if len(with) > 0 {
			insert = "WITH " + strings.Join(with, ", ") + " " + insert
		}
		_, err := tx.ExecContext(ctx, insert, args...)
		var pqErr *pq.Error
		if txn != nil && errors.As(err, &pqErr) && pqErr.Code == "23505" && pqErr.Constraint == "event_txns_pkey" {
			return ErrDuplicateTxn
		}
		return err
	}
	if _, err := tx.ExecContext(ctx, insert, args...); err != nil {
		return err
	}
	if text != "" {
		if _, err := tx.ExecContext(ctx, `INSERT INTO event_search (rowid, value) VALUES ($1, $2)`, args[0], text); err != nil {
			return err
		}
	}
	if txn != nil {
		res, err := tx.ExecContext(ctx, `INSERT INTO event_txns (user_id, device_id, txn_id, event_id, created_ts)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, device_id, txn_id) DO NOTHING`,
			txn.UserID, txn.DeviceID, txn.TxnID, eventID, now)
		if err != nil {
			return fmt.Errorf("storage: record transaction: %w", err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return ErrDuplicateTxn
		}
	}
	return nil
}

// Marks around matched words in searchHighlight's text.
const (
	searchMarkStart = '\x02'
	searchMarkEnd   = '\x03'
)

// lockKey serialises the transactions that read and then rewrite the row(s)
// named by key, even when the row does not exist yet (where FOR UPDATE
// locks nothing). PostgreSQL takes a transaction-scoped advisory lock;
// SQLite needs none, since its write transactions run one at a time.
func (e engine) lockKey(ctx context.Context, tx *Tx, key string) error {
	if e != enginePostgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, key); err != nil {
		return fmt.Errorf("storage: lock %s: %w", key, err)
	}
	return nil
}
