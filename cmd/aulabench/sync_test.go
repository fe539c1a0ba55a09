package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aula-chat/aula/internal/apitest"
)

func TestMarker(t *testing.T) {
	m := newMarker()
	if seq, ok := parseMarker(messageBody(m, 42), m); !ok || seq != 42 {
		t.Errorf("round trip: %d, %v", seq, ok)
	}
	for _, body := range []string{"", m, m + " ", m + " x", m + " -1", m + "1", "other " + "1", "aulabench-zz 3"} {
		if seq, ok := parseMarker(body, m); ok {
			t.Errorf("%q parsed as %d", body, seq)
		}
	}
	if newMarker() == "" || !strings.HasPrefix(m, "aulabench-") {
		t.Errorf("marker %q", m)
	}
}

func TestAnalyseWakes(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	// Clients 0 and 1 are in room 0, client 2 in room 1.
	rooms := []int{0, 0, 1}
	sent := []sentMsg{
		{seq: 0, room: 0, start: at(0), done: at(10)},
		{seq: 1, room: 1, start: at(100), done: at(105)},
		{seq: 2, room: 0, start: at(200), done: at(210), err: errors.New("HTTP 500")},
		{seq: 3, room: 1, start: at(300), done: at(302)},
	}
	wakes := [][]wakeRec{
		{{seq: 0, at: at(15)}, {seq: 2, at: at(220)}},  // seq 2 failed: unexpected
		{{seq: 0, at: at(8)}, {seq: 1, at: at(110)}},   // before the send returned; seq 1 is not its room
		{{seq: 1, at: at(125)}, {seq: 9, at: at(500)}}, // misses seq 3; seq 9 was never sent
	}
	st := analyseWakes(sent, rooms, wakes, 4)
	if st.Expected != 4 || st.Received != 3 || st.Missing != 1 {
		t.Errorf("expected/received/missing = %d/%d/%d, want 4/3/1", st.Expected, st.Received, st.Missing)
	}
	if st.Unexpected != 3 || st.Negative != 1 || st.Duplicates != 4 {
		t.Errorf("unexpected/negative/duplicates = %d/%d/%d, want 3/1/4", st.Unexpected, st.Negative, st.Duplicates)
	}
	want := []time.Duration{-2 * time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond}
	if fmt.Sprint(st.FromReturn) != fmt.Sprint(want) {
		t.Errorf("FromReturn = %v, want %v (sorted)", st.FromReturn, want)
	}
	wantStart := []time.Duration{8 * time.Millisecond, 15 * time.Millisecond, 25 * time.Millisecond}
	if fmt.Sprint(st.FromStart) != fmt.Sprint(wantStart) {
		t.Errorf("FromStart = %v, want %v", st.FromStart, wantStart)
	}
	if len(st.MissingSamples) != 1 || st.MissingSamples[0] != [2]int{2, 3} {
		t.Errorf("missing samples %v, want client 2 message 3", st.MissingSamples)
	}
	if len(st.PerMessage) != 3 { // the failed send has none
		t.Fatalf("per message: %+v", st.PerMessage)
	}
	if p := st.PerMessage[0]; p.Seq != 0 || p.Expected != 2 || p.Received != 2 || p.P50MS != -2 || p.MaxMS != 5 || p.SendMS != 10 {
		t.Errorf("message 0: %+v", p)
	}
	if p := st.PerMessage[2]; p.Seq != 3 || p.Expected != 1 || p.Received != 0 {
		t.Errorf("message 3: %+v", p)
	}
}

