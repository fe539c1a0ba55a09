package oauth

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/storage"
)

// The account management page (the metadata's account_management_uri):
// where a user signed in through this API sees their sessions and signs
// them out, since such clients (Element X) leave device management to the
// server's web pages. The browser signs in through the single sign-on, like
// an authorization, and then holds a short-lived account cookie.

// AccountPath is the account management page.
const AccountPath = PathPrefix + "account"

// AccountCookieName is the cookie of a browser signed in to the account
// page.
const AccountCookieName = "aula_account"

// AccountLifetime is how long the account cookie is good for: signing
// other sessions out should follow a recent sign-in at the provider.
const AccountLifetime = 10 * time.Minute

// AccountActions are the account management actions (spec: "Account
// management URL actions") the page supports, with the names of MSC4191's
// first draft that clients shipped (sessions_list, session_view,
// session_end) after the spec's.
var AccountActions = []string{"org.matrix.devices_list", "org.matrix.device_view", "org.matrix.device_delete",
	"org.matrix.sessions_list", "org.matrix.session_view", "org.matrix.session_end"}

// OneDeviceAction reports whether action shows the one session named by
// the device_id parameter.
func OneDeviceAction(action string) bool {
	switch action {
	case "org.matrix.device_view", "org.matrix.device_delete", "org.matrix.session_view", "org.matrix.session_end":
		return true
	}
	return false
}

// AccountSession is a browser signed in to the account page.
type AccountSession struct {
	UserID  string `json:"u"`
	CSRF    string `json:"t"` // the forms' CSRF token
	Expires int64  `json:"e"` // Unix seconds
}

// errAccountSession means: no usable account cookie, sign in again.
var errAccountSession = errors.New("oauth: no account session")

// IsSignInNeeded reports whether err from Account means the browser must
// sign in (again) before the page can be shown.
func IsSignInNeeded(err error) bool { return errors.Is(err, errAccountSession) }

// AccountSignedIn returns the account cookie's value for userID, who has
// just signed in through the single sign-on.
func (s *Server) AccountSignedIn(ctx context.Context, userID string) (string, error) {
	user, err := s.db.User(ctx, userID)
	if err != nil {
		return "", err
	}
	if user.Deactivated {
		return "", pageError(http.StatusForbidden, "Account deactivated", "This account has been deactivated.")
	}
	return s.accounts.Seal(ctx, AccountSession{UserID: userID, CSRF: randomString(24), Expires: s.now().Add(AccountLifetime).Unix()})
}

// Account returns the session of the account cookie; an error for which
// IsSignInNeeded holds when there is none, or it expired.
func (s *Server) Account(ctx context.Context, cookie string) (*AccountSession, error) {
	if cookie == "" {
		return nil, errAccountSession
	}
	var a AccountSession
	if err := s.accounts.Open(ctx, cookie, &a); err != nil {
		return nil, errors.Join(errAccountSession, err)
	}
	if a.UserID == "" || s.now().Unix() > a.Expires {
		return nil, errAccountSession
	}
	return &a, nil
}

// SignOutDevice signs deviceID of the account session's user out, as
// /logout would, after checking the form's csrf token. Only the user's
// own devices can be named; another ID is a 404 page.
func (s *Server) SignOutDevice(ctx context.Context, a *AccountSession, csrf, deviceID string) error {
	if subtle.ConstantTimeCompare([]byte(csrf), []byte(a.CSRF)) != 1 {
		return pageError(http.StatusForbidden, "Request not accepted",
			"This request did not come from your account page. Please open the page again.")
	}
	devices, err := s.auth.Devices(ctx, a.UserID)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(devices, func(d storage.Device) bool { return d.DeviceID == deviceID }) {
		return pageError(http.StatusNotFound, "Unknown session", "You have no session with this ID. It may have been signed out already.")
	}
	return s.auth.Logout(ctx, &auth.Device{UserID: a.UserID, DeviceID: deviceID})
}
