package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aula-chat/aula/admin"
	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/app"
	"github.com/aula-chat/aula/internal/logging"
	"github.com/aula-chat/aula/internal/mxerr"
)

// group runs `aula group create`: an admin-prepared, invite-only room (or
// space) whose members are joined at once (admin.Ops.CreateGroup). When the
// server is running it asks the server through the admin socket
// (POST /_aula/admin/v1/groups); otherwise it opens the database itself.
func group(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return fmt.Errorf("group: the only subcommand is create\n\n%s", usage)
	}
	fs := newFlagSet("group create", stderr)
	path := fs.String("config", "", "configuration file")
	name := fs.String("name", "", "the group's name")
	topic := fs.String("topic", "", "the group's topic (optional)")
	members := fs.String("members", "", "comma-separated user IDs to join, e.g. @a:uni.example,@b:uni.example")
	space := fs.Bool("space", false, "create a space instead of a room")
	creator := fs.String("creator", "", "the user who creates and moderates it (default: the server notices account)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *path == "" || *name == "" {
		return errors.New("group create: --config FILE and --name NAME are required")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	if *creator == "" {
		*creator = "@" + cfg.ServerNotices.Localpart + ":" + cfg.ServerName
	}
	list := []string{}
	for _, m := range strings.Split(*members, ",") {
		if m = strings.TrimSpace(m); m != "" {
			list = append(list, m)
		}
	}
	req := admin.GroupRequest{Creator: *creator, Name: *name, Topic: *topic, Members: list, Space: *space}
	ctx := context.Background()
	roomID, err := createGroup(ctx, cfg, req, stderr)
	if e, ok := mxerr.As(err); ok {
		return fmt.Errorf("group create: %s", e.Msg)
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return fmt.Errorf("group create: %s", ae.Msg)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %s\n", roomID)
	return nil
}

// createGroup creates the group through the running server's admin socket,
// acting as the creator, or in-process when no server is running.
func createGroup(ctx context.Context, cfg *config.Config, req admin.GroupRequest, stderr io.Writer) (string, error) {
	sock, err := connectAdminSocket(cfg)
	if err != nil {
		return "", err
	}
	if sock != nil {
		body := map[string]any{"name": req.Name, "topic": req.Topic, "members": req.Members, "space": req.Space}
		var out struct {
			RoomID string `json:"room_id"`
		}
		if err := sock.do(ctx, "POST", "/_aula/admin/v1/groups", req.Creator, body, &out); err != nil {
			return "", err
		}
		return out.RoomID, nil
	}
	a, err := app.New(ctx, cfg, logging.New(stderr, cfg.Log))
	if err != nil {
		return "", err
	}
	defer a.Close()
	return a.AdminOps.CreateGroup(ctx, req)
}
