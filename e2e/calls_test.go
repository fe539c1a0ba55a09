package e2e_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/aula-chat/aula/internal/apitest"
)

// callEvent is a call signalling event a client received through /sync.
type callEvent struct {
	typ     string
	sender  id.UserID
	content map[string]any
	at      time.Time
}

// callWatcher long-polls /sync for one client and collects the m.call.*
// events of one room, in the order /sync delivered them.
type callWatcher struct {
	name   string
	events chan callEvent
	errs   chan error
	done   chan struct{}
	cancel context.CancelFunc
}

// watchCalls starts the loop after the client's initial sync, so it sees
// only what happens from now on.
func watchCalls(t *testing.T, name string, cli *mautrix.Client, room id.RoomID) *callWatcher {
	t.Helper()
	first, err := cli.SyncRequest(ctx(t), 0, "", "", false, "")
	if err != nil {
		t.Fatalf("%s: initial sync: %v", name, err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	w := &callWatcher{name: name, events: make(chan callEvent, 100), errs: make(chan error, 1), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(w.done)
		since := first.NextBatch
		for lctx.Err() == nil {
			resp, err := cli.SyncRequest(lctx, 30000, since, "", false, "")
			if err != nil {
				if lctx.Err() == nil {
					w.errs <- err
				}
				return
			}
			since = resp.NextBatch
			if r, ok := resp.Rooms.Join[room]; ok {
				for _, evt := range r.Timeline.Events {
					if strings.HasPrefix(evt.Type.Type, "m.call.") {
						var c map[string]any
						_ = json.Unmarshal(evt.Content.VeryRaw, &c)
						w.events <- callEvent{typ: evt.Type.Type, sender: evt.Sender, content: c, at: time.Now()}
					}
				}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-w.done
	})
	return w
}

// expect waits for the next call event from the other side, of type typ,
// and returns it.
func (w *callWatcher) expect(t *testing.T, from id.UserID, typ string) callEvent {
	t.Helper()
	for {
		select {
		case e := <-w.events:
			if e.sender != from {
				continue // the client's own events come back too
			}
			if e.typ != typ {
				t.Fatalf("%s: got %s from %s, want %s next", w.name, e.typ, e.sender, typ)
			}
			return e
		case err := <-w.errs:
			t.Fatalf("%s: sync failed: %v", w.name, err)
		case <-time.After(syncWait):
			t.Fatalf("%s: no %s from %s within %v", w.name, typ, from, syncWait)
		}
	}
}

// sendCall sends one call event and returns when it was sent.
func sendCall(t *testing.T, cli *mautrix.Client, room id.RoomID, typ event.Type, content map[string]any) time.Time {
	t.Helper()
	if _, err := cli.SendMessageEvent(ctx(t), room, typ, content); err != nil {
		t.Fatalf("%s sends %s: %v", cli.UserID, typ.Type, err)
	}
	return time.Now()
}

// TestCallSignallingWithMautrix runs the 1:1 call signalling of the spec
// (VoIP, version 1) between two real clients in a DM room: invite, answer,
// candidates both ways, select_answer and hangup. Each side must see the
// other's events in the order they were sent, promptly (through its
// long-polling /sync), with their content intact.
func TestCallSignallingWithMautrix(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := register(t, s, "alice", "alice-password")
		bob := register(t, s, "bob", "bob-password")
		created, err := alice.CreateRoom(ctx(t), &mautrix.ReqCreateRoom{
			Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{bob.UserID},
		})
		if err != nil {
			t.Fatalf("CreateRoom: %v", err)
		}
		room := created.RoomID
		if _, err := bob.JoinRoomByID(ctx(t), room); err != nil {
			t.Fatalf("bob joins: %v", err)
		}
		aw := watchCalls(t, "alice", alice, room)
		bw := watchCalls(t, "bob", bob, room)

		const callID = "c1700000000"
		base := func(party string) map[string]any {
			return map[string]any{"call_id": callID, "party_id": party, "version": "1"}
		}
		with := func(m map[string]any, k string, v any) map[string]any { m[k] = v; return m }
		offer := "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
		answer := "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
		candidate := func(n string) []any {
			return []any{map[string]any{"candidate": "candidate:" + n + " 1 udp 2122260223 192.0.2.1 54400 typ host", "sdpMid": "0", "sdpMLineIndex": 0}}
		}

		// Alice calls.
		inv := with(base("alice-party"), "lifetime", 60000)
		inv["offer"] = map[string]any{"type": "offer", "sdp": offer}
		sent := sendCall(t, alice, room, event.CallInvite, inv)
		got := bw.expect(t, alice.UserID, "m.call.invite")
		if o, _ := got.content["offer"].(map[string]any); o["sdp"] != offer || got.content["call_id"] != callID || got.content["version"] != "1" || got.content["lifetime"] != float64(60000) {
			t.Errorf("bob's invite: %v", got.content)
		}
		if d := got.at.Sub(sent); d > 5*time.Second {
			t.Errorf("the invite reached bob after %v", d)
		}
		sendCall(t, alice, room, event.CallCandidates, with(base("alice-party"), "candidates", candidate("1")))

		// Bob answers and sends his candidates.
		ans := base("bob-party")
		ans["answer"] = map[string]any{"type": "answer", "sdp": answer}
		sendCall(t, bob, room, event.CallAnswer, ans)
		sendCall(t, bob, room, event.CallCandidates, with(base("bob-party"), "candidates", candidate("2")))
		bw.expect(t, alice.UserID, "m.call.candidates")

		got = aw.expect(t, bob.UserID, "m.call.answer")
		if a, _ := got.content["answer"].(map[string]any); a["sdp"] != answer || got.content["party_id"] != "bob-party" {
			t.Errorf("alice's answer: %v", got.content)
		}
		got = aw.expect(t, bob.UserID, "m.call.candidates")
		if c, _ := got.content["candidates"].([]any); len(c) != 1 {
			t.Errorf("alice's candidates: %v", got.content)
		}

		// Alice picks bob's answer, then more candidates, then hangs up.
		sendCall(t, alice, room, event.CallSelectAnswer, with(base("alice-party"), "selected_party_id", "bob-party"))
		sendCall(t, alice, room, event.CallCandidates, with(base("alice-party"), "candidates", candidate("3")))
		sent = sendCall(t, alice, room, event.CallHangup, with(base("alice-party"), "reason", "user_hangup"))
		if got := bw.expect(t, alice.UserID, "m.call.select_answer"); got.content["selected_party_id"] != "bob-party" {
			t.Errorf("bob's select_answer: %v", got.content)
		}
		if got := bw.expect(t, alice.UserID, "m.call.candidates"); got.content["candidates"].([]any)[0].(map[string]any)["candidate"] != candidate("3")[0].(map[string]any)["candidate"] {
			t.Errorf("bob's second candidates: %v", got.content)
		}
		got = bw.expect(t, alice.UserID, "m.call.hangup")
		if got.content["reason"] != "user_hangup" {
			t.Errorf("bob's hangup: %v", got.content)
		}
		if d := got.at.Sub(sent); d > 5*time.Second {
			t.Errorf("the hangup reached bob after %v", d)
		}
	})
}
