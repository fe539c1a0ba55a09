package clientapi_test

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/apitest"
)

// consentSecret is the form_secret of the consent test servers.
const consentSecret = "consent-test-secret-0123456789"

// withConsent turns consent on, with a template directory that adds a
// policy version 2.0 (English only) to the built-in 1.0.
func withConsent(t *testing.T) func(c *config.Config) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "2.0.en.html"), []byte("<p>Second edition of the rules.</p>"), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(c *config.Config) {
		c.Consent.Enabled = true
		c.Consent.FormSecret = consentSecret
		c.Consent.TemplateDir = dir
	}
}

var consentLinkRE = regexp.MustCompile(`https://aula\.test/_matrix/consent\?[^\s"<]+`)

// noticeRoom syncs as u and returns the room u is invited to by the
// notices user.
func noticeRoom(t *testing.T, s *apitest.Server, u apitest.User) string {
	t.Helper()
	res := doSync(t, s, u, nil)
	for id, inv := range res.Rooms.Invite {
		for _, ev := range inv.InviteState.Events {
			if ev.Type == "m.room.member" && ev.Sender == "@administrator:"+apitest.ServerName {
				return id
			}
		}
	}
	t.Fatalf("no notices room invite in sync: %+v", res.Rooms.Invite)
	return ""
}

// notices returns the bodies of the notices user's messages in roomID.
func notices(t *testing.T, s *apitest.Server, u apitest.User, roomID string) []string {
	t.Helper()
	r := s.Do("GET", "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/messages?dir=b&limit=50", u.Token, nil).Expect(t, 200, "")
	var out []string
	chunk, _ := r.JSON["chunk"].([]any)
	for i := len(chunk) - 1; i >= 0; i-- {
		ev := chunk[i].(map[string]any)
		if ev["type"] != "m.room.message" || ev["sender"] != "@administrator:"+apitest.ServerName {
			continue
		}
		out = append(out, ev["content"].(map[string]any)["body"].(string))
	}
	return out
}

