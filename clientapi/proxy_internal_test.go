package clientapi

import (
	"net/http/httptest"
	"testing"

	"github.com/aula-chat/aula/config"
)

func TestClientAddr(t *testing.T) {
	cfg := config.Default()
	cfg.HTTP.TrustedProxies = []string{"10.0.0.0/8", "127.0.0.1"}
	a := &API{cfg: cfg}
	for _, p := range cfg.HTTP.TrustedProxies {
		prefix, err := config.ParseProxy(p)
		if err != nil {
			t.Fatal(err)
		}
		a.proxies = append(a.proxies, prefix)
	}
	for _, tt := range []struct {
		name, peer string
		forwarded  []string
		want       string
	}{
		{"direct client, header ignored", "192.0.2.7:5555", []string{"198.51.100.1"}, "192.0.2.7"},
		{"trusted proxy, one hop", "127.0.0.1:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"trusted proxies chained", "10.1.2.3:4000", []string{"198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"spoofed left part ignored", "127.0.0.1:4000", []string{"203.0.113.66, 198.51.100.1"}, "198.51.100.1"},
		{"several header lines", "127.0.0.1:4000", []string{"203.0.113.66", "198.51.100.1"}, "198.51.100.1"},
		{"malformed entry stops the walk", "127.0.0.1:4000", []string{"198.51.100.1, junk"}, "127.0.0.1"},
		{"trusted proxy, no header", "127.0.0.1:4000", nil, "127.0.0.1"},
		{"IPv6 client through proxy", "10.0.0.1:80", []string{"2001:db8::5"}, "2001:db8::5"},
		{"IPv4-mapped proxy address", "[::ffff:127.0.0.1]:80", []string{"198.51.100.9"}, "198.51.100.9"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.peer
		for _, v := range tt.forwarded {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := a.clientAddr(r); got != tt.want {
			t.Errorf("%s: clientAddr = %q, want %q", tt.name, got, tt.want)
		}
	}
	// Without trusted proxies the header never counts.
	b := &API{cfg: config.Default()}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.1:1"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	if got := b.clientAddr(r); got != "127.0.0.1" {
		t.Errorf("no trusted proxies: clientAddr = %q", got)
	}
}
