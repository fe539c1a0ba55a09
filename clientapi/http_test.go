package clientapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/apitest"
)

// Helpers shared by the conformance tests of this package (http_test.go,
// versions_test.go, profile_test.go, accountdata_test.go, pushrules_test.go).
// They carry a "conf" prefix so they cannot clash with helpers in the other
// test files of the package.

// confDo sends req as it is (headers, body, Content-Length or chunked) and
// decodes the answer like apitest.Server.Do.
func confDo(t *testing.T, req *http.Request) *apitest.Response {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	r := &apitest.Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
	_ = json.Unmarshal(raw, &r.JSON)
	return r
}

// confReq builds a request to the server.
func confReq(t *testing.T, s *apitest.Server, method, path, token string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// confEsc percent-encodes every byte that is not unreserved (RFC 3986), so
// "@alice:aula.test" becomes "%40alice%3Aaula.test" and "/" becomes "%2F".
func confEsc(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
	}
	return b.String()
}

// confJSONEq fails unless got and want are the same JSON value.
func confJSONEq(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad test JSON: %v: %s", err, want)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("got JSON\n  %s\nwant\n  %s", bytes.TrimSpace(got), want)
	}
}

// confMarshal returns v as JSON.
func confMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// confExpectCORS fails unless r carries exactly the spec's recommended CORS
// headers.
func confExpectCORS(t *testing.T, what string, r *apitest.Response) {
	t.Helper()
	want := map[string]string{
		"Access-Control-Allow-Origin":  "*",
		"Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
		"Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization",
	}
	for k, v := range want {
		if got := r.Header.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s: %s = %q, want exactly %q", what, k, got, v)
		}
	}
}

// confExpectJSONType fails unless r is declared as JSON.
func confExpectJSONType(t *testing.T, what string, r *apitest.Response) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type = %q, want application/json", what, ct)
	}
	if r.JSON == nil {
		t.Errorf("%s: body is not a JSON object: %q", what, r.Body)
	}
}

// confExpectError fails unless r is a Matrix error with this status and
// errcode, with a non-empty human-readable error string.
func confExpectError(t *testing.T, what string, r *apitest.Response, status int, errcode string) {
	t.Helper()
	if r.Status != status || r.Errcode() != errcode {
		t.Errorf("%s: got %d %q, want %d %q; body: %s", what, r.Status, r.Errcode(), status, errcode, r.Body)
		return
	}
	if msg, ok := r.JSON["error"].(string); !ok || msg == "" {
		t.Errorf("%s: error response without an error message: %s", what, r.Body)
	}
}

func TestCORSHeadersOnEveryResponse(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		cases := []struct {
			name                string
			method, path, token string
			body                any
			status              int
		}{
			{"versions", "GET", "/_matrix/client/versions", "", nil, 200},
			{"well-known", "GET", "/.well-known/matrix/client", "", nil, 200},
			{"authed ok", "GET", "/_matrix/client/v3/account/whoami", alice.Token, nil, 200},
			{"r0 path", "GET", "/_matrix/client/r0/account/whoami", alice.Token, nil, 200},
			{"missing token 401", "GET", "/_matrix/client/v3/capabilities", "", nil, 401},
			{"unknown token 401", "GET", "/_matrix/client/v3/capabilities", "not-a-token", nil, 401},
			{"unknown path 404", "GET", "/_matrix/client/v3/no/such/endpoint", "", nil, 404},
			{"outside /_matrix 404", "GET", "/nothing-here", "", nil, 404},
			{"wrong method 405", "DELETE", "/_matrix/client/versions", "", nil, 405},
			{"bad json 400", "PUT", "/_matrix/client/v3/profile/" + confEsc(alice.ID) + "/displayname", alice.Token, "{", 400},
			{"not found 404", "GET", "/_matrix/client/v3/user/" + confEsc(alice.ID) + "/account_data/org.example.none", alice.Token, nil, 404},
			{"forbidden 403", "GET", "/_matrix/client/v3/user/" + confEsc("@bob:aula.test") + "/account_data/org.example.x", alice.Token, nil, 403},
		}
		for _, c := range cases {
			r := s.Do(c.method, c.path, c.token, c.body)
			if r.Status != c.status {
				t.Errorf("%s: status %d, want %d; body %s", c.name, r.Status, c.status, r.Body)
			}
			confExpectCORS(t, c.name, r)
			confExpectJSONType(t, c.name, r)
		}
	})
}

