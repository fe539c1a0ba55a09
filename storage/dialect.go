package storage

import (
	"encoding/json"
	"errors"
	"strconv"

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
