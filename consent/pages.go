package consent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"

	"github.com/aula-chat/aula/storage"
)

// PageRequest is a request for the consent page: GET shows the policy (with
// an "I agree" form for a valid personal link), POST records consent.
type PageRequest struct {
	Post           bool
	U, H, V        string // the link's localpart, its HMAC, and the version (POST)
	AcceptLanguage string
}

// Page is a rendered consent page.
type Page struct {
	Status int
	Body   []byte
}

// CSP is the Content-Security-Policy of the consent pages: nothing but the
// page's own inline style (by hash), forms posting back to this server, and
// no framing.
var CSP = "default-src 'none'; style-src '" + styleHash() + "'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func styleHash() string {
	sum := sha256.Sum256([]byte(pageStyle))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// pageStyle is the pages' only CSS: readable width, large text, strong
// contrast (WCAG AA) and a visible keyboard focus.
const pageStyle = `
body{font-family:system-ui,sans-serif;font-size:1.1rem;line-height:1.5;color:#111;background:#fff;margin:0;padding:1rem}
main{max-width:44rem;margin:0 auto}
h1{font-size:1.6rem}h2{font-size:1.25rem}
.note{border-left:.3rem solid #0b5394;padding:.5rem 1rem;background:#eef3f9}
.error{border-left:.3rem solid #a40000;padding:.5rem 1rem;background:#fbeaea}
button{font:inherit;font-weight:600;color:#fff;background:#0b5394;border:0;border-radius:.3rem;padding:.7rem 1.4rem;cursor:pointer}
button:hover{background:#073763}
:focus-visible{outline:.2rem solid #e69138;outline-offset:.2rem}
`

