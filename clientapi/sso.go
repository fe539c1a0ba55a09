package clientapi

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
)

// Single sign-on pages (docs/sso.md): the redirect to the identity
// provider, its callback, the confirmation before a login token goes to
// a client, the m.login.sso fallback of user-interactive auth, and
// back-channel logout.

//go:embed templates/sso/*.html
var ssoTemplateFS embed.FS

var ssoTemplates = template.Must(template.ParseFS(ssoTemplateFS, "templates/sso/*.html"))

// ssoCallbackPath is where providers send the browser back; Synapse's
// path is answered too, so a university moving from Synapse keeps its
// registered redirect URI.
const ssoCallbackPath = "/_aula/client/oidc/callback"

// ssoPage is the data of every SSO page.
type ssoPage struct {
	Title        string
	Message      string
	Server       string
	UserID       string
	ClientHost   string
	RedirectURL  template.URL
	ProviderName string
	URL          string
	Providers    []ssoPickEntry
}

type ssoPickEntry struct{ Name, URL string }

// renderSSO writes an SSO page.
func (a *API) renderSSO(w http.ResponseWriter, status int, name string, p ssoPage) {
	p.Server = a.cfg.ServerName
	a.renderPage(w, status, ssoTemplates, name, p)
}

// renderPage writes one of the browser pages (single sign-on, OAuth
// consent and account): never cached or framed.
func (a *API) renderPage(w http.ResponseWriter, status int, t *template.Template, name string, data any) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "frame-ancestors 'none'")
	w.WriteHeader(status)
	if err := t.ExecuteTemplate(w, name, data); err != nil {
		a.log.Error("render page", "page", name, "err", err)
	}
}

// browserCookie builds one of the browser pages' cookies: HttpOnly, Lax,
// Secure when public_baseurl is https, living maxAge; an empty value
// deletes it.
func (a *API) browserCookie(name, path, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{
		Name: name, Value: value, Path: path, HttpOnly: true,
		Secure: strings.HasPrefix(a.cfg.PublicBaseURL, "https:"), SameSite: http.SameSiteLaxMode, MaxAge: int(maxAge / time.Second),
	}
	if value == "" {
		c.MaxAge = -1
	}
	return c
}

// cookieValue is the value of the request's cookie name, "" if none.
func cookieValue(r *http.Request, name string) string {
	if c, err := r.Cookie(name); err == nil {
		return c.Value
	}
	return ""
}

// ssoFail shows err as an error page and logs it.
func (a *API) ssoFail(w http.ResponseWriter, r *http.Request, err error) {
	var pe *auth.PageError
	if errors.As(err, &pe) {
		a.log.Warn("sso: sign-in failed", "path", r.URL.Path, "reason", pe.Error())
		a.renderSSO(w, pe.Status, "error", ssoPage{Title: pe.Title, Message: pe.Message})
		return
	}
	if e, ok := mxerr.As(err); ok {
		a.renderSSO(w, e.Status, "error", ssoPage{Title: "Sign-in failed", Message: e.Msg})
		return
	}
	a.log.Error("sso: internal error", "path", r.URL.Path, "err", err)
	a.renderSSO(w, http.StatusInternalServerError, "error", ssoPage{Title: "Sign-in failed", Message: "Something went wrong on the server. Please try again later."})
}

// ssoCookie builds the session cookie (empty value: delete it).
func (a *API) ssoCookie(value string) *http.Cookie {
	return a.browserCookie(auth.SSOCookieName, "/", value, 30*time.Minute)
}

