package clientapi

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
)

// requestInfo collects what the access log reports about a request; the
// authed adapter fills in the requester.
type requestInfo struct {
	userID   string
	deviceID string
}

type requestInfoKey struct{}

func setRequester(r *http.Request, d *auth.Device) {
	if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
		info.userID, info.deviceID = d.UserID, d.DeviceID
	}
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush lets streaming handlers flush through the recorder.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// withAccessLog writes one log line per request: method, route template,
// status, duration and requester; the client IP only when configured.
func (a *API) withAccessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{}
		r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info))
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("route", routeName(r)),
			slog.Int("status", rec.status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		}
		if info.userID != "" {
			attrs = append(attrs, slog.String("user_id", info.userID), slog.String("device_id", info.deviceID))
		}
		if ip := a.clientIP(r); ip != "" {
			attrs = append(attrs, slog.String("ip", ip))
		}
		a.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	})
}

// clientIP returns the client's address when privacy.store_ip_addresses
// (or its alias log.ip_addresses) is on, else "": then no IP address
// reaches the logs or the device records.
func (a *API) clientIP(r *http.Request) string {
	if !a.cfg.StoreIPAddresses() {
		return ""
	}
	return a.clientAddr(r)
}

// clientAddr is the address a request came from, for rate limits: the
// connection's peer, or, when the peer is a trusted reverse proxy, the
// nearest address in X-Forwarded-For that is not a trusted proxy.
func (a *API) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !a.trustedProxy(host) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if _, err := netip.ParseAddr(hop); err != nil {
			break // a malformed entry: trust nothing before it
		}
		if !a.trustedProxy(hop) {
			return hop
		}
	}
	return host
}

// trustedProxy reports whether addr is in http.trusted_proxies.
func (a *API) trustedProxy(addr string) bool {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range a.proxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// withRecover turns a panic in a handler into 500 M_UNKNOWN and a log line
// with the stack, instead of a dropped connection.
func (a *API) withRecover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				a.log.Error("handler panicked", "route", routeName(r), "panic", p, "stack", string(debug.Stack()))
				writeJSON(w, http.StatusInternalServerError, mxerr.Internal(nil).Body())
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// withCORS lets web clients on other origins call the API, and answers
// preflight requests for any path.
func withCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "X-Requested-With, Content-Type, Authorization")
		if r.Method == http.MethodOptions {
			writeJSON(w, http.StatusOK, emptyObject)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// withBodyLimit caps request bodies; readBody turns the overflow into 413.
func (a *API) withBodyLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isMediaUpload(r) { // limited by media.max_upload_size while streaming (media.go)
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > a.cfg.HTTP.MaxRequestBytes {
			writeJSON(w, http.StatusRequestEntityTooLarge,
				mxerr.TooLarge("Request body is larger than %d bytes", a.cfg.HTTP.MaxRequestBytes).Body())
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, a.cfg.HTTP.MaxRequestBytes)
		next.ServeHTTP(w, r)
	})
}
