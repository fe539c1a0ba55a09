package clientapi

import (
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/gorilla/mux"
)

// TestDispatcherAgreesWithTable checks that for a path made from every
// route template, and every method, the dispatcher's index picks the same
// route as the plain table would.
func TestDispatcherAgreesWithTable(t *testing.T) {
	a, _ := confNewAPI(t, nil)
	d := a.router
	variable := regexp.MustCompile(`\{[^}]*\}`)
	var paths []string
	_ = d.root.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err == nil {
			paths = append(paths, variable.ReplaceAllStringFunc(tpl, func(v string) string {
				if v == "{version:(?:v3|r0)}" {
					return "v3"
				}
				return "%21x%3Ay"
			}))
		}
		return nil
	})
	paths = append(paths, "/_matrix/client/v3/nothing/here", "/_matrix/client/v3/rooms/x/y/z/w/v/u")
	if len(paths) < 100 {
		t.Fatalf("only %d routes found", len(paths))
	}
	indexed := 0
	for _, p := range paths {
		for _, method := range []string{"GET", "PUT", "POST", "DELETE", "OPTIONS"} {
			r := httptest.NewRequest(method, p, nil)
			var want mux.RouteMatch
			wantOK := d.root.Match(r, &want)
			b := d.buckets[pathKey(r.URL.EscapedPath())]
			if b == nil {
				continue // served by the table itself
			}
			indexed++
			var got mux.RouteMatch
			gotOK := b.Match(r, &got)
			if wantOK && want.MatchErr == nil {
				if !gotOK || got.MatchErr != nil {
					t.Errorf("%s %s: table matches, index does not", method, p)
					continue
				}
				wt, _ := want.Route.GetPathTemplate()
				gt, _ := got.Route.GetPathTemplate()
				if wt != gt {
					t.Errorf("%s %s: table picks %s, index picks %s", method, p, wt, gt)
				}
			} else if gotOK && got.MatchErr == nil {
				gt, _ := got.Route.GetPathTemplate()
				t.Errorf("%s %s: index matches %s, table matches nothing", method, p, gt)
			}
		}
	}
	if indexed == 0 {
		t.Fatal("no path went through the index")
	}
}
