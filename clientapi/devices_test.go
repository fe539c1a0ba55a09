package clientapi_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// Conformance tests for the device management API.

// auDevicePath is the path of one device, with the ID percent-encoded.
func auDevicePath(deviceID string) string {
	return auV3 + "/devices/" + url.PathEscape(deviceID)
}

func TestDeviceListAndGet(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		dora := s.Register("dora", "dora-password")
		laptop := auLoginOK(t, s, "dora", "dora-password", map[string]any{"device_id": "LAPTOP", "initial_device_display_name": "laptop"})
		nameless := auLoginOK(t, s, "dora", "dora-password", nil)
		bob := s.Register("bob", "bob-password")

		r := s.Do("GET", auV3+"/devices", dora.Token, nil)
		auOK(t, "GET /devices", r)
		list, _ := r.JSON["devices"].([]any)
		byID := map[string]map[string]any{}
		for _, d := range list {
			obj, _ := d.(map[string]any)
			id, _ := obj["device_id"].(string)
			byID[id] = obj
		}
		if len(byID) != 3 || byID[dora.DeviceID] == nil || byID["LAPTOP"] == nil || byID[nameless.DeviceID] == nil {
			t.Fatalf("GET /devices = %s, want exactly %s, LAPTOP and %s", r.Body, dora.DeviceID, nameless.DeviceID)
		}
		if byID["LAPTOP"]["display_name"] != "laptop" {
			t.Errorf("LAPTOP = %v, want display_name laptop", byID["LAPTOP"])
		}
		// The spec: display_name is absent if no name has been set.
		if _, has := byID[nameless.DeviceID]["display_name"]; has {
			t.Errorf("device without a name = %v, want no display_name", byID[nameless.DeviceID])
		}
		for id, d := range byID {
			if ts, has := d["last_seen_ts"]; has {
				if _, ok := ts.(float64); !ok {
					t.Errorf("%s: last_seen_ts %v is not a number", id, ts)
				}
			}
		}

		r = s.Do("GET", auDevicePath("LAPTOP"), laptop.Token, nil)
		auOK(t, "GET /devices/LAPTOP", r)
		if r.String("device_id") != "LAPTOP" || r.String("display_name") != "laptop" {
			t.Fatalf("GET /devices/LAPTOP = %s", r.Body)
		}

		auError(t, "unknown device", s.Do("GET", auDevicePath("NOSUCHDEVICE"), dora.Token, nil), 404, "M_NOT_FOUND")
		auError(t, "another user's device", s.Do("GET", auDevicePath(dora.DeviceID), bob.Token, nil), 404, "M_NOT_FOUND")
		auError(t, "no token", s.Do("GET", auV3+"/devices", "", nil), 401, "M_MISSING_TOKEN")
		auError(t, "no token for one device", s.Do("GET", auDevicePath("LAPTOP"), "", nil), 401, "M_MISSING_TOKEN")

		// Other users' devices never show up.
		if ids := auDeviceIDs(t, s, bob.Token); !slices.Equal(ids, []string{bob.DeviceID}) {
			t.Fatalf("bob's devices = %v, want only %s", ids, bob.DeviceID)
		}
	})
}

func TestDeviceUpdate(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		erin := s.Register("erin", "erin-password")
		bob := s.Register("bob", "bob-password")
		name := func(token, deviceID string) any {
			t.Helper()
			r := s.Do("GET", auDevicePath(deviceID), token, nil)
			auOK(t, "GET device", r)
			return r.JSON["display_name"]
		}

		auEmptyOK(t, "rename", s.Do("PUT", auDevicePath(erin.DeviceID), erin.Token, map[string]any{"display_name": "Work phone"}))
		if got := name(erin.Token, erin.DeviceID); got != "Work phone" {
			t.Fatalf("display_name after rename = %v", got)
		}
		// Without display_name nothing changes.
		auEmptyOK(t, "empty update", s.Do("PUT", auDevicePath(erin.DeviceID), erin.Token, map[string]any{}))
		if got := name(erin.Token, erin.DeviceID); got != "Work phone" {
			t.Fatalf("display_name after an empty update = %v", got)
		}

		auError(t, "unknown device", s.Do("PUT", auDevicePath("NOSUCHDEVICE"), erin.Token, map[string]any{"display_name": "x"}), 404, "M_NOT_FOUND")
		auError(t, "another user's device", s.Do("PUT", auDevicePath(bob.DeviceID), erin.Token, map[string]any{"display_name": "hijacked"}), 404, "M_NOT_FOUND")
		if got := name(bob.Token, bob.DeviceID); got == "hijacked" {
			t.Fatalf("erin renamed bob's device")
		}
		auError(t, "too long", s.Do("PUT", auDevicePath(erin.DeviceID), erin.Token, map[string]any{"display_name": strings.Repeat("x", 101)}), 400, "M_TOO_LARGE")
		auError(t, "wrong type", s.Do("PUT", auDevicePath(erin.DeviceID), erin.Token, map[string]any{"display_name": 42}), 400, "M_BAD_JSON")
		auError(t, "not JSON", s.Do("PUT", auDevicePath(erin.DeviceID), erin.Token, "{"), 400, "M_NOT_JSON")
		auError(t, "no token", s.Do("PUT", auDevicePath(erin.DeviceID), "", map[string]any{"display_name": "x"}), 401, "M_MISSING_TOKEN")
	})
}

