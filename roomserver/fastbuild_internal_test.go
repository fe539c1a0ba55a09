package roomserver

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"math/rand"
	"testing"
	"time"

	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// TestBuildFastMatchesBuild checks that buildFast produces exactly the
// event gomatrixserverlib's EventBuilder.Build does (bytes and event ID),
// and declines every event outside its case.
func TestBuildFastMatchesBuild(t *testing.T) {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	const origin, keyID = spec.ServerName("aula.test"), gomatrixserverlib.KeyID("ed25519:a_bc1")
	now := time.UnixMilli(1_790_000_000_123)
	contents := []string{
		`{}`, ` { "msgtype" : "m.text", "body" : "hello" } `,
		`{"body":"<b>&amp;</b> é 😀 \u2028 \n \" \\ / \u0001","msgtype":"m.text"}`,
		`{"z":1,"a":[1,-2,{"y":null,"x":true,"é":false}],"m":{"n":{"o":"p"}},"big":9007199254740991}`,
		`{"m.relates_to":{"rel_type":"m.annotation","event_id":"$x","key":"👍"}}`,
		`{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"AwgA","device_id":"DEV","sender_key":"abc","session_id":"s"}`,
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 200; i++ {
		c, _ := json.Marshal(randomObject(rng, 3))
		contents = append(contents, string(c))
	}
	types := []string{"m.room.message", "m.room.encrypted", "m.reaction", "org.example.custom", "m.call.invite"}
	for _, v := range []gomatrixserverlib.RoomVersion{gomatrixserverlib.RoomVersionV10, gomatrixserverlib.RoomVersionV11, gomatrixserverlib.RoomVersionV12} {
		ver := gomatrixserverlib.MustGetRoomVersion(v)
		matched := 0
		for i, content := range contents {
			builder := func(typ string, stateKey *string, content string) *gomatrixserverlib.EventBuilder {
				return ver.NewEventBuilderFromProtoEvent(&gomatrixserverlib.ProtoEvent{
					SenderID: "@alice:aula.test", RoomID: "!r00m_ID-1:aula.test", Type: typ, StateKey: stateKey,
					Content: []byte(content), PrevEvents: []string{"$prev_Event-ID"}, Depth: int64(7 + i),
					AuthEvents: []string{"$create", "$power", "$member"},
				})
			}
			typ := types[i%len(types)]
			want, err := builder(typ, nil, content).Build(now, origin, keyID, key)
			got, ok := buildFast(builder(typ, nil, content), ver, now, origin, keyID, key)
			if err != nil {
				if ok {
					t.Errorf("v%s %s: Build refuses (%v), buildFast does not", v, content, err)
				}
				continue
			}
			if !ok {
				t.Fatalf("v%s %s: buildFast declined", v, content)
			}
			if got.EventID() != want.EventID() || !bytes.Equal(got.JSON(), want.JSON()) {
				t.Fatalf("v%s %s:\n got %s %s\nwant %s %s", v, content, got.EventID(), got.JSON(), want.EventID(), want.JSON())
			}
			matched++
		}
		if matched < len(contents)/2 {
			t.Errorf("v%s: only %d of %d contents compared", v, matched, len(contents))
		}
		t.Logf("v%s: %d of %d contents built identically", v, matched, len(contents))
		sk := ""
		for _, decline := range []struct {
			typ, content string
			stateKey     *string
		}{
			{"m.room.member", `{"membership":"join"}`, nil},
			{"m.room.redaction", `{"redacts":"$x"}`, nil},
			{"m.room.topic", `{"topic":"x"}`, &sk},
			{"m.room.message", `[1]`, nil},
			{"m.room.message", `{"n":1.5}`, nil},
			{"m.room.message", `{"n":9007199254740992}`, nil},
			{"m.room.message", `{"\n":1}`, nil},
			{"bad\"type", `{}`, nil},
			{"m.typé", `{}`, nil},
		} {
			b := ver.NewEventBuilderFromProtoEvent(&gomatrixserverlib.ProtoEvent{
				SenderID: "@alice:aula.test", RoomID: "!r:aula.test", Type: decline.typ, StateKey: decline.stateKey,
				Content: []byte(decline.content), PrevEvents: []string{"$p"}, AuthEvents: []string{"$a"}, Depth: 3,
			})
			if _, ok := buildFast(b, ver, now, origin, keyID, key); ok {
				t.Errorf("v%s: buildFast took %s %s", v, decline.typ, decline.content)
			}
		}
	}
}

// randomObject makes a JSON object with awkward keys and strings.
func randomObject(rng *rand.Rand, depth int) map[string]any {
	o := map[string]any{}
	for i := rng.Intn(6); i >= 0; i-- {
		o[randomKey(rng)] = randomValue(rng, depth-1)
	}
	return o
}

func randomValue(rng *rand.Rand, depth int) any {
	switch n := rng.Intn(7); {
	case n == 0 && depth > 0:
		return randomObject(rng, depth)
	case n == 1 && depth > 0:
		return []any{randomValue(rng, depth-1), randomValue(rng, depth-1)}
	case n == 2:
		return rng.Int63n(1<<53) - 1<<52
	case n == 3:
		return rng.Intn(2) == 0
	case n == 4:
		return nil
	default:
		return randomString(rng)
	}
}

// randomKey makes object keys; gomatrixserverlib refuses keys that need
// escaping, which the test checks separately.
func randomKey(rng *rand.Rand) string {
	pieces := []string{"a", "Z", "é", "😀", "\u2028", "<", ">", "&", "/", "ÿ", "中", " ", "_", "m.", "1"}
	s := ""
	for i := rng.Intn(5); i >= 0; i-- {
		s += pieces[rng.Intn(len(pieces))]
	}
	return s
}

func randomString(rng *rand.Rand) string {
	pieces := []string{"a", "Z", "é", "😀", "\u2028", "<", ">", "&", "\"", "\\", "/", "\n", "\t", "\x7f", "ÿ", "中", " ", "_"}
	s := ""
	for i := rng.Intn(8); i >= 0; i-- {
		s += pieces[rng.Intn(len(pieces))]
	}
	return s
}
