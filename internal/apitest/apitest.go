// Package apitest runs the real server over real HTTP on loopback for
// integration tests: one server per database engine, built by internal/app
// exactly as cmd/aula builds it, plus small helpers to call the API.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/app"
	"github.com/aula-chat/aula/storage/storagetest"
)

// ServerName is the server name of every test server.
const ServerName = "aula.test"

// SharedSecret is the registration shared secret of every test server.
const SharedSecret = "test-shared-secret-0123456789"

// Server is one running test server.
type Server struct {
	URL    string
	Config *config.Config
	App    *app.App
	T      testing.TB
}

// Config returns the configuration test servers start from: fast bcrypt,
// open registration with m.login.dummy, shared-secret registration on.
func Config(t testing.TB, dsn string) *config.Config {
	c := config.Default()
	c.ServerName = ServerName
	c.DataDir = t.TempDir()
	c.SigningKeyPath = filepath.Join(c.DataDir, "signing.key")
	c.Database = dsn
	c.PublicBaseURL = "https://" + ServerName + "/"
	c.Registration.Enabled = true
	c.Registration.SharedSecret = SharedSecret
	c.PasswordLogin.BcryptCost = 4
	c.Log.Level = "warn"
	return c
}

// ForEachServer runs fn against a fresh server on every database engine.
// change, if not nil, adjusts the configuration before the server starts.
func ForEachServer(t *testing.T, change func(c *config.Config), fn func(t *testing.T, s *Server)) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		c := Config(t, dsn)
		if change != nil {
			change(c)
		}
		fn(t, Start(t, c))
	})
}

// Start builds and serves a server with the given configuration until the
// test ends.
func Start(t testing.TB, c *config.Config) *Server {
	t.Helper()
	a := build(t, c)
	ts := httptest.NewServer(a.Handler)
	t.Cleanup(func() {
		ts.Close()
		a.Close()
	})
	return &Server{URL: ts.URL, Config: c, App: a, T: t}
}

// build validates c and builds the server on it, logging to the test.
func build(t testing.TB, c *config.Config) *app.App {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(context.Background(), c, log)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	return a
}

// testWriter sends server logs to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Response is a decoded API answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any // nil if the body is not a JSON object
}

// Errcode returns the body's errcode, or "".
func (r *Response) Errcode() string {
	s, _ := r.JSON["errcode"].(string)
	return s
}

// String returns JSON[key] as a string, or "".
func (r *Response) String(key string) string {
	s, _ := r.JSON[key].(string)
	return s
}

// Do sends a request. body may be nil, a string or []byte (sent as is), or
// any other value (sent as JSON). token, if not empty, goes in the
// Authorization header.
func (s *Server) Do(method, path, token string, body any) *Response {
	s.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			s.T.Fatalf("marshal request: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.T.Fatalf("new request: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		s.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.T.Fatalf("%s %s: read body: %v", method, path, err)
	}
	r := &Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
	_ = json.Unmarshal(raw, &r.JSON)
	return r
}

// Expect fails the test unless the response has the status and (if not
// empty) the errcode.
func (r *Response) Expect(t testing.TB, status int, errcode string) *Response {
	t.Helper()
	if r.Status != status || r.Errcode() != errcode {
		t.Fatalf("got %d %q, want %d %q; body: %s", r.Status, r.Errcode(), status, errcode, r.Body)
	}
	return r
}

// User is a registered test account with one logged-in device.
type User struct {
	ID       string
	Token    string
	DeviceID string
	Password string
}

// Register creates an account through POST /register (m.login.dummy) and
// returns it logged in.
func (s *Server) Register(localpart, password string) User {
	s.T.Helper()
	r := s.Do("POST", "/_matrix/client/v3/register", "", map[string]any{
		"username": localpart, "password": password, "auth": map[string]string{"type": "m.login.dummy"},
	}).Expect(s.T, 200, "")
	return User{ID: r.String("user_id"), Token: r.String("access_token"), DeviceID: r.String("device_id"), Password: password}
}

// RegisterAdmin creates an account like Register and makes it a server
// admin.
func (s *Server) RegisterAdmin(localpart, password string) User {
	s.T.Helper()
	u := s.Register(localpart, password)
	if err := s.App.DB.SetAdmin(context.Background(), u.ID, true); err != nil {
		s.T.Fatalf("make %s admin: %v", u.ID, err)
	}
	return u
}