func TestParseSync(t *testing.T) {
	page, err := parseSync([]byte(`{"next_batch":"s5_0","presence":{"events":[{"type":"m.presence"}]},"rooms":{"join":{
		"!a:x":{"timeline":{"events":[{"event_id":"$1","content":{"body":"hi"}},{"event_id":"$2","content":{"membership":"join"}},
			{"event_id":"$3","content":{"body":7}}],"limited":true}},
		"!b:x":{"timeline":{"events":[]}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if page.NextBatch != "s5_0" || page.JoinedRooms != 2 || page.Limited != 1 || page.Presence != 1 {
		t.Errorf("page %+v", page)
	}
	if len(page.Bodies) != 1 || page.Bodies[0] != (timelineMessage{RoomID: "!a:x", EventID: "$1", Body: "hi"}) {
		t.Errorf("bodies %+v", page.Bodies)
	}
	for _, bad := range []string{`{}`, `{"next_batch":""}`, `{"next_batch":"s1","rooms":[]}`, `not json`} {
		if _, err := parseSync([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestAnswerError(t *testing.T) {
	err := answerError(429, []byte(`{"errcode":"M_LIMIT_EXCEEDED","error":"slow down"}`))
	if errorKind(err) != "HTTP 429 M_LIMIT_EXCEEDED" || !strings.Contains(err.Error(), "slow down") {
		t.Errorf("got %v", err)
	}
	err = answerError(502, []byte("<html>Bad Gateway</html>\n"))
	if !strings.Contains(err.Error(), "Bad Gateway") {
		t.Errorf("a non-JSON body is lost: %v", err)
	}
}

func TestSyncURL(t *testing.T) {
	u, err := url.Parse(syncURL("s1_2", "7", "offline", 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Path != "/_matrix/client/v3/sync" || q.Get("since") != "s1_2" || q.Get("filter") != "7" || q.Get("timeout") != "30000" || q.Get("set_presence") != "offline" {
		t.Errorf("got %s", u)
	}
	if u, _ := url.Parse(syncURL("", "", "", 0)); u.Query().Has("since") || u.Query().Has("set_presence") || u.Query().Get("timeout") != "0" {
		t.Errorf("initial sync URL %s", u)
	}
}

func TestSyncFlags(t *testing.T) {
	o, err := parseFlags([]string{"-scenario", "sync-wake", "-users", "100", "-rooms", "10"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.sync.interval != 100*time.Millisecond || o.sync.pollTimeout != 30*time.Second || o.sync.messages != 5 {
		t.Errorf("defaults %+v", o.sync)
	}
	for _, args := range [][]string{
		{"-scenario", "sync-wake", "-users", "5", "-rooms", "6"},
		{"-scenario", "sync-fanout", "-users", "20001"},
		{"-scenario", "sync-wake", "-interval", "0s"},
		{"-scenario", "sync-fanout", "-messages", "0"},
		{"-scenario", "sync-idle", "-runs", "0"},
		{"-scenario", "sync-fanout", "-poll-timeout", "10m"},
		{"-scenario", "sync-fanout", "-wait", "0s"},
		{"-scenario", "sync-fanout", "-park-timeout", "0s"},
		{"-scenario", "sync-fanout", "-set-presence", "away"},
		{"-scenario", "sync-nope"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestErrSamples(t *testing.T) {
	var s errSamples
	if s.String() != "none" {
		t.Errorf("empty: %q", s.String())
	}
	for i := range 20 {
		s.add("x", fmt.Errorf("error %d", i%10))
		s.add("y", fmt.Errorf("error %d", i%10)) // same text: kept once
	}
	if l := s.get(); len(l) != maxErrSamples || l[0] != "x: error 0" || l[1] != "x: error 1" {
		t.Errorf("samples %v", l)
	}
}

func TestFmtSignedMS(t *testing.T) {
	for v, want := range map[float64]string{-2.5: "-2.5ms", -0.25: "-250µs", 0: "0µs", 0.5: "500µs", 12.34: "12.3ms"} {
		if got := fmtSignedMS(v); got != want {
			t.Errorf("fmtSignedMS(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestSyncAgainstServer runs the three sync scenarios, small, against the
// real server: every wake-up must arrive, with no errors.
func TestSyncAgainstServer(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		bench := func(args ...string) syncReport {
			t.Helper()
			args = append([]string{"-target", s.URL, "-secret", apitest.SharedSecret, "-c", "2", "-json",
				"-pid", fmt.Sprint(os.Getpid()), "-wait", "20s"}, args...)
			var out bytes.Buffer
			if err := run(args, &out, io.Discard); err != nil {
				t.Fatalf("aulabench %v: %v", args, err)
			}
			var r syncReport
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("JSON output: %v\n%s", err, out.Bytes())
			}
			if r.Errors != 0 || len(r.ErrorSamples) > 0 {
				t.Errorf("%s: errors %d: %v", r.Scenario, r.Errors, r.ErrorSamples)
			}
			if r.Server == nil || r.Server.Error != "" || r.Server.MemAfter.RSSKiB == 0 {
				t.Errorf("%s: server figures missing: %+v", r.Scenario, r.Server)
			}
			return r
		}
		r := bench("-scenario", "sync-wake", "-users", "4", "-rooms", "2", "-d", "1s", "-interval", "100ms", "-prefix", "w")
		if r.Messages < 5 || r.Expected != 2*r.Messages || r.Received != r.Expected || r.Missing != 0 || r.Unexpected != 0 || r.UsersCreated != 5 {
			t.Errorf("sync-wake: %d messages, %d/%d wake-ups, %d missing, %d unexpected, %d created",
				r.Messages, r.Received, r.Expected, r.Missing, r.Unexpected, r.UsersCreated)
		}
		if wk := r.request("wake"); wk.Count != int64(r.Received) || wk.MaxMS <= 0 {
			t.Errorf("sync-wake: wake summary %+v", wk)
		}

		for _, presence := range []string{"", "offline"} {
			r = bench("-scenario", "sync-fanout", "-users", "3", "-messages", "2", "-prefix", "f"+presence,
				"-set-presence", presence)
			if r.Messages != 2 || r.Expected != 6 || r.Received != 6 || r.Missing != 0 || len(r.PerMessage) != 2 {
				t.Errorf("sync-fanout: %d messages, %d/%d wake-ups, %d per-message rows", r.Messages, r.Received, r.Expected, len(r.PerMessage))
			}
			if r.Park == nil || r.Park.Seconds <= 0 || r.SetPresence != presence {
				t.Errorf("sync-fanout: park %+v, set_presence %q", r.Park, r.SetPresence)
			}
		}

		r = bench("-scenario", "sync-idle", "-rooms", "3", "-runs", "2", "-n", "20", "-d", "10s", "-prefix", "i")
		if r.InitialRooms != 3 || r.NonEmptyIdle != 0 || r.request("incremental").Count != 20 || r.request("initial").Count != 2 {
			t.Errorf("sync-idle: %d rooms, %d non-empty, requests %+v", r.InitialRooms, r.NonEmptyIdle, r.Requests)
		}
		if !strings.Contains(r.Summary, "K=3") {
			t.Errorf("summary %q", r.Summary)
		}
	})
}
