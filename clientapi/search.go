package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/roomserver"
	"github.com/aula-chat/aula/syncapi"
)

// Limits of POST /search: results per page (the filter's limit, default
// 10 as in Synapse) and context events on each side of a result (default
// 5, the spec's).
const (
	defaultSearchLimit  = 10
	maxSearchLimit      = 100
	defaultSearchEvents = 5
	maxSearchEvents     = 100
)

// searchRequest is the body of POST /search.
type searchRequest struct {
	SearchCategories *struct {
		RoomEvents *roomEventsCriteria `json:"room_events"`
	} `json:"search_categories"`
}

// roomEventsCriteria is search_categories.room_events.
type roomEventsCriteria struct {
	SearchTerm   *string         `json:"search_term"`
	Keys         []string        `json:"keys"`
	Filter       json.RawMessage `json:"filter"`
	OrderBy      string          `json:"order_by"`
	EventContext *struct {
		BeforeLimit    *int `json:"before_limit"`
		AfterLimit     *int `json:"after_limit"`
		IncludeProfile bool `json:"include_profile"`
	} `json:"event_context"`
	IncludeState bool `json:"include_state"`
	Groupings    struct {
		GroupBy []struct {
			Key string `json:"key"`
		} `json:"group_by"`
	} `json:"groupings"`
}

// search answers POST /search. room_events is the only category; a
// request without it gets no categories back.
func (a *API) search(r *http.Request, d *auth.Device) (any, error) {
	var body searchRequest
	if err := decodeJSON(r, &body, false); err != nil {
		return nil, err
	}
	if body.SearchCategories == nil {
		return nil, mxerr.BadJSON("search_categories is required")
	}
	c := body.SearchCategories.RoomEvents
	if c == nil {
		return map[string]any{"search_categories": emptyObject}, nil
	}
	if c.SearchTerm == nil {
		return nil, mxerr.BadJSON("search_categories.room_events.search_term is required")
	}
	req := roomserver.SearchRequest{
		UserID: d.UserID, Term: *c.SearchTerm, Keys: c.Keys, OrderBy: c.OrderBy,
		IncludeState: c.IncludeState, NextBatch: r.URL.Query().Get("next_batch"),
	}
	filter := &syncapi.RoomEventFilter{}
	if len(c.Filter) > 0 && string(c.Filter) != "null" {
		var err error
		if filter, err = syncapi.ParseRoomEventFilter(c.Filter); err != nil {
			return nil, err
		}
	}
	req.Limit = filter.EffectiveLimit(defaultSearchLimit, maxSearchLimit)
	types := filter.EventFilter
	types.Senders, types.NotSenders = nil, nil
	req.Filter = roomserver.SearchFilter{
		Rooms: filter.Rooms, NotRooms: filter.NotRooms, Senders: filter.Senders, NotSenders: filter.NotSenders,
		AllowsType: func(eventType string) bool { return types.Allows(eventType, "") },
		// Rooms are left to the room server, which adds the rooms the
		// filter's rooms were upgraded from.
		Match: filter.MatchesAnyRoom,
	}
	if ec := c.EventContext; ec != nil {
		before, err := searchContextLimit("before_limit", ec.BeforeLimit)
		if err != nil {
			return nil, err
		}
		after, err := searchContextLimit("after_limit", ec.AfterLimit)
		if err != nil {
			return nil, err
		}
		req.Context = &roomserver.SearchContextRequest{Before: before, After: after, IncludeProfile: ec.IncludeProfile}
	}
	for _, g := range c.Groupings.GroupBy {
		req.GroupBy = append(req.GroupBy, g.Key)
	}
	resp, err := a.rooms.Search(r.Context(), req)
	if err != nil {
		return nil, err
	}
	return map[string]any{"search_categories": map[string]any{"room_events": resp}}, nil
}

// searchContextLimit reads before_limit or after_limit of event_context:
// the spec's default 5 when absent, at most maxSearchEvents.
func searchContextLimit(name string, v *int) (int, error) {
	switch {
	case v == nil:
		return defaultSearchEvents, nil
	case *v < 0:
		return 0, mxerr.BadJSON("event_context.%s must not be negative", name)
	}
	return min(*v, maxSearchEvents), nil
}