func TestPreflightAnsweredForAnyPath(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		paths := []string{
			"/_matrix/client/versions",
			"/.well-known/matrix/client",
			"/_matrix/client/v3/login",
			"/_matrix/client/v3/capabilities", // needs a token for GET, not for OPTIONS
			"/_matrix/client/v3/profile/" + confEsc(alice.ID) + "/displayname",
			"/_matrix/client/v3/pushrules/global/override/.m.rule.master/enabled",
			"/_matrix/client/v3/no/such/endpoint",
			"/_matrix/client/v1/media/download/aula.test/abc",
			"/not/matrix/at/all",
			"/",
		}
		for _, p := range paths {
			req := confReq(t, s, "OPTIONS", p, "", nil)
			req.Header.Set("Origin", "https://app.element.io")
			req.Header.Set("Access-Control-Request-Method", "PUT")
			req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
			r := confDo(t, req)
			if r.Status != 200 {
				t.Errorf("OPTIONS %s: status %d, want 200; body %s", p, r.Status, r.Body)
			}
			confExpectCORS(t, "OPTIONS "+p, r)
		}

		// OPTIONS must not run the endpoint's logic: a body sent with it
		// changes nothing.
		req := confReq(t, s, "OPTIONS", "/_matrix/client/v3/profile/"+confEsc(alice.ID)+"/displayname", alice.Token,
			strings.NewReader(`{"displayname":"Changed by OPTIONS"}`))
		confDo(t, req).Expect(t, 200, "")
		r := s.Do("GET", "/_matrix/client/v3/profile/"+confEsc(alice.ID)+"/displayname", alice.Token, nil).Expect(t, 200, "")
		confJSONEq(t, r.Body, `{"displayname":"alice"}`)
	})
}

func TestUnknownEndpointsAndMethods(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		me := confEsc(alice.ID)
		for _, tok := range []string{"", alice.Token} {
			for _, p := range []string{
				"/_matrix/client/v3/no/such/endpoint",
				"/_matrix/client/v4/versions",
				"/_matrix/client/v3/versions",  // /versions is unversioned
				"/_matrix/client/v3/pushrules", // the spec's path ends in a slash
				"/_matrix/client/unstable/org.example.msc0000/thing",
				"/_matrix/client/v3/user/" + me + "/account_data", // no type
				"/_matrix/media/v3/no/such/endpoint",
				"/elsewhere",
			} {
				confExpectError(t, "GET "+p, s.Do("GET", p, tok, nil), 404, "M_UNRECOGNIZED")
			}
		}

		// Known paths with a method they do not support; the Allow header
		// names the methods they do support.
		allow := map[string]string{
			"/_matrix/client/versions":                            "GET, OPTIONS",
			"/_matrix/client/v3/logout":                           "POST, OPTIONS",
			"/_matrix/client/v3/profile/" + me + "/displayname":   "GET, PUT, OPTIONS",
			"/_matrix/client/v3/pushrules/global/override/myrule": "GET, PUT, DELETE, OPTIONS",
		}
		for p, want := range allow {
			r := s.Do("PATCH", p, alice.Token, "{}")
			confExpectError(t, "PATCH "+p, r, 405, "M_UNRECOGNIZED")
			if got := r.Header.Get("Allow"); got != want {
				t.Errorf("PATCH %s: Allow %q, want %q", p, got, want)
			}
		}
		for _, c := range []struct{ method, path string }{
			{"POST", "/_matrix/client/versions"},
			{"PUT", "/.well-known/matrix/client"},
			{"DELETE", "/_matrix/client/v3/login"},
			{"GET", "/_matrix/client/v3/logout"},
			{"PUT", "/_matrix/client/v3/account/whoami"},
			{"POST", "/_matrix/client/v3/capabilities"},
			{"POST", "/_matrix/client/v3/profile/" + me},
			{"POST", "/_matrix/client/v3/profile/" + me + "/displayname"},
			{"POST", "/_matrix/client/v3/user/" + me + "/account_data/org.example.x"},
			{"GET", "/_matrix/client/v3/user/" + me + "/filter"},
			{"PUT", "/_matrix/client/v3/user/" + me + "/filter/0"},
			{"PUT", "/_matrix/client/v3/pushrules/"},
			{"POST", "/_matrix/client/v3/pushrules/global/override/myrule"},
			{"DELETE", "/_matrix/client/v3/pushrules/global/override/myrule/enabled"},
			{"POST", "/_matrix/client/r0/pushrules/global/override/myrule/actions"},
		} {
			for _, tok := range []string{"", alice.Token} {
				confExpectError(t, c.method+" "+c.path, s.Do(c.method, c.path, tok, "{}"), 405, "M_UNRECOGNIZED")
			}
		}
	})
}