// Login logs in with a password and returns the new device's session.
func (s *Server) Login(localpart, password string) User {
	s.T.Helper()
	r := s.Do("POST", "/_matrix/client/v3/login", "", map[string]any{
		"type": "m.login.password", "identifier": map[string]string{"type": "m.id.user", "user": localpart}, "password": password,
	}).Expect(s.T, 200, "")
	return User{ID: r.String("user_id"), Token: r.String("access_token"), DeviceID: r.String("device_id"), Password: password}
}

// PasswordAuth is the auth dict completing m.login.password for u.
func (u User) PasswordAuth(session string) map[string]any {
	return map[string]any{
		"type": "m.login.password", "session": session, "password": u.Password,
		"identifier": map[string]string{"type": "m.id.user", "user": u.ID},
	}
}

// roomPath is the client API path of a room, with more path segments.
func roomPath(roomID string, parts ...string) string {
	p := "/_matrix/client/v3/rooms/" + url.PathEscape(roomID)
	for _, part := range parts {
		p += "/" + url.PathEscape(part)
	}
	return p
}

// CreateRoom creates a room as u with the given createRoom body (nil: {})
// and returns its ID.
func (s *Server) CreateRoom(u User, body any) string {
	s.T.Helper()
	if body == nil {
		body = map[string]any{}
	}
	r := s.Do("POST", "/_matrix/client/v3/createRoom", u.Token, body).Expect(s.T, 200, "")
	id := r.String("room_id")
	if !strings.HasPrefix(id, "!") {
		s.T.Fatalf("createRoom: room_id %q in %s", id, r.Body)
	}
	return id
}

// Invite has inviter invite u into the room.
func (s *Server) Invite(inviter User, roomID string, u User) {
	s.T.Helper()
	s.Do("POST", roomPath(roomID, "invite"), inviter.Token, map[string]string{"user_id": u.ID}).Expect(s.T, 200, "")
}

// Join makes u join the room.
func (s *Server) Join(u User, roomID string) {
	s.T.Helper()
	s.Do("POST", roomPath(roomID, "join"), u.Token, map[string]any{}).Expect(s.T, 200, "")
}

// Leave makes u leave the room.
func (s *Server) Leave(u User, roomID string) {
	s.T.Helper()
	s.Do("POST", roomPath(roomID, "leave"), u.Token, map[string]any{}).Expect(s.T, 200, "")
}

// txnCounter makes transaction IDs unique within a test binary.
var txnCounter atomic.Int64

// Send sends an event of the given type into the room and returns its ID.
func (s *Server) Send(u User, roomID, eventType string, content any) string {
	s.T.Helper()
	txn := "t" + strconv.FormatInt(txnCounter.Add(1), 10)
	r := s.Do("PUT", roomPath(roomID, "send", eventType, txn), u.Token, content).Expect(s.T, 200, "")
	id := r.String("event_id")
	if !strings.HasPrefix(id, "$") {
		s.T.Fatalf("send: bad event_id in %s", r.Body)
	}
	return id
}

// SendText sends a plain text message and returns its event ID.
func (s *Server) SendText(u User, roomID, body string) string {
	s.T.Helper()
	return s.Send(u, roomID, "m.room.message", map[string]string{"msgtype": "m.text", "body": body})
}

// StartPublic is Start for tests that follow browser redirects back to the
// server (single sign-on): public_baseurl is set to the server's own
// loopback URL before the app is built. setup, if not nil, runs with that
// URL first (it may change c) and returns a wrapper for the handler, e.g.
// to mount a development identity provider on the same listener.
func StartPublic(t testing.TB, c *config.Config, setup func(baseURL string, c *config.Config) func(http.Handler) http.Handler) *Server {
	t.Helper()
	var handler http.Handler = http.NotFoundHandler()
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	base := "http://" + ts.Listener.Addr().String() + "/"
	c.PublicBaseURL = base
	var wrap func(http.Handler) http.Handler
	if setup != nil {
		wrap = setup(base, c)
	}
	a := build(t, c)
	handler = a.Handler
	if wrap != nil {
		handler = wrap(a.Handler)
	}
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		a.Close()
	})
	return &Server{URL: strings.TrimSuffix(base, "/"), Config: c, App: a, T: t}
}
