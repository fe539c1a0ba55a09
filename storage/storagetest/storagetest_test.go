package storagetest_test

import (
	"os"
	"strings"
	"testing"

	"github.com/aula-chat/aula/storage/storagetest"
)

// TestPostgresSchemaIsolation checks that each postgres subtest works in a
// schema of its own (lib/pq passes search_path from the DSN to the server)
// and that the schema is dropped afterwards.
func TestPostgresSchemaIsolation(t *testing.T) {
	var schemas []string
	for range 2 {
		storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
			if strings.HasPrefix(dsn, "sqlite:") {
				return
			}
			db := storagetest.OpenDB(t, dsn)
			if db.Engine() != "postgres" {
				t.Fatalf("Engine() = %q", db.Engine())
			}
			raw := storagetest.RawDB(t, dsn)
			var schema string
			if err := raw.QueryRowContext(t.Context(), `SELECT current_schema()`).Scan(&schema); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(schema, "test_") {
				t.Fatalf("current_schema() = %q, want a test schema", schema)
			}
			var n int
			if err := raw.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM information_schema.tables
				WHERE table_schema = $1 AND table_name = 'users'`, schema).Scan(&n); err != nil || n != 1 {
				t.Fatalf("users table in %s: %d, %v", schema, n, err)
			}
			schemas = append(schemas, schema)
		})
	}
	base := os.Getenv(storagetest.PostgresEnv)
	if base == "" {
		return
	}
	if len(schemas) != 2 || schemas[0] == schemas[1] {
		t.Fatalf("schemas %v, want two different ones", schemas)
	}
	admin := storagetest.RawDB(t, base)
	var left int
	if err := admin.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM information_schema.schemata
		WHERE schema_name = $1 OR schema_name = $2`, schemas[0], schemas[1]).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d test schemas left after their tests (%v)", left, err)
	}
	var public int
	if err := admin.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM information_schema.tables
		WHERE table_schema = 'public'`).Scan(&public); err != nil || public != 0 {
		t.Errorf("%d tables in the public schema (%v), want none", public, err)
	}
}
