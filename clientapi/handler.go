package clientapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
)

// handlerFunc is an endpoint that needs no access token.
type handlerFunc func(r *http.Request) (any, error)

// authedFunc is an endpoint that needs an access token.
type authedFunc func(r *http.Request, d *auth.Device) (any, error)

// response lets a handler choose a status other than 200.
type response struct {
	status int
	body   any
}

// emptyObject is the {} body many endpoints answer with.
var emptyObject = struct{}{}

// public adapts an endpoint that needs no access token.
func (a *API) public(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, err := decodeVars(r)
		if err != nil {
			a.writeResult(w, r, nil, err)
			return
		}
		res, err := h(r)
		a.writeResult(w, r, res, err)
	})
}

// authed adapts an endpoint that needs an access token: it resolves the
// token to a device (401 otherwise) before calling the handler.
func (a *API) authed(h authedFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, err := decodeVars(r)
		if err != nil {
			a.writeResult(w, r, nil, err)
			return
		}
		d, err := a.auth.Authenticate(r.Context(), accessToken(r), a.clientIP(r))
		if err != nil {
			a.writeResult(w, r, nil, err)
			return
		}
		setRequester(r, d)
		res, err := h(r, d)
		a.writeResult(w, r, res, err)
	})
}

// accessToken takes the token from the Authorization header, or from the
// deprecated access_token query parameter.
func accessToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	return r.URL.Query().Get("access_token")
}

// decodeVars percent-decodes the path variables once, so handlers see
// "@alice:example.org" rather than "%40alice%3Aexample.org".
func decodeVars(r *http.Request) (*http.Request, error) {
	vars := mux.Vars(r)
	if len(vars) == 0 {
		return r, nil
	}
	decoded := make(map[string]string, len(vars))
	for k, v := range vars {
		d, err := url.PathUnescape(v)
		if err != nil {
			return r, mxerr.InvalidParam("Invalid %s in path", k)
		}
		decoded[k] = d
	}
	return mux.SetURLVars(r, decoded), nil
}

// writeResult writes a handler's result or error as JSON. Errors that are
// not Matrix errors become 500 M_UNKNOWN and are logged with their cause.
func (a *API) writeResult(w http.ResponseWriter, r *http.Request, res any, err error) {
	if err != nil {
		e, ok := mxerr.As(err)
		switch {
		case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
			e = &mxerr.Error{Status: 499, Code: "M_UNKNOWN", Msg: "Request cancelled"}
		case !ok:
			e = mxerr.Internal(err)
		}
		if e.Status >= 500 {
			a.log.ErrorContext(r.Context(), "request failed", "route", routeName(r), "err", err)
		}
		writeJSON(w, e.Status, e.Body())
		return
	}
	status := http.StatusOK
	if resp, ok := res.(response); ok {
		status, res = resp.status, resp.body
	}
	if res == nil {
		res = emptyObject
	}
	writeJSON(w, status, res)
}

// writeJSON writes body as JSON with the given status. HTML escaping is off:
// Matrix content is not HTML, and clients expect "<" as it was sent.
func writeJSON(w http.ResponseWriter, status int, body any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		slog.Error("encoding response failed", "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"errcode":"M_UNKNOWN","error":"Internal server error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	// What the API answers depends on the access token (even /versions may).
	h.Set("Vary", "Authorization")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// readBody reads the request body, mapping an over-long body to 413.
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(r.Body)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, mxerr.TooLarge("Request body is larger than %d bytes", tooLarge.Limit)
	}
	if err != nil {
		return nil, mxerr.Unknown("Could not read request body")
	}
	return body, nil
}

// decodeJSON reads a JSON object from the body into v. A body that is not
// JSON is 400 M_NOT_JSON; JSON of the wrong shape is 400 M_BAD_JSON. An empty
// body counts as {} when allowEmpty is set.
func decodeJSON(r *http.Request, v any, allowEmpty bool) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	return unmarshalObject(body, v, allowEmpty)
}

// unmarshalObject decodes a JSON object body into v.
func unmarshalObject(body []byte, v any, allowEmpty bool) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 && allowEmpty {
		body = []byte("{}")
	}
	if !json.Valid(body) {
		return mxerr.NotJSON("Content not JSON")
	}
	if body[0] != '{' {
		return mxerr.BadJSON("Content must be a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return mxerr.BadJSON("%s has the wrong type: expected %s", typeErr.Field, typeErr.Type)
		}
		return mxerr.BadJSON("Invalid JSON content")
	}
	return nil
}

// routeName is the path template of the matched route, for logs.
func routeName(r *http.Request) string {
	if route := mux.CurrentRoute(r); route != nil {
		if t, err := route.GetPathTemplate(); err == nil {
			return t
		}
	}
	return "unmatched"
}
