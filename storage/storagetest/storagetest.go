// Package storagetest runs tests against every database engine the storage
// package supports: SQLite in a temporary file always, and PostgreSQL when
// the environment variable AULA_TEST_POSTGRES holds a DSN (scripts/test
// starts a throwaway cluster and sets it). Each PostgreSQL test gets a fresh
// schema of its own, dropped when the test ends, so tests never see each
// other's rows.
package storagetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aula-chat/aula/storage"
)

// PostgresEnv names the environment variable holding the PostgreSQL DSN
// (a storage DSN: "postgres://…" or "postgres:key=value …").
const PostgresEnv = "AULA_TEST_POSTGRES"

// RequirePostgresEnv names the environment variable that, set to "1", makes
// a missing PostgreSQL DSN a test failure instead of a skip. CI=true does
// the same.
const RequirePostgresEnv = "AULA_REQUIRE_POSTGRES"

// ForEachDB runs fn once per engine as the subtests "sqlite" and "postgres",
// each with the DSN of an empty database of its own (not yet migrated; see
// OpenDB). The postgres subtest is skipped when AULA_TEST_POSTGRES is unset,
// unless AULA_REQUIRE_POSTGRES=1 or CI=true, in which case it fails.
func ForEachDB(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		fn(t, "sqlite:"+filepath.Join(t.TempDir(), "aula.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		base := os.Getenv(PostgresEnv)
		if base == "" {
			if os.Getenv("CI") == "true" || os.Getenv(RequirePostgresEnv) == "1" {
				t.Fatalf("%s is not set but PostgreSQL is required here (CI=true or %s=1); run scripts/test", PostgresEnv, RequirePostgresEnv)
			}
			t.Skipf("%s is not set; run scripts/test to test on PostgreSQL too", PostgresEnv)
		}
		fn(t, postgresSchema(t, base))
	})
}

// OpenDB opens and migrates the database named by dsn, and closes it when
// the test ends.
func OpenDB(t testing.TB, dsn string) *storage.DB {
	t.Helper()
	ctx := context.Background()
	db, err := storage.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

// RawDB opens a plain database/sql handle on the database named by dsn (a
// DSN from ForEachDB), for tests that must read or write rows behind the
// storage package's back. It is closed when the test ends.
func RawDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		db, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	} else {
		db, err = sql.Open("postgres", libpqDSN(dsn))
	}
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// postgresSchema creates a schema with a unique name in the database named
// by base, drops it (with everything in it) when the test ends, and returns
// a DSN whose connections use it as their search_path.
func postgresSchema(t *testing.T, base string) string {
	t.Helper()
	admin, err := sql.Open("postgres", libpqDSN(base))
	if err != nil {
		t.Fatalf("open %s: %v", base, err)
	}
	t.Cleanup(func() { admin.Close() })

	name := schemaName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+name); err != nil {
		t.Fatalf("create schema %s on %s: %v", name, base, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP SCHEMA `+name+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})

	// lib/pq sends parameters it does not know, such as search_path, to the
	// server as run-time parameters of every connection.
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatalf("parse %s: %v", base, err)
		}
		q := u.Query()
		q.Set("search_path", name)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return base + " search_path=" + name
}

// libpqDSN turns a storage DSN into one lib/pq accepts.
func libpqDSN(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return dsn
	}
	return strings.TrimPrefix(dsn, "postgres:")
}

// schemaName makes a unique, valid, unquoted PostgreSQL identifier that
// starts with the test name, to tell leftovers apart.
func schemaName(testName string) string {
	var b strings.Builder
	b.WriteString("test_")
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 40 {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	var rnd [8]byte
	rand.Read(rnd[:]) // never fails
	return b.String() + "_" + hex.EncodeToString(rnd[:])
}
