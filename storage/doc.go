// Package storage is the only package that contains SQL. It opens SQLite or
// PostgreSQL, applies the embedded schema migrations, and offers one method
// per query, each taking a context first. One SQL text serves both engines;
// the few real differences live in dialect.go.
package storage
