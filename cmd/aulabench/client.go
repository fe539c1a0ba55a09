package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// client calls the Matrix client-server API of one loopback server.
type client struct {
	base string // scheme://host:port, no trailing slash
	http *http.Client
}

// newClient checks that target is a loopback URL and returns a client whose
// connections can only reach loopback addresses.
func newClient(target string, conns int, timeout time.Duration) (*client, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("target %q: scheme must be http or https", target)
	}
	if err := checkLoopbackHost(u.Hostname()); err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: loopbackOnly}
	transport := &http.Transport{
		DialContext:         dialer.DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     30 * time.Second,
	}
	c := &client{base: strings.TrimSuffix(u.Scheme+"://"+u.Host, "/")}
	c.http = &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("aulabench does not follow redirects")
		},
	}
	return c, nil
}

// withTimeout returns a client sharing c's connections whose requests time
// out after d: setup requests (registration, the first logins) get longer
// than measured ones, since bcrypt on a busy machine can take seconds.
func (c *client) withTimeout(d time.Duration) *client {
	hc := *c.http
	hc.Timeout = d
	return &client{base: c.base, http: &hc}
}

// checkLoopbackHost accepts "localhost" and loopback IP literals only.
func checkLoopbackHost(host string) error {
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("target host %q is not loopback (127.0.0.0/8, ::1 or localhost): aulabench only loads this machine", host)
}

// loopbackOnly is a net.Dialer Control function: it refuses to connect to
// any address that is not loopback, whatever a name resolved to.
func loopbackOnly(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing to connect to %s: not a loopback address", address)
	}
	return nil
}

// apiError is a non-2xx answer.
type apiError struct {
	Status  int
	Errcode string
	Msg     string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Errcode, e.Msg) }

// errorKind names an error for counting: "HTTP 429 M_LIMIT_EXCEEDED", or the
// text of a transport error.
func errorKind(err error) string {
	var e *apiError
	if errors.As(err, &e) {
		return fmt.Sprintf("HTTP %d %s", e.Status, e.Errcode)
	}
	return err.Error()
}

// call sends one request with an optional JSON body and token, and decodes a
// 2xx JSON answer into out (if not nil).
func (c *client) call(ctx context.Context, method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Errcode string `json:"errcode"`
			Error   string `json:"error"`
		}
		json.Unmarshal(data, &e) // a non-JSON body leaves the fields empty
		return &apiError{Status: resp.StatusCode, Errcode: e.Errcode, Msg: e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: bad JSON answer: %w", method, path, err)
		}
	}
	return nil
}

// tokens is the part of a login or registration answer the bench uses.
type tokens struct {
	UserID      string `json:"user_id"`
	AccessToken string `json:"access_token"`
	DeviceID    string `json:"device_id"`
}

// registerShared creates user with Synapse-compatible shared-secret
// registration. It reports false, and no error, when the user exists.
func (c *client) registerShared(ctx context.Context, secret, user, password string) (bool, error) {
	t, created, err := c.sharedSecretRegister(ctx, secret, user, password)
	if err != nil || !created {
		return false, err
	}
	// Registration opens a device; drop it so only the bench's own remain.
	return true, c.logout(ctx, t.AccessToken)
}

// sharedSecretRegister creates user with Synapse-compatible shared-secret
// registration. created is false, without error, when the user exists.
func (c *client) sharedSecretRegister(ctx context.Context, secret, user, password string) (t tokens, created bool, err error) {
	var n struct {
		Nonce string `json:"nonce"`
	}
	if err := c.call(ctx, "GET", "/_synapse/admin/v1/register", "", nil, &n); err != nil {
		return tokens{}, false, fmt.Errorf("nonce: %w", err)
	}
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(n.Nonce + "\x00" + user + "\x00" + password + "\x00notadmin"))
	err = c.call(ctx, "POST", "/_synapse/admin/v1/register", "", map[string]any{
		"nonce":    n.Nonce,
		"username": user,
		"password": password,
		"admin":    false,
		"mac":      hex.EncodeToString(mac.Sum(nil)),
	}, &t)
	var e *apiError
	if errors.As(err, &e) && e.Errcode == "M_USER_IN_USE" {
		return tokens{}, false, nil
	}
	return t, err == nil, err
}

func (c *client) login(ctx context.Context, user, password string) (tokens, error) {
	var t tokens
	err := c.call(ctx, "POST", "/_matrix/client/v3/login", "", map[string]any{
		"type":                        "m.login.password",
		"identifier":                  map[string]string{"type": "m.id.user", "user": user},
		"password":                    password,
		"initial_device_display_name": "aulabench",
	}, &t)
	if err == nil && t.AccessToken == "" {
		err = errors.New("login answer has no access_token")
	}
	return t, err
}

func (c *client) whoami(ctx context.Context, token string) (string, error) {
	var w struct {
		UserID string `json:"user_id"`
	}
	err := c.call(ctx, "GET", "/_matrix/client/v3/account/whoami", token, nil, &w)
	if err == nil && w.UserID == "" {
		err = errors.New("whoami answer has no user_id")
	}
	return w.UserID, err
}

func (c *client) logout(ctx context.Context, token string) error {
	return c.call(ctx, "POST", "/_matrix/client/v3/logout", token, map[string]any{}, nil)
}

// createRoom creates a private room with the given users invited (rooms
// are closed on aula) and returns its ID.
func (c *client) createRoom(ctx context.Context, token string, invite []string) (string, error) {
	var out struct {
		RoomID string `json:"room_id"`
	}
	err := c.call(ctx, "POST", "/_matrix/client/v3/createRoom", token, map[string]any{"preset": "private_chat", "invite": invite}, &out)
	return out.RoomID, err
}

// join makes the token's user join a room.
func (c *client) join(ctx context.Context, token, roomID string) error {
	return c.call(ctx, "POST", "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/join", token, map[string]any{}, nil)
}

// send sends one text message and returns its event ID.
func (c *client) send(ctx context.Context, token, roomID, txnID, body string) (string, error) {
	var out struct {
		EventID string `json:"event_id"`
	}
	err := c.call(ctx, "PUT", "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/send/m.room.message/"+url.PathEscape(txnID),
		token, map[string]string{"msgtype": "m.text", "body": body}, &out)
	return out.EventID, err
}
