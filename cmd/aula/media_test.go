package main_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aula-chat/aula/storage"
)

// TestMediaPurge: `aula media purge` deletes media nobody downloaded for
// longer than --older-than, and keeps the rest.
func TestMediaPurge(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	gen := run{args: []string{"generate-config", "--server-name", "chat.uni.example", "--data-dir", dataDir}}.ok(t)
	cfg := writeFile(t, dir, "aula.yaml", gen.stdout)

	// The first run creates and migrates the database.
	r := run{args: []string{"media", "purge", "--config", cfg, "--older-than", "90d"}}.ok(t)
	if !strings.Contains(r.stdout, "deleted 0 media items") {
		t.Errorf("purge of nothing: %s", r)
	}

	ctx := context.Background()
	db, err := storage.Open(ctx, "sqlite:"+filepath.Join(dataDir, "aula.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for id, age := range map[string]time.Duration{"old": 100 * 24 * time.Hour, "new": 10 * 24 * time.Hour} {
		ts := now.Add(-age).UnixMilli()
		if err := db.InsertMedia(ctx, storage.Media{MediaID: id, UserID: "@a:chat.uni.example", SHA256: strings.Repeat("a", 64),
			Size: 1, CreatedTS: ts, UploadedTS: ts, LastAccessTS: ts}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	r = run{args: []string{"media", "purge", "--config", cfg, "--older-than", "90d"}}.ok(t)
	if !strings.Contains(r.stdout, "deleted 1 media items") {
		t.Errorf("purge: %s", r)
	}
	db, err = storage.Open(ctx, "sqlite:"+filepath.Join(dataDir, "aula.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Media(ctx, "old"); err != storage.ErrNotFound {
		t.Errorf("old media after purge: %v", err)
	}
	if _, err := db.Media(ctx, "new"); err != nil {
		t.Errorf("new media after purge: %v", err)
	}

	run{args: []string{"media", "purge", "--config", cfg}}.fails(t, "--older-than")
	run{args: []string{"media", "purge", "--config", cfg, "--older-than", "soon"}}.fails(t, "--older-than")
	run{args: []string{"media", "list"}}.fails(t, "media purge")
}
