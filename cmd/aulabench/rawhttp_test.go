package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRawConn(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer tok" || r.Method != "PUT" || r.Header.Get("Content-Type") != "application/json" ||
			string(body) != `{"body":"hi","msgtype":"m.text"}` || !strings.HasPrefix(r.URL.EscapedPath(), "/_matrix/client/v3/rooms/%21r:x/send/m.room.message/") {
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"errcode":"M_BAD_JSON","error":"unexpected request %s %s %s"}`, r.Method, r.URL.EscapedPath(), body)
			return
		}
		switch {
		case strings.HasSuffix(r.URL.Path, "/chunked"):
			w.Write([]byte(`{"event_id":`))
			w.(http.Flusher).Flush() // forces chunked encoding
			w.Write([]byte(`"$chunked"}`))
		case strings.HasSuffix(r.URL.Path, "/close"):
			w.Header().Set("Connection", "close")
			w.Write([]byte(`{"event_id":"$closed"}`))
		case strings.HasSuffix(r.URL.Path, "/forbidden"):
			w.WriteHeader(403)
			w.Write([]byte(`{"errcode":"M_FORBIDDEN","error":"no"}`))
		case strings.HasSuffix(r.URL.Path, "/slow"):
			time.Sleep(300 * time.Millisecond)
			w.Write([]byte(`{"event_id":"$slow"}`))
		default:
			w.Write([]byte(`{"event_id":"$plain"}`))
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	c, ok := newRawConn(srv.URL, 100*time.Millisecond)
	if !ok {
		t.Fatalf("newRawConn(%s) refused", srv.URL)
	}
	defer c.close()
	for _, tc := range []struct{ txn, want string }{
		{"a", "$plain"}, {"chunked", "$chunked"}, {"b", "$plain"}, {"close", "$closed"}, {"c", "$plain"},
	} {
		id, err := c.send(t.Context(), "tok", "!r:x", tc.txn, "hi")
		if err != nil || id != tc.want {
			t.Errorf("send %s: %q, %v; want %q", tc.txn, id, err, tc.want)
		}
	}
	if n := conns.Load(); n != 2 { // one kept alive over four requests, a second after Connection: close
		t.Errorf("%d connections, want 2", n)
	}
	var apiErr *apiError
	if _, err := c.send(t.Context(), "tok", "!r:x", "forbidden", "hi"); !errors.As(err, &apiErr) || apiErr.Status != 403 || apiErr.Errcode != "M_FORBIDDEN" {
		t.Errorf("403: %v", err)
	}
	if _, err := c.send(t.Context(), "tok", "!r:x", "slow", "hi"); err == nil {
		t.Error("a request slower than the timeout succeeded")
	}
	if id, err := c.send(t.Context(), "tok", "!r:x", "d", "hi"); err != nil || id != "$plain" { // a new connection after the timeout
		t.Errorf("after a timeout: %q, %v", id, err)
	}

	for _, target := range []string{"https://127.0.0.1:1", "http://example.org", "http://10.0.0.1:8008"} {
		if _, ok := newRawConn(target, time.Second); ok {
			t.Errorf("newRawConn(%s) accepted", target)
		}
	}
}
