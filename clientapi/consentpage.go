package clientapi

import (
	"net/http"

	"github.com/aula-chat/aula/consent"
)

// consentPage serves GET and POST /_matrix/consent: the terms-of-use page
// reached through the personal link of the consent notice. It needs no
// access token (the link's HMAC identifies the user) and is HTML, not JSON.
func (a *API) consentPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := consent.PageRequest{Post: r.Method == http.MethodPost, AcceptLanguage: r.Header.Get("Accept-Language")}
		if req.Post {
			if err := r.ParseForm(); err != nil {
				req.U, req.H, req.V = "", "", "" // refused below as incomplete
			} else {
				req.U, req.H, req.V = r.PostForm.Get("u"), r.PostForm.Get("h"), r.PostForm.Get("v")
			}
		} else {
			q := r.URL.Query()
			req.U, req.H = q.Get("u"), q.Get("h")
		}
		page, err := a.consent.ServePage(r.Context(), req)
		if err != nil {
			a.log.ErrorContext(r.Context(), "consent page failed", "err", err)
			page = consent.Page{Status: http.StatusInternalServerError, Body: []byte("<!DOCTYPE html><title>Error</title><p>Internal server error</p>")}
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", consent.CSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer") // the URL holds the link's HMAC
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(page.Status)
		w.Write(page.Body)
	})
}
