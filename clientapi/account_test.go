package clientapi_test

import (
	"slices"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// Conformance tests for password change, account deactivation and the
// binding of user-interactive authentication sessions.

func TestChangePassword(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		pam := s.Register("pam", "old-password")
		other1 := auLoginOK(t, s, "pam", "old-password", nil)
		other2 := auLoginOK(t, s, "pam", "old-password", map[string]any{"refresh_token": true})
		post := func(token string, body any) *apitest.Response {
			return s.Do("POST", auV3+"/account/password", token, body)
		}

		body := map[string]any{"new_password": "new-password"}
		session, flows := auChallenge(t, "first step", post(pam.Token, body))
		auWantFlows(t, "password change", flows, []string{"m.login.password"})

		wrong := pam
		wrong.Password = "guess"
		body["auth"] = wrong.PasswordAuth(session)
		auStageFailed(t, "wrong password", post(pam.Token, body), "M_FORBIDDEN")
		auLoginOK(t, s, "pam", "old-password", nil) // not changed yet

		// logout_devices defaults to true: every other device is logged
		// out, the one making the request is kept.
		body["auth"] = pam.PasswordAuth(session)
		auEmptyOK(t, "right password", post(pam.Token, body))
		auWhoami(t, s, pam.Token, pam.ID, pam.DeviceID)
		auTokenDead(t, s, "other device after the change", other1.Token)
		auTokenDead(t, s, "other device with a refresh token", other2.Token)
		if ids := auDeviceIDs(t, s, pam.Token); !slices.Equal(ids, []string{pam.DeviceID}) {
			t.Fatalf("devices after the change = %v, want only %s", ids, pam.DeviceID)
		}
		auError(t, "old password", auLogin(s, "pam", "old-password", nil), 403, "M_FORBIDDEN")
		kept := auLoginOK(t, s, "pam", "new-password", nil)

		// logout_devices false keeps every device.
		pam.Password = "new-password"
		body = map[string]any{"new_password": "newer-password", "logout_devices": false}
		session, _ = auChallenge(t, "second change", post(pam.Token, body))
		body["auth"] = pam.PasswordAuth(session)
		auEmptyOK(t, "change keeping devices", post(pam.Token, body))
		auWhoami(t, s, kept.Token, pam.ID, kept.DeviceID)
		auWhoami(t, s, pam.Token, pam.ID, pam.DeviceID)
		auLoginOK(t, s, "pam", "newer-password", nil)
		auError(t, "previous password", auLogin(s, "pam", "new-password", nil), 403, "M_FORBIDDEN")

		auError(t, "no new_password", post(pam.Token, map[string]any{}), 400, "M_MISSING_PARAM")
		auError(t, "new_password not a string", post(pam.Token, map[string]any{"new_password": 1}), 400, "M_BAD_JSON")
		auError(t, "logout_devices not a boolean", post(pam.Token, map[string]any{"new_password": "x", "logout_devices": "no"}), 400, "M_BAD_JSON")
		auError(t, "not JSON", post(pam.Token, "pw"), 400, "M_NOT_JSON")
		auError(t, "no token", post("", map[string]any{"new_password": "x"}), 401, "M_MISSING_TOKEN")
	})
}

// TestUIAPasswordStageRateLimit checks that wrong passwords in
// user-interactive authentication are limited like logins, with a plain 429.
func TestUIAPasswordStageRateLimit(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		clock := auFakeClock(s)
		vic := s.Register("vic", "vic-password")
		body := map[string]any{"new_password": "changed"}
		session, _ := auChallenge(t, "first step", s.Do("POST", auV3+"/account/password", vic.Token, body))
		wrong := vic
		wrong.Password = "wrong"
		for range 5 {
			body["auth"] = wrong.PasswordAuth(session)
			auStageFailed(t, "wrong password", s.Do("POST", auV3+"/account/password", vic.Token, body), "M_FORBIDDEN")
		}
		body["auth"] = vic.PasswordAuth(session)
		retry := auRetryAfter(t, "right password after five failures", s.Do("POST", auV3+"/account/password", vic.Token, body))
		clock.Advance(retry)
		auEmptyOK(t, "right password after waiting", s.Do("POST", auV3+"/account/password", vic.Token, body))
	})
}

