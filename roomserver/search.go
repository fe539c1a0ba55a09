package roomserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"

	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// searchKeys are the keys POST /search can search, and the event type that
// carries each (the spec's room_events category).
var searchKeys = map[string]string{
	"content.body":  "m.room.message",
	"content.name":  "m.room.name",
	"content.topic": "m.room.topic",
}

// Orderings and groupings of search results.
const (
	SearchOrderRank   = "rank"
	SearchOrderRecent = "recent"
	SearchGroupRoom   = "room_id"
	SearchGroupSender = "sender"
)

// searchWindow is how many hits of the index one query reads, and
// searchWindows how many such windows one request reads at most while the
// hits the user may see do not fill a page. Their visibility decides the
// count, and the page is taken from the visible ones. A page that stays
// short because the windows held too few visible hits still gets a
// next_batch to continue after them.
const (
	searchWindow  = 1000
	searchWindows = 5
)

// maxPredecessors bounds the walk through a room's upgrade history.
const maxPredecessors = 32

// SearchRequest is the room_events category of POST /search.
type SearchRequest struct {
	UserID string
	Term   string
	// Keys to search: content.body, content.name, content.topic; nil
	// searches all of them.
	Keys []string
	// OrderBy is SearchOrderRank (also when empty) or SearchOrderRecent.
	OrderBy string
	Filter  SearchFilter
	// Limit is the number of results per page.
	Limit int
	// Context, if not nil, asks for the events around each result.
	Context      *SearchContextRequest
	IncludeState bool
	// GroupBy lists SearchGroupRoom and/or SearchGroupSender.
	GroupBy []string
	// NextBatch continues an earlier search: a next_batch it returned.
	NextBatch string
}

// SearchFilter narrows a search: the request's RoomEventFilter. Rooms and
// senders narrow the index query; Match, if not nil, then sees every
// result before it is returned.
type SearchFilter struct {
	Rooms      []string // nil: every room
	NotRooms   []string
	Senders    []string // nil: every sender
	NotSenders []string
	// AllowsType, if not nil, says which of the searched event types to
	// keep.
	AllowsType func(eventType string) bool
	Match      func(ev ClientEvent) bool
}

// SearchContextRequest is the request's event_context.
type SearchContextRequest struct {
	Before, After  int
	IncludeProfile bool
}

// SearchResponse is the room_events category of the answer.
type SearchResponse struct {
	Count      int                                `json:"count"`
	Results    []SearchResult                     `json:"results"`
	Highlights []string                           `json:"highlights"`
	State      map[string][]ClientEvent           `json:"state,omitempty"`
	Groups     map[string]map[string]*SearchGroup `json:"groups,omitempty"`
	NextBatch  string                             `json:"next_batch,omitempty"`
}

// SearchResult is one event found.
type SearchResult struct {
	Rank    float64        `json:"rank"`
	Result  ClientEvent    `json:"result"`
	Context *SearchContext `json:"context,omitempty"`
}

// SearchContext is the context of a result, when asked for.
type SearchContext struct {
	Start        string                   `json:"start"`
	End          string                   `json:"end"`
	EventsBefore []ClientEvent            `json:"events_before"`
	EventsAfter  []ClientEvent            `json:"events_after"`
	ProfileInfo  map[string]SearchProfile `json:"profile_info,omitempty"`
}

