package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/aula-chat/aula/internal/mxerr"
)

// exportUser runs `aula export-user`: a zip archive of everything the
// server holds about one user (admin.Ops.Export), written to --out. The
// file is only readable by its owner and appears complete or not at all.
func exportUser(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("export-user", stderr)
	path := fs.String("config", "", "configuration file")
	user := fs.String("user", "", "the user ID to export, e.g. @alice:uni.example")
	out := fs.String("out", "", "the zip file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" || *user == "" || *out == "" {
		return errors.New("export-user: --config FILE, --user USER_ID and --out FILE.zip are required")
	}
	ctx := context.Background()
	a, err := openApp(ctx, *path, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.AdminOps.CheckExport(ctx, *user); err != nil {
		if e, ok := mxerr.As(err); ok {
			return fmt.Errorf("export-user: %s: %s", *user, e.Msg)
		}
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(*out), ".export-*.zip")
	if err != nil {
		return fmt.Errorf("export-user: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing is left to remove
	if err := a.AdminOps.Export(ctx, *user, tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("export-user: %w", err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return fmt.Errorf("export-user: %w", err)
	}
	fmt.Fprintf(stdout, "exported %s to %s\n", *user, *out)
	return nil
}
