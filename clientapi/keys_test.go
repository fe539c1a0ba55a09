package clientapi_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// deviceKeysOf is a DeviceKeys object for u's device (the signature is not
// checked by the server; clients check it).
func deviceKeysOf(u apitest.User) map[string]any {
	return map[string]any{
		"user_id":    u.ID,
		"device_id":  u.DeviceID,
		"algorithms": []string{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"},
		"keys": map[string]string{
			"curve25519:" + u.DeviceID: "curve-" + u.DeviceID,
			"ed25519:" + u.DeviceID:    "ed-" + u.DeviceID,
		},
		"signatures": map[string]any{u.ID: map[string]string{"ed25519:" + u.DeviceID: "sig-" + u.DeviceID}},
	}
}

func otks(prefix string, n int) map[string]any {
	out := map[string]any{}
	for i := range n {
		id := fmt.Sprintf("signed_curve25519:%s%02d", prefix, i)
		out[id] = map[string]any{"key": fmt.Sprintf("key-%s%02d", prefix, i), "signatures": map[string]any{}}
	}
	return out
}

func uploadKeys(t *testing.T, s *apitest.Server, u apitest.User, body map[string]any) map[string]int {
	t.Helper()
	r := s.Do("POST", "/_matrix/client/v3/keys/upload", u.Token, body).Expect(t, 200, "")
	var out struct {
		Counts map[string]int `json:"one_time_key_counts"`
	}
	_ = json.Unmarshal(r.Body, &out)
	return out.Counts
}

func TestKeysUploadQueryClaim(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")

		// Nothing uploaded yet: the count of signed_curve25519 is 0.
		if c := uploadKeys(t, s, alice, map[string]any{}); c["signed_curve25519"] != 0 || len(c) != 1 {
			t.Errorf("empty upload counts %v, want {signed_curve25519: 0}", c)
		}
		c := uploadKeys(t, s, alice, map[string]any{"device_keys": deviceKeysOf(alice), "one_time_keys": otks("a", 5),
			"fallback_keys": map[string]any{"signed_curve25519:fb": map[string]any{"key": "fallback", "fallback": true}}})
		if c["signed_curve25519"] != 5 {
			t.Errorf("counts after uploading 5 keys: %v", c)
		}
		// The same keys again change nothing.
		if c := uploadKeys(t, s, alice, map[string]any{"device_keys": deviceKeysOf(alice), "one_time_keys": otks("a", 5)}); c["signed_curve25519"] != 5 {
			t.Errorf("re-upload counts %v", c)
		}
		// Changing device keys, reusing a key ID for another key, or keys of
		// another device: refused, and nothing stored.
		changed := deviceKeysOf(alice)
		changed["keys"].(map[string]string)["curve25519:"+alice.DeviceID] = "other"
		s.Do("POST", "/_matrix/client/v3/keys/upload", alice.Token, map[string]any{"device_keys": changed}).Expect(t, 400, "M_INVALID_PARAM")
		reused := otks("a", 1)
		reused["signed_curve25519:a00"] = map[string]any{"key": "different"}
		reused["signed_curve25519:new"] = map[string]any{"key": "new"}
		s.Do("POST", "/_matrix/client/v3/keys/upload", alice.Token, map[string]any{"one_time_keys": reused}).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("POST", "/_matrix/client/v3/keys/upload", alice.Token, map[string]any{"device_keys": deviceKeysOf(bob)}).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("POST", "/_matrix/client/v3/keys/upload", alice.Token, map[string]any{"one_time_keys": map[string]any{"nocolon": "x"}}).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("POST", "/_matrix/client/v3/keys/upload", alice.Token, map[string]any{"one_time_keys": map[string]any{"signed_curve25519:x": 5}}).Expect(t, 400, "M_BAD_JSON")
		s.Do("POST", "/_matrix/client/v3/keys/upload", alice.Token, map[string]any{"device_keys": "nope"}).Expect(t, 400, "M_BAD_JSON")
		s.Do("POST", "/_matrix/client/v3/keys/upload", alice.Token, "[1]").Expect(t, 400, "M_BAD_JSON")
		s.Do("POST", "/_matrix/client/v3/keys/upload", "", map[string]any{}).Expect(t, 401, "M_MISSING_TOKEN")
		if c := uploadKeys(t, s, alice, map[string]any{}); c["signed_curve25519"] != 5 {
			t.Errorf("a refused upload stored keys: counts %v", c)
		}

		// Query: alice's device with its display name; bob has none; a
		// remote user is left out.
		s.Do("PUT", "/_matrix/client/v3/devices/"+url.PathEscape(alice.DeviceID), alice.Token, map[string]string{"display_name": "Alice's laptop"}).Expect(t, 200, "")
		r := s.Do("POST", "/_matrix/client/v3/keys/query", bob.Token, map[string]any{"device_keys": map[string]any{
			alice.ID: []string{}, bob.ID: []string{}, "@someone:elsewhere.example": []string{}}}).Expect(t, 200, "")
		var q struct {
			DeviceKeys map[string]map[string]map[string]any `json:"device_keys"`
			Failures   map[string]any                       `json:"failures"`
			MasterKeys map[string]any                       `json:"master_keys"`
		}
		if err := json.Unmarshal(r.Body, &q); err != nil {
			t.Fatal(err)
		}
		dk := q.DeviceKeys[alice.ID][alice.DeviceID]
		if dk["user_id"] != alice.ID || dk["device_id"] != alice.DeviceID {
			t.Fatalf("query: alice's keys %v", dk)
		}
		if u, _ := dk["unsigned"].(map[string]any); u["device_display_name"] != "Alice's laptop" {
			t.Errorf("query: unsigned %v, want the display name", dk["unsigned"])
		}
		if len(q.DeviceKeys[bob.ID]) != 0 || q.DeviceKeys["@someone:elsewhere.example"] != nil {
			t.Errorf("query: bob %v, remote %v", q.DeviceKeys[bob.ID], q.DeviceKeys["@someone:elsewhere.example"])
		}
		if _, ok := q.DeviceKeys[bob.ID]; !ok {
			t.Error("query: a local user without keys must be present with {}")
		}
		// Listing a device that does not exist gives nothing for it.
		r = s.Do("POST", "/_matrix/client/v3/keys/query", bob.Token, map[string]any{"device_keys": map[string]any{alice.ID: []string{"NOPE"}}}).Expect(t, 200, "")
		_ = json.Unmarshal(r.Body, &q)
		if len(q.DeviceKeys[alice.ID]) != 0 {
			t.Errorf("query for an unknown device: %v", q.DeviceKeys[alice.ID])
		}
		s.Do("POST", "/_matrix/client/v3/keys/query", bob.Token, map[string]any{"device_keys": map[string]any{"not-a-user": []string{}}}).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("POST", "/_matrix/client/v3/keys/query", bob.Token, map[string]any{}).Expect(t, 400, "M_MISSING_PARAM")

		// Claims: one-time keys first, never twice, then the fallback key.
		claim := func() string {
			r := s.Do("POST", "/_matrix/client/v3/keys/claim", bob.Token, map[string]any{
				"one_time_keys": map[string]any{alice.ID: map[string]string{alice.DeviceID: "signed_curve25519"}}}).Expect(t, 200, "")
			var c struct {
				Keys map[string]map[string]map[string]any `json:"one_time_keys"`
			}
			_ = json.Unmarshal(r.Body, &c)
			for id := range c.Keys[alice.ID][alice.DeviceID] {
				return id
			}
			return ""
		}
		const claimers = 8
		var mu sync.Mutex
		var got []string
		var wg sync.WaitGroup
		for range claimers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := claim()
				mu.Lock()
				got = append(got, id)
				mu.Unlock()
			}()
		}
		wg.Wait()
		slices.Sort(got)
		want := []string{"signed_curve25519:a00", "signed_curve25519:a01", "signed_curve25519:a02", "signed_curve25519:a03", "signed_curve25519:a04",
			"signed_curve25519:fb", "signed_curve25519:fb", "signed_curve25519:fb"}
		if !slices.Equal(got, want) {
			t.Errorf("%d concurrent claims got %v, want the 5 one-time keys once each, then the fallback key", claimers, got)
		}
		// The fallback key is kept (used) and counts are down to 0.
		if c := uploadKeys(t, s, alice, map[string]any{}); c["signed_curve25519"] != 0 {
			t.Errorf("counts after claiming all: %v", c)
		}
		// A device without keys is left out of the answer.
		r = s.Do("POST", "/_matrix/client/v3/keys/claim", alice.Token, map[string]any{
			"one_time_keys": map[string]any{bob.ID: map[string]string{bob.DeviceID: "signed_curve25519"}}}).Expect(t, 200, "")
		if strings.TrimSpace(string(r.Body)) != `{"one_time_keys":{},"failures":{}}` {
			t.Errorf("claim for a device without keys: %s", r.Body)
		}

		// Deleting the device deletes its keys.
		s.Do("POST", "/_matrix/client/v3/logout", alice.Token, nil).Expect(t, 200, "")
		r = s.Do("POST", "/_matrix/client/v3/keys/query", bob.Token, map[string]any{"device_keys": map[string]any{alice.ID: []string{}}}).Expect(t, 200, "")
		_ = json.Unmarshal(r.Body, &q)
		if len(q.DeviceKeys[alice.ID]) != 0 {
			t.Errorf("keys of a logged-out device still served: %v", q.DeviceKeys[alice.ID])
		}
	})
}

