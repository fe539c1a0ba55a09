package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/consent"
	"github.com/aula-chat/aula/internal/app"
	"github.com/aula-chat/aula/internal/logging"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// noticeCommand runs `aula notice send`: it sends a text server notice to
// one user or to every active user, into their server-notices rooms. When
// the server is running the notices go through its admin socket
// (POST /_synapse/admin/v1/send_server_notice); otherwise the command
// opens the database itself.
func noticeCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "send" {
		return fmt.Errorf("notice: unknown or missing subcommand (want: notice send)\n\n%s", usage)
	}
	fs := newFlagSet("notice send", stderr)
	path := fs.String("config", "", "configuration file")
	user := fs.String("user", "", "the user to notify (@user:server or localpart)")
	all := fs.Bool("all-users", false, "notify every active user")
	text := fs.String("text", "", "the notice text")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *path == "" || strings.TrimSpace(*text) == "" || (*user == "") == !*all {
		return errors.New("notice send: --config FILE, --text TEXT and one of --user USER or --all-users are required")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	ctx := context.Background()
	content, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": *text})
	n, err := newNoticeSender(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer n.close()
	targets := []string{qualify(*user, cfg.ServerName)}
	if *all {
		if targets, err = n.users(ctx); err != nil {
			return err
		}
	}
	system := "@" + cfg.ServerNotices.Localpart + ":" + cfg.ServerName
	sent := 0
	for _, userID := range targets {
		if userID == system {
			continue
		}
		eventID, err := n.send(ctx, userID, content)
		if err != nil {
			if !*all {
				return err
			}
			fmt.Fprintln(stderr, err) // keep going for the others
			continue
		}
		sent++
		fmt.Fprintf(stdout, "sent %s to %s\n", eventID, userID)
	}
	if *all {
		fmt.Fprintf(stdout, "sent %d notices\n", sent)
	}
	return nil
}

// noticeSender sends notices through the running server's admin socket
// (sock) or, when no server runs, with a server built in-process (a).
type noticeSender struct {
	cfg  *config.Config
	sock *adminClient
	a    *app.App
}

func newNoticeSender(ctx context.Context, cfg *config.Config, stderr io.Writer) (*noticeSender, error) {
	sock, err := connectAdminSocket(cfg)
	if err != nil {
		return nil, err
	}
	if sock != nil {
		return &noticeSender{cfg: cfg, sock: sock}, nil
	}
	a, err := app.New(ctx, cfg, logging.New(stderr, cfg.Log))
	if err != nil {
		return nil, err
	}
	return &noticeSender{cfg: cfg, a: a}, nil
}

func (n *noticeSender) close() {
	if n.a != nil {
		n.a.Close()
	}
}

// users lists the active local users. With a running server it only reads
// the database, which takes no stream position.
func (n *noticeSender) users(ctx context.Context) ([]string, error) {
	if n.a != nil {
		return n.a.DB.LocalUserIDs(ctx)
	}
	db, err := storage.Open(ctx, n.cfg.Database)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.LocalUserIDs(ctx)
}

// send sends one notice, returning its event ID; a refused notice is an
// error naming the user and the reason.
func (n *noticeSender) send(ctx context.Context, userID string, content json.RawMessage) (string, error) {
	if n.sock != nil {
		var out struct {
			EventID string `json:"event_id"`
		}
		body := map[string]any{"user_id": userID, "content": content}
		err := n.sock.do(ctx, "POST", "/_synapse/admin/v1/send_server_notice", "", body, &out)
		var ae *apiError
		if errors.As(err, &ae) {
			return "", fmt.Errorf("notice send: %s: %s", userID, ae.Msg)
		}
		return out.EventID, err
	}
	eventID, err := n.a.Consent.Send(ctx, consent.Notice{UserID: userID, Content: content})
	if e, ok := mxerr.As(err); ok {
		return "", fmt.Errorf("notice send: %s: %s", userID, e.Msg)
	}
	return eventID, err
}

// qualify turns a localpart into a user ID of serverName; user IDs stay.
func qualify(user, serverName string) string {
	if strings.HasPrefix(user, "@") {
		return user
	}
	return "@" + strings.ToLower(user) + ":" + serverName
}
