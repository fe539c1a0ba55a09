package roomserver

import (
	"context"
	"encoding/base64"
	"encoding/json"

	"github.com/aula-chat/aula/internal/mxerr"
)

// Limits of GET /hierarchy. The spec asks servers to impose a default and a
// maximum on limit and max_depth; the walk's size is bounded too, because
// every page walks the space again from its root (see Hierarchy).
const (
	// hierarchyMaxLimit is the number of rooms on a page when the client
	// asks for none, and the most it may ask for (as in Synapse).
	hierarchyMaxLimit = 50
	// hierarchyMaxDepth is how deep the walk goes at most, whatever
	// max_depth says: the root is depth 0, its children depth 1.
	hierarchyMaxDepth = 20
	// hierarchyMaxRooms is how many rooms (visible or not) one request
	// visits at most; a space tree larger than that is cut off there.
	hierarchyMaxRooms = 5000
)

// HierarchyRequest is a GET /rooms/{roomId}/hierarchy request.
type HierarchyRequest struct {
	UserID        string
	RoomID        string // the root of the walk
	SuggestedOnly bool
	MaxDepth      *int   // nil: the server's maximum (20)
	Limit         int    // rooms per page; 0 or more than 50: 50
	From          string // next_batch of the previous page
}

// HierarchyRoom is one room of a hierarchy page: its summary and, for a
// space, its m.space.child events (empty for other rooms).
type HierarchyRoom struct {
	RoomSummary
	ChildrenState []StrippedChild `json:"children_state"`
}

// Hierarchy is one page of a space's hierarchy.
type Hierarchy struct {
	Rooms     []HierarchyRoom `json:"rooms"`
	NextBatch string          `json:"next_batch,omitempty"`
}

// hierarchyToken is what next_batch carries: the request's parameters
// (which may not change between pages, says the spec), how many rooms the
// earlier pages held, and the last room they returned. The server keeps no
// session, so a token works any number of times, on any process, for as
// long as the space exists.
type hierarchyToken struct {
	Root      string `json:"r"`
	Suggested bool   `json:"s,omitempty"`
	MaxDepth  *int   `json:"d,omitempty"`
	Offset    int    `json:"o"`
	Last      string `json:"l"`
}

