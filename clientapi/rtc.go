package clientapi

import (
	"net/http"

	"github.com/aula-chat/aula/auth"
)

// rtcTransport is one MatrixRTC transport (MSC4143): the LiveKit JWT
// service in front of the university's SFU.
type rtcTransport struct {
	Type              string `json:"type"`
	LivekitServiceURL string `json:"livekit_service_url"`
}

// rtcTransports lists the configured transports; none without
// rtc.livekit_service_url.
func (a *API) rtcTransports() []rtcTransport {
	if a.cfg.RTC.LivekitServiceURL == "" {
		return []rtcTransport{}
	}
	return []rtcTransport{{Type: "livekit", LivekitServiceURL: a.cfg.RTC.LivekitServiceURL}}
}

// getRTCTransports answers GET
// /_matrix/client/unstable/org.matrix.msc4143/rtc/transports. Without a
// configured transport the list is empty (the endpoint exists, there is
// nothing to use), and Element Call offers no group calls through an SFU.
func (a *API) getRTCTransports(r *http.Request, d *auth.Device) (any, error) {
	return map[string]any{"rtc_transports": a.rtcTransports()}, nil
}
