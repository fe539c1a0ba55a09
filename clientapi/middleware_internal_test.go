package clientapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/mxerr"
)

// confNewAPI builds the API without services, which is enough for the
// public endpoints and the middleware, and logs into buf.
func confNewAPI(t *testing.T, change func(c *config.Config)) (*API, *bytes.Buffer) {
	t.Helper()
	c := config.Default()
	c.ServerName = "aula.test"
	c.PublicBaseURL = "https://aula.test/"
	if change != nil {
		change(c)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return New(c, log, Services{}), &buf
}

func confDecodeBody(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, rec.Body)
	}
	return m
}

func TestRecoverTurnsPanicInto500(t *testing.T) {
	a, logs := confNewAPI(t, nil)
	secret := "secret-detail-from-panic-0xdeadbeef"
	for name, h := range map[string]http.Handler{
		"panic before writing": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			panic(secret)
		}),
		"panic with an error": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			panic(fmt.Errorf("wrapped: %s", secret))
		}),
		"nil map write": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var m map[string]int
			m[secret]++
		}),
	} {
		logs.Reset()
		// The middleware chain in the order the router applies it.
		chain := a.withAccessLog(withCORS(a.withRecover(a.withBodyLimit(h))))
		rec := httptest.NewRecorder()
		chain.ServeHTTP(rec, httptest.NewRequest("GET", "/_matrix/client/v3/boom", nil))

		if rec.Code != http.StatusInternalServerError {
			t.Errorf("%s: status %d, want 500", name, rec.Code)
		}
		body := confDecodeBody(t, rec)
		if body["errcode"] != "M_UNKNOWN" || body["error"] != "Internal server error" || len(body) != 2 {
			t.Errorf("%s: body %v", name, body)
		}
		if strings.Contains(rec.Body.String(), secret) || strings.Contains(rec.Body.String(), "goroutine") {
			t.Errorf("%s: body leaks the panic: %s", name, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", name, ct)
		}
		if rec.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: no CORS headers on the 500", name)
		}
		// The cause and the stack go to the log, and the access log line
		// records the 500.
		if !strings.Contains(logs.String(), "handler panicked") || !strings.Contains(logs.String(), "stack=") {
			t.Errorf("%s: panic not logged with its stack: %s", name, logs)
		}
		if !strings.Contains(logs.String(), "status=500") {
			t.Errorf("%s: access log does not record the 500: %s", name, logs)
		}
	}
}

