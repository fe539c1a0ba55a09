package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

// schemaVersions reads schema_migrations: versions in order and their
// applied_ts.
func schemaVersions(t *testing.T, dsn string) (versions []int, applied []int64) {
	t.Helper()
	rows, err := storagetest.RawDB(t, dsn).QueryContext(t.Context(),
		`SELECT version, applied_ts FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		var ts int64
		if err := rows.Scan(&v, &ts); err != nil {
			t.Fatal(err)
		}
		versions, applied = append(versions, v), append(applied, ts)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return versions, applied
}

func TestMigrate(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		db, err := storage.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("first Migrate: %v", err)
		}
		latest := db.SchemaVersion()
		if latest < 1 {
			t.Fatalf("SchemaVersion() = %d, want >= 1", latest)
		}
		versions, applied := schemaVersions(t, dsn)
		if len(versions) == 0 || versions[len(versions)-1] != latest {
			t.Fatalf("schema_migrations versions %v, want up to %d", versions, latest)
		}

		// A second Migrate, on the same handle and on a new one, changes nothing.
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		db2 := storagetest.OpenDB(t, dsn)
		if v := db2.SchemaVersion(); v != latest {
			t.Errorf("SchemaVersion() after reopen = %d, want %d", v, latest)
		}
		versions2, applied2 := schemaVersions(t, dsn)
		if !slices.Equal(versions, versions2) || !slices.Equal(applied, applied2) {
			t.Errorf("schema_migrations changed by a second Migrate: %v %v -> %v %v", versions, applied, versions2, applied2)
		}
		// The schema works.
		if pos, err := db2.StreamPosition(ctx); err != nil || pos != 0 {
			t.Errorf("StreamPosition() = %d, %v; want 0, nil", pos, err)
		}
	})
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		db := storagetest.OpenDB(t, dsn)
		newer := db.SchemaVersion() + 1
		if _, err := storagetest.RawDB(t, dsn).ExecContext(ctx,
			`INSERT INTO schema_migrations (version, name, applied_ts) VALUES ($1, 'future.sql', 0)`, newer); err != nil {
			t.Fatal(err)
		}
		err := db.Migrate(ctx)
		if err == nil {
			t.Fatalf("Migrate on a schema of version %d succeeded, want an error", newer)
		}
		for _, v := range []int{newer, db.SchemaVersion()} {
			if !strings.Contains(err.Error(), strconv.Itoa(v)) {
				t.Errorf("Migrate error %q does not mention version %d", err, v)
			}
		}
	})
}

// TestSchemaFoldersMatch checks that both engines have the same migrations.
func TestSchemaFoldersMatch(t *testing.T) {
	names := map[string][]string{}
	for _, engine := range []string{"sqlite", "postgres"} {
		entries, err := os.ReadDir("schema/" + engine)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			names[engine] = append(names[engine], e.Name())
		}
	}
	if len(names["sqlite"]) == 0 {
		t.Fatal("schema/sqlite is empty")
	}
	if !slices.Equal(names["sqlite"], names["postgres"]) {
		t.Errorf("schema folders differ:\nsqlite:   %v\npostgres: %v", names["sqlite"], names["postgres"])
	}
	// Versions are unique and count up from 1 without gaps.
	for i, name := range names["sqlite"] {
		num, _, _ := strings.Cut(name, "_")
		if v, err := strconv.Atoi(num); err != nil || v != i+1 || len(num) != 4 || !strings.HasSuffix(name, ".sql") {
			t.Errorf("schema file %s: want %04d_name.sql", name, i+1)
		}
	}
}

// A SQLite path may contain characters that are special in a "file:" URI.
func TestSQLitePathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a#b?c%d")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "aula.db")
	db := storagetest.OpenDB(t, "sqlite:"+path)
	if _, err := db.PutAccountData(context.Background(), "@a:x", "", "t", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at %s: %v", path, err)
	}
}