// pageTemplate is the frame of every consent page.
var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}}</title>
<style>{{.Style}}</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
{{if .Note}}<p class="note" role="status">{{.Note}}</p>{{end}}
{{if .Policy}}<section aria-label="{{.PolicyLabel}}" id="policy">{{.Policy}}</section>{{end}}
{{if .Form}}<form method="post" action="consent">
<input type="hidden" name="u" value="{{.U}}">
<input type="hidden" name="h" value="{{.H}}">
<input type="hidden" name="v" value="{{.Version}}">
<p id="agree-help">{{.AgreeHelp}}</p>
<button type="submit" id="agree" aria-describedby="agree-help">{{.Agree}}</button>
</form>{{end}}
</main>
</body>
</html>
`))

// messages are the pages' own texts per language.
var messages = map[string]map[string]string{
	"en": {
		"title":     "Terms of use and privacy policy",
		"policy":    "Policy, version %s",
		"agree":     "I agree",
		"help":      "By selecting “I agree” you accept version %s of the terms of use and the privacy policy.",
		"already":   "You have already agreed to this version. You can return to your chat app.",
		"public":    "This is the current policy (version %s). To agree, open the personal link the server sent you in your chat app.",
		"success_t": "Thank you",
		"success":   "You have agreed to version %s of the terms of use. You can now close this page and return to your chat app.",
		"forbidden": "This link is not valid. Please open the link from the message the server sent you.",
		"missing":   "This link is incomplete. Please open the full link from the message the server sent you.",
		"unknown":   "There is no account for this link.",
		"stale":     "The terms have changed since this page was loaded. Please open the link again and read the current version.",
		"error_t":   "Consent not recorded",
	},
	"de": {
		"title":     "Nutzungsbedingungen und Datenschutzerklärung",
		"policy":    "Bedingungen, Version %s",
		"agree":     "Ich stimme zu",
		"help":      "Mit „Ich stimme zu“ akzeptieren Sie Version %s der Nutzungsbedingungen und die Datenschutzerklärung.",
		"already":   "Sie haben dieser Version bereits zugestimmt. Sie können zu Ihrer Chat-App zurückkehren.",
		"public":    "Dies sind die aktuellen Bedingungen (Version %s). Um zuzustimmen, öffnen Sie den persönlichen Link, den Ihnen der Server in Ihrer Chat-App geschickt hat.",
		"success_t": "Vielen Dank",
		"success":   "Sie haben Version %s der Nutzungsbedingungen zugestimmt. Sie können diese Seite jetzt schließen und zu Ihrer Chat-App zurückkehren.",
		"forbidden": "Dieser Link ist ungültig. Bitte öffnen Sie den Link aus der Nachricht, die Ihnen der Server geschickt hat.",
		"missing":   "Dieser Link ist unvollständig. Bitte öffnen Sie den vollständigen Link aus der Nachricht, die Ihnen der Server geschickt hat.",
		"unknown":   "Zu diesem Link gibt es kein Konto.",
		"stale":     "Die Bedingungen haben sich geändert, seit diese Seite geladen wurde. Bitte öffnen Sie den Link erneut und lesen Sie die aktuelle Version.",
		"error_t":   "Zustimmung nicht gespeichert",
	},
}

// pageData fills pageTemplate.
type pageData struct {
	Lang, Title, Error, Note, PolicyLabel, AgreeHelp, Agree string
	Style                                                   template.CSS
	Policy                                                  template.HTML
	Form                                                    bool
	U, H, Version                                           string
}

// ServePage answers GET and POST /_matrix/consent.
func (s *Service) ServePage(ctx context.Context, req PageRequest) (Page, error) {
	v := s.Version()
	lang := negotiate(req.AcceptLanguage)[0]
	msg := messages[lang]
	fail := func(status int, key string) (Page, error) {
		return s.renderPage(status, pageData{Lang: lang, Title: msg["error_t"], Error: msg[key]})
	}
	if req.Post {
		if req.U == "" || req.H == "" || req.V == "" {
			return fail(http.StatusBadRequest, "missing")
		}
	} else if req.U == "" { // the public, read-only policy
		return s.policyPage(v, req.AcceptLanguage, pageData{Note: sprintf(msg["public"], v)})
	} else if req.H == "" {
		return fail(http.StatusBadRequest, "missing")
	}
	if !s.validMAC(req.U, req.H) {
		return fail(http.StatusForbidden, "forbidden")
	}
	userID := s.userIDFor(req.U)
	u, err := s.db.User(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Deactivated) {
		return fail(http.StatusNotFound, "unknown")
	}
	if err != nil {
		return Page{}, err
	}
	if req.Post {
		if req.V != v {
			return fail(http.StatusConflict, "stale")
		}
		if err := s.Agree(ctx, userID, v); err != nil {
			return Page{}, err
		}
		return s.renderPage(http.StatusOK, pageData{Lang: lang, Title: msg["success_t"], Note: sprintf(msg["success"], v)})
	}
	agreed, err := s.db.HasConsented(ctx, userID, v)
	if err != nil {
		return Page{}, err
	}
	if agreed {
		return s.policyPage(v, req.AcceptLanguage, pageData{Note: msg["already"]})
	}
	return s.policyPage(v, req.AcceptLanguage, pageData{Form: true, U: req.U, H: req.H})
}

// policyPage renders the policy text of version with d's note or form.
func (s *Service) policyPage(version, acceptLanguage string, d pageData) (Page, error) {
	policy, lang, err := s.policies.render(version, acceptLanguage)
	if err != nil {
		return Page{}, err
	}
	msg := messages[lang]
	d.Lang, d.Title, d.Policy, d.Version = lang, msg["title"], policy, version
	d.PolicyLabel = sprintf(msg["policy"], version)
	d.AgreeHelp, d.Agree = sprintf(msg["help"], version), msg["agree"]
	return s.renderPage(http.StatusOK, d)
}

func (s *Service) renderPage(status int, d pageData) (Page, error) {
	d.Style = template.CSS(pageStyle)
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, d); err != nil {
		return Page{}, err
	}
	return Page{Status: status, Body: b.Bytes()}, nil
}

// sprintf formats one of the messages.
func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