// ssoRedirect answers GET /login/sso/redirect[/{idpId}]?redirectUrl=…
func (a *API) ssoRedirect() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.sso.Enabled() {
			writeSSONotConfigured(w)
			return
		}
		redirect := r.URL.Query().Get("redirectUrl")
		if redirect == "" {
			writeJSON(w, http.StatusBadRequest, mxerr.MissingParam("redirectUrl is required").Body())
			return
		}
		if err := auth.ValidRedirectURL(redirect); err != nil {
			e, _ := mxerr.As(err)
			writeJSON(w, e.Status, e.Body())
			return
		}
		idp := mux.Vars(r)["idpId"]
		providers := a.sso.Providers()
		if idp == "" && len(providers) > 1 {
			page := ssoPage{Title: "Sign in"}
			for _, p := range providers {
				u := a.cfg.PublicBaseURL + "_matrix/client/v3/login/sso/redirect/" + url.PathEscape(p.ID) + "?redirectUrl=" + url.QueryEscape(redirect)
				page.Providers = append(page.Providers, ssoPickEntry{Name: p.Name, URL: u})
			}
			a.renderSSO(w, http.StatusOK, "pick", page)
			return
		}
		if idp == "" {
			idp = providers[0].ID
		}
		if !a.sso.HasProvider(idp) {
			writeJSON(w, http.StatusNotFound, mxerr.NotFound("Unknown identity provider").Body())
			return
		}
		a.ssoStart(w, r, auth.StartRequest{ProviderID: idp, RedirectURL: redirect})
	})
}

// ssoStart sends the browser to the provider for req, with the attempt's
// cookie.
func (a *API) ssoStart(w http.ResponseWriter, r *http.Request, req auth.StartRequest) {
	authURL, cookie, err := a.sso.Start(r.Context(), req)
	if err != nil {
		a.ssoFail(w, r, err)
		return
	}
	http.SetCookie(w, a.ssoCookie(cookie))
	http.Redirect(w, r, authURL, http.StatusFound)
}

// writeSSONotConfigured answers an SSO path on a server without providers.
func writeSSONotConfigured(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, mxerr.Unrecognized(http.StatusNotFound, "Single sign-on is not configured").Body())
}

// ssoCallback answers the provider's redirect back to the server.
func (a *API) ssoCallback() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.sso.Enabled() {
			writeSSONotConfigured(w)
			return
		}
		if err := r.ParseForm(); err != nil {
			a.ssoFail(w, r, &auth.PageError{Status: http.StatusBadRequest, Title: "Sign-in failed", Message: "The sign-in answer could not be read.", Err: err})
			return
		}
		cookie := cookieValue(r, auth.SSOCookieName)
		// The session is used once, whatever the outcome.
		http.SetCookie(w, a.ssoCookie(""))
		res, err := a.sso.Callback(r.Context(), cookie, r.Form)
		if err != nil {
			a.ssoFail(w, r, err)
			return
		}
		if res.UIASession != "" {
			a.renderSSO(w, http.StatusOK, "done", ssoPage{Title: "Confirmed"})
			return
		}
		if res.Internal {
			if a.isAccountURL(res.RedirectURL) {
				a.accountSignedIn(w, r, res) // to the account page (oauth_account.go)
				return
			}
			a.oauthSignedIn(w, r, res) // an OAuth 2.0 authorization continues (oauth.go)
			return
		}
		if a.sso.Trusted(res.RedirectURL) {
			http.Redirect(w, r, res.RedirectURL, http.StatusFound)
			return
		}
		host := res.RedirectURL
		if u, err := url.Parse(res.RedirectURL); err == nil && u.Host != "" {
			host = u.Host
		}
		a.renderSSO(w, http.StatusOK, "confirm", ssoPage{
			Title: "Continue to " + host, UserID: res.UserID, ClientHost: host,
			RedirectURL: template.URL(res.RedirectURL), // checked by auth.ValidRedirectURL: no javascript: or data:
		})
	})
}

// ssoFallback answers GET /auth/m.login.sso/fallback/web?session=…: the
// page a client opens to complete the m.login.sso stage. It also answers
// GET /auth/m.oauth/fallback/web, the approval URL of the m.oauth stage:
// both are a re-authentication at the identity provider.
func (a *API) ssoFallback() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session := r.URL.Query().Get("session")
		userID, ok := a.auth.UIASessionUser(session)
		if !a.sso.Enabled() || !ok {
			a.renderSSO(w, http.StatusBadRequest, "error", ssoPage{Title: "Unknown session", Message: "This confirmation request is unknown or has expired. Please try again from your Matrix client."})
			return
		}
		idp := a.reauthProvider(r, userID)
		if idp.ID == "" {
			a.renderSSO(w, http.StatusBadRequest, "error", ssoPage{Title: "No single sign-on", Message: "Your account does not sign in through an identity provider of this server."})
			return
		}
		start := a.cfg.PublicBaseURL + "_aula/client/sso/reauth?session=" + url.QueryEscape(session) + "&idp=" + url.QueryEscape(idp.ID)
		a.renderSSO(w, http.StatusOK, "reauth", ssoPage{Title: "Confirm your identity", UserID: userID, ProviderName: idp.Name, URL: start})
	})
}