// 20 claims at once for a device with 10 one-time keys hand out the 10
// keys once each, then the fallback key.
func TestKeysConcurrentClaims(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")
		uploadKeys(t, s, alice, map[string]any{"device_keys": deviceKeysOf(alice), "one_time_keys": otks("k", 10),
			"fallback_keys": map[string]any{"signed_curve25519:fb": map[string]any{"key": "fallback", "fallback": true}}})
		var mu sync.Mutex
		counts := map[string]int{}
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := s.Do("POST", "/_matrix/client/v3/keys/claim", bob.Token, map[string]any{
					"one_time_keys": map[string]any{alice.ID: map[string]string{alice.DeviceID: "signed_curve25519"}}})
				var c struct {
					Keys map[string]map[string]map[string]any `json:"one_time_keys"`
				}
				_ = json.Unmarshal(r.Body, &c)
				mu.Lock()
				defer mu.Unlock()
				if r.Status != 200 {
					counts[fmt.Sprintf("status %d", r.Status)]++
				}
				for id := range c.Keys[alice.ID][alice.DeviceID] {
					counts[id]++
				}
			}()
		}
		wg.Wait()
		for i := range 10 {
			if n := counts[fmt.Sprintf("signed_curve25519:k%02d", i)]; n != 1 {
				t.Errorf("one-time key k%02d handed out %d times", i, n)
			}
		}
		if counts["signed_curve25519:fb"] != 10 || len(counts) != 11 {
			t.Errorf("claims: %v, want 10 one-time keys and the fallback key 10 times", counts)
		}
	})
}

