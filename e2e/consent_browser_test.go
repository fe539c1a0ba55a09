package e2e_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aula-chat/aula/internal/apitest"
)

// TestConsentPageInBrowser opens a user's consent link in headless
// Chromium (driven through chromedriver's WebDriver HTTP protocol), checks
// the policy is shown, clicks "I agree" and sees the success page. The
// screenshot of that page is kept in $AULA_TEST_ARTIFACTS (default: the
// test's temporary directory, logged).
func TestConsentPageInBrowser(t *testing.T) {
	driverPath, err1 := exec.LookPath("chromedriver")
	browserPath, err2 := exec.LookPath("chromium")
	if err1 != nil || err2 != nil {
		if os.Getenv("AULA_REQUIRE_BROWSER") != "" {
			t.Fatalf("chromium and chromedriver are required: %v %v", err1, err2)
		}
		t.Skip("chromium or chromedriver not installed (scripts/test installs them)")
	}

	c := apitest.Config(t, "sqlite:"+filepath.Join(t.TempDir(), "aula.db"))
	c.Consent.Enabled = true
	c.Consent.FormSecret = "browser-test-secret-0123456789"
	s := apitest.Start(t, c)
	alice := s.Register("alice", "pw")
	link := strings.Replace(s.App.Consent.URI(alice.ID), c.PublicBaseURL, s.URL+"/", 1)

	wd := startWebDriver(t, driverPath, browserPath)
	wd.call("POST", "/url", map[string]any{"url": link}, nil)
	policy := wd.text(wd.find("#policy"))
	if !strings.Contains(policy, "Datenschutzerklärung") && !strings.Contains(policy, "Privacy policy") {
		t.Fatalf("policy section shows %q", policy)
	}
	wd.call("POST", "/element/"+wd.find("#agree")+"/click", map[string]any{}, nil)

	var heading string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		// The title, unlike an element, survives the navigation.
		var title string
		wd.call("GET", "/title", nil, &title)
		if title == "Vielen Dank" || title == "Thank you" {
			heading = wd.text(wd.find("h1"))
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if heading != "Vielen Dank" && heading != "Thank you" {
		t.Fatalf("after clicking, the page heading is %q, want the success page", heading)
	}
	var shot string
	wd.call("GET", "/screenshot", nil, &shot)
	png, err := base64.StdEncoding.DecodeString(shot)
	if err != nil || len(png) == 0 {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("AULA_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "consent-success.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the success page: %s", path)

	if err := s.App.Consent.Gate(context.Background(), alice.ID); err != nil {
		t.Errorf("after agreeing in the browser, the gate still says %v", err)
	}
	s.CreateRoom(alice, map[string]any{})
}

// webDriver is one WebDriver session.
type webDriver struct {
	t    *testing.T
	base string // http://127.0.0.1:PORT/session/ID
}

// startWebDriver runs chromedriver and opens a headless Chromium session;
// both end with the test.
func startWebDriver(t *testing.T, driverPath, browserPath string) *webDriver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(driverPath, fmt.Sprintf("--port=%d", port))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromedriver: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	root := fmt.Sprintf("http://127.0.0.1:%d", port)
	wd := &webDriver{t: t, base: root}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(root + "/status")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromedriver did not start: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": browserPath,
			"args": []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
				"--window-size=1000,1100", "--lang=de-DE", "--user-data-dir=" + t.TempDir()},
			"prefs": map[string]any{"intl.accept_languages": "de-DE,de,en"},
		},
	}}}
	var session struct {
		SessionID string `json:"sessionId"`
	}
	wd.call("POST", "/session", caps, &session)
	if session.SessionID == "" {
		t.Fatal("WebDriver gave no session ID")
	}
	wd.base = root + "/session/" + session.SessionID
	t.Cleanup(func() { wd.call("DELETE", "", nil, nil) })
	return wd
}

// call sends one WebDriver command and decodes its "value" into out.
func (wd *webDriver) call(method, path string, body any, out any) {
	wd.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, wd.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		wd.t.Fatalf("WebDriver %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		wd.t.Fatalf("WebDriver %s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		wd.t.Fatalf("WebDriver %s %s: %v", method, path, err)
	}
	if out != nil {
		if err := json.Unmarshal(env.Value, out); err != nil {
			wd.t.Fatalf("WebDriver %s %s value %s: %v", method, path, env.Value, err)
		}
	}
}

// find returns the element ID of the first element matching a CSS selector.
func (wd *webDriver) find(css string) string {
	wd.t.Helper()
	var el map[string]string
	wd.call("POST", "/element", map[string]any{"using": "css selector", "value": css}, &el)
	for _, id := range el { // the key is the spec's element identifier
		return id
	}
	wd.t.Fatalf("no element %s", css)
	return ""
}

// text returns an element's rendered text.
func (wd *webDriver) text(el string) string {
	wd.t.Helper()
	var s string
	wd.call("GET", "/element/"+el+"/text", nil, &s)
	return s
}
