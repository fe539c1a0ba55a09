package clientapi

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/oauth"
)

// The OAuth 2.0 API (docs/oauth.md): server metadata, and the
// authorization server under /_aula/oauth2/ (package oauth). The browser
// part reuses single sign-on (sso.go): the authorization endpoint starts
// an SSO sign-in whose return goes to the consent page.

//go:embed templates/sso/pages.html templates/oauth_*.html
var oauthTemplateFS embed.FS

// oauthTemplates share the head and error pages of the SSO pages.
var oauthTemplates = template.Must(template.ParseFS(oauthTemplateFS, "templates/sso/pages.html", "templates/oauth_*.html"))

// oauthPage is the data of the consent and account pages.
type oauthPage struct {
	Title   string
	Server  string
	Action  string
	Consent *oauth.Consent
	Account *accountView // oauth_account.go
}

// getAuthMetadata answers GET /_matrix/client/v1/auth_metadata (and the
// MSC2965 unstable path): 404 M_UNRECOGNIZED while the OAuth 2.0 API is
// off, so that clients fall back to m.login.sso.
func (a *API) getAuthMetadata(r *http.Request) (any, error) {
	if !a.oauth.Enabled() {
		return nil, mxerr.Unrecognized(http.StatusNotFound, "The OAuth 2.0 API is not enabled on this server")
	}
	return a.oauth.Metadata(), nil
}

// oauthAwareFlows marks the m.login.sso flow of GET /login as preferred
// while the OAuth 2.0 API is on ("OAuth 2.0 aware clients").
func (a *API) oauthAwareFlows(flows []map[string]any) {
	if !a.oauth.Enabled() {
		return
	}
	for _, f := range flows {
		if f["type"] == auth.StageSSO {
			f["oauth_aware_preferred"] = true
			// MSC3824's name, which Element Web still reads.
			f["org.matrix.msc3824.delegated_oidc_compatibility"] = true
		}
	}
}

// oauthEndpoint wraps an endpoint of the authorization server: 404
// M_UNRECOGNIZED while the API is off.
func (a *API) oauthEndpoint(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.oauth.Enabled() {
			writeJSON(w, http.StatusNotFound, mxerr.Unrecognized(http.StatusNotFound, "The OAuth 2.0 API is not enabled on this server").Body())
			return
		}
		h(w, r)
	})
}

// writeOAuthJSON writes an answer of the registration, token or
// revocation endpoint: never cached (RFC 6749 §5.1).
func writeOAuthJSON(w http.ResponseWriter, status int, body any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(body) // the bodies are plain structs
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// writeOAuthError writes an *oauth.Error, or 500 server_error for
// anything else (logged).
func (a *API) writeOAuthError(w http.ResponseWriter, r *http.Request, err error) {
	var oe *oauth.Error
	if errors.As(err, &oe) {
		if oe.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(oe.RetryAfter.Seconds())+1))
		}
		writeOAuthJSON(w, oe.Status, oe)
		return
	}
	a.log.ErrorContext(r.Context(), "oauth: request failed", "route", routeName(r), "err", err)
	writeOAuthJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
}

// readOAuthForm parses the application/x-www-form-urlencoded body of a
// token or revocation request; parameters in the URL are not read.
func readOAuthForm(r *http.Request) (url.Values, error) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
		return nil, &oauth.Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: "The body must be application/x-www-form-urlencoded"}
	}
	if err := r.ParseForm(); err != nil {
		return nil, &oauth.Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: "The body could not be read"}
	}
	return r.PostForm, nil
}

// oauthRegister answers POST /_aula/oauth2/register: dynamic client
// registration, 201 with the registered metadata.
func (a *API) oauthRegister() http.Handler {
	return a.oauthEndpoint(func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(r)
		if err != nil {
			writeOAuthJSON(w, http.StatusBadRequest, &oauth.Error{Code: "invalid_client_metadata", Description: "The body could not be read"})
			return
		}
		c, err := a.oauth.Register(r.Context(), body, a.clientAddr(r))
		if err != nil {
			a.writeOAuthError(w, r, err)
			return
		}
		writeOAuthJSON(w, http.StatusCreated, c)
	})
}

// oauthCookie builds the authorization cookie (empty value: delete it),
// like the SSO session cookie.
func (a *API) oauthCookie(value string) *http.Cookie {
	return a.browserCookie(oauth.CookieName, "/", value, 30*time.Minute)
}