// reauthProvider picks the provider to re-authenticate userID with: the
// one asked for (idp), else the first the account is linked to.
func (a *API) reauthProvider(r *http.Request, userID string) auth.IdentityProvider {
	linked, err := a.sso.LinkedProviders(r.Context(), userID)
	if err != nil || len(linked) == 0 {
		return auth.IdentityProvider{}
	}
	want := r.URL.Query().Get("idp")
	if want == "" {
		want = r.URL.Query().Get("io.element.idp_id")
	}
	for _, p := range linked {
		if p.ID == want {
			return p
		}
	}
	return linked[0]
}

// ssoReauth starts the re-authentication of a UIA session's user at the
// provider (the button of the fallback page).
func (a *API) ssoReauth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session := r.URL.Query().Get("session")
		userID, ok := a.auth.UIASessionUser(session)
		if !a.sso.Enabled() || !ok {
			a.renderSSO(w, http.StatusBadRequest, "error", ssoPage{Title: "Unknown session", Message: "This confirmation request is unknown or has expired. Please try again from your Matrix client."})
			return
		}
		idp := a.reauthProvider(r, userID)
		if idp.ID == "" {
			a.renderSSO(w, http.StatusBadRequest, "error", ssoPage{Title: "No single sign-on", Message: "Your account does not sign in through an identity provider of this server."})
			return
		}
		a.ssoStart(w, r, auth.StartRequest{ProviderID: idp.ID, UIASession: session, UserID: userID})
	})
}

// ssoBackchannelLogout answers POST …/oidc/backchannel_logout with a
// logout_token form field from the provider.
func (a *API) ssoBackchannelLogout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache, no-store")
		if !a.sso.Enabled() {
			writeSSONotConfigured(w)
			return
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("logout_token") == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "logout_token is required"})
			return
		}
		n, err := a.sso.BackchannelLogout(r.Context(), r.PostForm.Get("logout_token"))
		if errors.Is(err, auth.ErrBadLogoutToken) {
			a.log.Warn("sso: refused logout token", "err", err)
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "invalid logout token"})
			return
		}
		if err != nil {
			a.log.Error("sso: back-channel logout", "err", err)
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"devices_deleted": n})
	})
}

// loginWithToken answers POST /login with type m.login.token.
func (a *API) loginWithToken(r *http.Request, req loginRequest) (any, error) {
	if !a.sso.Enabled() {
		return nil, mxerr.New(http.StatusBadRequest, "M_UNKNOWN", "Unsupported login type %q", req.Type)
	}
	t, err := a.sso.LoginWithToken(r.Context(), auth.TokenLoginRequest{
		Token: req.Token, DeviceID: req.DeviceID, DisplayName: req.DisplayName, Refresh: req.Refresh,
	})
	if err != nil {
		return nil, err
	}
	resp := a.tokensResponse(t)
	resp.WellKnown = map[string]any{"m.homeserver": map[string]string{"base_url": a.cfg.PublicBaseURL}}
	return resp, nil
}

// ssoLoginFlows are the GET /login entries of single sign-on.
func (a *API) ssoLoginFlows() []map[string]any {
	if !a.sso.Enabled() {
		return nil
	}
	return []map[string]any{
		{"type": auth.StageSSO, "identity_providers": a.sso.Providers()},
		{"type": auth.StageToken},
	}
}

// ssoThreePIDs is the answer of GET /account/3pid.
func (a *API) ssoThreePIDs(ctx context.Context, userID string) (any, error) {
	pids, err := a.sso.ThreePIDs(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := []map[string]any{}
	for _, p := range pids {
		out = append(out, map[string]any{"medium": p.Medium, "address": p.Address, "validated_at": p.ValidatedTS, "added_at": p.AddedTS})
	}
	return map[string]any{"threepids": out}, nil
}