func TestDeviceSpecialCharacters(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		s.Register("pia", "pia-password")
		for _, id := range []string{"slash/in id", "percent%2F?query#hash", "plus+and space", "ünï©ødé", ".."} {
			u := auLoginOK(t, s, "pia", "pia-password", map[string]any{"device_id": id})
			if u.DeviceID != id {
				t.Fatalf("login with device_id %q gave %q", id, u.DeviceID)
			}
			r := s.Do("GET", auDevicePath(id), u.Token, nil)
			auOK(t, "GET "+id, r)
			if r.String("device_id") != id {
				t.Fatalf("GET %s = %s", auDevicePath(id), r.Body)
			}
			auEmptyOK(t, "PUT "+id, s.Do("PUT", auDevicePath(id), u.Token, map[string]any{"display_name": "named " + id}))
			r = s.Do("GET", auDevicePath(id), u.Token, nil)
			if r.String("display_name") != "named "+id {
				t.Fatalf("%s after rename = %s", id, r.Body)
			}
			session, _ := auChallenge(t, "DELETE "+id, s.Do("DELETE", auDevicePath(id), u.Token, nil))
			auEmptyOK(t, "DELETE "+id, s.Do("DELETE", auDevicePath(id), u.Token, map[string]any{"auth": u.PasswordAuth(session)}))
			auTokenDead(t, s, "token of the deleted device "+id, u.Token)
		}
	})
}