func TestRequestBodyErrors(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		me := confEsc(alice.ID)
		endpoints := []struct{ method, path string }{
			{"PUT", "/_matrix/client/v3/profile/" + me + "/displayname"},
			{"PUT", "/_matrix/client/v3/profile/" + me + "/avatar_url"},
			{"PUT", "/_matrix/client/v3/user/" + me + "/account_data/org.example.x"},
			{"PUT", "/_matrix/client/v3/user/" + me + "/rooms/" + confEsc("!r:aula.test") + "/account_data/org.example.x"},
			{"POST", "/_matrix/client/v3/user/" + me + "/filter"},
			{"PUT", "/_matrix/client/v3/pushrules/global/override/myrule"},
			{"PUT", "/_matrix/client/v3/pushrules/global/override/.m.rule.master/enabled"},
			{"PUT", "/_matrix/client/v3/pushrules/global/override/.m.rule.master/actions"},
		}
		notJSON := []string{"", "{", `{"a":}`, "not json", `{"a":1}}`, "\x00"}
		notObject := []string{"[]", `"string"`, "42", "true", "null", `[{"displayname":"x"}]`}
		for _, e := range endpoints {
			for _, b := range notJSON {
				confExpectError(t, e.method+" "+e.path+" body "+b, s.Do(e.method, e.path, alice.Token, b), 400, "M_NOT_JSON")
			}
			for _, b := range notObject {
				confExpectError(t, e.method+" "+e.path+" body "+b, s.Do(e.method, e.path, alice.Token, b), 400, "M_BAD_JSON")
			}
		}

		// Well-formed objects whose fields have the wrong type.
		for _, c := range []struct {
			path, body string
		}{
			{"/_matrix/client/v3/profile/" + me + "/displayname", `{"displayname": 42}`},
			{"/_matrix/client/v3/profile/" + me + "/displayname", `{"displayname": {"text": "x"}}`},
			{"/_matrix/client/v3/profile/" + me + "/displayname", `{"displayname": null}`},
			{"/_matrix/client/v3/profile/" + me + "/avatar_url", `{"avatar_url": ["mxc://aula.test/abc"]}`},
			{"/_matrix/client/v3/profile/" + me + "/avatar_url", `{"avatar_url": true}`},
		} {
			confExpectError(t, "PUT "+c.path+" "+c.body, s.Do("PUT", c.path, alice.Token, c.body), 400, "M_BAD_JSON")
		}
		confExpectError(t, "filter with a string limit",
			s.Do("POST", "/_matrix/client/v3/user/"+me+"/filter", alice.Token, `{"room":{"timeline":{"limit":"10"}}}`), 400, "M_BAD_JSON")

		// Nothing was changed by the failed requests.
		confJSONEq(t, s.Do("GET", "/_matrix/client/v3/profile/"+me, alice.Token, nil).Expect(t, 200, "").Body, `{"displayname":"alice"}`)
	})
}

