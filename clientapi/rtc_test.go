package clientapi_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/apitest"
)

const transportsPath = "/_matrix/client/unstable/org.matrix.msc4143/rtc/transports"

func TestRTCNotConfigured(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		wk := s.Do("GET", "/.well-known/matrix/client", "", nil).Expect(t, 200, "")
		if _, ok := wk.JSON["org.matrix.msc4143.rtc_foci"]; ok {
			t.Errorf("rtc_foci without livekit_service_url: %s", wk.Body)
		}
		s.Do("GET", transportsPath, "", nil).Expect(t, 401, "M_MISSING_TOKEN")
		r := s.Do("GET", transportsPath, alice.Token, nil).Expect(t, 200, "")
		if strings.TrimSpace(string(r.Body)) != `{"rtc_transports":[]}` {
			t.Errorf("transports: %s", r.Body)
		}
	})
}

func TestRTCLiveKit(t *testing.T) {
	const lk = "https://livekit-jwt.uni.example"
	apitest.ForEachServer(t, func(c *config.Config) { c.RTC.LivekitServiceURL = lk }, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		want := `[{"livekit_service_url":"` + lk + `","type":"livekit"}]` // keys sorted by json.Marshal
		wk := s.Do("GET", "/.well-known/matrix/client", "", nil).Expect(t, 200, "")
		if got := rtcJSON(t, wk.JSON["org.matrix.msc4143.rtc_foci"]); got != want {
			t.Errorf("rtc_foci %s, want %s", got, want)
		}
		if wk.JSON["m.homeserver"] == nil {
			t.Errorf("m.homeserver lost: %s", wk.Body)
		}
		r := s.Do("GET", transportsPath, alice.Token, nil).Expect(t, 200, "")
		if got := rtcJSON(t, r.JSON["rtc_transports"]); got != want {
			t.Errorf("rtc_transports %s, want %s", got, want)
		}
	})
}

// rtcJSON marshals v compactly.
func rtcJSON(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}
