package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// eraseReason is the reason the synthetic redactions of erased events
// carry.
const eraseReason = "Erased at the request of the account's owner"

// erasePage is how many events one erasure step reads.
const erasePage = 500

// Deactivate deactivates userID as an admin asked (POST
// /_synapse/admin/v1/deactivate/{userId}): the user leaves every room,
// their password, profile, devices and tokens are removed, and with erase
// every event they sent loses its content (Erase). Deactivating an
// account that is deactivated already does the remaining steps again, so
// an erasure can follow a plain deactivation.
func (o *Ops) Deactivate(ctx context.Context, userID string, erase bool) error {
	if !o.isLocal(userID) {
		return mxerr.InvalidParam("Only local users can be deactivated")
	}
	u, err := o.db.User(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return mxerr.NotFound("User not found")
	}
	if err != nil {
		return err
	}
	if err := o.LeaveAllRooms(ctx, userID); err != nil {
		return err
	}
	if !u.Deactivated {
		if err := o.db.DeactivateUser(ctx, userID); err != nil {
			return err
		}
	}
	// Through auth, which drops the user's cached tokens (its devices
	// are gone already; this only revokes what a racing login created).
	if err := o.auth.LogoutAll(ctx, userID); err != nil {
		return err
	}
	o.log.Info("admin deactivated account", "user_id", userID, "erase", erase)
	if erase {
		return o.Erase(ctx, userID)
	}
	return nil
}

// AfterDeactivation finishes a deactivation the user asked for themselves
// (POST /account/deactivate, after auth has deactivated the account): the
// user leaves every room, and with erase their events lose their content.
func (o *Ops) AfterDeactivation(ctx context.Context, userID string, erase bool) error {
	if err := o.LeaveAllRooms(ctx, userID); err != nil {
		return err
	}
	if erase {
		return o.Erase(ctx, userID)
	}
	return nil
}

// LeaveAllRooms makes the user leave every room they are joined to, and
// rejects their invitations and withdraws their knocks (a deactivated
// account must not stay in rooms). Bans stay.
func (o *Ops) LeaveAllRooms(ctx context.Context, userID string) error {
	ms, err := o.db.MembershipsOf(ctx, userID)
	if err != nil {
		return err
	}
	for _, m := range ms {
		switch m.Membership {
		case "join", "invite", "knock":
			if err := o.rooms.Leave(ctx, userID, m.RoomID, ""); err != nil {
				return fmt.Errorf("admin: %s leaves %s: %w", userID, m.RoomID, err)
			}
		}
	}
	return nil
}

// Erase removes the content of every non-state event userID sent (their
// messages, reactions, edits) and of every m.room.member event about them
// (display name, avatar), in every room; room state they set (name, topic,
// power levels, the create event) belongs to the room and stays. The stored events are
// rewritten with the room version's redaction algorithm (what a redaction
// leaves: type, sender, membership and the keys the auth rules need) and
// taken out of the search index; no redaction events are sent
// (roomserver.RedactInPlace). Their account data is deleted and the
// account is recorded as erased. The account must be deactivated first.
// Running it again finishes an erasure that was interrupted.
func (o *Ops) Erase(ctx context.Context, userID string) error {
	u, err := o.db.User(ctx, userID)
	if err != nil {
		return err
	}
	if !u.Deactivated {
		return mxerr.Forbidden("Only deactivated accounts can be erased")
	}
	var after int64
	n := 0
	for {
		evs, err := o.db.ErasableEvents(ctx, userID, after, erasePage)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			break
		}
		after = evs[len(evs)-1].StreamPos
		byRoom := map[string][]storage.Event{}
		var order []string
		for _, ev := range evs {
			if _, ok := byRoom[ev.RoomID]; !ok {
				order = append(order, ev.RoomID)
			}
			byRoom[ev.RoomID] = append(byRoom[ev.RoomID], ev)
		}
		for _, roomID := range order {
			if err := o.rooms.RedactInPlace(ctx, roomID, byRoom[roomID], eraseReason, 0); err != nil {
				return fmt.Errorf("admin: erase %s in %s: %w", userID, roomID, err)
			}
			n += len(byRoom[roomID])
		}
	}
	if err := o.db.MarkErased(ctx, userID); err != nil {
		return err
	}
	o.log.Info("erased account", "user_id", userID, "events", n)
	return nil
}
