package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aula-chat/aula/internal/mxerr"
)

// consentCommand runs `aula consent status`: what a user agreed to, when,
// and which notice they were sent.
func consentCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "status" {
		return fmt.Errorf("consent: unknown or missing subcommand (want: consent status)\n\n%s", usage)
	}
	fs := newFlagSet("consent status", stderr)
	path := fs.String("config", "", "configuration file")
	user := fs.String("user", "", "the user (@user:server or localpart)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *path == "" || *user == "" {
		return errors.New("consent status: --config FILE and --user USER are required")
	}
	ctx := context.Background()
	a, err := openApp(ctx, *path, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	st, err := a.Consent.StatusOf(ctx, qualify(*user, a.Config.ServerName))
	if e, ok := mxerr.As(err); ok {
		return fmt.Errorf("consent status: %s: %s", *user, e.Msg)
	}
	if err != nil {
		return err
	}
	enabled := "off"
	if st.Enabled {
		enabled = "on"
	}
	fmt.Fprintf(stdout, "user:            %s\n", st.UserID)
	fmt.Fprintf(stdout, "consent:         %s, current version %s\n", enabled, st.CurrentVersion)
	fmt.Fprintf(stdout, "agreed current:  %s\n", yesNo(st.Agreed))
	if st.Version == "" {
		fmt.Fprintf(stdout, "last agreed:     never\n")
	} else {
		fmt.Fprintf(stdout, "last agreed:     %s at %s\n", st.Version, time.UnixMilli(st.TS).UTC().Format(time.RFC3339))
	}
	notice := st.NoticeSent
	if notice == "" {
		notice = "none"
	}
	fmt.Fprintf(stdout, "notice sent for: %s\n", notice)
	for _, h := range st.History {
		fmt.Fprintf(stdout, "history:         %s at %s\n", h.Version, time.UnixMilli(h.TS).UTC().Format(time.RFC3339))
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
