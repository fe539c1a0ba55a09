package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/roomserver"
	"github.com/aula-chat/aula/storage"
)

// maxGroupMembers bounds one request; larger groups can be filled with
// ordinary invites afterwards.
const maxGroupMembers = 1000

// GroupRequest is an admin-prepared group: an invite-only room (or space)
// whose members are joined at once, as the computing centre sets them up
// for seminars and working groups.
type GroupRequest struct {
	Creator string   // a local account; gets power level 100 and is joined
	Name    string   // required
	Topic   string   // optional
	Members []string // local, active accounts; joined on their behalf
	Space   bool     // create a space (m.space) instead of a room
}

// CreateGroup creates the group and returns its room ID. The room is
// created by req.Creator with the private_chat preset (invite-only, shared
// history), every member is invited and then joined on their behalf, and
// members can leave like from any room. Members (and the creator) must be
// existing, active local accounts: 400 M_INVALID_PARAM names those that
// are not, and nothing is created.
func (o *Ops) CreateGroup(ctx context.Context, req GroupRequest) (string, error) {
	name := strings.TrimSpace(req.Name)
	if name == "" {
		return "", mxerr.MissingParam("name is required")
	}
	if len(req.Members) > maxGroupMembers {
		return "", mxerr.InvalidParam("At most %d members can be added at once", maxGroupMembers)
	}
	if err := o.checkActive(ctx, []string{req.Creator}, "creator"); err != nil {
		return "", err
	}
	var members []string
	seen := map[string]bool{req.Creator: true}
	for _, m := range req.Members {
		m = strings.TrimSpace(m)
		if m == "" || seen[m] {
			continue
		}
		seen[m] = true
		members = append(members, m)
	}
	if err := o.checkActive(ctx, members, "members"); err != nil {
		return "", err
	}
	cr := roomserver.CreateRoomRequest{
		Creator:    req.Creator,
		Visibility: "private",
		Preset:     roomserver.PresetPrivateChat,
		Name:       &name,
		Invite:     members,
	}
	if t := strings.TrimSpace(req.Topic); t != "" {
		cr.Topic = &t
	}
	if req.Space {
		cr.CreationContent = map[string]json.RawMessage{"type": json.RawMessage(`"m.space"`)}
	}
	roomID, err := o.rooms.CreateRoom(ctx, cr)
	if err != nil {
		return "", err
	}
	for _, m := range members {
		if _, err := o.rooms.Join(ctx, m, roomID, "", nil); err != nil {
			return roomID, fmt.Errorf("admin: join %s to group %s: %w", m, roomID, err)
		}
	}
	o.log.Info("created group", "room_id", roomID, "creator", req.Creator, "members", len(members), "space", req.Space)
	return roomID, nil
}

// checkActive returns 400 M_INVALID_PARAM naming every user in ids that is
// not an existing, active local account.
func (o *Ops) checkActive(ctx context.Context, ids []string, field string) error {
	var bad []string
	for _, id := range ids {
		if !o.isLocal(id) {
			bad = append(bad, id)
			continue
		}
		u, err := o.db.User(ctx, id)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Deactivated) {
			bad = append(bad, id)
			continue
		}
		if err != nil {
			return err
		}
	}
	if len(bad) > 0 {
		return mxerr.InvalidParam("%s: not active accounts of this server: %s", field, strings.Join(bad, ", ")).
			With("invalid_users", bad)
	}
	return nil
}
