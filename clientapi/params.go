package clientapi

import (
	"encoding/json"
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
	return filter, func(ev roomserver.ClientEvent) bool {
		return filter.AllowsEvent(ev.RoomID, ev.Type, ev.Sender, hasURL(ev.Content))
	}, nil
}

// hasURL reports whether an event content has a "url" key (contains_url).
func hasURL(content json.RawMessage) bool {
	var c struct {
		URL *string `json:"url"`
	}
	return json.Unmarshal(content, &c) == nil && c.URL != nil
}
