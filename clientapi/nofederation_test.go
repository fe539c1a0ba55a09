package clientapi_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aula-chat/aula/internal/apitest"
)

// outboundGuard replaces http.DefaultTransport with one that may only reach
// the test server, and records every other address dialled.
type outboundGuard struct {
	mu      sync.Mutex
	dialled []string
}

func guardOutbound(t *testing.T, allowed string) *outboundGuard {
	g := &outboundGuard{}
	orig := http.DefaultTransport
	tr := orig.(*http.Transport).Clone()
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == allowed {
			return d.DialContext(ctx, network, addr)
		}
		g.mu.Lock()
		g.dialled = append(g.dialled, addr)
		g.mu.Unlock()
		return nil, errors.New("outbound connections are blocked in this test")
	}
	http.DefaultTransport = tr
	t.Cleanup(func() { http.DefaultTransport = orig })
	return g
}

func (g *outboundGuard) attempts() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.dialled...)
}

// TestNoFederationOutbound proves that users, rooms and aliases of other
// servers are refused at once, without any outbound connection: the
// "remote" server is a listener that counts connections, ordinary HTTP
// outbound is blocked and recorded, and every request must answer within
// 100 ms with the right status.
func TestNoFederationOutbound(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		room := s.CreateRoom(alice, map[string]any{})

		// The "other server": a listener on this machine that counts
		// whoever connects. A federating server would connect to it
		// directly (an IP literal with a port needs no discovery).
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var connections atomic.Int64
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				connections.Add(1)
				c.Close()
			}
		}()
		testHost := strings.TrimPrefix(s.URL, "http://")
		guard := guardOutbound(t, testHost)

		for _, remote := range []string{ln.Addr().String(), "elsewhere.example"} {
			user, alias, roomID := "@x:"+remote, "#room:"+remote, "!id:"+remote
			v3 := "/_matrix/client/v3"
			// empty reports a problem unless the object at key has no
			// entry for the remote user.
			empty := func(key string) func(r *apitest.Response) bool {
				return func(r *apitest.Response) bool {
					m, ok := r.JSON[key].(map[string]any)
					_, found := m[user]
					return ok && !found
				}
			}
			for _, tc := range []struct {
				method, path string
				body         any
				status       int
				errcode      string
				ok           func(r *apitest.Response) bool // more checks of a 200 answer
			}{
				{"POST", v3 + "/rooms/" + url.PathEscape(room) + "/invite", map[string]string{"user_id": user}, 403, "M_FORBIDDEN", nil},
				{"POST", v3 + "/createRoom", map[string]any{"invite": []string{user}}, 403, "M_FORBIDDEN", nil},
				{"POST", v3 + "/join/" + url.PathEscape(alias), map[string]any{}, 403, "M_FORBIDDEN", nil},
				{"POST", v3 + "/join/" + url.PathEscape(roomID) + "?server_name=" + url.QueryEscape(remote) + "&via=" + url.QueryEscape(remote), map[string]any{}, 403, "M_FORBIDDEN", nil},
				{"POST", v3 + "/rooms/" + url.PathEscape(roomID) + "/join", map[string]any{}, 403, "M_FORBIDDEN", nil},
				{"POST", v3 + "/knock/" + url.PathEscape(alias), map[string]any{}, 403, "M_FORBIDDEN", nil},
				{"POST", v3 + "/knock/" + url.PathEscape(roomID) + "?via=" + url.QueryEscape(remote), map[string]any{}, 403, "M_FORBIDDEN", nil},
				{"GET", v3 + "/directory/room/" + url.PathEscape(alias), nil, 403, "M_FORBIDDEN", nil},
				{"GET", "/_matrix/client/v1/room_summary/" + url.PathEscape(roomID) + "?via=" + url.QueryEscape(remote), nil, 403, "M_FORBIDDEN", nil},
				{"GET", "/_matrix/client/v1/room_summary/" + url.PathEscape(alias), nil, 403, "M_FORBIDDEN", nil},
				{"GET", "/_matrix/client/v1/rooms/" + url.PathEscape(roomID) + "/hierarchy", nil, 403, "M_FORBIDDEN", nil},
				{"GET", v3 + "/publicRooms?server=" + url.QueryEscape(remote), nil, 403, "M_FORBIDDEN", nil},
				// Profiles and keys of remote users: empty answers.
				{"GET", v3 + "/profile/" + url.PathEscape(user), nil, 404, "M_NOT_FOUND", nil},
				{"GET", v3 + "/profile/" + url.PathEscape(user) + "/displayname", nil, 404, "M_NOT_FOUND", nil},
				{"GET", v3 + "/profile/" + url.PathEscape(user) + "/avatar_url", nil, 404, "M_NOT_FOUND", nil},
				{"POST", v3 + "/keys/query", map[string]any{"device_keys": map[string]any{user: []string{}}}, 200, "", empty("device_keys")},
				{"POST", v3 + "/keys/claim", map[string]any{"one_time_keys": map[string]any{user: map[string]string{"DEV": "signed_curve25519"}}}, 200, "", empty("one_time_keys")},
				{"POST", v3 + "/user_directory/search", map[string]any{"search_term": user}, 200, "", func(r *apitest.Response) bool {
					res, ok := r.JSON["results"].([]any)
					return ok && len(res) == 0
				}},
			} {
				start := time.Now()
				r := s.Do(tc.method, tc.path, alice.Token, tc.body)
				took := time.Since(start)
				if r.Status != tc.status || r.Errcode() != tc.errcode {
					t.Errorf("%s %s: %d %s, want %d %q", tc.method, tc.path, r.Status, r.Body, tc.status, tc.errcode)
				}
				if took > 100*time.Millisecond {
					// Once more, in case the shared test machine was busy:
					// a connection attempt would be slow every time.
					start = time.Now()
					s.Do(tc.method, tc.path, alice.Token, tc.body)
					took = time.Since(start)
				}
				if took > 100*time.Millisecond {
					t.Errorf("%s %s took %s (more than 100 ms)", tc.method, tc.path, took)
				}
				if tc.errcode == "M_FORBIDDEN" && !strings.Contains(strings.ToLower(r.String("error")), "federation is disabled") {
					t.Errorf("%s %s: error %q does not say federation is disabled", tc.method, tc.path, r.String("error"))
				}
				if tc.ok != nil && r.Status == 200 && !tc.ok(r) {
					t.Errorf("%s %s: answer %s is not empty for %s", tc.method, tc.path, r.Body, user)
				}
			}
		}
		// Anything started in the background would have connected by now.
		time.Sleep(200 * time.Millisecond)
		if n := connections.Load(); n != 0 {
			t.Errorf("the server connected %d times to the other server", n)
		}
		if a := guard.attempts(); len(a) != 0 {
			t.Errorf("outbound connections attempted: %v", a)
		}
	})
}
