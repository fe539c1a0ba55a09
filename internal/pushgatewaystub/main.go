// Command pushgatewaystub is a push gateway for tests: it answers POST
// /_matrix/push/v1/notify like Sygnal, records every request, and can be
// told to fail or reject pushkeys. It listens on 127.0.0.1 at a free port
// and prints "listening on http://ADDR" as its first line of output.
//
// Control endpoints:
//
//	GET  /requests  the recorded notify bodies, as a JSON array
//	POST /control   {"fail": N, "reject": ["pushkey", ...]}: answer the
//	                next N notify requests with 500, and reject these keys
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sync"
)

type state struct {
	mu       sync.Mutex
	requests []json.RawMessage
	fail     int
	reject   map[string]bool
}

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "listening on http://%s\n", ln.Addr())
	s := &state{reject: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_matrix/push/v1/notify", s.notify)
	mux.HandleFunc("GET /requests", s.list)
	mux.HandleFunc("POST /control", s.control)
	log.Fatal(http.Serve(ln, mux))
}

func (s *state) notify(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req struct {
		Notification struct {
			Devices []struct {
				PushKey string `json:"pushkey"`
			} `json:"devices"`
		} `json:"notification"`
	}
	if !json.Valid(body) || json.Unmarshal(body, &req) != nil {
		http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, body)
	if s.fail > 0 {
		s.fail--
		http.Error(w, `{"error":"unavailable"}`, http.StatusInternalServerError)
		return
	}
	rejected := []string{}
	for _, d := range req.Notification.Devices {
		if s.reject[d.PushKey] {
			rejected = append(rejected, d.PushKey)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"rejected": rejected})
}

func (s *state) list(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	out := s.requests
	if out == nil {
		out = []json.RawMessage{}
	}
	_ = json.NewEncoder(w).Encode(out)
}

func (s *state) control(w http.ResponseWriter, r *http.Request) {
	var c struct {
		Fail   int      `json:"fail"`
		Reject []string `json:"reject"`
	}
	if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.fail = c.Fail
	for _, k := range c.Reject {
		s.reject[k] = true
	}
	s.mu.Unlock()
	w.Write([]byte("{}"))
}
