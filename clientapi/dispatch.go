package clientapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
)

// middlewares wrap every matched route, in this order.
func (a *API) middlewares() []mux.MiddlewareFunc {
	return []mux.MiddlewareFunc{a.withAccessLog, withCORS, a.withRecover, a.withBodyLimit}
}

// dispatcher puts an index in front of the route table. gorilla/mux tries
// routes one by one, escaping the path and running a regular expression
// for each, which cost more CPU than storing a message for a request near
// the end of the table. The dispatcher groups the routes by their number of
// path segments and their fourth segment (the one after
// /_matrix/client/v3/), so a request is matched against a handful of
// routes. Each group keeps the table's order and holds every route that
// could match a path of its key, so the first match in the group is the
// first match in the table; everything else (404, 405) goes to the table
// itself.
type dispatcher struct {
	root    *mux.Router
	buckets map[string]*mux.Router
}

// newDispatcher indexes the routes of root; mws are root's middlewares.
func newDispatcher(root *mux.Router, mws []mux.MiddlewareFunc) *dispatcher {
	d := &dispatcher{root: root, buckets: map[string]*mux.Router{}}
	type entry struct {
		route *mux.Route
		tpl   string
		key   string // "" when the route could match paths of any key
	}
	var entries []entry
	_ = root.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		entries = append(entries, entry{route, tpl, templateKey(tpl)})
		return nil
	})
	for _, e := range entries {
		if e.key != "" && d.buckets[e.key] == nil {
			b := mux.NewRouter().SkipClean(true).UseEncodedPath()
			b.Use(mws...)
			b.NotFoundHandler, b.MethodNotAllowedHandler = root, root
			d.buckets[e.key] = b
		}
	}
	for _, e := range entries {
		for key, b := range d.buckets {
			if e.key != "" && e.key != key {
				continue
			}
			r := b.Handle(e.tpl, e.route.GetHandler())
			if methods, err := e.route.GetMethods(); err == nil {
				r.Methods(methods...)
			}
		}
	}
	return d
}

// ServeHTTP implements http.Handler.
func (d *dispatcher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if b := d.buckets[pathKey(r.URL.EscapedPath())]; b != nil {
		b.ServeHTTP(w, r)
		return
	}
	d.root.ServeHTTP(w, r)
}

// pathKey is the group key of a request path: its segment count and
// fourth segment.
func pathKey(path string) string {
	segs := strings.Split(path, "/")
	if len(segs) < 5 {
		return ""
	}
	return strconv.Itoa(len(segs)) + " " + segs[4]
}

// templateKey is the group key of a route template, or "" if the route
// could match paths of more than one key: when the fourth segment is a
// variable, or a variable's pattern might match a "/".
func templateKey(tpl string) string {
	var segs []string
	depth, start := 0, 0
	for i, c := range tpl {
		switch c {
		case '{':
			depth++
		case '}':
			depth--
		case '/':
			if depth == 0 {
				segs = append(segs, tpl[start:i])
				start = i + 1
			}
		}
	}
	segs = append(segs, tpl[start:])
	for _, s := range segs {
		if _, pattern, ok := strings.Cut(s, ":"); ok && strings.Contains(s, "{") && strings.ContainsAny(pattern, `.\`) {
			return "" // a pattern like .* could span segments
		}
	}
	if len(segs) < 5 || strings.Contains(segs[4], "{") {
		return ""
	}
	return strconv.Itoa(len(segs)) + " " + segs[4]
}
