package clientapi_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/apitest"
)

// privacyPath is the client API path of a room with more segments, for
// the privacy tests.
func privacyPath(roomID string, parts ...string) string {
	p := "/_matrix/client/v3/rooms/" + url.PathEscape(roomID)
	for _, part := range parts {
		p += "/" + url.PathEscape(part)
	}
	return p
}

// TestPrivacyNoIPAddresses: with privacy.store_ip_addresses off (the
// default) no device record holds an IP address, and GET /devices shows
// none; on, the address is recorded. The alias log.ip_addresses works too.
func TestPrivacyNoIPAddresses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(c *config.Config)
		want   bool
	}{
		{"default", nil, false},
		{"store_ip_addresses", func(c *config.Config) { c.Privacy.StoreIPAddresses = true }, true},
		{"log.ip_addresses alias", func(c *config.Config) { c.Log.IPAddresses = true }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			apitest.ForEachServer(t, tc.change, func(t *testing.T, s *apitest.Server) {
				alice := s.Register("alice", "pw-alice-123")
				r := s.Do("GET", "/_matrix/client/v3/devices", alice.Token, nil).Expect(t, 200, "")
				devs, _ := r.JSON["devices"].([]any)
				if len(devs) != 1 {
					t.Fatalf("devices = %s", r.Body)
				}
				dev := devs[0].(map[string]any)
				ip, hasIP := dev["last_seen_ip"]
				if hasIP != tc.want {
					t.Errorf("last_seen_ip present = %v (%v), want %v; body %s", hasIP, ip, tc.want, r.Body)
				}
				if _, ok := dev["last_seen_ts"].(float64); !ok {
					t.Errorf("last_seen_ts missing: %s", r.Body)
				}
				stored, err := s.App.DB.Devices(context.Background(), alice.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got := stored[0].LastSeenIP != ""; got != tc.want {
					t.Errorf("stored last_seen_ip = %q, want recorded=%v", stored[0].LastSeenIP, tc.want)
				}
				if tc.want && !strings.Contains(stored[0].LastSeenIP, "127.0.0.1") {
					t.Errorf("stored last_seen_ip = %q, want the loopback address", stored[0].LastSeenIP)
				}
			})
		})
	}
}
