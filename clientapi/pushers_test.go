package clientapi_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/apitest"
)

// gateway is a running push-gateway stub process
// (internal/pushgatewaystub).
type gateway struct{ base string }

// startGateway builds and starts the stub as its own process.
func startGateway(t *testing.T) gateway {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pushgatewaystub")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/aula-chat/aula/internal/pushgatewaystub").CombinedOutput(); err != nil {
		t.Fatalf("build stub: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("stub output: %v", err)
	}
	return gateway{base: strings.TrimSpace(strings.TrimPrefix(line, "listening on "))}
}

func (g gateway) url() string { return g.base + "/_matrix/push/v1/notify" }

func (g gateway) control(t *testing.T, body string) {
	t.Helper()
	resp, err := http.Post(g.base+"/control", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// requests returns the notify bodies the stub has received.
func (g gateway) requests(t *testing.T) []map[string]any {
	t.Helper()
	resp, err := http.Get(g.base + "/requests")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitRequests waits until the stub has received n requests about room.
func (g gateway) waitRequests(t *testing.T, room string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var got []map[string]any
		for _, r := range g.requests(t) {
			if n, _ := r["notification"].(map[string]any); n != nil && n["room_id"] == room {
				got = append(got, r)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("stub received %d requests, want %d: %v", len(got), n, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPushers covers POST /pushers/set validation, delivery to a push
// gateway process (event_id_only, retries after a 5xx, removal of a
// rejected pushkey) and removal of pushers on logout.
func TestPushers(t *testing.T) {
	var g gateway // a fresh gateway process per database engine
	apitest.ForEachServer(t, func(c *config.Config) {
		g = startGateway(t)
		c.Push.GatewayAllowlist = []string{g.url()}
	}, func(t *testing.T, s *apitest.Server) {
		alice, bob := s.Register("alice", "pw-alice-123"), s.Register("bob", "pw-bob-123")
		room := s.CreateRoom(alice, map[string]any{})
		s.Invite(alice, room, bob)
		s.Join(bob, room)
		// A sync waits until the invite has been evaluated, so it is not
		// pushed to the pusher set below.
		unreadOf(t, s, bob, room, "", "")

		pusher := func(key, gw string) map[string]any {
			return map[string]any{"kind": "http", "app_id": "edu.uni.chat", "pushkey": key,
				"app_display_name": "Uni Chat", "device_display_name": "Phone", "lang": "en",
				"data": map[string]any{"url": gw, "format": "event_id_only"}}
		}
		set := "/_matrix/client/v3/pushers/set"
		s.Do("POST", set, bob.Token, pusher("k1", "https://evil.example/_matrix/push/v1/notify")).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("POST", set, bob.Token, pusher("k1", g.base+"/elsewhere")).Expect(t, 400, "M_INVALID_PARAM")
		email := pusher("k1", g.url())
		email["kind"] = "email"
		s.Do("POST", set, bob.Token, email).Expect(t, 400, "M_INVALID_PARAM")
		noURL := pusher("k1", g.url())
		noURL["data"] = map[string]any{}
		s.Do("POST", set, bob.Token, noURL).Expect(t, 400, "M_MISSING_PARAM")
		s.Do("POST", set, bob.Token, pusher("k1", g.url())).Expect(t, 200, "")

		r := s.Do("GET", "/_matrix/client/v3/pushers", bob.Token, nil).Expect(t, 200, "")
		var list struct {
			Pushers []map[string]any `json:"pushers"`
		}
		_ = json.Unmarshal(r.Body, &list)
		if len(list.Pushers) != 1 || list.Pushers[0]["pushkey"] != "k1" || list.Pushers[0]["kind"] != "http" {
			t.Fatalf("pushers: %s", r.Body)
		}

		// The gateway fails once: the delivery is retried.
		g.control(t, `{"fail":1}`)
		ev := s.SendText(alice, room, "secret exam results")
		reqs := g.waitRequests(t, room, 2)
		for _, req := range reqs {
			n := req["notification"].(map[string]any)
			if n["event_id"] != ev || n["room_id"] != room {
				t.Fatalf("notification %v, want event %s", n, ev)
			}
			if _, ok := n["content"]; ok {
				t.Fatalf("event_id_only push carries content: %v", n)
			}
			if _, ok := n["sender"]; ok {
				t.Fatalf("event_id_only push carries the sender: %v", n)
			}
			counts := n["counts"].(map[string]any)
			if counts["unread"] != float64(1) {
				t.Fatalf("counts %v, want unread 1", counts)
			}
			devs := n["devices"].([]any)
			d := devs[0].(map[string]any)
			if d["app_id"] != "edu.uni.chat" || d["pushkey"] != "k1" || d["pushkey_ts"] == nil {
				t.Fatalf("device %v", d)
			}
			data, _ := d["data"].(map[string]any)
			if _, ok := data["url"]; ok || data["format"] != "event_id_only" {
				t.Fatalf("device data %v: url must be left out", data)
			}
		}

		// A rejected pushkey removes the pusher.
		g.control(t, `{"reject":["k1"]}`)
		s.SendText(alice, room, "again")
		g.waitRequests(t, room, 3)
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := s.Do("GET", "/_matrix/client/v3/pushers", bob.Token, nil).Expect(t, 200, "")
			if strings.Contains(string(r.Body), `"pushers":[]`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("rejected pusher still there: %s", r.Body)
			}
			time.Sleep(50 * time.Millisecond)
		}

		// Logging out a device removes its pushers; kind null deletes.
		phone := s.Login("bob", "pw-bob-123")
		s.Do("POST", set, phone.Token, pusher("k2", g.url())).Expect(t, 200, "")
		s.Do("POST", set, bob.Token, pusher("k3", g.url())).Expect(t, 200, "")
		s.Do("POST", "/_matrix/client/v3/logout", phone.Token, map[string]any{}).Expect(t, 200, "")
		r = s.Do("GET", "/_matrix/client/v3/pushers", bob.Token, nil).Expect(t, 200, "")
		if strings.Contains(string(r.Body), `"k2"`) || !strings.Contains(string(r.Body), `"k3"`) {
			t.Fatalf("after logout: %s", r.Body)
		}
		s.Do("POST", set, bob.Token, map[string]any{"kind": nil, "app_id": "edu.uni.chat", "pushkey": "k3"}).Expect(t, 200, "")
		r = s.Do("GET", "/_matrix/client/v3/pushers", bob.Token, nil).Expect(t, 200, "")
		if !strings.Contains(string(r.Body), `"pushers":[]`) {
			t.Fatalf("after kind null: %s", r.Body)
		}
	})
}
