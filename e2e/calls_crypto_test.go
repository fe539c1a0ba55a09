//go:build goolm

package e2e_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/aula-chat/aula/internal/apitest"
)

// sendEncryptedCall sends a call event through a crypto client, which
// encrypts it, and checks the server holds only ciphertext.
func sendEncryptedCall(t *testing.T, s *apitest.Server, c *cryptoClient, room id.RoomID, typ event.Type, content map[string]any) {
	t.Helper()
	resp, err := c.cli.SendMessageEvent(ctx(t), room, typ, content)
	if err != nil {
		t.Fatalf("%s sends %s: %v", c.name, typ.Type, err)
	}
	checkEncryptedOnServer(t, s, c.cli.AccessToken, room, resp.EventID, callIDOf(content))
}

func callIDOf(content map[string]any) string { s, _ := content["call_id"].(string); return s }

// decryptedCalls reads the room's timeline (GET /messages, which does not
// touch the device's to-device inbox) and returns the m.call.* events
// sender sent, decrypted with c's keys, in timeline order. It waits for
// room keys that have not arrived yet.
func decryptedCalls(t *testing.T, c *cryptoClient, room id.RoomID, sender id.UserID) []*event.Event {
	t.Helper()
	resp, err := c.cli.Messages(ctx(t), room, "", "", mautrix.DirectionForward, nil, 100)
	if err != nil {
		t.Fatalf("%s: /messages: %v", c.name, err)
	}
	var out []*event.Event
	for _, evt := range resp.Chunk {
		if evt.Sender != sender || evt.Type != event.EventEncrypted {
			continue
		}
		evt.RoomID = room
		if err := evt.Content.ParseRaw(evt.Type); err != nil {
			t.Fatalf("%s: parse %s: %v", c.name, evt.ID, err)
		}
		enc := evt.Content.AsEncrypted()
		c.mach.WaitForSession(ctx(t), room, enc.SenderKey, enc.SessionID, syncWait)
		dec, err := c.mach.DecryptMegolmEvent(ctx(t), evt)
		if err != nil {
			if err == crypto.NoSessionFound {
				t.Fatalf("%s: no room key for %s from %s within %v", c.name, evt.ID, sender, syncWait)
			}
			t.Fatalf("%s: decrypt %s: %v", c.name, evt.ID, err)
		}
		if len(dec.Type.Type) > 7 && dec.Type.Type[:7] == "m.call." {
			out = append(out, dec)
		}
	}
	return out
}

// TestEncryptedCallSignallingWithMautrix runs the call signalling in an
// encrypted DM room: every call event is stored as megolm ciphertext and
// the other side decrypts the events to the original types and contents,
// in order.
func TestEncryptedCallSignallingWithMautrix(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := startCryptoClient(t, "alice", register(t, s, "alice", "alice-password"))
		bob := startCryptoClient(t, "bob", register(t, s, "bob", "bob-password"))
		alice.waitSynced(t)
		bob.waitSynced(t)
		empty := ""
		created, err := alice.cli.CreateRoom(ctx(t), &mautrix.ReqCreateRoom{
			Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{bob.cli.UserID},
			InitialState: []*event.Event{{
				Type: event.StateEncryption, StateKey: &empty,
				Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}},
			}},
		})
		if err != nil {
			t.Fatalf("CreateRoom: %v", err)
		}
		room := created.RoomID
		bob.awaitMember(t, room, bob.cli.UserID, event.MembershipInvite)
		if _, err := bob.cli.JoinRoomByID(ctx(t), room); err != nil {
			t.Fatalf("bob joins: %v", err)
		}
		for _, c := range []*cryptoClient{alice, bob} {
			c.awaitMember(t, room, bob.cli.UserID, event.MembershipJoin)
		}

		const callID = "c-encrypted"
		call := func(party string, kv ...any) map[string]any {
			m := map[string]any{"call_id": callID, "party_id": party, "version": "1"}
			for i := 0; i+1 < len(kv); i += 2 {
				m[kv[i].(string)] = kv[i+1]
			}
			return m
		}
		offer := map[string]any{"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}
		answer := map[string]any{"type": "answer", "sdp": "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\n"}
		cand := []any{map[string]any{"candidate": "candidate:1 1 udp 1 192.0.2.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}}

		sendEncryptedCall(t, s, alice, room, event.CallInvite, call("alice-party", "lifetime", 60000, "offer", offer))
		sendEncryptedCall(t, s, alice, room, event.CallCandidates, call("alice-party", "candidates", cand))
		sendEncryptedCall(t, s, bob, room, event.CallAnswer, call("bob-party", "answer", answer))
		sendEncryptedCall(t, s, bob, room, event.CallCandidates, call("bob-party", "candidates", cand))
		sendEncryptedCall(t, s, alice, room, event.CallSelectAnswer, call("alice-party", "selected_party_id", "bob-party"))
		sendEncryptedCall(t, s, alice, room, event.CallHangup, call("alice-party", "reason", "user_hangup"))

		check := func(c *cryptoClient, from id.UserID, want []string) []*event.Event {
			t.Helper()
			deadline := time.Now().Add(syncWait)
			for {
				got := decryptedCalls(t, c, room, from)
				var types []string
				for _, e := range got {
					types = append(types, e.Type.Type)
				}
				if slices.Equal(types, want) {
					return got
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s decrypted %v from %s, want %v", c.name, types, from, want)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		fromAlice := check(bob, alice.cli.UserID, []string{"m.call.invite", "m.call.candidates", "m.call.select_answer", "m.call.hangup"})
		var inv map[string]any
		if err := json.Unmarshal(fromAlice[0].Content.VeryRaw, &inv); err != nil || inv["call_id"] != callID || inv["offer"].(map[string]any)["sdp"] != offer["sdp"] {
			t.Errorf("bob's decrypted invite: %s (%v)", fromAlice[0].Content.VeryRaw, err)
		}
		fromBob := check(alice, bob.cli.UserID, []string{"m.call.answer", "m.call.candidates"})
		var ans map[string]any
		if err := json.Unmarshal(fromBob[0].Content.VeryRaw, &ans); err != nil || ans["answer"].(map[string]any)["sdp"] != answer["sdp"] {
			t.Errorf("alice's decrypted answer: %s (%v)", fromBob[0].Content.VeryRaw, err)
		}
	})
}
