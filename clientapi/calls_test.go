package clientapi_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// TestGroupCallToDevice: the to-device events of Element Call group calls
// (the media encryption keys) pass through sendToDevice to the other
// participant's device, content intact.
func TestGroupCallToDevice(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")
		first := doSync(t, s, bob, url.Values{"timeout": {"0"}})
		const typ = "io.element.call.encryption_keys"
		body := map[string]any{"messages": map[string]any{bob.ID: map[string]any{bob.DeviceID: map[string]any{
			"keys": map[string]any{"index": 0, "key": "c2VjcmV0"}, "member": map[string]any{"claimed_device_id": alice.DeviceID},
			"room_id": "!call:aula.test", "session": map[string]any{"application": "m.call", "call_id": "", "scope": "m.room"},
		}}}}
		s.Do("PUT", "/_matrix/client/v3/sendToDevice/"+typ+"/txn1", alice.Token, body).Expect(t, 200, "")
		got := doSync(t, s, bob, since(first.NextBatch))
		if len(got.ToDevice.Events) != 1 {
			t.Fatalf("bob's to-device events: %+v", got.ToDevice.Events)
		}
		e := got.ToDevice.Events[0]
		if e.Type != typ || e.Sender != alice.ID || !strings.Contains(string(e.Content), `"key":"c2VjcmV0"`) {
			t.Errorf("to-device event: %+v %s", e, e.Content)
		}
	})
}
