package auth

import (
	"context"
	"errors"
	"net/http"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// StageToken is the login type that exchanges a login token.
const StageToken = "m.login.token"

// loginTokenPrefix marks login tokens ("alt_…").
const loginTokenPrefix = "alt_"

// loginTokenLifetime is how long a login token may wait for its client.
const loginTokenLifetime = 2 * 60 * 1000 // milliseconds

// issueLoginToken creates a single-use login token for userID, valid for
// two minutes. Only its hash is stored. provider and sid name the
// provider session it came from.
func (s *SSO) issueLoginToken(ctx context.Context, userID, provider, sid string) (string, error) {
	token := newToken(loginTokenPrefix)
	err := s.db.CreateLoginToken(ctx, hashToken(token), storage.LoginToken{
		UserID: userID, ExpiresTS: s.svc.now().UnixMilli() + loginTokenLifetime, AuthProvider: provider, SessionID: sid,
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// TokenLoginRequest is a POST /login with m.login.token.
type TokenLoginRequest struct {
	Token       string
	DeviceID    string
	DisplayName string
	Refresh     bool
}

// LoginWithToken exchanges a login token for an access token and a
// device. The token is consumed whether or not the login succeeds; an
// unknown, used or expired token is 403 M_FORBIDDEN.
func (s *SSO) LoginWithToken(ctx context.Context, r TokenLoginRequest) (*Tokens, error) {
	if r.Token == "" {
		return nil, mxerr.MissingParam("token is required")
	}
	if err := validateDeviceParams(r.DeviceID, r.DisplayName); err != nil {
		return nil, err
	}
	if !validText(r.Token) {
		return nil, mxerr.Forbidden("Invalid login token")
	}
	lt, err := s.db.ConsumeLoginToken(ctx, hashToken(r.Token), s.svc.now().UnixMilli())
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrExpired) {
		return nil, mxerr.Forbidden("Invalid login token")
	}
	if err != nil {
		return nil, err
	}
	u, err := s.db.User(ctx, lt.UserID)
	if err != nil {
		return nil, err
	}
	if u.Deactivated {
		return nil, mxerr.New(http.StatusForbidden, "M_USER_DEACTIVATED", "This account has been deactivated")
	}
	t, err := s.svc.IssueTokens(ctx, lt.UserID, r.DeviceID, r.DisplayName, r.Refresh)
	if err != nil {
		return nil, err
	}
	if lt.SessionID != "" {
		if err := s.db.LinkDeviceSession(ctx, t.UserID, t.DeviceID, lt.AuthProvider, lt.SessionID); err != nil {
			return nil, err
		}
	}
	return t, nil
}