func TestRequestBodyLimit(t *testing.T) {
	const limit = 65536
	apitest.ForEachServer(t, func(c *config.Config) { c.HTTP.MaxRequestBytes = limit }, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		path := "/_matrix/client/v3/user/" + confEsc(alice.ID) + "/account_data/org.example.big"

		// object returns a JSON object of exactly n bytes.
		object := func(n int) []byte {
			b := []byte(`{"k":"` + strings.Repeat("x", n-8) + `"}`)
			if len(b) != n {
				t.Fatalf("object is %d bytes, want %d", len(b), n)
			}
			return b
		}

		// At the limit: accepted, with Content-Length and chunked.
		s.Do("PUT", path, alice.Token, object(limit)).Expect(t, 200, "")
		req := confReq(t, s, "PUT", path, alice.Token, io.MultiReader(bytes.NewReader(object(limit))))
		if req.ContentLength != 0 {
			t.Fatalf("request would not be chunked")
		}
		confDo(t, req).Expect(t, 200, "")

		// One byte over the limit: 413 M_TOO_LARGE, with Content-Length ...
		r := s.Do("PUT", path, alice.Token, object(limit+1))
		confExpectError(t, "Content-Length over limit", r, 413, "M_TOO_LARGE")
		confExpectCORS(t, "413", r)
		confExpectJSONType(t, "413", r)

		// ... and chunked, where the server only notices while reading.
		req = confReq(t, s, "PUT", path, alice.Token, io.MultiReader(bytes.NewReader(object(limit+1))))
		req.Header.Set("Content-Type", "application/json")
		r = confDo(t, req)
		confExpectError(t, "chunked over limit", r, 413, "M_TOO_LARGE")
		confExpectCORS(t, "413 chunked", r)

		// Much larger chunked bodies too, on other endpoints.
		for _, p := range []struct{ method, path string }{
			{"POST", "/_matrix/client/v3/user/" + confEsc(alice.ID) + "/filter"},
			{"PUT", "/_matrix/client/v3/profile/" + confEsc(alice.ID) + "/displayname"},
			{"PUT", "/_matrix/client/v3/pushrules/global/override/big"},
		} {
			req = confReq(t, s, p.method, p.path, alice.Token, io.MultiReader(bytes.NewReader(object(3*limit))))
			confExpectError(t, p.method+" "+p.path+" chunked", confDo(t, req), 413, "M_TOO_LARGE")
		}

		// The stored value is the one that fitted.
		got := s.Do("GET", path, alice.Token, nil).Expect(t, 200, "")
		if len(got.String("k")) != limit-8 {
			t.Errorf("stored value has %d bytes, want %d", len(got.String("k")), limit-8)
		}
	})
}

func TestInternalErrorsHideDetails(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		// With the database gone every query fails inside storage.
		if err := s.App.DB.Close(); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{
			"/_matrix/client/v3/account/whoami",
			"/_matrix/client/v3/pushrules/",
		} {
			r := s.Do("GET", p, alice.Token, nil)
			confExpectError(t, p, r, 500, "M_UNKNOWN")
			confJSONEq(t, r.Body, `{"errcode":"M_UNKNOWN","error":"Internal server error"}`)
			confExpectCORS(t, p, r)
		}
	})
}