func TestRecoverOverRealHTTP(t *testing.T) {
	// Over a real connection a panic must give the client a response, not a
	// dropped connection (which net/http would do without withRecover).
	a, _ := confNewAPI(t, nil)
	a.router.root.Handle("/_matrix/client/v3/test-panic", a.public(func(r *http.Request) (any, error) {
		panic("boom")
	})).Methods("GET")
	srv := httptest.NewServer(a)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/_matrix/client/v3/test-panic")
	if err != nil {
		t.Fatalf("request failed instead of answering 500: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 500 || body["errcode"] != "M_UNKNOWN" {
		t.Errorf("got %d %v", resp.StatusCode, body)
	}
}

func TestRecoverLetsAbortHandlerThrough(t *testing.T) {
	a, _ := confNewAPI(t, nil)
	h := a.withRecover(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	defer func() {
		if p := recover(); p != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler", p)
		}
	}()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	t.Error("ErrAbortHandler was swallowed")
}

func TestWriteResultHidesInternalErrors(t *testing.T) {
	a, logs := confNewAPI(t, nil)
	cause := errors.New(`pq: relation "users" does not exist at 10.1.2.3:5432`)
	for name, err := range map[string]error{
		"plain error":    cause,
		"wrapped error":  fmt.Errorf("storage: user @alice:aula.test: %w", cause),
		"mxerr.Internal": mxerr.Internal(cause),
	} {
		logs.Reset()
		rec := httptest.NewRecorder()
		a.writeResult(rec, httptest.NewRequest("GET", "/x", nil), nil, err)
		if rec.Code != 500 {
			t.Errorf("%s: status %d", name, rec.Code)
		}
		body := confDecodeBody(t, rec)
		if body["errcode"] != "M_UNKNOWN" || body["error"] != "Internal server error" || len(body) != 2 {
			t.Errorf("%s: body %v", name, body)
		}
		if !strings.Contains(logs.String(), "does not exist") {
			t.Errorf("%s: cause not logged: %s", name, logs)
		}
	}

	// A Matrix error that wraps an internal cause shows its own message only.
	rec := httptest.NewRecorder()
	e := mxerr.Forbidden("Nope")
	e.Err = cause
	a.writeResult(rec, httptest.NewRequest("GET", "/x", nil), nil, e)
	if rec.Code != 403 || strings.Contains(rec.Body.String(), "pq:") {
		t.Errorf("got %d %s", rec.Code, rec.Body)
	}
}

func TestAccessLogIPAddresses(t *testing.T) {
	for _, on := range []bool{false, true} {
		a, logs := confNewAPI(t, func(c *config.Config) { c.Log.IPAddresses = on })
		for _, path := range []string{"/_matrix/client/versions", "/_matrix/client/v3/unknown", "/.well-known/matrix/client"} {
			logs.Reset()
			req := httptest.NewRequest("GET", path, nil)
			req.RemoteAddr = "192.0.2.77:54321"
			req.Header.Set("X-Forwarded-For", "198.51.100.9")
			rec := httptest.NewRecorder()
			a.ServeHTTP(rec, req)

			line := logs.String()
			if strings.Count(line, "\n") != 1 || !strings.Contains(line, "msg=request") {
				t.Fatalf("want one access log line, got %q", line)
			}
			if !strings.Contains(line, "method=GET") || !strings.Contains(line, fmt.Sprintf("status=%d", rec.Code)) {
				t.Errorf("access log line lacks method or status: %q", line)
			}
			if strings.Contains(line, "198.51.100.9") {
				t.Errorf("access log has the X-Forwarded-For address: %q", line)
			}
			hasIP := strings.Contains(line, "192.0.2.77")
			if hasIP != on {
				t.Errorf("log.ip_addresses=%v: IP in access log line = %v: %q", on, hasIP, line)
			}
			if on && !strings.Contains(line, "ip=192.0.2.77") {
				t.Errorf("IP logged without its port stripped or under another key: %q", line)
			}
		}
	}
}

func TestAccessLogRouteIsTemplate(t *testing.T) {
	// The log names the route, never the concrete path, so user IDs and
	// similar path values stay out of the access log.
	a, logs := confNewAPI(t, nil)
	req := httptest.NewRequest("GET", "/_matrix/client/v3/profile/%40secret-user%3Aaula.test", nil)
	a.ServeHTTP(httptest.NewRecorder(), req)
	line := logs.String()
	if strings.Contains(line, "secret-user") {
		t.Errorf("access log contains the path value: %q", line)
	}
	if !strings.Contains(line, "/profile/{userId}") {
		t.Errorf("access log lacks the route template: %q", line)
	}
}

func TestUnmarshalObjectKeysAreExact(t *testing.T) {
	type inner struct {
		User string `json:"user"`
	}
	type embedded struct {
		Session string `json:"session"`
	}
	type req struct {
		embedded
		Password   *string          `json:"password"`
		Type       string           `json:"type"`
		Identifier inner            `json:"identifier"`
		List       []inner          `json:"list"`
		ByName     map[string]inner `json:"by_name"`
		Raw        json.RawMessage  `json:"raw"`
		Untagged   string
	}
	var got req
	body := `{"Password":"wrong case","type":"m.login.password","TYPE":"shadow","Session":"S",
		"identifier":{"User":"mallory","user":"alice"},"list":[{"USER":"x"},{"user":"y"}],
		"by_name":{"a":{"User":"x"}},"raw":{"User":"kept"},"untagged":"lower","Untagged":"exact"}`
	if err := unmarshalObject([]byte(body), &got, false); err != nil {
		t.Fatal(err)
	}
	want := req{
		Type: "m.login.password", Identifier: inner{User: "alice"},
		List: []inner{{}, {User: "y"}}, ByName: map[string]inner{"a": {}},
		Raw: json.RawMessage(`{"User":"kept"}`), Untagged: "exact",
	}
	if got.Password != nil || got.Session != "" || got.Type != want.Type || got.Identifier != want.Identifier ||
		len(got.List) != 2 || got.List[0] != want.List[0] || got.List[1] != want.List[1] ||
		got.ByName["a"] != want.ByName["a"] || string(got.Raw) != string(want.Raw) || got.Untagged != "exact" {
		t.Errorf("got %+v, want %+v", got, want)
	}

	// Exact keys still decode, and the order of duplicate keys is JSON's
	// usual last-wins.
	var ok req
	if err := unmarshalObject([]byte(`{"password":"p","session":"s","type":"a","type":"b"}`), &ok, false); err != nil {
		t.Fatal(err)
	}
	if ok.Password == nil || *ok.Password != "p" || ok.Session != "s" || ok.Type != "b" {
		t.Errorf("got %+v", ok)
	}
}

func TestUnmarshalObjectErrors(t *testing.T) {
	var v struct {
		N int `json:"n"`
	}
	for body, code := range map[string]string{
		``:                 "M_NOT_JSON",
		`{`:                "M_NOT_JSON",
		"{\"n\":\"\xff\"}": "M_NOT_JSON",
		`[]`:               "M_BAD_JSON",
		`null`:             "M_BAD_JSON",
		`{"n":"1"}`:        "M_BAD_JSON",
		`{"n":1.5}`:        "M_BAD_JSON",
	} {
		err := unmarshalObject([]byte(body), &v, false)
		e, ok := mxerr.As(err)
		if !ok || e.Code != code || e.Status != 400 {
			t.Errorf("%q: got %v, want 400 %s", body, err, code)
		}
	}
	if err := unmarshalObject(nil, &v, true); err != nil {
		t.Errorf("empty body with allowEmpty: %v", err)
	}
}
