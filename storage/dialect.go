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

// isMessage reports whether ev is stored by pgInsertEvents alone, with
// nothing else in its transaction, so that PostgreSQL may store it in a
// batch with other rooms' messages (eventbatch.go): an event without state
// key, redaction or relation.
func isMessage(ev NewEvent) bool {
	if ev.StateKey != nil || ev.Redacts != "" {
		return false
	}
	_, related := parseRelation(ev.JSON)
	return !related
}

// insertEvent stores ev at stream position pos. Unless its search text
// (searchText) is empty it also indexes that, and unless txn is nil it
// records the client's transaction ID, returning ErrDuplicateTxn if the ID
// was used before. PostgreSQL takes all rows in one statement
// (pgInsertEvents): every statement is a round trip to the server, which
// costs the two processes more than the rows themselves. SQLite runs in the
// process and takes one statement per row.
func (e engine) insertEvent(ctx context.Context, tx *Tx, pos int64, ev *NewEvent, txn *Txn, now int64) error {
	text := searchText(ev.Type, ev.JSON)
	if e == enginePostgres {
		var rows eventRows
		rows.add(pos, ev, text, txn, now)
		_, err := tx.ExecContext(ctx, pgInsertEvents, rows.args()...)
		return pgInsertError(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO events
		(stream_pos, event_id, room_id, depth, type, state_key, sender, origin_server_ts, json)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		pos, ev.EventID, ev.RoomID, ev.Depth, ev.Type, nullStringPtr(ev.StateKey), ev.Sender, ev.OriginTS, string(ev.JSON)); err != nil {
		return err
	}
	if text != "" {
		if _, err := tx.ExecContext(ctx, `INSERT INTO event_search (rowid, value) VALUES ($1, $2)`, pos, text); err != nil {
			return err
		}
	}
	if txn != nil {
		res, err := tx.ExecContext(ctx, `INSERT INTO event_txns (user_id, device_id, txn_id, event_id, created_ts)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, device_id, txn_id) DO NOTHING`,
			txn.UserID, txn.DeviceID, txn.TxnID, ev.EventID, now)
		if err != nil {
			return fmt.Errorf("storage: record transaction: %w", err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return ErrDuplicateTxn
		}
	}
	return nil
}

// insertEventError is what PersistEvents returns when insertEvent fails:
// ErrDuplicateTxn as it is, ErrConflict for an event ID or depth stored
// before.
func insertEventError(ev *NewEvent, err error) error {
	if errors.Is(err, ErrDuplicateTxn) {
		return err
	}
	if isUniqueViolation(err) {
		return ErrConflict
	}
	return fmt.Errorf("storage: insert event %s: %w", ev.EventID, err)
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