func TestDeactivate(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		dave := s.Register("dave", "dave-password")
		lr := auLogin(s, "dave", "dave-password", map[string]any{"refresh_token": true})
		auOK(t, "login with a refresh token", lr)
		second, refreshToken := lr.String("access_token"), lr.String("refresh_token")
		bob := s.Register("bob", "bob-password")
		auEmptyOK(t, "set displayname", s.Do("PUT", auV3+"/profile/"+dave.ID+"/displayname", dave.Token, map[string]any{"displayname": "Dave"}))
		post := func(body any) *apitest.Response {
			return s.Do("POST", auV3+"/account/deactivate", dave.Token, body)
		}

		// No body at all still gets the challenge.
		auChallenge(t, "no body", post(nil))
		session, flows := auChallenge(t, "first step", post(map[string]any{}))
		auWantFlows(t, "deactivate", flows, []string{"m.login.password"})
		wrong := dave
		wrong.Password = "nope"
		auStageFailed(t, "wrong password", post(map[string]any{"auth": wrong.PasswordAuth(session)}), "M_FORBIDDEN")
		auError(t, "bob's credentials", post(map[string]any{"auth": bob.PasswordAuth(session)}), 403, "M_FORBIDDEN")
		auWhoami(t, s, dave.Token, dave.ID, dave.DeviceID)

		r := post(map[string]any{"auth": dave.PasswordAuth(session)})
		auOK(t, "deactivate", r)
		// No third-party identifiers to unbind: the spec requires "success".
		if r.String("id_server_unbind_result") != "success" || len(r.JSON) != 1 {
			t.Fatalf("deactivate = %s, want {\"id_server_unbind_result\": \"success\"}", r.Body)
		}

		auTokenDead(t, s, "token after deactivation", dave.Token)
		auTokenDead(t, s, "other device after deactivation", second)
		r = s.Do("POST", auV3+"/refresh", "", map[string]any{"refresh_token": refreshToken})
		auError(t, "refresh after deactivation", r, 401, "M_UNKNOWN_TOKEN")

		// Logging in says why it fails, whatever the password.
		auError(t, "login with the old password", auLogin(s, "dave", "dave-password", nil), 403, "M_USER_DEACTIVATED")
		auError(t, "login with another password", auLogin(s, "@dave:aula.test", "whatever", nil), 403, "M_USER_DEACTIVATED")

		// The user ID is never given out again.
		auError(t, "available", auAvailable(s, "dave"), 400, "M_USER_IN_USE")
		auError(t, "register", auRegister(s, map[string]any{"username": "dave", "password": "pw", "auth": auDummy("")}), 400, "M_USER_IN_USE")
		nonce := auNonce(t, s)
		auError(t, "shared-secret register", s.Do("POST", auSharedSecretPath, "", map[string]any{"nonce": nonce, "username": "dave", "password": "pw",
			"mac": auMAC(apitest.SharedSecret, nonce, "dave", "pw", false, "")}), 400, "M_USER_IN_USE")

		// The profile is gone.
		auError(t, "profile", s.Do("GET", auV3+"/profile/"+dave.ID, bob.Token, nil), 404, "M_NOT_FOUND")
		auError(t, "displayname", s.Do("GET", auV3+"/profile/"+dave.ID+"/displayname", bob.Token, nil), 404, "M_NOT_FOUND")

		auError(t, "no token", s.Do("POST", auV3+"/account/deactivate", "", map[string]any{}), 401, "M_MISSING_TOKEN")
	})
}

// TestUIASessionBinding checks that a user-interactive authentication
// session only ever authorises the operation and user it was started for.
func TestUIASessionBinding(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		ann := s.Register("ann", "ann-password")
		bob := s.Register("bob", "bob-password")
		victim := auLoginOK(t, s, "ann", "ann-password", nil)

		// A registration session cannot delete devices.
		regSession, _ := auChallenge(t, "register", auRegister(s, map[string]any{"username": "someone", "password": "pw"}))
		r := s.Do("POST", auV3+"/delete_devices", ann.Token, map[string]any{
			"devices": []string{victim.DeviceID}, "auth": ann.PasswordAuth(regSession),
		})
		auError(t, "registration session used for delete_devices", r, 403, "M_FORBIDDEN")

		// A device-deletion session cannot change the password.
		delSession, _ := auChallenge(t, "delete_devices", s.Do("POST", auV3+"/delete_devices", ann.Token, map[string]any{"devices": []string{victim.DeviceID}}))
		r = s.Do("POST", auV3+"/account/password", ann.Token, map[string]any{"new_password": "stolen", "auth": ann.PasswordAuth(delSession)})
		auError(t, "delete_devices session used for a password change", r, 403, "M_FORBIDDEN")
		// Nor deactivate the account, nor register.
		r = s.Do("POST", auV3+"/account/deactivate", ann.Token, map[string]any{"auth": ann.PasswordAuth(delSession)})
		auError(t, "delete_devices session used for deactivation", r, 403, "M_FORBIDDEN")
		r = auRegister(s, map[string]any{"username": "someone", "password": "pw", "auth": auDummy(delSession)})
		auError(t, "delete_devices session used for registration", r, 403, "M_FORBIDDEN")

		// Another user cannot use ann's session.
		r = s.Do("POST", auV3+"/delete_devices", bob.Token, map[string]any{"devices": []string{bob.DeviceID}, "auth": bob.PasswordAuth(delSession)})
		auError(t, "ann's session used by bob", r, 403, "M_FORBIDDEN")

		auWhoami(t, s, victim.Token, ann.ID, victim.DeviceID)
		auWhoami(t, s, bob.Token, bob.ID, bob.DeviceID)
		auLoginOK(t, s, "ann", "ann-password", nil)

		// The session still works for what it was started for.
		r = s.Do("POST", auV3+"/delete_devices", ann.Token, map[string]any{"devices": []string{victim.DeviceID}, "auth": ann.PasswordAuth(delSession)})
		auEmptyOK(t, "delete_devices with its own session", r)
		auTokenDead(t, s, "deleted device", victim.Token)
	})
}