// oauthAuthorize answers GET /_aula/oauth2/authorize: the request is
// checked, kept in the authorization cookie, and the browser goes to the
// single sign-on, which returns to the consent page.
func (a *API) oauthAuthorize() http.Handler {
	return a.oauthEndpoint(func(w http.ResponseWriter, r *http.Request) {
		started, err := a.oauth.Authorize(r.Context(), r.URL.Query())
		var refusal *oauth.Refusal
		if errors.As(err, &refusal) {
			http.Redirect(w, r, refusal.RedirectURL, http.StatusFound)
			return
		}
		if err != nil {
			a.ssoFail(w, r, err)
			return
		}
		http.SetCookie(w, a.oauthCookie(started.Cookie))
		// The SSO redirect endpoint picks the provider (or shows the
		// choice) exactly as for m.login.sso.
		next := a.cfg.PublicBaseURL + "_matrix/client/v3/login/sso/redirect?redirectUrl=" + url.QueryEscape(started.ContinueURL)
		http.Redirect(w, r, next, http.StatusFound)
	})
}

// oauthSignedIn continues an authorization after the SSO callback
// (ssoCallback): the user is recorded in the authorization cookie and the
// browser goes to the consent page.
func (a *API) oauthSignedIn(w http.ResponseWriter, r *http.Request, res *auth.CallbackResult) {
	if !a.oauth.Enabled() {
		a.ssoFail(w, r, &auth.PageError{Status: http.StatusNotFound, Title: "Sign-in failed", Message: "This server does not offer the OAuth 2.0 sign-in."})
		return
	}
	cookie, err := a.oauth.SignedIn(r.Context(), cookieValue(r, oauth.CookieName), oauth.SignIn{
		UserID: res.UserID, Provider: res.Provider, SessionID: res.SessionID, ContinueURL: res.RedirectURL,
	})
	if err != nil {
		a.ssoFail(w, r, err)
		return
	}
	http.SetCookie(w, a.oauthCookie(cookie))
	http.Redirect(w, r, a.cfg.PublicBaseURL+strings.TrimPrefix(oauth.ConsentPath, "/"), http.StatusFound)
}

// oauthConsent answers GET and POST /_aula/oauth2/consent: the page that
// asks the signed-in user to allow the client, and its form.
func (a *API) oauthConsent() http.Handler {
	return a.oauthEndpoint(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			c, err := a.oauth.ConsentPage(r.Context(), cookieValue(r, oauth.CookieName))
			if err != nil {
				a.ssoFail(w, r, err)
				return
			}
			a.renderOAuth(w, http.StatusOK, "oauth_consent", oauthPage{
				Title: "Allow " + c.ClientName + "?", Action: a.cfg.PublicBaseURL + strings.TrimPrefix(oauth.ConsentPath, "/"), Consent: c,
			})
			return
		}
		if err := r.ParseForm(); err != nil {
			a.ssoFail(w, r, &auth.PageError{Status: http.StatusBadRequest, Title: "Sign-in failed", Message: "The answer could not be read.", Err: err})
			return
		}
		action := r.PostForm.Get("action")
		if action != "allow" && action != "deny" {
			a.ssoFail(w, r, &auth.PageError{Status: http.StatusBadRequest, Title: "Sign-in failed", Message: "Choose Allow or Deny."})
			return
		}
		next, err := a.oauth.Decide(r.Context(), cookieValue(r, oauth.CookieName), r.PostForm.Get("csrf_token"), action == "allow")
		if err != nil {
			a.ssoFail(w, r, err)
			return
		}
		http.SetCookie(w, a.oauthCookie("")) // the authorization is complete
		http.Redirect(w, r, next, http.StatusSeeOther)
	})
}

// renderOAuth writes an OAuth page.
func (a *API) renderOAuth(w http.ResponseWriter, status int, name string, p oauthPage) {
	p.Server = a.cfg.ServerName
	a.renderPage(w, status, oauthTemplates, name, p)
}

// oauthToken answers POST /_aula/oauth2/token.
func (a *API) oauthToken() http.Handler {
	return a.oauthEndpoint(func(w http.ResponseWriter, r *http.Request) {
		form, err := readOAuthForm(r)
		if err != nil {
			a.writeOAuthError(w, r, err)
			return
		}
		t, err := a.oauth.Token(r.Context(), form)
		if err != nil {
			a.writeOAuthError(w, r, err)
			return
		}
		writeOAuthJSON(w, http.StatusOK, t)
	})
}

// oauthRevoke answers POST /_aula/oauth2/revoke: 200 whether or not the
// token was known (RFC 7009 §2.2).
func (a *API) oauthRevoke() http.Handler {
	return a.oauthEndpoint(func(w http.ResponseWriter, r *http.Request) {
		form, err := readOAuthForm(r)
		if err != nil {
			a.writeOAuthError(w, r, err)
			return
		}
		d, err := a.oauth.Revoke(r.Context(), form)
		if err != nil {
			a.writeOAuthError(w, r, err)
			return
		}
		if d != nil {
			a.sliding.DropDevice(d.UserID, d.DeviceID) // its sliding-sync connections
		}
		writeOAuthJSON(w, http.StatusOK, emptyObject)
	})
}