// SearchProfile is a sender's room profile as of a result's context.
type SearchProfile struct {
	DisplayName string `json:"displayname,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

// SearchGroup is the results of one room or sender.
type SearchGroup struct {
	// Order is the place of the group's first result in the results, so
	// groups sort in the order of the results.
	Order     int      `json:"order"`
	Results   []string `json:"results"`
	NextBatch string   `json:"next_batch,omitempty"`
}

// searchToken is what next_batch holds (base64url JSON, opaque to clients):
// where the next page starts, in the ordering it was made for, within one
// group if it came from a group.
type searchToken struct {
	Order  string `json:"o"`
	Group  string `json:"g,omitempty"`
	Key    string `json:"k,omitempty"`
	Before int64  `json:"b,omitempty"` // recent: stream positions below this
	Offset int    `json:"f,omitempty"` // rank: index hits to skip
	Seen   int    `json:"n,omitempty"` // visible hits of earlier pages, for count
}

func (t searchToken) String() string {
	raw, _ := json.Marshal(t) // plain fields always marshal
	return base64.RawURLEncoding.EncodeToString(raw)
}

func parseSearchToken(s, order string) (searchToken, error) {
	if s == "" {
		return searchToken{Order: order}, nil
	}
	var t searchToken
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(raw, &t) != nil || t.Before < 0 || t.Offset < 0 || t.Seen < 0 ||
		(t.Group != "" && t.Group != SearchGroupRoom && t.Group != SearchGroupSender) || (t.Group == "") != (t.Key == "") {
		return searchToken{}, mxerr.InvalidParam("Invalid next_batch")
	}
	if t.Order != order {
		return searchToken{}, mxerr.InvalidParam("next_batch belongs to a search with order_by %q", t.Order)
	}
	return t, nil
}

// searchHit is a hit of the index the user may see, with its index among
// the hits read.
type searchHit struct {
	storage.SearchHit
	index int
}

// Search runs a full-text search over the events the user may see: in the
// rooms they are in or have left (not forgotten), only events history
// visibility lets them see (so nothing from after they left), never from
// users they ignore. Redacted events are not in the index. Results come
// best match first (rank) or newest first (recent); next_batch pages
// through both. count is the number of visible hits from the start of the
// search to the end of the windows of the index this request read (see
// searchWindow): exact unless the index holds more hits after them.
func (s *Server) Search(ctx context.Context, req SearchRequest) (*SearchResponse, error) {
	order := req.OrderBy
	switch order {
	case "":
		order = SearchOrderRank
	case SearchOrderRank, SearchOrderRecent:
	default:
		return nil, mxerr.BadJSON("order_by must be %q or %q", SearchOrderRank, SearchOrderRecent)
	}
	keys := req.Keys
	if keys == nil {
		keys = []string{"content.body", "content.name", "content.topic"} // Synapse's default
	}
	var types []string
	for _, k := range keys {
		typ, ok := searchKeys[k]
		if !ok {
			return nil, mxerr.BadJSON("Cannot search key %q: keys may be content.body, content.name and content.topic", k)
		}
		if !slices.Contains(types, typ) && (req.Filter.AllowsType == nil || req.Filter.AllowsType(typ)) {
			types = append(types, typ)
		}
	}
	for _, g := range req.GroupBy {
		if g != SearchGroupRoom && g != SearchGroupSender {
			return nil, mxerr.BadJSON("Cannot group by %q: groups may be room_id and sender", g)
		}
	}
	tok, err := parseSearchToken(req.NextBatch, order)
	if err != nil {
		return nil, err
	}
	resp := &SearchResponse{Results: []SearchResult{}, Highlights: []string{}}

	q, err := s.searchScope(ctx, req, tok)
	if err != nil {
		return nil, err
	}
	q.Term, q.Types, q.ByRank, q.Limit = req.Term, types, order == SearchOrderRank, searchWindow

	// Windows of the index, until they hold a page of hits the user may
	// see (history visibility, one viewer per room) or the index ends.
	viewers := map[string]*viewer{}
	var hits []storage.SearchHit
	var visible []searchHit
	full := false // the last window was full: the index may go on
	for window := 0; window < searchWindows && (window == 0 || (full && len(visible) < req.Limit)); window++ {
		q.Before, q.Offset = tok.Before, tok.Offset+len(hits)
		if n := len(hits); n > 0 && order == SearchOrderRecent {
			q.Before, q.Offset = hits[n-1].StreamPos, 0
		}
		batch, err := s.db.SearchEvents(ctx, q)
		if err != nil {
			return nil, err
		}
		full = len(batch) == searchWindow
		for _, h := range batch {
			v, ok := viewers[h.RoomID]
			if !ok {
				if v, err = s.newViewer(ctx, h.RoomID, req.UserID); err != nil {
					return nil, err
				}
				viewers[h.RoomID] = v
			}
			// Indexed events are never history visibility or member
			// events, so canSee needs no state key.
			if v.mayRead() && v.canSee(storage.Event{Depth: h.Depth, Type: h.Type}) {
				visible = append(visible, searchHit{h, len(hits)})
			}
			hits = append(hits, h)
		}
	}
	resp.Count = tok.Seen + len(visible)

	// The page: the visible hits in order, as long as the filter keeps
	// them. last is the index in visible of the last hit looked at.
	var picked []storage.Event
	var pickedHits []searchHit
	last := -1
	for next := 0; next < len(visible) && len(picked) < req.Limit; {
		chunk := visible[next:min(len(visible), next+max(2*(req.Limit-len(picked)), 10))]
		ids := make([]string, len(chunk))
		for i, h := range chunk {
			ids[i] = h.EventID
		}
		evs, err := s.db.EventsByID(ctx, ids)
		if err != nil {
			return nil, err
		}
		for _, h := range chunk {
			if len(picked) >= req.Limit {
				break
			}
			last++
			ev, ok := evs[h.EventID]
			if !ok || ev.RedactedBy != "" { // redacted since the index was read
				continue
			}
			if req.Filter.Match != nil && !req.Filter.Match(ToClientEvent(ev, nil)) {
				continue
			}
			picked, pickedHits = append(picked, ev), append(pickedHits, h)
		}
		next += len(chunk)
	}

	formatted, err := s.searchFormat(ctx, viewers, picked)
	if err != nil {
		return nil, err
	}
	for i, ce := range formatted {
		resp.Results = append(resp.Results, SearchResult{Rank: pickedHits[i].Rank, Result: ce})
	}
	if req.Context != nil {
		for i, ev := range picked {
			if resp.Results[i].Context, err = s.searchContext(ctx, viewers[ev.RoomID], ev, *req.Context); err != nil {
				return nil, err
			}
		}
	}
	if len(picked) > 0 {
		ids := make([]string, len(picked))
		for i, ev := range picked {
			ids[i] = ev.EventID
		}
		if resp.Highlights, err = s.db.SearchHighlights(ctx, req.Term, ids); err != nil {
			return nil, err
		}
	}
	if req.IncludeState {
		if resp.State, err = s.searchState(ctx, viewers, picked); err != nil {
			return nil, err
		}
	}

	// More results: visible hits not looked at, or a full window with
	// more of the index behind it. The next page starts after the last
	// hit looked at, or after the whole window when all of it was.
	more := req.Limit > 0 && (last < len(visible)-1 || full)
	after := len(hits) - 1 // index in hits after which the next page starts
	if last >= 0 && last < len(visible)-1 {
		after = visible[last].index
	}
	// at sets where a token's page starts; offset is the number of hits of
	// the token's search before it (rank order).
	at := func(t searchToken, offset int) string {
		if order == SearchOrderRecent {
			t.Before = hits[after].StreamPos
		} else {
			t.Offset = offset
		}
		return t.String()
	}
	if more {
		resp.NextBatch = at(searchToken{Order: order, Group: tok.Group, Key: tok.Key, Seen: tok.Seen + last + 1}, tok.Offset+after+1)
	}
	resp.Groups = searchGroups(req.GroupBy, pickedHits, func(group, key string) string {
		switch {
		case !more:
			return ""
		case group == tok.Group && key == tok.Key:
			return resp.NextBatch
		case tok.Group != "":
			return "" // a token holds one group
		case order == SearchOrderRank && tok.Offset > 0:
			// An offset counts the hits of the whole search; only the
			// first page knows how many of them are a group's.
			return ""
		}
		seen, before := 0, 0
		for _, h := range visible[:last+1] {
			if searchGroupKey(group, h.SearchHit) == key {
				seen++
			}
		}
		for _, h := range hits[:after+1] {
			if searchGroupKey(group, h) == key {
				before++
			}
		}
		return at(searchToken{Order: order, Group: group, Key: key, Seen: seen}, before)
	})
	return resp, nil
}

// searchScope returns the rooms and senders to search: the rooms the user
// is in or has left (and the earlier versions of rooms the filter names,
// as Synapse searches them), as the filter and a group's next_batch narrow
// them; the filter's senders, without the users the user ignores.
func (s *Server) searchScope(ctx context.Context, req SearchRequest, tok searchToken) (storage.SearchQuery, error) {
	var q storage.SearchQuery
	ms, err := s.db.MembershipsOf(ctx, req.UserID)
	if err != nil {
		return q, err
	}
	wanted := map[string]bool{}
	for _, roomID := range req.Filter.Rooms {
		wanted[roomID] = true
		olds, err := s.predecessors(ctx, roomID)
		if err != nil {
			return q, err
		}
		for _, old := range olds {
			wanted[old] = true
		}
	}
	for _, m := range ms {
		switch {
		case m.Membership != spec.Join && m.Membership != spec.Leave && m.Membership != spec.Ban,
			req.Filter.Rooms != nil && !wanted[m.RoomID],
			slices.Contains(req.Filter.NotRooms, m.RoomID),
			tok.Group == SearchGroupRoom && tok.Key != m.RoomID:
			continue
		}
		q.RoomIDs = append(q.RoomIDs, m.RoomID)
	}
	q.Senders = req.Filter.Senders
	if tok.Group == SearchGroupSender {
		if q.Senders != nil && !slices.Contains(q.Senders, tok.Key) {
			q.Senders = []string{}
		} else {
			q.Senders = []string{tok.Key}
		}
	}
	ignored, err := s.ignoredUsers(ctx, req.UserID)
	if err != nil {
		return q, err
	}
	q.NotSenders = slices.Clone(req.Filter.NotSenders)
	for u := range ignored {
		q.NotSenders = append(q.NotSenders, u)
	}
	return q, nil
}

// predecessors follows m.room.create's predecessor from a room to the
// rooms it was upgraded from, as far as this server has them.
func (s *Server) predecessors(ctx context.Context, roomID string) ([]string, error) {
	var out []string
	for len(out) < maxPredecessors {
		create, err := s.db.StateEventAt(ctx, roomID, spec.MRoomCreate, "", 0)
		if errors.Is(err, storage.ErrNotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		var pdu struct {
			Content struct {
				Predecessor struct {
					RoomID string `json:"room_id"`
				} `json:"predecessor"`
			} `json:"content"`
		}
		_ = json.Unmarshal(create.JSON, &pdu) // a malformed predecessor ends the walk
		roomID = pdu.Content.Predecessor.RoomID
		if roomID == "" || slices.Contains(out, roomID) {
			break
		}
		out = append(out, roomID)
	}
	return out, nil
}

// searchFormat formats events of several rooms for the client, each room's
// with its viewer, keeping their order.
func (s *Server) searchFormat(ctx context.Context, viewers map[string]*viewer, evs []storage.Event) ([]ClientEvent, error) {
	out := make([]ClientEvent, len(evs))
	byRoom := map[string][]int{}
	var rooms []string
	for i, ev := range evs {
		if _, ok := byRoom[ev.RoomID]; !ok {
			rooms = append(rooms, ev.RoomID)
		}
		byRoom[ev.RoomID] = append(byRoom[ev.RoomID], i)
	}
	for _, roomID := range rooms {
		v := viewers[roomID]
		idx := byRoom[roomID]
		some := make([]storage.Event, len(idx))
		for j, i := range idx {
			some[j] = evs[i]
		}
		ces, err := s.clientEvents(ctx, v, some)
		if err != nil {
			return nil, err
		}
		for j, i := range idx {
			ces[j].Unsigned["membership"] = v.membershipAt(evs[i])
			out[i] = ces[j]
		}
	}
	return out, nil
}

// searchContext returns the events around a result that the user may see,
// the /messages tokens of the ends of that window, and the senders'
// profiles as of its end if asked for.
func (s *Server) searchContext(ctx context.Context, v *viewer, ev storage.Event, req SearchContextRequest) (*SearchContext, error) {
	before, err := s.visibleEvents(ctx, v, ev.RoomID, ev.Depth, true, req.Before)
	if err != nil {
		return nil, err
	}
	after, err := s.visibleEvents(ctx, v, ev.RoomID, ev.Depth, false, req.After)
	if err != nil {
		return nil, err
	}
	c := &SearchContext{Start: formatToken(ev.Depth - 1), End: formatToken(ev.Depth)}
	if n := len(before); n > 0 {
		c.Start = formatToken(before[n-1].Depth - 1)
	}
	end := ev.Depth
	if n := len(after); n > 0 {
		end = after[n-1].Depth
		c.End = formatToken(end)
	}
	if c.EventsBefore, err = s.searchFormat(ctx, map[string]*viewer{ev.RoomID: v}, before); err != nil {
		return nil, err
	}
	if c.EventsAfter, err = s.searchFormat(ctx, map[string]*viewer{ev.RoomID: v}, after); err != nil {
		return nil, err
	}
	if !req.IncludeProfile {
		return c, nil
	}
	var senders []string
	for _, e := range slices.Concat(before, []storage.Event{ev}, after) {
		if !slices.Contains(senders, e.Sender) {
			senders = append(senders, e.Sender)
		}
	}
	members, err := s.db.StateEventsAt(ctx, ev.RoomID, spec.MRoomMember, senders, end)
	if err != nil {
		return nil, err
	}
	c.ProfileInfo = map[string]SearchProfile{}
	for _, m := range members {
		var pdu struct {
			Content struct {
				DisplayName any `json:"displayname"`
				AvatarURL   any `json:"avatar_url"`
			} `json:"content"`
		}
		if m.StateKey == nil || json.Unmarshal(m.JSON, &pdu) != nil {
			continue
		}
		var p SearchProfile
		p.DisplayName, _ = pdu.Content.DisplayName.(string)
		p.AvatarURL, _ = pdu.Content.AvatarURL.(string)
		c.ProfileInfo[*m.StateKey] = p
	}
	return c, nil
}

// visibleEvents returns up to limit events of the room that v may see,
// walking from the event at depth (not included) backwards, newest first,
// or forwards, oldest first; it looks at maxScan events at most.
func (s *Server) visibleEvents(ctx context.Context, v *viewer, roomID string, depth int64, backward bool, limit int) ([]storage.Event, error) {
	out := []storage.Event{}
	for scanned := 0; len(out) < limit && scanned < maxScan; {
		n := min(max(limit-len(out), 20), maxScan-scanned)
		var batch []storage.Event
		var err error
		if backward {
			batch, err = s.db.RoomEvents(ctx, roomID, 0, depth, true, n)
		} else {
			batch, err = s.db.RoomEvents(ctx, roomID, depth, 0, false, n)
		}
		if err != nil {
			return nil, err
		}
		if len(batch) == 0 {
			break
		}
		for _, e := range batch {
			if len(out) >= limit {
				break
			}
			scanned++
			depth = e.Depth
			if v.canSee(e) {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// searchState returns the state of each room of the results that the user
// may read: the current state for members, the state when they left for
// former members.
func (s *Server) searchState(ctx context.Context, viewers map[string]*viewer, evs []storage.Event) (map[string][]ClientEvent, error) {
	out := map[string][]ClientEvent{}
	for _, ev := range evs {
		if _, done := out[ev.RoomID]; done {
			continue
		}
		v := viewers[ev.RoomID]
		depth, err := v.stateDepth(v.worldReadable())
		if err != nil {
			continue
		}
		var state []storage.Event
		if depth == 0 {
			state, err = s.db.CurrentState(ctx, ev.RoomID)
		} else {
			state, err = s.db.StateAt(ctx, ev.RoomID, depth)
		}
		if err != nil {
			return nil, err
		}
		if out[ev.RoomID], err = s.clientEvents(ctx, nil, state); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// searchGroups groups the results by room and/or sender; nextBatch gives
// a group's next_batch.
func searchGroups(groupBy []string, hits []searchHit, nextBatch func(group, key string) string) map[string]map[string]*SearchGroup {
	if len(groupBy) == 0 {
		return nil
	}
	out := map[string]map[string]*SearchGroup{}
	for _, group := range groupBy {
		groups := map[string]*SearchGroup{}
		for i, h := range hits {
			key := searchGroupKey(group, h.SearchHit)
			g, ok := groups[key]
			if !ok {
				g = &SearchGroup{Order: i, Results: []string{}}
				groups[key] = g
			}
			g.Results = append(g.Results, h.EventID)
		}
		for key, g := range groups {
			g.NextBatch = nextBatch(group, key)
		}
		out[group] = groups
	}
	return out
}

func searchGroupKey(group string, h storage.SearchHit) string {
	if group == SearchGroupSender {
		return h.Sender
	}
	return h.RoomID
}
