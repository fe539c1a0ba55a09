package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// sentMsg is one bench message: sequence number seq went into room (an
// index), PUT /send was sent at start and returned at done.
type sentMsg struct {
	seq     int
	room    int
	start   time.Time
	done    time.Time
	eventID string
	err     error
}

// newMarker returns a marker unique to this run: messages of an earlier
// run in the same rooms are not counted.
func newMarker() string { return "aulabench-" + strconv.FormatInt(time.Now().UnixNano(), 36) }

// messageBody is the body of bench message seq.
func messageBody(marker string, seq int) string { return marker + " " + strconv.Itoa(seq) }

// parseMarker returns the sequence number of a bench message body of this
// run.
func parseMarker(body, marker string) (int, bool) {
	rest, ok := strings.CutPrefix(body, marker+" ")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n >= 0
}

// sendMessage sends bench message seq into room and records it.
func sendMessage(ctx context.Context, c *client, sender member, marker string, seq, room int, roomID string) sentMsg {
	m := sentMsg{seq: seq, room: room, start: time.Now()}
	m.eventID, m.err = c.send(ctx, sender.token, roomID, marker+"-"+strconv.Itoa(seq), messageBody(marker, seq))
	m.done = time.Now()
	return m
}

// wakeStats is what the clients' records say about the messages sent.
type wakeStats struct {
	// FromReturn: /sync return − PUT /send return, one per wake-up, sorted.
	// It is negative when the /sync answer arrived before the sender had
	// read its own answer: the server wakes the syncs at commit, and the
	// two answers race on the loopback.
	FromReturn []time.Duration
	// FromStart: /sync return − PUT /send start (never negative); the
	// upper bound of the wake-up latency.
	FromStart  []time.Duration
	Expected   int // wake-ups due: members of the room of each message sent without error
	Received   int // of them, seen
	Missing    int // Expected − Received
	Unexpected int // sightings of a message in a room the client is not in, or of a failed send
	Negative   int // FromReturn values below zero
	Duplicates int // a message seen again by the same client
	PerMessage []messageStat
	// MissingSamples names a few (client index, seq) pairs never seen.
	MissingSamples [][2]int
}

// messageStat is one message's wake-ups.
type messageStat struct {
	Seq      int     `json:"seq"`
	Room     int     `json:"room"`
	SendMS   float64 `json:"send_ms"`
	Expected int     `json:"expected"`
	Received int     `json:"received"`
	P50MS    float64 `json:"p50_ms"`
	P99MS    float64 `json:"p99_ms"`
	MaxMS    float64 `json:"max_ms"`
}

const maxMissingSamples = 5

// analyseWakes matches the clients' sightings (wakes[client]) against the
// messages sent (sent[seq].seq == seq); clientRoom[client] is the room the
// client is in.
func analyseWakes(sent []sentMsg, clientRoom []int, wakes [][]wakeRec, dups int) wakeStats {
	st := wakeStats{Duplicates: dups}
	members := map[int][]int{} // room → clients
	for c, r := range clientRoom {
		members[r] = append(members[r], c)
	}
	perMsg := make([][]time.Duration, len(sent))
	got := make([]map[int]bool, len(sent)) // seq → clients that saw it
	for c, ws := range wakes {
		for _, w := range ws {
			if w.seq < 0 || w.seq >= len(sent) || sent[w.seq].err != nil || sent[w.seq].room != clientRoom[c] {
				st.Unexpected++
				continue
			}
			m := sent[w.seq]
			d := w.at.Sub(m.done)
			st.FromReturn = append(st.FromReturn, d)
			st.FromStart = append(st.FromStart, w.at.Sub(m.start))
			perMsg[w.seq] = append(perMsg[w.seq], d)
			if d < 0 {
				st.Negative++
			}
			if got[w.seq] == nil {
				got[w.seq] = map[int]bool{}
			}
			got[w.seq][c] = true
		}
	}
	for seq, m := range sent {
		if m.err != nil {
			continue
		}
		want := members[m.room]
		st.Expected += len(want)
		st.Received += len(got[seq])
		for _, c := range want {
			if !got[seq][c] && len(st.MissingSamples) < maxMissingSamples {
				st.MissingSamples = append(st.MissingSamples, [2]int{c, seq})
			}
		}
		lat := perMsg[seq]
		slices.Sort(lat)
		st.PerMessage = append(st.PerMessage, messageStat{
			Seq: seq, Room: m.room, SendMS: ms(m.done.Sub(m.start)),
			Expected: len(want), Received: len(got[seq]),
			P50MS: ms(percentile(lat, 0.5)), P99MS: ms(percentile(lat, 0.99)), MaxMS: ms(percentile(lat, 1)),
		})
	}
	st.Missing = st.Expected - st.Received
	slices.Sort(st.FromReturn)
	slices.Sort(st.FromStart)
	return st
}

// latencySummary summarises sorted latencies (which may be negative).
func latencySummary(name string, sorted []time.Duration) summary {
	return summary{
		Name:  name,
		Count: int64(len(sorted)),
		P50MS: ms(percentile(sorted, 0.50)),
		P95MS: ms(percentile(sorted, 0.95)),
		P99MS: ms(percentile(sorted, 0.99)),
		MaxMS: ms(percentile(sorted, 1)),
	}
}

// sendSummary summarises the PUT /send latencies and errors of sent.
func sendSummary(sent []sentMsg) summary {
	r := newRecorder("send")
	for _, m := range sent {
		r.add(m.done.Sub(m.start), m.err)
	}
	return r.summary()
}

// sendErrors returns a few failed sends in full.
func sendErrors(sent []sentMsg) []string {
	var out []string
	for _, m := range sent {
		if m.err != nil && len(out) < maxErrSamples {
			out = append(out, fmt.Sprintf("send of message %d: %v", m.seq, m.err))
		}
	}
	return out
}
