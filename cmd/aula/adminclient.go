package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/app"
)

// adminClient sends admin API requests to a running server over its admin
// socket (admin_socket), so that commands which write room events run in
// the server, the one process that numbers them.
type adminClient struct {
	path string
	http *http.Client
}

// connectAdminSocket returns a client for the running server's admin
// socket, or nil when no server is running: admin_socket is off, there is
// no socket file, or nothing answers on it (a stale file). Any other
// failure, e.g. no permission to open the socket, is an error: a server
// may be running, so the command must not open the database itself.
func connectAdminSocket(cfg *config.Config) (*adminClient, error) {
	path := cfg.AdminSocketPath()
	if path == "" {
		return nil, nil
	}
	conn, err := net.DialTimeout("unix", path, 5*time.Second)
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w (run the command as the server's user)", path, err)
	}
	conn.Close()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &adminClient{path: path, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", path)
		},
	}}}, nil
}

// apiError is an error answer of the admin API: its Matrix error message.
type apiError struct {
	Status int
	Code   string
	Msg    string
}

func (e *apiError) Error() string { return e.Msg }

// do sends method path with body as JSON (nil: none) through the socket,
// acting as the user actAs ("" for the default operator, the server
// notices account), and decodes a 200 answer into out. Error answers are
// *apiError.
func (c *adminClient) do(ctx context.Context, method, path, actAs string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	u := &url.URL{Scheme: "http", Host: "aula-admin-socket", Path: path}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if actAs != "" {
		req.Header.Set(app.OperatorUserHeader, actAs)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin socket %s: %w", c.path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("admin socket %s: %w", c.path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Code string `json:"errcode"`
			Msg  string `json:"error"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Msg == "" {
			e.Msg = fmt.Sprintf("the server answered %s", resp.Status)
		}
		return &apiError{Status: resp.StatusCode, Code: e.Code, Msg: e.Msg}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("admin socket %s: bad answer: %w", c.path, err)
	}
	return nil
}
