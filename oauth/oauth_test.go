package oauth

import (
	"net/url"
	"strings"
	"testing"
)

func TestParseScope(t *testing.T) {
	for _, tt := range []struct {
		scope, device, granted, err string
	}{
		{"urn:matrix:client:api:* urn:matrix:client:device:ABCDEFGHIJ", "ABCDEFGHIJ", "urn:matrix:client:api:* urn:matrix:client:device:ABCDEFGHIJ", ""},
		{"urn:matrix:org.matrix.msc2967.client:api:* urn:matrix:org.matrix.msc2967.client:device:abc-._~12", "abc-._~12",
			"urn:matrix:org.matrix.msc2967.client:api:* urn:matrix:org.matrix.msc2967.client:device:abc-._~12", ""},
		{"openid urn:matrix:client:device:DEVICE1  urn:matrix:client:api:*", "DEVICE1", "urn:matrix:client:api:* urn:matrix:client:device:DEVICE1", ""},
		{"urn:matrix:client:api:* urn:matrix:org.matrix.msc2967.client:api:* urn:matrix:client:device:DEVICE1", "DEVICE1",
			"urn:matrix:client:api:* urn:matrix:org.matrix.msc2967.client:api:* urn:matrix:client:device:DEVICE1", ""},
		{"", "", "", "invalid_scope"},
		{"urn:matrix:client:api:*", "", "", "invalid_scope"},
		{"urn:matrix:client:device:DEVICE1", "", "", "invalid_scope"},
		{"urn:matrix:client:api:* urn:matrix:client:device:DEVICE1 urn:matrix:client:device:DEVICE2", "", "", "invalid_scope"},
		{"urn:matrix:client:api:* urn:matrix:client:device:DEVICE1 urn:matrix:org.matrix.msc2967.client:device:DEVICE1", "", "", "invalid_scope"},
		{"urn:matrix:client:api:* urn:matrix:client:device:ABCD", "", "", "invalid_scope"},
		{"urn:matrix:client:api:* urn:matrix:client:device:" + strings.Repeat("A", 65), "", "", "invalid_scope"},
		{"urn:matrix:client:api:* urn:matrix:client:device:DEV/ICE1", "", "", "invalid_scope"},
		{"urn:matrix:client:api:* urn:matrix:client:device:DEVICE1 urn:synapse:admin:*", "", "", "invalid_scope"},
		{"urn:matrix:client:api:read:* urn:matrix:client:device:DEVICE1", "", "", "invalid_scope"},
	} {
		g, err := parseScope(tt.scope)
		if tt.err != "" {
			if err == nil || err.Code != tt.err {
				t.Errorf("parseScope(%q) = %+v, %v; want %s", tt.scope, g, err, tt.err)
			}
			continue
		}
		if err != nil || g.DeviceID != tt.device || g.Scope != tt.granted {
			t.Errorf("parseScope(%q) = %+v, %v; want %s, %q", tt.scope, g, err, tt.device, tt.granted)
		}
	}
}

func TestCheckRedirectURI(t *testing.T) {
	for _, tt := range []struct {
		uri, app string
		ok       bool
	}{
		// The spec's examples for client_uri https://example.com/.
		{"https://example.com/callback", appWeb, true},
		{"https://app.example.com/callback", appWeb, true},
		{"https://example.com:5173/?query=value", appWeb, true},
		{"https://example.com/callback#fragment", appWeb, false},
		{"http://example.com/callback", appWeb, false},
		{"http://localhost/", appWeb, false},
		{"com.example.app:/callback", appNative, true},
		{"com.example:/", appNative, true},
		{"com.example:callback", appNative, true},
		{"http://localhost/callback", appNative, true},
		{"http://127.0.0.1/callback", appNative, true},
		{"http://[::1]/callback", appNative, true},
		{"example:/callback", appNative, false},
		{"com.example.app://callback", appNative, false},
		{"https://localhost/callback", appNative, false},
		{"http://localhost:1234/callback", appNative, false},
		// And some more.
		{"https://example.com/callback", appNative, true}, // claimed https
		{"https://notexample.com/callback", appWeb, false},
		{"https://user@example.com/callback", appWeb, false},
		{"com.example.app:/callback", appWeb, false},
		{"com.exampleapp:/callback", appNative, false},
		{"com.example.app:///callback", appNative, false},
		{"http://10.0.0.1/callback", appNative, false},
		{"/callback", appNative, false},
		{"com.example.app:/" + strings.Repeat("x", maxURILen), appNative, false},
	} {
		err := checkRedirectURI(tt.uri, tt.app, "example.com")
		if (err == nil) != tt.ok {
			t.Errorf("checkRedirectURI(%q, %s) = %v, want ok=%v", tt.uri, tt.app, err, tt.ok)
		} else if err != nil && err.(*Error).Code != "invalid_redirect_uri" {
			t.Errorf("checkRedirectURI(%q) code %s", tt.uri, err.(*Error).Code)
		}
	}
}

func TestRedirectAllowed(t *testing.T) {
	c := &Client{ClientMetadata: ClientMetadata{ApplicationType: appNative,
		RedirectURIs: []string{"io.element:/callback", "http://127.0.0.1/cb", "http://[::1]/cb?x=1"}}}
	for uri, want := range map[string]bool{
		"io.element:/callback":           true,
		"io.element:/callback?x":         false,
		"io.element:/Callback":           false,
		"http://127.0.0.1/cb":            true,
		"http://127.0.0.1:50000/cb":      true,
		"http://127.0.0.1:50000/cb2":     false,
		"http://127.0.0.1:50000/cb#x":    false,
		"http://127.0.0.1:5x/cb":         false,
		"http://localhost:50000/cb":      false,
		"https://127.0.0.1:50000/cb":     false,
		"http://u@127.0.0.1:50000/cb":    false,
		"http://[::1]:8080/cb?x=1":       true,
		"http://[::1]:8080/cb?x=2":       false,
		"http://127.0.0.1:50000/cb?evil": false,
	} {
		if got := c.redirectAllowed(uri); got != want {
			t.Errorf("redirectAllowed(%q) = %v, want %v", uri, got, want)
		}
	}
	web := &Client{ClientMetadata: ClientMetadata{ApplicationType: appWeb, RedirectURIs: []string{"http://127.0.0.1/cb"}}}
	if web.redirectAllowed("http://127.0.0.1:5000/cb") {
		t.Error("a web client got the loopback port rule")
	}
}

func TestRespond(t *testing.T) {
	for _, tt := range []struct {
		redirect, mode, state, want string
	}{
		{"io.element:/callback", "query", "s1", "io.element:/callback?code=c&state=s1"},
		{"https://app.example/cb?x=1", "query", "", "https://app.example/cb?x=1&code=c"},
		{"https://app.example/cb?x=1", "fragment", "a b", "https://app.example/cb?x=1#code=c&state=a+b"},
	} {
		p := pending{RedirectURI: tt.redirect, Mode: tt.mode, State: tt.state}
		if got := p.respond(url.Values{"code": {"c"}}); got != tt.want {
			t.Errorf("respond(%q, %s) = %q, want %q", tt.redirect, tt.mode, got, tt.want)
		}
	}
}

func TestDeviceName(t *testing.T) {
	if got := deviceName("Element"); got != "Element" {
		t.Errorf("deviceName = %q", got)
	}
	long := strings.Repeat("é", 60) // 120 bytes
	got := deviceName(long)
	if len(got) > maxDeviceNameLen || !strings.HasPrefix(long, got) || len(got) != 100 {
		t.Errorf("deviceName cut %d bytes: %q", len(got), got)
	}
}
