package clientapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

const kbAlg = "m.megolm_backup.v1.curve25519-aes-sha2"

// kbJSON fails unless the response body is the JSON value want.
func kbJSON(t *testing.T, what string, r *apitest.Response, want string) {
	t.Helper()
	var got, exp any
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatalf("%s: body %s is not JSON: %v", what, r.Body, err)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatalf("%s: bad expectation %s: %v", what, want, err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("%s: body %s, want %s", what, bytes.TrimSpace(r.Body), want)
	}
}

// kbCreate creates a backup version and returns it.
func kbCreate(t *testing.T, s *apitest.Server, u apitest.User, authData string) string {
	t.Helper()
	r := s.Do("POST", "/_matrix/client/v3/room_keys/version", u.Token,
		`{"algorithm":"`+kbAlg+`","auth_data":`+authData+`}`).Expect(t, 200, "")
	v := r.String("version")
	if v == "" || len(r.JSON) != 1 {
		t.Fatalf("create backup answered %s", r.Body)
	}
	return v
}

// kbKeysPath is /room_keys/keys[/room[/session]]?version=v (no query when
// v is "-").
func kbKeysPath(v string, parts ...string) string {
	p := "/_matrix/client/v3/room_keys/keys"
	for _, part := range parts {
		p += "/" + url.PathEscape(part)
	}
	if v != "-" {
		p += "?version=" + url.QueryEscape(v)
	}
	return p
}

// kbKey is a KeyBackupData object.
func kbKey(fmi, fc int, verified bool, data string) string {
	return fmt.Sprintf(`{"first_message_index":%d,"forwarded_count":%d,"is_verified":%t,"session_data":{"d":%q}}`, fmi, fc, verified, data)
}

// kbPutSession uploads one session's key and checks the etag and count
// answered.
func kbPutSession(t *testing.T, s *apitest.Server, u apitest.User, v, room, session, key, etag string, count int) {
	t.Helper()
	r := s.Do("PUT", kbKeysPath(v, room, session), u.Token, key).Expect(t, 200, "")
	kbJSON(t, "upload of "+session, r, fmt.Sprintf(`{"etag":%q,"count":%d}`, etag, count))
}