func TestVersionsWithAndWithoutToken(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		anon := s.Do("GET", "/_matrix/client/versions", "", nil).Expect(t, 200, "")
		for _, tok := range []string{alice.Token, "syt_not_a_valid_token", "aat_" + strings.Repeat("0", 43)} {
			r := s.Do("GET", "/_matrix/client/versions", tok, nil).Expect(t, 200, "")
			confJSONEq(t, r.Body, string(anon.Body))
		}
		// The deprecated query parameter is ignored here as well.
		s.Do("GET", "/_matrix/client/versions?access_token=bogus", "", nil).Expect(t, 200, "")

		// Clients may send a token, and servers may answer differently to
		// it, so caches must key on the Authorization header.
		var vary []string
		for _, v := range anon.Header.Values("Vary") {
			for _, f := range strings.Split(v, ",") {
				vary = append(vary, strings.TrimSpace(f))
			}
		}
		if !containsFold(vary, "Authorization") {
			t.Errorf("Vary = %q, want it to name Authorization", anon.Header.Values("Vary"))
		}
		confExpectJSONType(t, "versions", anon)
	})
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func TestPercentEncodedPathVariables(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		if alice.ID != "@alice:aula.test" {
			t.Fatalf("user ID %q", alice.ID)
		}
		// Fully encoded, as matrix-js-sdk and ruma send user IDs.
		s.Do("PUT", "/_matrix/client/v3/profile/%40alice%3Aaula.test/displayname", alice.Token,
			map[string]string{"displayname": "Alice"}).Expect(t, 200, "")
		// Raw, as curl users type them.
		r := s.Do("GET", "/_matrix/client/v3/profile/@alice:aula.test/displayname", alice.Token, nil).Expect(t, 200, "")
		confJSONEq(t, r.Body, `{"displayname":"Alice"}`)
		// Mixed case hex digits are the same bytes.
		s.Do("GET", "/_matrix/client/v3/profile/%40alice%3aaula.test", alice.Token, nil).Expect(t, 200, "")

		// A "/" inside a path variable is encoded as %2F and must neither
		// split the path nor be cleaned away.
		typ := "org.example/with/slashes"
		base := "/_matrix/client/v3/user/%40alice%3Aaula.test/account_data/"
		s.Do("PUT", base+confEsc(typ), alice.Token, map[string]int{"n": 1}).Expect(t, 200, "")
		confJSONEq(t, s.Do("GET", base+confEsc(typ), alice.Token, nil).Expect(t, 200, "").Body, `{"n":1}`)
		confExpectError(t, "unencoded slashes", s.Do("GET", base+typ, alice.Token, nil), 404, "M_UNRECOGNIZED")
		// "." and ".." segments inside an encoded value are kept as they are.
		s.Do("PUT", base+confEsc("../x"), alice.Token, map[string]int{"n": 2}).Expect(t, 200, "")
		confJSONEq(t, s.Do("GET", base+confEsc("../x"), alice.Token, nil).Expect(t, 200, "").Body, `{"n":2}`)
		confExpectError(t, "different type", s.Do("GET", base+"x", alice.Token, nil), 404, "M_NOT_FOUND")

		// Room IDs and push rule IDs in the path.
		room := "!abc:aula.test"
		s.Do("PUT", "/_matrix/client/v3/user/%40alice%3Aaula.test/rooms/"+confEsc(room)+"/account_data/m.tag.x",
			alice.Token, map[string]int{"n": 3}).Expect(t, 200, "")
		confJSONEq(t, s.Do("GET", "/_matrix/client/v3/user/@alice:aula.test/rooms/"+room+"/account_data/m.tag.x",
			alice.Token, nil).Expect(t, 200, "").Body, `{"n":3}`)
		s.Do("PUT", "/_matrix/client/v3/pushrules/global/room/"+confEsc(room), alice.Token,
			map[string]any{"actions": []string{}}).Expect(t, 200, "")
		r = s.Do("GET", "/_matrix/client/v3/pushrules/global/room/"+confEsc(room), alice.Token, nil).Expect(t, 200, "")
		if r.String("rule_id") != room {
			t.Errorf("rule_id %q, want %q", r.String("rule_id"), room)
		}
		// An encoded slash in a rule ID reaches the rule ID check.
		confExpectError(t, "slash in rule ID",
			s.Do("PUT", "/_matrix/client/v3/pushrules/global/override/a%2Fb", alice.Token,
				map[string]any{"actions": []string{}, "conditions": []any{}}), 400, "M_INVALID_PARAM")
	})
}

