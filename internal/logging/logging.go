// Package logging builds the server's slog logger from the log config.
package logging

import (
	"io"
	"log/slog"

	"github.com/aula-chat/aula/config"
)

// New returns a logger writing to w in the configured format and level.
func New(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