func TestDeviceDelete(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		dan := s.Register("dan", "dan-password")
		bob := s.Register("bob", "bob-password")
		doomed := auLoginOK(t, s, "dan", "dan-password", nil)
		path := auDevicePath(doomed.DeviceID)

		// No body at all still gets the challenge (Complement sends none).
		session, flows := auChallenge(t, "no body", s.Do("DELETE", path, dan.Token, nil))
		auWantFlows(t, "DELETE device", flows, []string{"m.login.password"})
		auChallenge(t, "empty object", s.Do("DELETE", path, dan.Token, map[string]any{}))

		wrong := dan
		wrong.Password = "not-dans-password"
		got := auStageFailed(t, "wrong password", s.Do("DELETE", path, dan.Token, map[string]any{"auth": wrong.PasswordAuth(session)}), "M_FORBIDDEN")
		if got != session {
			t.Fatalf("wrong password: session %q, want the same %q", got, session)
		}
		auWhoami(t, s, doomed.Token, dan.ID, doomed.DeviceID)

		// Authenticating as someone else (with their right password) is a
		// plain 403: a stolen token plus the thief's password is not enough.
		r := s.Do("DELETE", path, dan.Token, map[string]any{"auth": bob.PasswordAuth(session)})
		auError(t, "another user's credentials", r, 403, "M_FORBIDDEN")
		if _, has := r.JSON["flows"]; has {
			t.Fatalf("another user's credentials: got a UIA challenge, want a plain 403: %s", r.Body)
		}
		auWhoami(t, s, doomed.Token, dan.ID, doomed.DeviceID)

		// The deprecated "user" field with a localpart works too.
		auth := map[string]any{"type": "m.login.password", "user": "dan", "password": "dan-password", "session": session}
		auEmptyOK(t, "right password", s.Do("DELETE", path, dan.Token, map[string]any{"auth": auth}))
		auTokenDead(t, s, "token of the deleted device", doomed.Token)
		auError(t, "GET the deleted device", s.Do("GET", path, dan.Token, nil), 404, "M_NOT_FOUND")
		// A completed session cannot be used again.
		auError(t, "completed session", s.Do("DELETE", path, dan.Token, map[string]any{"auth": dan.PasswordAuth(session)}), 400, "M_UNKNOWN")

		// Deleting a device that is not there (any more) succeeds after
		// authentication: the spec's "or had been removed previously".
		for _, id := range []string{doomed.DeviceID, bob.DeviceID} {
			p := auDevicePath(id)
			session, _ = auChallenge(t, "DELETE a missing device", s.Do("DELETE", p, dan.Token, nil))
			auEmptyOK(t, "DELETE a missing device", s.Do("DELETE", p, dan.Token, map[string]any{"auth": dan.PasswordAuth(session)}))
		}
		auWhoami(t, s, bob.Token, bob.ID, bob.DeviceID)
		auWhoami(t, s, dan.Token, dan.ID, dan.DeviceID)

		// A session is bound to the device it was started for.
		one := auLoginOK(t, s, "dan", "dan-password", nil)
		two := auLoginOK(t, s, "dan", "dan-password", nil)
		session, _ = auChallenge(t, "DELETE one", s.Do("DELETE", auDevicePath(one.DeviceID), dan.Token, nil))
		auError(t, "session of another device", s.Do("DELETE", auDevicePath(two.DeviceID), dan.Token, map[string]any{"auth": dan.PasswordAuth(session)}), 403, "M_FORBIDDEN")
		auWhoami(t, s, two.Token, dan.ID, two.DeviceID)

		auError(t, "no token", s.Do("DELETE", path, "", nil), 401, "M_MISSING_TOKEN")
		auError(t, "not JSON", s.Do("DELETE", path, dan.Token, "{"), 400, "M_NOT_JSON")
	})
}

func TestDeleteDevices(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		kim := s.Register("kim", "kim-password")
		a := auLoginOK(t, s, "kim", "kim-password", nil)
		b := auLoginOK(t, s, "kim", "kim-password", map[string]any{"device_id": "SHARED"})
		keep := auLoginOK(t, s, "kim", "kim-password", nil)
		s.Register("bob", "bob-password")
		bobShared := auLoginOK(t, s, "bob", "bob-password", map[string]any{"device_id": "SHARED"})

		body := map[string]any{"devices": []string{a.DeviceID, "SHARED", "NEVER-EXISTED"}}
		session, flows := auChallenge(t, "first step", s.Do("POST", auV3+"/delete_devices", kim.Token, body))
		auWantFlows(t, "delete_devices", flows, []string{"m.login.password"})

		wrong := kim
		wrong.Password = "wrong"
		body["auth"] = wrong.PasswordAuth(session)
		auStageFailed(t, "wrong password", s.Do("POST", auV3+"/delete_devices", kim.Token, body), "M_FORBIDDEN")
		auWhoami(t, s, a.Token, kim.ID, a.DeviceID)

		body["auth"] = kim.PasswordAuth(session)
		auEmptyOK(t, "right password", s.Do("POST", auV3+"/delete_devices", kim.Token, body))
		auTokenDead(t, s, "deleted device a", a.Token)
		auTokenDead(t, s, "deleted device SHARED", b.Token)
		auWhoami(t, s, keep.Token, kim.ID, keep.DeviceID)
		auWhoami(t, s, kim.Token, kim.ID, kim.DeviceID)
		// Bob's device of the same ID is untouched.
		auWhoami(t, s, bobShared.Token, "@bob:aula.test", "SHARED")
		ids := auDeviceIDs(t, s, kim.Token)
		slices.Sort(ids)
		want := []string{kim.DeviceID, keep.DeviceID}
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Fatalf("devices after delete_devices = %v, want %v", ids, want)
		}

		auError(t, "no devices", s.Do("POST", auV3+"/delete_devices", kim.Token, map[string]any{}), 400, "M_MISSING_PARAM")
		auError(t, "devices not a list", s.Do("POST", auV3+"/delete_devices", kim.Token, map[string]any{"devices": "x"}), 400, "M_BAD_JSON")
		auError(t, "not JSON", s.Do("POST", auV3+"/delete_devices", kim.Token, "]"), 400, "M_NOT_JSON")
		auError(t, "no token", s.Do("POST", auV3+"/delete_devices", "", body), 401, "M_MISSING_TOKEN")
	})
}

