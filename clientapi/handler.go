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
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

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

// rawResponse is a 200 answer that is not JSON (e.g. an archive): its
// headers and bytes, written as they are.
type rawResponse struct {
	header http.Header
	body   []byte
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
		if a.consent != nil {
			// Consent notice: sent once per policy version on the
			// user's first request; afterwards a map lookup, no SQL.
			a.consent.MaybeNotify(r.Context(), d.UserID)
		}
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
// "@alice:example.org" rather than "%40alice%3Aexample.org". A variable that
// decodes to invalid UTF-8 or holds a NUL byte is 400 M_INVALID_PARAM: no
// Matrix identifier contains either, and PostgreSQL refuses both in text.
func decodeVars(r *http.Request) (*http.Request, error) {
	vars := mux.Vars(r)
	if len(vars) == 0 {
		return r, nil
	}
	decoded := make(map[string]string, len(vars))
	for k, v := range vars {
		d, err := url.PathUnescape(v)
		if err != nil || !utf8.ValidString(d) || strings.IndexByte(d, 0) >= 0 {
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
		if ms, ok := e.Extra["retry_after_ms"].(int64); ok && e.Status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", strconv.FormatInt((ms+999)/1000, 10)) // whole seconds, rounded up
		}
		writeJSON(w, e.Status, e.Body())
		return
	}
	if raw, ok := res.(rawResponse); ok {
		for k, v := range raw.header {
			w.Header()[k] = v
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(raw.body)
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

// readJSON reads a request body that should be JSON. A body that is not
// UTF-8 is 400 M_NOT_JSON (RFC 8259 JSON is UTF-8), so that no invalid text
// reaches storage; whether it is JSON at all is for the caller to check.
func readJSON(r *http.Request) ([]byte, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(body) {
		return nil, mxerr.NotJSON("Content not JSON: not UTF-8")
	}
	return body, nil
}

// decodeJSON reads a JSON object from the body into v. A body that is not
// JSON is 400 M_NOT_JSON; JSON of the wrong shape is 400 M_BAD_JSON. An empty
// body counts as {} when allowEmpty is set.
func decodeJSON(r *http.Request, v any, allowEmpty bool) error {
	body, err := readJSON(r)
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
	if !json.Valid(body) || !utf8.Valid(body) {
		return mxerr.NotJSON("Content not JSON")
	}
	if body[0] != '{' {
		return mxerr.BadJSON("Content must be a JSON object")
	}
	body = exactKeys(body, reflect.TypeOf(v))
	if err := json.Unmarshal(body, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return mxerr.BadJSON("%s has the wrong type: expected %s", typeErr.Field, typeErr.Type)
		}
		return mxerr.BadJSON("Invalid JSON content")
	}
	return nil
}

// exactKeys returns the JSON value raw, to be decoded into a value of type t,
// without the object keys that name a struct field only when case is ignored.
// encoding/json matches keys case-insensitively, so {"Password": …} would
// fill the field of "password"; in Matrix, as in JSON, keys are exact, and a
// key of another case is an unknown key to ignore. Structs nested in fields,
// slices and maps are handled the same way. raw is returned unchanged when it
// has no such key.
func exactKeys(raw []byte, t reflect.Type) []byte {
	out, _ := dropInexactKeys(raw, t, 0)
	return out
}

func dropInexactKeys(raw []byte, t reflect.Type, depth int) ([]byte, bool) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || depth > 32 || reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return raw, false
	}
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil || obj == nil {
			return raw, false
		}
		fields := jsonFields(t)
		changed := false
		for k, v := range obj {
			if ft, ok := fields[k]; ok {
				if nv, c := dropInexactKeys(v, ft, depth+1); c {
					obj[k], changed = nv, true
				}
				continue
			}
			for name := range fields {
				if strings.EqualFold(name, k) {
					delete(obj, k)
					changed = true
					break
				}
			}
		}
		if !changed {
			return raw, false
		}
		out, err := json.Marshal(obj)
		if err != nil {
			return raw, false
		}
		return out, true
	case reflect.Slice, reflect.Array:
		var items []json.RawMessage
		if t.Elem().Kind() == reflect.Uint8 || json.Unmarshal(raw, &items) != nil {
			return raw, false
		}
		changed := false
		for i, it := range items {
			if nv, c := dropInexactKeys(it, t.Elem(), depth+1); c {
				items[i], changed = nv, true
			}
		}
		if !changed {
			return raw, false
		}
		out, err := json.Marshal(items)
		return out, err == nil
	case reflect.Map:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil || obj == nil {
			return raw, false
		}
		changed := false
		for k, v := range obj {
			if nv, c := dropInexactKeys(v, t.Elem(), depth+1); c {
				obj[k], changed = nv, true
			}
		}
		if !changed {
			return raw, false
		}
		out, err := json.Marshal(obj)
		return out, err == nil
	}
	return raw, false
}

// jsonFields maps the JSON names of a struct's fields, as encoding/json sees
// them (embedded structs included), to the fields' types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		if f.Anonymous && name == "" {
			et := ft
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				for k, v := range jsonFields(et) {
					if _, ok := fields[k]; !ok {
						fields[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = ft
	}
	return fields
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