func TestHostileInputIsNot500(t *testing.T) {
	// NUL bytes and invalid UTF-8 are client errors, never 500s: PostgreSQL
	// refuses both in TEXT columns, so they must be stopped before storage.
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		me := confEsc(alice.ID)
		cases := []struct {
			method, path string
			body         string
			status       int
			errcode      string
		}{
			// Path variables that are not UTF-8 or hold NUL.
			{"GET", "/_matrix/client/v3/profile/%40al%00ice%3Aaula.test", "", 400, "M_INVALID_PARAM"},
			{"GET", "/_matrix/client/v3/profile/%40al%FFice%3Aaula.test/displayname", "", 400, "M_INVALID_PARAM"},
			{"GET", "/_matrix/client/v3/user/" + me + "/account_data/a%00b", "", 400, "M_INVALID_PARAM"},
			{"PUT", "/_matrix/client/v3/user/" + me + "/account_data/a%00b", `{}`, 400, "M_INVALID_PARAM"},
			{"PUT", "/_matrix/client/v3/user/" + me + "/account_data/a%C3%28b", `{}`, 400, "M_INVALID_PARAM"},
			{"PUT", "/_matrix/client/v3/user/" + me + "/rooms/%21a%00%3Aaula.test/account_data/m.tag", `{}`, 400, "M_INVALID_PARAM"},
			{"GET", "/_matrix/client/v3/user/" + me + "/filter/1%00", "", 400, "M_INVALID_PARAM"},
			{"PUT", "/_matrix/client/v3/pushrules/global/override/a%FFb", `{"actions":[],"conditions":[]}`, 400, "M_INVALID_PARAM"},
			{"GET", "/_matrix/client/v3/pushrules/global/override/a%00b", "", 400, "M_INVALID_PARAM"},
			// Bodies that are not UTF-8.
			{"PUT", "/_matrix/client/v3/user/" + me + "/account_data/org.example.x", "{\"k\":\"\xff\xfe\"}", 400, "M_NOT_JSON"},
			{"PUT", "/_matrix/client/v3/user/" + me + "/rooms/%21r%3Aaula.test/account_data/org.example.x", "{\"\xc3\x28\":1}", 400, "M_NOT_JSON"},
			{"PUT", "/_matrix/client/v3/profile/" + me + "/displayname", "{\"displayname\":\"\xff\"}", 400, "M_NOT_JSON"},
			{"POST", "/_matrix/client/v3/user/" + me + "/filter", "{\"room\":{\"timeline\":{\"types\":[\"\xff\"]}}}", 400, "M_NOT_JSON"},
			{"PUT", "/_matrix/client/v3/pushrules/global/override/x", "{\"actions\":[{\"set_tweak\":\"sound\",\"value\":\"\xff\"}],\"conditions\":[]}", 400, "M_NOT_JSON"},
			{"PUT", "/_matrix/client/v3/pushrules/global/override/.m.rule.master/actions", "{\"actions\":[{\"set_tweak\":\"\xff\"}]}", 400, "M_NOT_JSON"},
			// NUL inside JSON strings (escaped, so valid JSON).
			{"PUT", "/_matrix/client/v3/profile/" + me + "/displayname", `{"displayname":"a\u0000b"}`, 400, "M_INVALID_PARAM"},
			{"PUT", "/_matrix/client/v3/profile/" + me + "/avatar_url", `{"avatar_url":"mxc://aula.test/a\u0000b"}`, 400, "M_INVALID_PARAM"},
		}
		for _, c := range cases {
			var body any
			if c.body != "" {
				body = c.body
			}
			r := s.Do(c.method, c.path, alice.Token, body)
			confExpectError(t, c.method+" "+c.path+" "+c.body, r, c.status, c.errcode)
		}

		// Escaped NULs are fine where the JSON is stored as JSON.
		for _, p := range []string{
			"/_matrix/client/v3/user/" + me + "/account_data/org.example.nul",
			"/_matrix/client/v3/user/" + me + "/rooms/%21r%3Aaula.test/account_data/org.example.nul",
		} {
			s.Do("PUT", p, alice.Token, `{"k\u0000":"v\u0000"}`).Expect(t, 200, "")
			confJSONEq(t, s.Do("GET", p, alice.Token, nil).Expect(t, 200, "").Body, `{"k\u0000":"v\u0000"}`)
		}
		s.Do("PUT", "/_matrix/client/v3/pushrules/global/content/nul", alice.Token, `{"actions":["notify"],"pattern":"a\u0000"}`).Expect(t, 200, "")
		id := s.Do("POST", "/_matrix/client/v3/user/"+me+"/filter", alice.Token, `{"room":{"timeline":{"types":["a\u0000"]}}}`).Expect(t, 200, "").String("filter_id")
		confJSONEq(t, s.Do("GET", "/_matrix/client/v3/user/"+me+"/filter/"+id, alice.Token, nil).Expect(t, 200, "").Body, `{"room":{"timeline":{"types":["a\u0000"]}}}`)
	})
}