// TestHostileStringsInAuthEndpoints sends strings PostgreSQL cannot store
// (NUL, invalid UTF-8) wherever login, registration and device management
// take a string: each must be a 4xx, never a 500, on both engines.
func TestHostileStringsInAuthEndpoints(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		nina := s.Register("nina", "nina-password")
		const nul = "a\u0000b"

		auError(t, "login user with NUL", auLogin(s, nul, "pw", nil), 400, "M_INVALID_PARAM")
		auError(t, "login device_id with NUL", auLogin(s, "nina", "nina-password", map[string]any{"device_id": nul}), 400, "M_INVALID_PARAM")
		auError(t, "login device name with NUL", auLogin(s, "nina", "nina-password", map[string]any{"initial_device_display_name": nul}), 400, "M_INVALID_PARAM")
		auError(t, "register device_id with NUL", auRegister(s, map[string]any{"username": "nulreg", "password": "pw", "device_id": nul, "auth": auDummy("")}), 400, "M_INVALID_PARAM")
		auError(t, "register username with NUL", auRegister(s, map[string]any{"username": nul, "password": "pw", "auth": auDummy("")}), 400, "M_INVALID_USERNAME")
		auOK(t, "nothing registered", auAvailable(s, "nulreg"))
		auError(t, "available with NUL", s.Do("GET", auV3+"/register/available?username=a%00b", "", nil), 400, "M_INVALID_USERNAME")
		auError(t, "available with invalid UTF-8", s.Do("GET", auV3+"/register/available?username=a%FFb", "", nil), 400, "M_INVALID_USERNAME")
		auError(t, "device name with NUL", s.Do("PUT", auDevicePath(nina.DeviceID), nina.Token, map[string]any{"display_name": nul}), 400, "M_INVALID_PARAM")

		nonce := auNonce(t, s)
		auError(t, "shared-secret displayname with NUL", s.Do("POST", auSharedSecretPath, "", map[string]any{
			"nonce": nonce, "username": "nuldn", "password": "pw", "displayname": nul,
			"mac": auMAC(apitest.SharedSecret, nonce, "nuldn", "pw", false, ""),
		}), 400, "M_INVALID_PARAM")
		auOK(t, "nothing registered", auAvailable(s, "nuldn"))

		// Device IDs in the path: whether the router refuses them (400) or
		// the device is simply not found (404), it is not a 500.
		for _, id := range []string{"a%00b", "a%FFb", "a%C3%28b"} {
			p := auV3 + "/devices/" + id
			for _, r := range []*apitest.Response{
				s.Do("GET", p, nina.Token, nil),
				s.Do("PUT", p, nina.Token, map[string]any{"display_name": "x"}),
			} {
				if (r.Status != 400 || r.Errcode() != "M_INVALID_PARAM") && (r.Status != 404 || r.Errcode() != "M_NOT_FOUND") {
					t.Fatalf("%s: got %d %s, want 400 M_INVALID_PARAM or 404 M_NOT_FOUND", p, r.Status, r.Body)
				}
			}
			r := s.Do("DELETE", p, nina.Token, nil)
			if r.Status == 401 {
				session, _ := auChallenge(t, "DELETE "+p, r)
				r = s.Do("DELETE", p, nina.Token, map[string]any{"auth": nina.PasswordAuth(session)})
			}
			if r.Status != 200 && r.Status != 400 {
				t.Fatalf("DELETE %s: got %d %s, want 200 or 400", p, r.Status, r.Body)
			}
		}
		body := map[string]any{"devices": []string{nul, nina.DeviceID + "\u0000"}}
		session, _ := auChallenge(t, "delete_devices with NUL", s.Do("POST", auV3+"/delete_devices", nina.Token, body))
		body["auth"] = nina.PasswordAuth(session)
		auEmptyOK(t, "delete_devices with NUL", s.Do("POST", auV3+"/delete_devices", nina.Token, body))
		auWhoami(t, s, nina.Token, nina.ID, nina.DeviceID)
	})
}