func TestRoomKeysVersionLifecycle(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		const base = "/_matrix/client/v3/room_keys/version"
		s.Do("GET", base, alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")

		if v := kbCreate(t, s, alice, `{"public_key":"pk1","signatures":{"@alice:x":{"ed25519:D":"sig"}}}`); v != "1" {
			t.Fatalf("first version %q, want \"1\"", v)
		}
		want1 := `{"algorithm":"` + kbAlg + `","auth_data":{"public_key":"pk1","signatures":{"@alice:x":{"ed25519:D":"sig"}}},"count":0,"etag":"0","version":"1"}`
		kbJSON(t, "current version", s.Do("GET", base, alice.Token, nil).Expect(t, 200, ""), want1)
		kbJSON(t, "version 1", s.Do("GET", base+"/1", alice.Token, nil).Expect(t, 200, ""), want1)

		// Update: only auth_data changes; the body's version, if any, must
		// be the path's; the algorithm must stay.
		r := s.Do("PUT", base+"/1", alice.Token, `{"algorithm":"`+kbAlg+`","auth_data":{"public_key":"pk2"},"version":"1"}`).Expect(t, 200, "")
		kbJSON(t, "update", r, `{}`)
		kbJSON(t, "after update", s.Do("GET", base+"/1", alice.Token, nil).Expect(t, 200, ""),
			`{"algorithm":"`+kbAlg+`","auth_data":{"public_key":"pk2"},"count":0,"etag":"0","version":"1"}`)
		s.Do("PUT", base+"/1", alice.Token, `{"algorithm":"`+kbAlg+`","auth_data":{},"version":"2"}`).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("PUT", base+"/1", alice.Token, `{"algorithm":"m.megolm_backup.v2","auth_data":{}}`).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("PUT", base+"/7", alice.Token, `{"algorithm":"`+kbAlg+`","auth_data":{}}`).Expect(t, 404, "M_NOT_FOUND")
		s.Do("PUT", base+"/x", alice.Token, `{"algorithm":"`+kbAlg+`","auth_data":{}}`).Expect(t, 404, "M_NOT_FOUND")

		// A second version becomes current; the first stays readable but
		// can no longer be updated.
		if v := kbCreate(t, s, alice, `{"public_key":"pk3"}`); v != "2" {
			t.Fatalf("second version %q, want \"2\"", v)
		}
		if got := s.Do("GET", base, alice.Token, nil).Expect(t, 200, "").String("version"); got != "2" {
			t.Fatalf("current version %q after creating 2", got)
		}
		s.Do("GET", base+"/1", alice.Token, nil).Expect(t, 200, "")
		// An older version can still be updated, as Synapse allows.
		s.Do("PUT", base+"/1", alice.Token, `{"algorithm":"`+kbAlg+`","auth_data":{"x":1}}`).Expect(t, 200, "")

		// Delete: the one before becomes current again; deleting twice
		// succeeds; an unknown version is 404.
		kbJSON(t, "delete 2", s.Do("DELETE", base+"/2", alice.Token, nil).Expect(t, 200, ""), `{}`)
		s.Do("GET", base+"/2", alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		if got := s.Do("GET", base, alice.Token, nil).Expect(t, 200, "").String("version"); got != "1" {
			t.Fatalf("current version %q after deleting 2, want \"1\"", got)
		}
		s.Do("DELETE", base+"/2", alice.Token, nil).Expect(t, 200, "")
		s.Do("DELETE", base+"/99", alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("DELETE", base+"/01", alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("DELETE", base+"/1", alice.Token, nil).Expect(t, 200, "")
		s.Do("GET", base, alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("GET", base+"/1", alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("GET", base+"/abc", alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")

		// Versions keep counting up; r0 paths work as well.
		r = s.Do("POST", "/_matrix/client/r0/room_keys/version", alice.Token, `{"algorithm":"`+kbAlg+`","auth_data":{}}`).Expect(t, 200, "")
		if got := r.String("version"); got != "3" {
			t.Fatalf("version after deleting all %q, want \"3\"", got)
		}
		if got := s.Do("GET", "/_matrix/client/r0/room_keys/version", alice.Token, nil).Expect(t, 200, "").String("version"); got != "3" {
			t.Fatalf("current version %q, want \"3\"", got)
		}
	})
}

// TestRoomKeysReplaceRule runs each branch of the spec's rule for a key
// uploaded for a session the backup has: verified beats unverified, then a
// lower first_message_index wins, then a lower forwarded_count.
func TestRoomKeysReplaceRule(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		v := kbCreate(t, s, alice, `{"public_key":"pk"}`)
		const room = "!room:example.org"
		cases := []struct {
			name             string
			stored, uploaded string
			replaced         bool
		}{
			{"verified beats unverified, even with a higher index and count", kbKey(5, 1, false, "old"), kbKey(9, 3, true, "new"), true},
			{"unverified never beats verified, even with a lower index", kbKey(5, 1, true, "old"), kbKey(0, 0, false, "new"), false},
			{"both unverified: lower index wins over a higher count", kbKey(5, 0, false, "old"), kbKey(4, 7, false, "new"), true},
			{"both verified: lower index wins", kbKey(5, 0, true, "old"), kbKey(4, 0, true, "new"), true},
			{"higher index loses even with a lower count", kbKey(5, 3, false, "old"), kbKey(6, 0, false, "new"), false},
			{"same index: lower count wins", kbKey(5, 3, false, "old"), kbKey(5, 2, false, "new"), true},
			{"same index: higher count loses", kbKey(5, 3, true, "old"), kbKey(5, 4, true, "new"), false},
			{"all equal: the stored key stays", kbKey(5, 3, false, "old"), kbKey(5, 3, false, "new"), false},
		}
		etag, count := 0, 0
		for i, c := range cases {
			session := fmt.Sprintf("session%d", i)
			etag++
			count++
			kbPutSession(t, s, alice, v, room, session, c.stored, fmt.Sprint(etag), count)
			if c.replaced {
				etag++ // a change moves the etag; a kept key does not
			}
			kbPutSession(t, s, alice, v, room, session, c.uploaded, fmt.Sprint(etag), count)
			want := c.stored
			if c.replaced {
				want = c.uploaded
			}
			kbJSON(t, c.name, s.Do("GET", kbKeysPath(v, room, session), alice.Token, nil).Expect(t, 200, ""), want)
		}
		kbJSON(t, "version", s.Do("GET", "/_matrix/client/v3/room_keys/version", alice.Token, nil).Expect(t, 200, ""),
			fmt.Sprintf(`{"algorithm":%q,"auth_data":{"public_key":"pk"},"count":%d,"etag":"%d","version":%q}`, kbAlg, count, etag, v))
	})
}

func TestRoomKeysUploadReadDelete(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		v := kbCreate(t, s, alice, `{}`)
		const r1, r2 = "!one:example.org", "!two/slash:example.org"
		kbJSON(t, "empty backup", s.Do("GET", kbKeysPath(v), alice.Token, nil).Expect(t, 200, ""), `{"rooms":{}}`)
		kbJSON(t, "empty room", s.Do("GET", kbKeysPath(v, r1), alice.Token, nil).Expect(t, 200, ""), `{"sessions":{}}`)
		s.Do("GET", kbKeysPath(v, r1, "nope"), alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")

		// Upload at each level.
		kbJSON(t, "upload all", s.Do("PUT", kbKeysPath(v), alice.Token,
			`{"rooms":{"`+r1+`":{"sessions":{"a":`+kbKey(1, 0, false, "a")+`,"b":`+kbKey(2, 0, true, "b")+`}}}}`).Expect(t, 200, ""),
			`{"etag":"1","count":2}`)
		kbJSON(t, "upload room", s.Do("PUT", kbKeysPath(v, r2), alice.Token,
			`{"sessions":{"c":`+kbKey(3, 1, false, "c")+`}}`).Expect(t, 200, ""), `{"etag":"2","count":3}`)
		kbPutSession(t, s, alice, v, r2, "d/e", kbKey(4, 0, false, "d"), "3", 4)
		// A whole number written as 10.0 is an integer.
		kbPutSession(t, s, alice, v, r1, "f",
			`{"first_message_index":10.0,"forwarded_count":0,"is_verified":false,"session_data":{"d":"f"}}`, "4", 5)

		all := `{"rooms":{"` + r1 + `":{"sessions":{"a":` + kbKey(1, 0, false, "a") + `,"b":` + kbKey(2, 0, true, "b") +
			`,"f":` + kbKey(10, 0, false, "f") + `}},"` + r2 + `":{"sessions":{"c":` + kbKey(3, 1, false, "c") + `,"d/e":` + kbKey(4, 0, false, "d") + `}}}}`
		kbJSON(t, "all keys", s.Do("GET", kbKeysPath(v), alice.Token, nil).Expect(t, 200, ""), all)
		kbJSON(t, "keys of r2", s.Do("GET", kbKeysPath(v, r2), alice.Token, nil).Expect(t, 200, ""),
			`{"sessions":{"c":`+kbKey(3, 1, false, "c")+`,"d/e":`+kbKey(4, 0, false, "d")+`}}`)
		kbJSON(t, "key d/e", s.Do("GET", kbKeysPath(v, r2, "d/e"), alice.Token, nil).Expect(t, 200, ""), kbKey(4, 0, false, "d"))

		// Delete at each level: the etag moves only when keys go.
		kbJSON(t, "delete one", s.Do("DELETE", kbKeysPath(v, r2, "d/e"), alice.Token, nil).Expect(t, 200, ""), `{"etag":"5","count":4}`)
		kbJSON(t, "delete it again", s.Do("DELETE", kbKeysPath(v, r2, "d/e"), alice.Token, nil).Expect(t, 200, ""), `{"etag":"5","count":4}`)
		s.Do("GET", kbKeysPath(v, r2, "d/e"), alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		kbJSON(t, "delete room", s.Do("DELETE", kbKeysPath(v, r1), alice.Token, nil).Expect(t, 200, ""), `{"etag":"6","count":1}`)
		kbJSON(t, "after deleting r1", s.Do("GET", kbKeysPath(v), alice.Token, nil).Expect(t, 200, ""),
			`{"rooms":{"`+r2+`":{"sessions":{"c":`+kbKey(3, 1, false, "c")+`}}}}`)
		kbJSON(t, "delete all", s.Do("DELETE", kbKeysPath(v), alice.Token, nil).Expect(t, 200, ""), `{"etag":"7","count":0}`)
		kbJSON(t, "after deleting all", s.Do("GET", kbKeysPath(v), alice.Token, nil).Expect(t, 200, ""), `{"rooms":{}}`)

		// Hundreds of keys in one request.
		var b bytes.Buffer
		b.WriteString(`{"rooms":{`)
		for room := range 5 {
			if room > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"!bulk%d:example.org":{"sessions":{`, room)
			for i := range 80 {
				if i > 0 {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, `"s%d":%s`, i, kbKey(i, 0, false, "x"))
			}
			b.WriteString(`}}`)
		}
		b.WriteString(`}}`)
		kbJSON(t, "bulk upload", s.Do("PUT", kbKeysPath(v), alice.Token, b.Bytes()).Expect(t, 200, ""), `{"etag":"8","count":400}`)
		kbJSON(t, "bulk upload again", s.Do("PUT", kbKeysPath(v), alice.Token, b.Bytes()).Expect(t, 200, ""), `{"etag":"8","count":400}`)

		// Deleting the version deletes its keys.
		s.Do("DELETE", "/_matrix/client/v3/room_keys/version/"+v, alice.Token, nil).Expect(t, 200, "")
		s.Do("GET", kbKeysPath(v), alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("DELETE", kbKeysPath(v), alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")
	})
}

func TestRoomKeysWrongVersion(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		key := kbKey(0, 0, false, "k")
		// No backup at all: 404 whatever the version.
		s.Do("PUT", kbKeysPath("1", "!r:x", "s"), alice.Token, key).Expect(t, 404, "M_NOT_FOUND")
		s.Do("PUT", kbKeysPath("-", "!r:x", "s"), alice.Token, key).Expect(t, 400, "M_MISSING_PARAM")
		s.Do("GET", kbKeysPath("1"), alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("DELETE", kbKeysPath("1"), alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")

		v1 := kbCreate(t, s, alice, `{}`)
		kbPutSession(t, s, alice, v1, "!r:x", "s", key, "1", 1)
		v2 := kbCreate(t, s, alice, `{}`)
		s.Do("PUT", kbKeysPath("", "!r:x", "s"), alice.Token, key).Expect(t, 400, "M_MISSING_PARAM")
		s.Do("PUT", kbKeysPath("-", "!r:x", "s"), alice.Token, key).Expect(t, 400, "M_MISSING_PARAM")
		for _, v := range []string{v1, "abc", "3", "02"} {
			for _, c := range []struct{ path, body string }{
				{kbKeysPath(v), `{"rooms":{"!r:x":{"sessions":{"s":` + key + `}}}}`},
				{kbKeysPath(v, "!r:x"), `{"sessions":{"s":` + key + `}}`},
				{kbKeysPath(v, "!r:x", "s"), key},
			} {
				r := s.Do("PUT", c.path, alice.Token, c.body).Expect(t, 403, "M_WRONG_ROOM_KEYS_VERSION")
				if got := r.String("current_version"); got != v2 {
					t.Fatalf("PUT %s: current_version %q, want %q: %s", c.path, got, v2, r.Body)
				}
			}
		}
		kbJSON(t, "new version untouched", s.Do("GET", kbKeysPath(v2), alice.Token, nil).Expect(t, 200, ""), `{"rooms":{}}`)
		// The old version can still be read and emptied.
		kbJSON(t, "old version", s.Do("GET", kbKeysPath(v1, "!r:x", "s"), alice.Token, nil).Expect(t, 200, ""), key)
		// Reads and deletes need a version.
		s.Do("GET", kbKeysPath("-"), alice.Token, nil).Expect(t, 400, "M_MISSING_PARAM")
		s.Do("DELETE", kbKeysPath("-", "!r:x"), alice.Token, nil).Expect(t, 400, "M_MISSING_PARAM")
		s.Do("GET", kbKeysPath("9", "!r:x"), alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("GET", kbKeysPath("x", "!r:x", "s"), alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		kbJSON(t, "empty the old version", s.Do("DELETE", kbKeysPath(v1), alice.Token, nil).Expect(t, 200, ""), `{"etag":"2","count":0}`)
	})
}

func TestRoomKeysArePrivate(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")
		v := kbCreate(t, s, alice, `{"public_key":"alice"}`)
		kbPutSession(t, s, alice, v, "!r:x", "s", kbKey(0, 0, false, "secret"), "1", 1)

		s.Do("GET", "/_matrix/client/v3/room_keys/version", bob.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("GET", "/_matrix/client/v3/room_keys/version/"+v, bob.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("PUT", "/_matrix/client/v3/room_keys/version/"+v, bob.Token, `{"algorithm":"`+kbAlg+`","auth_data":{}}`).Expect(t, 404, "M_NOT_FOUND")
		s.Do("DELETE", "/_matrix/client/v3/room_keys/version/"+v, bob.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("GET", kbKeysPath(v), bob.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("GET", kbKeysPath(v, "!r:x", "s"), bob.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("DELETE", kbKeysPath(v), bob.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("PUT", kbKeysPath(v, "!r:x", "s"), bob.Token, kbKey(0, 0, true, "evil")).Expect(t, 404, "M_NOT_FOUND")

		// Bob's own backup is numbered on its own and holds only his keys.
		if bv := kbCreate(t, s, bob, `{"public_key":"bob"}`); bv != "1" {
			t.Fatalf("bob's first version %q, want \"1\"", bv)
		}
		kbJSON(t, "bob's keys", s.Do("GET", kbKeysPath("1"), bob.Token, nil).Expect(t, 200, ""), `{"rooms":{}}`)
		kbPutSession(t, s, bob, "1", "!r:x", "s", kbKey(0, 0, true, "bob"), "1", 1)
		kbJSON(t, "alice's key", s.Do("GET", kbKeysPath(v, "!r:x", "s"), alice.Token, nil).Expect(t, 200, ""), kbKey(0, 0, false, "secret"))
		s.Do("DELETE", "/_matrix/client/v3/room_keys/version/1", bob.Token, nil).Expect(t, 200, "")
		kbJSON(t, "alice's backup after bob deleted his", s.Do("GET", "/_matrix/client/v3/room_keys/version", alice.Token, nil).Expect(t, 200, ""),
			`{"algorithm":"`+kbAlg+`","auth_data":{"public_key":"alice"},"count":1,"etag":"1","version":"1"}`)
	})
}

func TestRoomKeysBadRequests(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		const ver = "/_matrix/client/v3/room_keys/version"
		good := kbKey(1, 0, false, "x")
		for _, c := range []struct {
			method, path, body string
			status             int
			errcode            string
		}{
			{"POST", ver, `nope`, 400, "M_NOT_JSON"},
			{"POST", ver, `[]`, 400, "M_BAD_JSON"},
			{"POST", ver, `{}`, 400, "M_MISSING_PARAM"},
			{"POST", ver, `{"auth_data":{}}`, 400, "M_MISSING_PARAM"},
			{"POST", ver, `{"algorithm":"` + kbAlg + `"}`, 400, "M_MISSING_PARAM"},
			{"POST", ver, `{"algorithm":5,"auth_data":{}}`, 400, "M_BAD_JSON"},
			{"POST", ver, `{"algorithm":"` + kbAlg + `","auth_data":"opaque"}`, 400, "M_BAD_JSON"},
			{"POST", ver, `{"algorithm":"` + kbAlg + `","auth_data":[1]}`, 400, "M_BAD_JSON"},
			{"POST", ver, `{"algorithm":"","auth_data":{}}`, 400, "M_INVALID_PARAM"},
		} {
			s.Do(c.method, c.path, alice.Token, c.body).Expect(t, c.status, c.errcode)
		}
		s.Do("GET", ver, alice.Token, nil).Expect(t, 404, "M_NOT_FOUND") // none of them created a backup

		v := kbCreate(t, s, alice, `{}`)
		for _, c := range []struct {
			method, path, body string
			status             int
			errcode            string
		}{
			{"PUT", ver + "/" + v, `{"auth_data":{}}`, 400, "M_MISSING_PARAM"},
			{"PUT", ver + "/" + v, `{"algorithm":"` + kbAlg + `"}`, 400, "M_MISSING_PARAM"},
			{"PUT", ver + "/" + v, `{"algorithm":"` + kbAlg + `","auth_data":true}`, 400, "M_BAD_JSON"},
			{"PUT", ver + "/" + v, `{"algorithm":"` + kbAlg + `","auth_data":{},"version":1}`, 400, "M_BAD_JSON"},
			{"PUT", ver + "/" + v, `{"algorithm":[],"auth_data":{}}`, 400, "M_BAD_JSON"},

			{"PUT", kbKeysPath(v, "!r:x", "s"), `nope`, 400, "M_NOT_JSON"},
			{"PUT", kbKeysPath(v, "!r:x", "s"), `[]`, 400, "M_BAD_JSON"},
			{"PUT", kbKeysPath(v, "!r:x", "s"), `{"first_message_index":0,"forwarded_count":0,"session_data":{}}`, 400, "M_MISSING_PARAM"},
			{"PUT", kbKeysPath(v, "!r:x", "s"), `{"first_message_index":0,"forwarded_count":0,"is_verified":false}`, 400, "M_MISSING_PARAM"},
			{"PUT", kbKeysPath(v, "!r:x", "s"), `{"first_message_index":0,"is_verified":false,"session_data":{}}`, 400, "M_MISSING_PARAM"},
			{"PUT", kbKeysPath(v, "!r:x", "s"), `{"first_message_index":0,"forwarded_count":0,"is_verified":"yes","session_data":{}}`, 400, "M_BAD_JSON"},
			{"PUT", kbKeysPath(v, "!r:x", "s"), `{"first_message_index":0,"forwarded_count":0,"is_verified":0,"session_data":{}}`, 400, "M_BAD_JSON"},
			{"PUT", kbKeysPath(v, "!r:x", "s"), `{"first_message_index":1.5,"forwarded_count":0,"is_verified":false,"session_data":{}}`, 400, "M_BAD_JSON"},
			{"PUT", kbKeysPath(v, "!r:x", "s"), `{"first_message_index":"1","forwarded_count":0,"is_verified":false,"session_data":{}}`, 400, "M_BAD_JSON"},
			{"PUT", kbKeysPath(v, "!r:x", "s"), `{"first_message_index":null,"forwarded_count":0,"is_verified":false,"session_data":{}}`, 400, "M_BAD_JSON"},
			{"PUT", kbKeysPath(v, "!r:x", "s"), `{"first_message_index":0,"forwarded_count":1e30,"is_verified":false,"session_data":{}}`, 400, "M_BAD_JSON"},
			{"PUT", kbKeysPath(v, "!r:x", "s"), `{"first_message_index":-1,"forwarded_count":0,"is_verified":false,"session_data":{}}`, 400, "M_INVALID_PARAM"},
			{"PUT", kbKeysPath(v, "!r:x", "s"), `{"first_message_index":0,"forwarded_count":-2,"is_verified":false,"session_data":{}}`, 400, "M_INVALID_PARAM"},
			{"PUT", kbKeysPath(v, "!r:x", "s"), `{"first_message_index":0,"forwarded_count":0,"is_verified":false,"session_data":"b64"}`, 400, "M_BAD_JSON"},
			{"PUT", kbKeysPath(v, "!r:x"), `{}`, 400, "M_MISSING_PARAM"},
			{"PUT", kbKeysPath(v, "!r:x"), `{"sessions":[]}`, 400, "M_BAD_JSON"},
			{"PUT", kbKeysPath(v, "!r:x"), `{"sessions":{"s":5}}`, 400, "M_BAD_JSON"},
			{"PUT", kbKeysPath(v, "!r:x"), `{"sessions":{"":` + good + `}}`, 400, "M_INVALID_PARAM"},
			{"PUT", kbKeysPath(v), `{}`, 400, "M_MISSING_PARAM"},
			{"PUT", kbKeysPath(v), `{"rooms":[]}`, 400, "M_BAD_JSON"},
			{"PUT", kbKeysPath(v), `{"rooms":{"!r:x":{}}}`, 400, "M_MISSING_PARAM"},
			{"PUT", kbKeysPath(v), `{"rooms":{"!r:x":{"sessions":{"s":"key"}}}}`, 400, "M_BAD_JSON"},
			{"PUT", kbKeysPath(v), `{"rooms":{"":{"sessions":{"s":` + good + `}}}}`, 400, "M_INVALID_PARAM"},
			// One bad key among good ones: nothing is stored.
			{"PUT", kbKeysPath(v), `{"rooms":{"!r:x":{"sessions":{"a":` + good + `,"b":{"first_message_index":0}}}}}`, 400, "M_MISSING_PARAM"},
		} {
			r := s.Do(c.method, c.path, alice.Token, c.body)
			if r.Status != c.status || r.Errcode() != c.errcode {
				t.Errorf("%s %s %s: got %d %q, want %d %q; body %s", c.method, c.path, c.body, r.Status, r.Errcode(), c.status, c.errcode, r.Body)
			}
		}
		kbJSON(t, "after bad requests", s.Do("GET", ver+"/"+v, alice.Token, nil).Expect(t, 200, ""),
			`{"algorithm":"`+kbAlg+`","auth_data":{},"count":0,"etag":"0","version":"1"}`)
	})
}

func TestRoomKeysNeedAuth(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		for _, c := range []struct{ method, path string }{
			{"GET", "/_matrix/client/v3/room_keys/version"},
			{"POST", "/_matrix/client/v3/room_keys/version"},
			{"GET", "/_matrix/client/v3/room_keys/version/1"},
			{"PUT", "/_matrix/client/v3/room_keys/version/1"},
			{"DELETE", "/_matrix/client/v3/room_keys/version/1"},
			{"GET", kbKeysPath("1")},
			{"PUT", kbKeysPath("1")},
			{"DELETE", kbKeysPath("1")},
			{"GET", kbKeysPath("1", "!r:x")},
			{"PUT", kbKeysPath("1", "!r:x")},
			{"DELETE", kbKeysPath("1", "!r:x")},
			{"GET", kbKeysPath("1", "!r:x", "s")},
			{"PUT", kbKeysPath("1", "!r:x", "s")},
			{"DELETE", kbKeysPath("1", "!r:x", "s")},
		} {
			s.Do(c.method, c.path, "", `{}`).Expect(t, 401, "M_MISSING_TOKEN")
			s.Do(c.method, c.path, "not-a-token", `{}`).Expect(t, 401, "M_UNKNOWN_TOKEN")
		}
	})
}

// TestSecretStorageAccountDataRoundTrip checks that the account data
// holding secret storage and cross-signing keys comes back exactly as
// uploaded, through GET account_data and /sync: clients check MACs over
// these values.
func TestSecretStorageAccountDataRoundTrip(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		// Escapes, number forms, key order and characters JSON encoders
		// like to rewrite (<, >, &, U+2028, non-ASCII) must all survive.
		enc := `{"encrypted":{"KeyId+/=":{"iv":"gH2iNpiETFhApvW6/FFEJQ","ciphertext":"2bo/+a\u00e9<&>\\\"x=","mac":"QjHh+/9a"}},` +
			"\"zeta\":1.50,\"alpha\":[1e3,-0,\"\\ud83d\\ude00 \u2028 é\"],\"nested\":{\"b\":null,\"a\":true}}"
		data := map[string]string{
			"m.secret_storage.default_key": `{"key":"KeyId+/="}`,
			"m.secret_storage.key.KeyId+/=": `{"algorithm":"m.secret_storage.v1.aes-hmac-sha2","passphrase":{"algorithm":"m.pbkdf2",` +
				`"iterations":500000,"salt":"S+/a<>&","bits":256},"iv":"abc/+=","mac":"def+/=","name":"My \"key\" \u00e9"}`,
			"m.cross_signing.master":       enc,
			"m.cross_signing.self_signing": enc,
			"m.cross_signing.user_signing": enc,
			"m.megolm_backup.v1":           enc,
		}
		for typ, content := range data {
			path := "/_matrix/client/v3/user/" + url.PathEscape(alice.ID) + "/account_data/" + url.PathEscape(typ)
			s.Do("PUT", path, alice.Token, content).Expect(t, 200, "")
			r := s.Do("GET", path, alice.Token, nil).Expect(t, 200, "")
			if got := string(bytes.TrimSpace(r.Body)); got != content {
				t.Errorf("GET %s:\n got %s\nwant %s", typ, got, content)
			}
		}
		r := s.Do("GET", "/_matrix/client/v3/sync", alice.Token, nil).Expect(t, 200, "")
		var sync struct {
			AccountData struct {
				Events []struct {
					Type    string          `json:"type"`
					Content json.RawMessage `json:"content"`
				} `json:"events"`
			} `json:"account_data"`
		}
		if err := json.Unmarshal(r.Body, &sync); err != nil {
			t.Fatalf("sync: %v", err)
		}
		seen := 0
		for _, ev := range sync.AccountData.Events {
			want, ok := data[ev.Type]
			if !ok {
				continue
			}
			seen++
			if string(ev.Content) != want {
				t.Errorf("/sync %s:\n got %s\nwant %s", ev.Type, ev.Content, want)
			}
		}
		if seen != len(data) {
			t.Errorf("/sync carried %d of the %d entries", seen, len(data))
		}
	})
}
