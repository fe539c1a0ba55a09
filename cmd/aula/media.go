package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/logging"
	"github.com/aula-chat/aula/media"
	"github.com/aula-chat/aula/storage"
)

// mediaCommand runs `aula media SUBCOMMAND`; the one subcommand is purge:
// `aula media purge --config FILE --older-than 90d` deletes local media
// nobody has downloaded for that long (avatars are kept).
func mediaCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "purge" {
		return errors.New("media: use `aula media purge --config FILE --older-than 90d`")
	}
	fs := newFlagSet("media purge", stderr)
	path := fs.String("config", "", "configuration file")
	olderThan := fs.String("older-than", "", "age of the last download, e.g. 90d or 12h")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *path == "" || *olderThan == "" {
		return errors.New("media purge: --config FILE and --older-than AGE are required")
	}
	age, err := parseAge(*olderThan)
	if err != nil {
		return fmt.Errorf("media purge: --older-than: %w", err)
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	ctx := context.Background()
	log := logging.New(stderr, cfg.Log)
	if sqlitePath, ok := strings.CutPrefix(cfg.Database, "sqlite:"); ok {
		if err := os.MkdirAll(filepath.Dir(sqlitePath), 0o700); err != nil {
			return fmt.Errorf("media purge: database directory: %w", err)
		}
	}
	db, err := storage.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	svc, err := media.New(db, cfg, log)
	if err != nil {
		return err
	}
	deleted, err := svc.PurgeBefore(ctx, time.Now().Add(-age))
	fmt.Fprintf(stdout, "deleted %d media items\n", len(deleted))
	return err
}

// parseAge parses an age like 90d, 36h or 90m; days are 24 hours.
func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a number of days like 90d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not an age like 90d, 36h or 30m", s)
	}
	return d, nil
}
