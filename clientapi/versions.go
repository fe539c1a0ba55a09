package clientapi

import (
	"net/http"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/config"
)

// supportedVersions are the spec versions /versions lists. A version is
// listed only when the endpoints it requires exist; see the README.
var supportedVersions = []string{
	"v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10",
	// v1.11 makes clients use authenticated media (media.go): the legacy
	// unauthenticated downloads refuse media (media.freeze_unauthenticated).
	"v1.11",
}

// getVersions answers GET /_matrix/client/versions. The answer does not
// depend on the access token, but clients may send one, so caches must key
// on it.
func (a *API) getVersions(r *http.Request) (any, error) {
	return struct {
		Versions         []string        `json:"versions"`
		UnstableFeatures map[string]bool `json:"unstable_features"`
	}{supportedVersions, map[string]bool{
		"org.matrix.msc4222": true, // state_after in /sync
		// Simplified sliding sync, which Element X requires (sliding.go).
		"org.matrix.simplified_msc3575": true,
		// Delayed events, which Element Call needs (delayed.go).
		"org.matrix.msc4140": a.calls.Delayed != nil && a.calls.Delayed.Enabled(),
	}}, nil
}

// getWellKnown answers GET /.well-known/matrix/client.
func (a *API) getWellKnown(r *http.Request) (any, error) {
	wk := map[string]any{
		"m.homeserver": map[string]string{"base_url": a.cfg.PublicBaseURL},
	}
	if t := a.rtcTransports(); len(t) > 0 { // Element Call's SFU (rtc.go)
		wk["org.matrix.msc4143.rtc_foci"] = t
	}
	return wk, nil
}

// getCapabilities answers GET /capabilities.
func (a *API) getCapabilities(r *http.Request, d *auth.Device) (any, error) {
	available := make(map[string]string, len(config.SupportedRoomVersions))
	for _, v := range config.SupportedRoomVersions {
		available[v] = "stable"
	}
	enabled := func(on bool) map[string]bool { return map[string]bool{"enabled": on} }
	return map[string]any{"capabilities": map[string]any{
		"m.change_password": enabled(a.cfg.PasswordLogin.Enabled),
		"m.room_versions": map[string]any{
			"default":   a.cfg.Rooms.DefaultVersion,
			"available": available,
		},
		"m.set_displayname": enabled(true),
		"m.set_avatar_url":  enabled(true),
		"m.3pid_changes":    enabled(false),
		"m.get_login_token": enabled(false),
	}}, nil
}

// getThirdPartyProtocols answers GET /thirdparty/protocols: aula bridges to
// no third-party networks.
func (a *API) getThirdPartyProtocols(r *http.Request, d *auth.Device) (any, error) {
	return emptyObject, nil
}
