package clientapi

import (
	"net/url"
	"strconv"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/roomserver"
	"github.com/aula-chat/aula/syncapi"
)

// intParam reads an integer query parameter that must be at least lowest:
// def when absent or empty, capped at highest.
func intParam(q url.Values, name string, def, lowest, highest int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lowest {
		return 0, mxerr.InvalidParam("%s must be an integer of at least %d", name, lowest)
	}
	return min(n, highest), nil
}

// boolParam reads a boolean query parameter: "true" or "false", as the
// spec writes them; absent or empty is false.
func boolParam(q url.Values, name string) (bool, error) {
	switch q.Get(name) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, mxerr.InvalidParam("%s must be true or false", name)
}

// eventFilterParam parses the "filter" query parameter of /messages and
// /context: nil when absent, otherwise the filter and a matcher for the
// events it keeps.
func eventFilterParam(q url.Values) (*syncapi.RoomEventFilter, func(roomserver.ClientEvent) bool, error) {
	f := q.Get("filter")
	if f == "" {
		return nil, nil, nil
	}
	filter, err := syncapi.ParseRoomEventFilter([]byte(f))
	if err != nil {
		return nil, nil, err
	}
	return filter, filter.Matches, nil
}