func TestSyncDeviceListsAndKeyCounts(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		sr := newSyncRoom(t, s, map[string]any{"preset": "private_chat"}, url.Values{})
		type dl struct {
			NextBatch   string `json:"next_batch"`
			DeviceLists struct {
				Changed []string `json:"changed"`
				Left    []string `json:"left"`
			} `json:"device_lists"`
			Counts   map[string]int `json:"device_one_time_keys_count"`
			Fallback []string       `json:"device_unused_fallback_key_types"`
		}
		syncDL := func(u apitest.User, tok string) dl {
			t.Helper()
			r := s.Do("GET", "/_matrix/client/v3/sync?timeout=0&since="+url.QueryEscape(tok), u.Token, nil).Expect(t, 200, "")
			var out dl
			if err := json.Unmarshal(r.Body, &out); err != nil {
				t.Fatal(err)
			}
			return out
		}
		base := syncDL(sr.bob, sr.tok)
		if base.Counts["signed_curve25519"] != 0 || base.Fallback == nil || len(base.Fallback) != 0 {
			t.Errorf("before any upload: counts %v fallback %v, want {signed_curve25519: 0} and []", base.Counts, base.Fallback)
		}
		// Alice uploads device keys: bob sees her in changed.
		uploadKeys(t, s, sr.alice, map[string]any{"device_keys": deviceKeysOf(sr.alice)})
		got := syncDL(sr.bob, base.NextBatch)
		if !slices.Equal(got.DeviceLists.Changed, []string{sr.alice.ID}) {
			t.Errorf("after alice's upload: changed %v, want [alice]", got.DeviceLists.Changed)
		}
		// Bob's own counts follow his uploads and others' claims.
		uploadKeys(t, s, sr.bob, map[string]any{"one_time_keys": otks("b", 3),
			"fallback_keys": map[string]any{"signed_curve25519:fb": map[string]any{"key": "fallback"}}})
		own := syncDL(sr.bob, got.NextBatch)
		if own.Counts["signed_curve25519"] != 3 || !slices.Equal(own.Fallback, []string{"signed_curve25519"}) {
			t.Errorf("counts %v fallback %v, want 3 and [signed_curve25519]", own.Counts, own.Fallback)
		}
		s.Do("POST", "/_matrix/client/v3/keys/claim", sr.alice.Token, map[string]any{
			"one_time_keys": map[string]any{sr.bob.ID: map[string]string{sr.bob.DeviceID: "signed_curve25519"}}}).Expect(t, 200, "")
		if c := syncDL(sr.bob, own.NextBatch).Counts["signed_curve25519"]; c != 2 {
			t.Errorf("after a claim: count %d, want 2", c)
		}

		// Carol joins: she now shares a room with bob.
		carol := s.Register("carol", "pw-carol-123")
		s.Invite(sr.alice, sr.room, carol)
		s.Join(carol, sr.room)
		joined := syncDL(sr.bob, own.NextBatch)
		if !slices.Contains(joined.DeviceLists.Changed, carol.ID) {
			t.Errorf("after carol joined: changed %v, want carol", joined.DeviceLists.Changed)
		}
		// Carol leaves: she shares nothing with bob any more.
		s.Leave(carol, sr.room)
		left := syncDL(sr.bob, joined.NextBatch)
		if !slices.Equal(left.DeviceLists.Left, []string{carol.ID}) || slices.Contains(left.DeviceLists.Changed, carol.ID) {
			t.Errorf("after carol left: left %v changed %v, want left [carol]", left.DeviceLists.Left, left.DeviceLists.Changed)
		}
		// /keys/changes over the whole range.
		r := s.Do("GET", "/_matrix/client/v3/keys/changes?from="+url.QueryEscape(base.NextBatch)+"&to="+url.QueryEscape(left.NextBatch), sr.bob.Token, nil).Expect(t, 200, "")
		var kc struct {
			Changed []string `json:"changed"`
			Left    []string `json:"left"`
		}
		_ = json.Unmarshal(r.Body, &kc)
		if !slices.Contains(kc.Changed, sr.alice.ID) {
			t.Errorf("/keys/changes: changed %v, want alice", kc.Changed)
		}
		s.Do("GET", "/_matrix/client/v3/keys/changes?from=x&to=y", sr.bob.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("GET", "/_matrix/client/v3/keys/changes?from="+url.QueryEscape(base.NextBatch), sr.bob.Token, nil).Expect(t, 400, "M_MISSING_PARAM")

		// A long-polling sync of bob wakes when alice logs in a new device
		// and uploads its keys.
		alice2 := s.Login("alice", "pw-alice-123")
		done := make(chan dl, 1)
		go func() {
			r := s.Do("GET", "/_matrix/client/v3/sync?timeout=20000&since="+url.QueryEscape(left.NextBatch), sr.bob.Token, nil)
			var out dl
			_ = json.Unmarshal(r.Body, &out)
			done <- out
		}()
		uploadKeys(t, s, alice2, map[string]any{"device_keys": deviceKeysOf(alice2)})
		woken := <-done
		if !slices.Contains(woken.DeviceLists.Changed, sr.alice.ID) {
			t.Errorf("woken by alice's new device: changed %v", woken.DeviceLists.Changed)
		}
	})
}
