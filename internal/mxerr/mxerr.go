// Package mxerr defines the Matrix error type that services return and the
// HTTP layer writes as {"errcode": "M_…", "error": "…"}.
package mxerr

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is a failure that a client should see as a Matrix error. Err, when set,
// is the internal cause: it is logged but never sent to the client.
type Error struct {
	Status int            // HTTP status code
	Code   string         // Matrix errcode, e.g. M_FORBIDDEN
	Msg    string         // human-readable message for the client
	Extra  map[string]any // additional top-level fields of the JSON body
	Err    error          // internal cause, never shown to the client
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Msg, e.Err)
	}
	return e.Code + ": " + e.Msg
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// Body returns the JSON body sent to the client. An error without a Code
// (the first step of user-interactive auth) has only its Extra fields.
func (e *Error) Body() map[string]any {
	b := make(map[string]any, len(e.Extra)+2)
	for k, v := range e.Extra {
		b[k] = v
	}
	if e.Code != "" {
		b["errcode"] = e.Code
		b["error"] = e.Msg
	}
	return b
}

// With returns a copy of e with an extra JSON field.
func (e *Error) With(key string, value any) *Error {
	c := *e
	c.Extra = make(map[string]any, len(e.Extra)+1)
	for k, v := range e.Extra {
		c.Extra[k] = v
	}
	c.Extra[key] = value
	return &c
}

// As reports whether err is (or wraps) a Matrix error and returns it.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// New returns a Matrix error with the given status, code and message.
func New(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Constructors for the errors the spec names most often.

// Forbidden is 403 M_FORBIDDEN.
func Forbidden(format string, args ...any) *Error {
	return New(http.StatusForbidden, "M_FORBIDDEN", format, args...)
}

// BadJSON is 400 M_BAD_JSON: well-formed JSON with wrong content.
func BadJSON(format string, args ...any) *Error {
	return New(http.StatusBadRequest, "M_BAD_JSON", format, args...)
}

// NotJSON is 400 M_NOT_JSON: the body is not JSON at all.
func NotJSON(format string, args ...any) *Error {
	return New(http.StatusBadRequest, "M_NOT_JSON", format, args...)
}

// InvalidParam is 400 M_INVALID_PARAM.
func InvalidParam(format string, args ...any) *Error {
	return New(http.StatusBadRequest, "M_INVALID_PARAM", format, args...)
}

// MissingParam is 400 M_MISSING_PARAM.
func MissingParam(format string, args ...any) *Error {
	return New(http.StatusBadRequest, "M_MISSING_PARAM", format, args...)
}

// NotFound is 404 M_NOT_FOUND.
func NotFound(format string, args ...any) *Error {
	return New(http.StatusNotFound, "M_NOT_FOUND", format, args...)
}

// Unrecognized is M_UNRECOGNIZED with the given status (404 or 405).
func Unrecognized(status int, format string, args ...any) *Error {
	return New(status, "M_UNRECOGNIZED", format, args...)
}

// Unknown is 400 M_UNKNOWN.
func Unknown(format string, args ...any) *Error {
	return New(http.StatusBadRequest, "M_UNKNOWN", format, args...)
}

// MissingToken is 401 M_MISSING_TOKEN.
func MissingToken() *Error {
	return New(http.StatusUnauthorized, "M_MISSING_TOKEN", "Missing access token")
}

// UnknownToken is 401 M_UNKNOWN_TOKEN; softLogout sets the soft_logout flag.
func UnknownToken(softLogout bool) *Error {
	e := New(http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "Unknown or expired access token")
	if softLogout {
		e.Extra = map[string]any{"soft_logout": true}
	}
	return e
}

// UserInUse is 400 M_USER_IN_USE.
func UserInUse() *Error {
	return New(http.StatusBadRequest, "M_USER_IN_USE", "User ID already taken")
}

// InvalidUsername is 400 M_INVALID_USERNAME.
func InvalidUsername(format string, args ...any) *Error {
	return New(http.StatusBadRequest, "M_INVALID_USERNAME", format, args...)
}

// TooLarge is 413 M_TOO_LARGE.
func TooLarge(format string, args ...any) *Error {
	return New(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", format, args...)
}

// LimitExceeded is 429 M_LIMIT_EXCEEDED with retry_after_ms.
func LimitExceeded(retryAfterMS int64) *Error {
	return New(http.StatusTooManyRequests, "M_LIMIT_EXCEEDED", "Too many requests").With("retry_after_ms", retryAfterMS)
}

// Internal is 500 M_UNKNOWN wrapping an internal cause that is logged, not shown.
func Internal(err error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: "M_UNKNOWN", Msg: "Internal server error", Err: err}
}