func (t hierarchyToken) encode() string {
	b, _ := json.Marshal(t) // strings and numbers always marshal
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseHierarchyToken reads a from token and checks it belongs to this
// request: 400 M_INVALID_PARAM otherwise.
func parseHierarchyToken(req HierarchyRequest) (hierarchyToken, error) {
	var t hierarchyToken
	raw, err := base64.RawURLEncoding.DecodeString(req.From)
	if err != nil || json.Unmarshal(raw, &t) != nil || t.Offset < 0 || t.Last == "" {
		return t, mxerr.InvalidParam("Unknown pagination token")
	}
	if t.Root != req.RoomID {
		return t, mxerr.InvalidParam("The pagination token belongs to another room")
	}
	sameDepth := (t.MaxDepth == nil) == (req.MaxDepth == nil) && (t.MaxDepth == nil || *t.MaxDepth == *req.MaxDepth)
	if t.Suggested != req.SuggestedOnly || !sameDepth {
		return t, mxerr.InvalidParam("suggested_only and max_depth cannot change on paginated requests")
	}
	return t, nil
}

// walkEntry is a room waiting to be visited, at its distance from the root.
type walkEntry struct {
	roomID string
	depth  int
}

// Hierarchy answers GET /rooms/{roomId}/hierarchy: the rooms of a space
// tree the user may see (see previewer.accessible), depth-first in the
// spec's order of children, each room once (so cycles end), as in Synapse.
// A room the user may not see is left out together with everything below
// it. The root must be visible to the user: otherwise, and for unknown
// rooms, 403 M_FORBIDDEN, as the spec says.
//
// Pagination keeps no state on the server: each page walks the tree again
// from the root and starts after the last room of the previous page (or,
// if that room has left the tree, after as many rooms as the earlier pages
// held). Rooms of a page are loaded a space's children at a time.
func (s *Server) Hierarchy(ctx context.Context, req HierarchyRequest) (Hierarchy, error) {
	if err := s.checkLocalRoomID(req.RoomID); err != nil { // policy.go
		return Hierarchy{}, err
	}
	limit := req.Limit
	if limit <= 0 || limit > hierarchyMaxLimit {
		limit = hierarchyMaxLimit
	}
	maxDepth := hierarchyMaxDepth
	if req.MaxDepth != nil && *req.MaxDepth < maxDepth {
		maxDepth = max(*req.MaxDepth, 0)
	}
	var tok hierarchyToken
	if req.From != "" {
		var err error
		if tok, err = parseHierarchyToken(req); err != nil {
			return Hierarchy{}, err
		}
	}
	pv := newPreviewer(s, req.UserID)
	if err := pv.load(ctx, []string{req.RoomID}); err != nil {
		return Hierarchy{}, err
	}
	if root := pv.rooms[req.RoomID]; root == nil || !pv.accessible(root) {
		return Hierarchy{}, mxerr.Forbidden("You may not view the room %s", req.RoomID)
	}

	// start is the index in visible of the page's first room, -1 while
	// the previous page's last room has not been met.
	start := 0
	if req.From != "" {
		start = -1
	}
	var visible []*roomPreview
	visited := map[string]bool{}
	stack := []walkEntry{{req.RoomID, 0}}
	for len(stack) > 0 && len(visited) < hierarchyMaxRooms {
		if start >= 0 && len(visible) > start+limit {
			break // the page is full and more rooms follow
		}
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visited[e.roomID] {
			continue
		}
		visited[e.roomID] = true
		if err := pv.load(ctx, []string{e.roomID}); err != nil { // loaded with its siblings, normally
			return Hierarchy{}, err
		}
		p := pv.rooms[e.roomID]
		if p == nil || !pv.accessible(p) {
			continue
		}
		visible = append(visible, p)
		if start < 0 && p.id == tok.Last {
			start = len(visible)
		}
		if !p.isSpace() || e.depth >= maxDepth {
			continue
		}
		children := p.childrenFor(req.SuggestedOnly)
		ids := make([]string, 0, len(children))
		for _, c := range children {
			if !visited[c.roomID] {
				ids = append(ids, c.roomID)
			}
		}
		if err := pv.load(ctx, ids); err != nil {
			return Hierarchy{}, err
		}
		// Pushed in reverse so that the first child is visited next.
		for i := len(children) - 1; i >= 0; i-- {
			stack = append(stack, walkEntry{children[i].roomID, e.depth + 1})
		}
	}
	if start < 0 {
		start = tok.Offset
	}
	start = min(start, len(visible))
	end := min(start+limit, len(visible))
	page := visible[start:end]

	sums, err := pv.summaries(ctx, page)
	if err != nil {
		return Hierarchy{}, err
	}
	out := Hierarchy{Rooms: make([]HierarchyRoom, len(page))}
	for i, p := range page {
		state := []StrippedChild{}
		if p.isSpace() {
			for _, c := range p.childrenFor(req.SuggestedOnly) {
				state = append(state, c.stripped)
			}
		}
		out.Rooms[i] = HierarchyRoom{RoomSummary: sums[i], ChildrenState: state}
	}
	if end < len(visible) {
		out.NextBatch = hierarchyToken{
			Root: req.RoomID, Suggested: req.SuggestedOnly, MaxDepth: req.MaxDepth, Offset: end, Last: page[len(page)-1].id,
		}.encode()
	}
	return out, nil
}

// childrenFor returns the room's children in the spec's order, only the
// suggested ones if suggestedOnly.
func (p *roomPreview) childrenFor(suggestedOnly bool) []spaceChild {
	if !suggestedOnly {
		return p.children
	}
	var out []spaceChild
	for _, c := range p.children {
		if c.suggested {
			out = append(out, c)
		}
	}
	return out
}
