package storage

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
)

func TestStreamCurrentWaitsForEarlierPositions(t *testing.T) {
	var s stream
	a, b, c := s.next(), s.next(), s.next()
	if s.position() != 0 {
		t.Fatalf("position before any commit = %d", s.position())
	}
	s.finish([]int64{b, c}, true, nil) // later transactions commit first
	if got := s.position(); got != a-1 {
		t.Errorf("position with %d still open = %d, want %d", a, got, a-1)
	}
	s.finish([]int64{a}, false, nil) // the early one rolls back: a gap
	if got := s.position(); got != c {
		t.Errorf("position after all finished = %d, want %d", got, c)
	}
	// The newest positions of a rolled-back transaction are handed out again.
	d := s.next()
	s.finish([]int64{d}, false, nil)
	if got := s.next(); got != d {
		t.Errorf("position after a rollback at the top = %d, want %d again", got, d)
	}
}

// Every table with a stream_pos column must be in streamTables, or a restart
// could hand out a position that is already stored.
func TestStreamTablesComplete(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "aula.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := db.read.QueryContext(ctx, `SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) p
		WHERE m.type = 'table' AND p.name = 'stream_pos'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(streamTables, name) {
			t.Errorf("table %s has a stream_pos column but is not in streamTables", name)
		}
	}
}

// A restarted server continues the stream after the highest stored position.
func TestStreamContinuesAfterRestart(t *testing.T) {
	ctx := context.Background()
	path := "sqlite:" + filepath.Join(t.TempDir(), "aula.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var last int64
	for i := 0; i < 3; i++ {
		if last, err = db.PutAccountData(ctx, "@a:x", "", "t", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if pos, _ := db.StreamPosition(ctx); pos != last {
		t.Errorf("position after restart = %d, want %d", pos, last)
	}
	next, err := db.PutAccountData(ctx, "@a:x", "", "u", []byte(`{}`))
	if err != nil || next != last+1 {
		t.Errorf("next position after restart = %d, %v; want %d", next, err, last+1)
	}
}
