package auth

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// userFlows are the user-interactive flows that confirm the identity of an
// existing user before a sensitive operation.
func (s *Service) userFlows(ctx context.Context, userID string) ([]Flow, error) {
	var flows []Flow
	if s.cfg.PasswordLogin.Enabled {
		u, err := s.db.User(ctx, userID)
		if err != nil {
			return nil, err
		}
		if u.PasswordHash != "" {
			flows = append(flows, Flow{Stages: []string{StagePassword}})
		}
	}
	if flows == nil {
		flows = []Flow{}
	}
	return flows, nil
}

// Confirm runs user-interactive authentication for a sensitive operation by
// d's user; op names the operation so that a session cannot be reused for
// another one. It returns nil once the user has completed a flow.
func (s *Service) Confirm(ctx context.Context, d *Device, op string, auth json.RawMessage) error {
	flows, err := s.userFlows(ctx, d.UserID)
	if err != nil {
		return err
	}
	_, err = s.checkUIA(ctx, UIARequest{Op: op, UserID: d.UserID, Auth: auth, Flows: flows})
	return err
}

// DeleteDevices deletes devices of d's user (with their tokens) after
// user-interactive authentication.
func (s *Service) DeleteDevices(ctx context.Context, d *Device, op string, deviceIDs []string, auth json.RawMessage) error {
	if err := s.Confirm(ctx, d, op, auth); err != nil {
		return err
	}
	// An ID the database cannot store names no device: nothing to delete.
	ids := make([]string, 0, len(deviceIDs))
	for _, id := range deviceIDs {
		if validText(id) {
			ids = append(ids, id)
		}
	}
	defer s.tokens.forgetUser(d.UserID)
	return s.db.DeleteDevices(ctx, d.UserID, ids)
}

// ChangePassword sets a new password after user-interactive authentication.
// With logoutDevices, every other device of the user is logged out.
func (s *Service) ChangePassword(ctx context.Context, d *Device, newPassword string, logoutDevices bool, auth json.RawMessage) error {
	if !s.cfg.PasswordLogin.Enabled {
		return mxerr.Forbidden("Password changes are disabled on this server")
	}
	if newPassword == "" {
		return mxerr.MissingParam("new_password is required")
	}
	if len(newPassword) > maxPasswordBytes {
		return mxerr.New(http.StatusBadRequest, "M_WEAK_PASSWORD", "Password is too long")
	}
	if err := s.Confirm(ctx, d, "POST /account/password", auth); err != nil {
		return err
	}
	hash, err := s.hasher.hash(ctx, newPassword)
	if err != nil {
		return err
	}
	if err := s.db.SetPasswordHash(ctx, d.UserID, hash); err != nil {
		return err
	}
	if logoutDevices {
		defer s.tokens.forgetUser(d.UserID)
		return s.db.DeleteAllDevices(ctx, d.UserID, d.DeviceID)
	}
	return nil
}

// Deactivate permanently deactivates d's account after user-interactive
// authentication: every device and token is revoked, the password and
// profile are removed, and the user ID is never given out again.
func (s *Service) Deactivate(ctx context.Context, d *Device, auth json.RawMessage) error {
	if err := s.Confirm(ctx, d, "POST /account/deactivate", auth); err != nil {
		return err
	}
	err := s.db.DeactivateUser(ctx, d.UserID)
	s.tokens.forgetUser(d.UserID)
	if err != nil {
		return err
	}
	s.log.Info("deactivated account", "user_id", d.UserID)
	return nil
}

// Devices lists the user's devices.
func (s *Service) Devices(ctx context.Context, userID string) ([]storage.Device, error) {
	return s.db.Devices(ctx, userID)
}

// Device returns one of the user's devices, or storage.ErrNotFound.
func (s *Service) Device(ctx context.Context, userID, deviceID string) (storage.Device, error) {
	if !validText(deviceID) {
		return storage.Device{}, storage.ErrNotFound
	}
	return s.db.Device(ctx, userID, deviceID)
}

// RenameDevice sets a device's display name; nil leaves it unchanged.
func (s *Service) RenameDevice(ctx context.Context, userID, deviceID string, name *string) error {
	if !validText(deviceID) {
		return storage.ErrNotFound
	}
	if name == nil {
		_, err := s.db.Device(ctx, userID, deviceID)
		return err
	}
	if !validText(*name) {
		return mxerr.InvalidParam("display_name must be valid UTF-8 without NUL characters")
	}
	if len(*name) > maxDeviceNameLen {
		return mxerr.New(http.StatusBadRequest, "M_TOO_LARGE", "Device name is longer than %d bytes", maxDeviceNameLen)
	}
	return s.db.SetDeviceDisplayName(ctx, userID, deviceID, *name)
}

// IsAdmin reports whether the user is a server admin.
func (s *Service) IsAdmin(ctx context.Context, userID string) (bool, error) {
	u, err := s.db.User(ctx, userID)
	if err != nil {
		return false, err
	}
	return u.IsAdmin, nil
}
