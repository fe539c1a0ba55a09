package clientapi

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/oauth"
)

// accountView is what the account page shows.
type accountView struct {
	UserID    string
	CSRF      string
	Devices   []deviceView
	SignedOut string // the session just signed out, if any
}

// deviceView is one session on the account page.
type deviceView struct {
	DeviceID, DisplayName, Created, LastSeen string
}

// accountURL is the account page's public URL with query q.
func (a *API) accountURL(q url.Values) string {
	u := a.cfg.PublicBaseURL + strings.TrimPrefix(oauth.AccountPath, "/")
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// oauthAccount answers GET and POST /_aula/oauth2/account, the account
// management page (account_management_uri): the user's sessions, each
// with a button that signs it out. A browser without a fresh account
// cookie goes through the single sign-on first (accountSignedIn).
func (a *API) oauthAccount() http.Handler {
	return a.oauthEndpoint(func(w http.ResponseWriter, r *http.Request) {
		sess, err := a.oauth.Account(r.Context(), cookieValue(r, oauth.AccountCookieName))
		if oauth.IsSignInNeeded(err) {
			if r.Method != http.MethodGet {
				a.ssoFail(w, r, &auth.PageError{Status: http.StatusForbidden, Title: "Please sign in again",
					Message: "Your sign-in to this page has expired. Open the page again to continue."})
				return
			}
			back := a.accountURL(r.URL.Query())
			http.Redirect(w, r, a.cfg.PublicBaseURL+"_matrix/client/v3/login/sso/redirect?redirectUrl="+url.QueryEscape(back), http.StatusFound)
			return
		}
		if err != nil {
			a.ssoFail(w, r, err)
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				a.ssoFail(w, r, &auth.PageError{Status: http.StatusBadRequest, Title: "Request not accepted", Message: "The form could not be read.", Err: err})
				return
			}
			device := r.PostForm.Get("device_id")
			if err := a.oauth.SignOutDevice(r.Context(), sess, r.PostForm.Get("csrf_token"), device); err != nil {
				a.ssoFail(w, r, err)
				return
			}
			http.Redirect(w, r, a.accountURL(url.Values{"signed_out": {device}}), http.StatusSeeOther)
			return
		}
		a.renderAccount(w, r, sess)
	})
}

// renderAccount shows the account page for the actions of the spec: one
// session for org.matrix.device_view and org.matrix.device_delete (and
// their older names) with a device_id, all of them otherwise.
func (a *API) renderAccount(w http.ResponseWriter, r *http.Request, sess *oauth.AccountSession) {
	devices, err := a.auth.Devices(r.Context(), sess.UserID)
	if err != nil {
		a.ssoFail(w, r, err)
		return
	}
	q := r.URL.Query()
	one := q.Get("device_id")
	if !oauth.OneDeviceAction(q.Get("action")) {
		one = ""
	}
	view := &accountView{UserID: sess.UserID, CSRF: sess.CSRF, SignedOut: q.Get("signed_out")}
	for _, d := range devices {
		if one != "" && d.DeviceID != one {
			continue
		}
		dv := deviceView{DeviceID: d.DeviceID, DisplayName: d.DisplayName, Created: time.UnixMilli(d.CreatedTS).UTC().Format("2 Jan 2006 15:04 UTC")}
		if d.LastSeenTS > 0 {
			dv.LastSeen = time.UnixMilli(d.LastSeenTS).UTC().Format("2 Jan 2006 15:04 UTC")
		}
		view.Devices = append(view.Devices, dv)
	}
	if one != "" && len(view.Devices) == 0 {
		a.ssoFail(w, r, &auth.PageError{Status: http.StatusNotFound, Title: "Unknown session", Message: "You have no session with this ID. It may have been signed out already."})
		return
	}
	title := "Your sessions"
	if one != "" {
		title = "Your session " + one
	}
	a.renderOAuth(w, http.StatusOK, "oauth_account", oauthPage{Title: title, Action: a.accountURL(nil), Account: view})
}

// accountSignedIn continues to the account page after the single sign-on
// (ssoCallback): the browser gets the account cookie.
func (a *API) accountSignedIn(w http.ResponseWriter, r *http.Request, res *auth.CallbackResult) {
	if !a.oauth.Enabled() {
		a.ssoFail(w, r, &auth.PageError{Status: http.StatusNotFound, Title: "Not available", Message: "This server does not offer account pages."})
		return
	}
	cookie, err := a.oauth.AccountSignedIn(r.Context(), res.UserID)
	if err != nil {
		a.ssoFail(w, r, err)
		return
	}
	http.SetCookie(w, a.browserCookie(oauth.AccountCookieName, oauth.AccountPath, cookie, oauth.AccountLifetime))
	http.Redirect(w, r, res.RedirectURL, http.StatusFound)
}

// isAccountURL reports whether an internal sign-in returns to the account
// page rather than to an authorization.
func (a *API) isAccountURL(u string) bool {
	base := a.accountURL(nil)
	return u == base || strings.HasPrefix(u, base+"?")
}