// consentPage requests the consent page (GET with query q, or POST with
// form q) and returns status, headers and body.
func consentPage(t *testing.T, s *apitest.Server, post bool, q url.Values, lang string) (int, http.Header, string) {
	t.Helper()
	var req *http.Request
	if post {
		req, _ = http.NewRequest("POST", s.URL+"/_matrix/consent", strings.NewReader(q.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req, _ = http.NewRequest("GET", s.URL+"/_matrix/consent?"+q.Encode(), nil)
	}
	if lang != "" {
		req.Header.Set("Accept-Language", lang)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// linkQuery returns the query of a consent link.
func linkQuery(t *testing.T, link string) url.Values {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// consentVersion returns the user's consent_version in the admin API.
func consentVersion(t *testing.T, s *apitest.Server, admin apitest.User, userID string) any {
	t.Helper()
	r := s.Do("GET", "/_synapse/admin/v2/users/"+url.PathEscape(userID), admin.Token, nil).Expect(t, 200, "")
	return r.JSON["consent_version"]
}

func TestConsentCycle(t *testing.T) {
	apitest.ForEachServer(t, withConsent(t), func(t *testing.T, s *apitest.Server) {
		admin := s.RegisterAdmin("boss", "pw")
		alice := s.Register("alice", "pw")

		// First request: alice is invited to her notices room, tagged.
		room := noticeRoom(t, s, alice)
		s.Do("POST", "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/leave", alice.Token, map[string]any{}).
			Expect(t, 403, "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM")
		// Joining it is allowed before consent; other joins are not.
		s.Do("POST", "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/join", alice.Token, map[string]any{}).Expect(t, 200, "")
		tags := s.Do("GET", "/_matrix/client/v3/user/"+url.PathEscape(alice.ID)+"/rooms/"+url.PathEscape(room)+"/tags", alice.Token, nil).Expect(t, 200, "")
		if _, ok := tags.JSON["tags"].(map[string]any)["m.server_notice"]; !ok {
			t.Errorf("notices room tags = %v, want m.server_notice", tags.JSON)
		}
		// The user can read but not write in the room.
		s.Do("PUT", "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/send/m.room.message/t1", alice.Token,
			map[string]any{"msgtype": "m.text", "body": "hi"}).Expect(t, 403, "M_CONSENT_NOT_GIVEN")

		got := notices(t, s, alice, room)
		if len(got) != 1 {
			t.Fatalf("notices = %q, want one", got)
		}
		link := consentLinkRE.FindString(got[0])
		if link == "" {
			t.Fatalf("notice %q holds no consent link", got[0])
		}

		// Blocked, with the same personal link.
		r := s.Do("POST", "/_matrix/client/v3/createRoom", alice.Token, map[string]any{}).Expect(t, 403, "M_CONSENT_NOT_GIVEN")
		if r.String("consent_uri") != link || !strings.Contains(r.String("error"), link) {
			t.Errorf("blocked answer %s; want consent_uri and error with %s", r.Body, link)
		}
		s.Do("PUT", "/_matrix/client/v3/profile/"+url.PathEscape(alice.ID)+"/displayname", alice.Token,
			map[string]any{"displayname": "A"}).Expect(t, 403, "M_CONSENT_NOT_GIVEN")
		// Reading, account data and sync keep working.
		s.Do("PUT", "/_matrix/client/v3/user/"+url.PathEscape(alice.ID)+"/account_data/x.y", alice.Token, map[string]any{}).Expect(t, 200, "")
		if v := consentVersion(t, s, admin, alice.ID); v != nil {
			t.Errorf("consent_version before agreeing = %v, want null", v)
		}

		// The page shows the policy (German when preferred) and the form.
		q := linkQuery(t, link)
		status, hdr, body := consentPage(t, s, false, q, "de-DE,de;q=0.9,en;q=0.5")
		if status != 200 || !strings.Contains(body, "Nutzungsbedingungen") || !strings.Contains(body, `name="h"`) || !strings.Contains(body, `lang="de"`) {
			t.Fatalf("GET consent page = %d\n%s", status, body)
		}
		if !strings.Contains(hdr.Get("Content-Security-Policy"), "frame-ancestors 'none'") || hdr.Get("X-Frame-Options") != "DENY" ||
			!strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
			t.Errorf("security headers: %v", hdr)
		}
		if _, _, body := consentPage(t, s, false, q, "fr, en;q=0.8"); !strings.Contains(body, "Terms of use") {
			t.Errorf("English fallback page:\n%s", body)
		}
		status, _, body = consentPage(t, s, true, url.Values{"u": {q.Get("u")}, "h": {q.Get("h")}, "v": {"1.0"}}, "en")
		if status != 200 || !strings.Contains(body, "You have agreed to version 1.0") {
			t.Fatalf("POST consent = %d\n%s", status, body)
		}

		// Now alice may create rooms and send; still not in the notices room.
		newRoom := s.CreateRoom(alice, map[string]any{})
		s.SendText(alice, newRoom, "hello")
		s.Do("PUT", "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/send/m.room.message/t2", alice.Token,
			map[string]any{"msgtype": "m.text", "body": "hi"}).Expect(t, 403, "M_FORBIDDEN")
		if v := consentVersion(t, s, admin, alice.ID); v != "1.0" {
			t.Errorf("consent_version = %v, want 1.0", v)
		}
		if got := notices(t, s, alice, room); len(got) != 1 {
			t.Errorf("notices after agreeing = %d, want still 1", len(got))
		}

		// Version raised: blocked again, one new notice in the same room.
		if err := s.App.Consent.SetVersion("2.0"); err != nil {
			t.Fatal(err)
		}
		s.Do("POST", "/_matrix/client/v3/createRoom", alice.Token, map[string]any{}).Expect(t, 403, "M_CONSENT_NOT_GIVEN")
		s.Do("GET", "/_matrix/client/v3/account/whoami", alice.Token, nil).Expect(t, 200, "")
		got = notices(t, s, alice, room)
		if len(got) != 2 || consentLinkRE.FindString(got[1]) != link {
			t.Fatalf("notices after raising the version = %q, want a second one with %s", got, link)
		}
		// The old page's form (version 1.0) no longer counts.
		status, _, _ = consentPage(t, s, true, url.Values{"u": {q.Get("u")}, "h": {q.Get("h")}, "v": {"1.0"}}, "en")
		if status != 409 {
			t.Errorf("POST with the old version = %d, want 409", status)
		}
		s.Do("POST", "/_matrix/client/v3/createRoom", alice.Token, map[string]any{}).Expect(t, 403, "M_CONSENT_NOT_GIVEN")
		if _, _, body := consentPage(t, s, false, q, "de"); !strings.Contains(body, "Second edition") {
			t.Errorf("page of version 2.0 (English only) shows:\n%s", body)
		}
		status, _, _ = consentPage(t, s, true, url.Values{"u": {q.Get("u")}, "h": {q.Get("h")}, "v": {"2.0"}}, "")
		if status != 200 {
			t.Fatalf("POST consent 2.0 = %d", status)
		}
		s.CreateRoom(alice, map[string]any{})
		if v := consentVersion(t, s, admin, alice.ID); v != "2.0" {
			t.Errorf("consent_version = %v, want 2.0", v)
		}
		if got := notices(t, s, alice, room); len(got) != 2 {
			t.Errorf("notices = %d, want 2", len(got))
		}
	})
}

func TestConsentLinksRefused(t *testing.T) {
	apitest.ForEachServer(t, withConsent(t), func(t *testing.T, s *apitest.Server) {
		admin := s.RegisterAdmin("boss", "pw")
		alice := s.Register("alice", "pw")
		bob := s.Register("bob", "pw")
		aq := linkQuery(t, s.App.Consent.URI(alice.ID))
		bq := linkQuery(t, s.App.Consent.URI(bob.ID))
		if aq.Get("u") != "alice" || len(aq.Get("h")) != 64 {
			t.Fatalf("link query = %v; want u=alice and a 64-digit HMAC", aq)
		}
		tampered := []byte(aq.Get("h"))
		tampered[10] ^= 1
		cases := []struct {
			name    string
			form    url.Values
			status  int
			getOnly bool
		}{
			{"tampered HMAC", url.Values{"u": {"alice"}, "h": {string(tampered)}, "v": {"1.0"}}, 403, false},
			{"cross-user link", url.Values{"u": {"alice"}, "h": {bq.Get("h")}, "v": {"1.0"}}, 403, false},
			{"other user's name", url.Values{"u": {"bob"}, "h": {aq.Get("h")}, "v": {"1.0"}}, 403, false},
			{"missing h", url.Values{"u": {"alice"}, "v": {"1.0"}}, 400, false},
			{"missing v", url.Values{"u": {"alice"}, "h": {aq.Get("h")}}, 400, true},
			{"missing u", url.Values{"h": {aq.Get("h")}, "v": {"1.0"}}, 400, true},
			{"unknown version", url.Values{"u": {"alice"}, "h": {aq.Get("h")}, "v": {"9.9"}}, 409, true},
		}
		for _, tc := range cases {
			if status, _, _ := consentPage(t, s, true, tc.form, ""); status != tc.status {
				t.Errorf("%s: POST = %d, want %d", tc.name, status, tc.status)
			}
			if !tc.getOnly {
				if status, _, body := consentPage(t, s, false, tc.form, ""); status != tc.status || strings.Contains(body, "<form") {
					t.Errorf("%s: GET = %d (want %d), or shows the form", tc.name, status, tc.status)
				}
			}
		}
		for _, u := range []apitest.User{alice, bob} {
			if v := consentVersion(t, s, admin, u.ID); v != nil {
				t.Errorf("%s consent_version = %v after refused requests, want null", u.ID, v)
			}
			s.Do("POST", "/_matrix/client/v3/createRoom", u.Token, map[string]any{}).Expect(t, 403, "M_CONSENT_NOT_GIVEN")
		}
		// Without u the policy is shown read-only.
		status, _, body := consentPage(t, s, false, nil, "en")
		if status != 200 || !strings.Contains(body, "Acceptable use") || strings.Contains(body, "<form") {
			t.Errorf("public page = %d\n%s", status, body)
		}
		// bob's own link works for bob only.
		if status, _, _ := consentPage(t, s, true, url.Values{"u": {"bob"}, "h": {bq.Get("h")}, "v": {"1.0"}}, ""); status != 200 {
			t.Fatalf("bob's consent = %d", status)
		}
		s.CreateRoom(bob, map[string]any{})
		s.Do("POST", "/_matrix/client/v3/createRoom", alice.Token, map[string]any{}).Expect(t, 403, "M_CONSENT_NOT_GIVEN")
	})
}

func TestConsentDisabledByDefault(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		s.CreateRoom(alice, map[string]any{})
		if res := doSync(t, s, alice, nil); len(res.Rooms.Invite) != 0 {
			t.Errorf("invites without consent: %v", res.Rooms.Invite)
		}
	})
}

func TestSendServerNotice(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		admin := s.RegisterAdmin("boss", "pw")
		alice := s.Register("alice", "pw")
		body := map[string]any{"user_id": alice.ID, "content": map[string]any{"msgtype": "m.text", "body": "Maintenance tonight"}}
		s.Do("POST", "/_synapse/admin/v1/send_server_notice", alice.Token, body).Expect(t, 403, "M_FORBIDDEN")
		r := s.Do("POST", "/_synapse/admin/v1/send_server_notice", admin.Token, body).Expect(t, 200, "")
		if !strings.HasPrefix(r.String("event_id"), "$") {
			t.Fatalf("event_id = %q", r.String("event_id"))
		}
		// A retried PUT with the same transaction ID sends once.
		p1 := s.Do("PUT", "/_synapse/admin/v1/send_server_notice/txn1", admin.Token, body).Expect(t, 200, "")
		p2 := s.Do("PUT", "/_synapse/admin/v1/send_server_notice/txn1", admin.Token, body).Expect(t, 200, "")
		if p1.String("event_id") != p2.String("event_id") {
			t.Errorf("retried PUT gave %s and %s", p1.String("event_id"), p2.String("event_id"))
		}
		room := noticeRoom(t, s, alice)
		s.Join(alice, room)
		if got := notices(t, s, alice, room); len(got) != 2 || got[0] != "Maintenance tonight" {
			t.Errorf("notices = %q", got)
		}
		// After leaving, the next notice goes to a new room.
		s.Leave(alice, room)
		s.Do("POST", "/_synapse/admin/v1/send_server_notice", admin.Token, body).Expect(t, 200, "")
		if again := noticeRoom(t, s, alice); again == room {
			t.Error("the next notice after leaving reused the left room")
		}
		s.Do("POST", "/_synapse/admin/v1/send_server_notice", admin.Token,
			map[string]any{"user_id": "@nobody:" + apitest.ServerName, "content": map[string]any{"body": "x"}}).Expect(t, 404, "M_NOT_FOUND")
		s.Do("POST", "/_synapse/admin/v1/send_server_notice", admin.Token,
			map[string]any{"user_id": "@x:elsewhere.example", "content": map[string]any{"body": "x"}}).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("POST", "/_synapse/admin/v1/send_server_notice", admin.Token,
			map[string]any{"user_id": alice.ID}).Expect(t, 400, "M_BAD_JSON")
		// Nobody can log in as the notices user.
		s.Do("POST", "/_matrix/client/v3/login", "", map[string]any{
			"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "administrator"}, "password": "",
		}).Expect(t, 403, "M_FORBIDDEN")
	})
}
