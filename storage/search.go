package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/tidwall/gjson"
)

// The search index, event_search, holds one row per event with text to
// search, keyed by rowid, the event's stream_pos (SQLite's FTS5 table must
// call its key rowid, so both engines share one query text): the text
// itself (value) and, on PostgreSQL, its tsvector (a generated column). The
// Go write path keeps it, without triggers: PersistEvents indexes an
// event's searchText as it stores the event (insertEvent), and a
// redaction drops the redacted event's row. Events are never deleted. See
// the 0005_search and 0006_search_text migrations.

// searchText returns the text an event contributes to the search index, as
// Synapse indexes events: content.body of m.room.message, content.name of
// m.room.name, and the plain-text topic of m.room.topic (the first text/plain
// entry of content."m.topic"."m.text", else content.topic). Other events,
// non-string values and empty texts give "", which is not indexed; so do
// encrypted events, which have no plaintext. A text holding NUL is not
// indexed either: PostgreSQL cannot store it in text. The event type
// decides the key, so events.type tells a search which key a hit has.
func searchText(eventType string, eventJSON []byte) string {
	switch eventType {
	case "m.room.message", "m.room.name", "m.room.topic":
	default:
		return ""
	}
	// gjson reads the one field without decoding the event (several times
	// cheaper than encoding/json on every message sent); keys match
	// exactly, as they should.
	var text string
	switch eventType {
	case "m.room.message", "m.room.name":
		key := "content.body"
		if eventType == "m.room.name" {
			key = "content.name"
		}
		if v := gjson.GetBytes(eventJSON, key); v.Type == gjson.String {
			text = v.String()
		}
	case "m.room.topic":
		var ev struct {
			Content map[string]any `json:"content"`
		}
		if json.Unmarshal(eventJSON, &ev) != nil {
			return ""
		}
		text = plainTopic(ev.Content)
	}
	if strings.ContainsRune(text, 0) {
		return ""
	}
	return text
}

// plainTopic is the plain-text topic of m.room.topic content: the body of
// the first entry of "m.topic"."m.text" whose mimetype is text/plain (also
// when absent, null or empty), even an empty one, else "topic".
func plainTopic(content map[string]any) string {
	mTopic, _ := content["m.topic"].(map[string]any)
	texts, _ := mTopic["m.text"].([]any)
	for _, t := range texts {
		entry, _ := t.(map[string]any)
		body, ok := entry["body"].(string)
		if !ok {
			continue
		}
		if mime := entry["mimetype"]; mime != nil && mime != "" && mime != "text/plain" {
			continue
		}
		return body
	}
	topic, _ := content["topic"].(string)
	return topic
}

// SearchQuery asks for the events whose indexed text (see searchText)
// matches a search term.
type SearchQuery struct {
	// Term is what the user typed. Its words (runs of letters, digits and
	// combining marks) must all match; the last one also matches as the
	// prefix of a longer word. Everything else in it is ignored.
	Term string
	// RoomIDs are the rooms to search; none means no results.
	RoomIDs []string
	// Types are the event types to search (m.room.message, m.room.name,
	// m.room.topic); none means no results.
	Types []string
	// Senders, if not nil, keeps only events from these senders;
	// NotSenders drops events from those.
	Senders    []string
	NotSenders []string
	// ByRank orders the hits best match first; otherwise they come newest
	// first (by stream position).
	ByRank bool
	// Before, when above 0, keeps only events with a lower stream position.
	Before int64
	// Offset skips that many hits; Limit caps how many are returned.
	Offset int
	Limit  int
}

// SearchHit is one event matching a search: what ordering, filtering and
// history visibility need, without the event's JSON.
type SearchHit struct {
	StreamPos int64
	EventID   string
	RoomID    string
	Depth     int64
	Type      string
	Sender    string
	Rank      float64 // higher is a better match
}

// maxSearchWords bounds the words of one search term.
const maxSearchWords = 32

// searchWords splits a search term into its words: runs of letters, digits
// and combining marks, which both engines' tokenizers keep together.
// Punctuation, symbols and spaces separate words, so "e-mail" is two words
// that must both match. NUL never gets through (PostgreSQL refuses it).
func searchWords(term string) []string {
	words := strings.FieldsFunc(term, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r) && !unicode.In(r, unicode.Mn, unicode.Mc)
	})
	if len(words) > maxSearchWords {
		words = words[:maxSearchWords]
	}
	return words
}

// SearchEvents returns the events matching q.Term in the rooms and types
// asked for, in q's order, ranked by the engine's relevance function
// (ts_rank on PostgreSQL, bm25 on SQLite). A term without words matches
// nothing.
func (db *DB) SearchEvents(ctx context.Context, q SearchQuery) ([]SearchHit, error) {
	words := searchWords(q.Term)
	if len(words) == 0 || len(q.RoomIDs) == 0 || len(q.Types) == 0 || (q.Senders != nil && len(q.Senders) == 0) || q.Limit <= 0 {
		return nil, nil
	}
	args := []any{db.engine.searchQuery(words)}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	in := func(col string, values []string) string {
		cond, v := db.engine.anyOf(col, len(args)+1, values)
		args = append(args, v)
		return cond
	}
	// CROSS JOIN makes SQLite read event_search first: FTS5 can answer
	// MATCH only from its own index. PostgreSQL plans it as an inner join.
	var b strings.Builder
	b.WriteString(`SELECT e.stream_pos, e.event_id, e.room_id, e.depth, e.type, e.sender, ` + db.engine.searchRank(1) + ` AS hit_rank
		FROM event_search CROSS JOIN events e
		WHERE e.stream_pos = event_search.rowid AND ` + db.engine.searchMatch(1))
	b.WriteString(` AND ` + in("e.room_id", q.RoomIDs))
	b.WriteString(` AND ` + in("e.type", q.Types))
	if q.Senders != nil {
		b.WriteString(` AND ` + in("e.sender", q.Senders))
	}
	if len(q.NotSenders) > 0 {
		b.WriteString(` AND NOT ` + in("e.sender", q.NotSenders))
	}
	if q.Before > 0 {
		b.WriteString(` AND e.stream_pos < ` + arg(q.Before))
	}
	if q.ByRank {
		b.WriteString(` ORDER BY hit_rank DESC, e.stream_pos DESC`)
	} else {
		b.WriteString(` ORDER BY e.stream_pos DESC`)
	}
	b.WriteString(` LIMIT ` + arg(q.Limit) + ` OFFSET ` + arg(max(q.Offset, 0)))

	rows, err := db.read.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("storage: search: %w", err)
	}
	defer rows.Close()
	var out []SearchHit
	for rows.Next() {
		var h SearchHit
		if err := rows.Scan(&h.StreamPos, &h.EventID, &h.RoomID, &h.Depth, &h.Type, &h.Sender, &h.Rank); err != nil {
			return nil, fmt.Errorf("storage: scan search hit: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: search: %w", err)
	}
	return out, nil
}

// SearchHighlights returns the words of the given events' indexed text that
// match term, lower-cased, sorted and without duplicates: what clients
// should highlight. They can differ from the words of the term, through
// stemming ("messages" for "message") and the prefix match of its last word.
func (db *DB) SearchHighlights(ctx context.Context, term string, eventIDs []string) ([]string, error) {
	words := searchWords(term)
	if len(words) == 0 || len(eventIDs) == 0 {
		return []string{}, nil
	}
	cond, ids := db.engine.anyOf("e.event_id", 2, eventIDs)
	rows, err := db.read.QueryContext(ctx, `SELECT `+db.engine.searchHighlight(1)+`
		FROM event_search CROSS JOIN events e
		WHERE e.stream_pos = event_search.rowid AND `+db.engine.searchMatch(1)+` AND `+cond,
		db.engine.searchQuery(words), ids)
	if err != nil {
		return nil, fmt.Errorf("storage: search highlights: %w", err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var text *string
		if err := rows.Scan(&text); err != nil {
			return nil, fmt.Errorf("storage: scan search highlights: %w", err)
		}
		if text == nil {
			continue
		}
		for rest := *text; ; {
			_, after, ok := strings.Cut(rest, string(searchMarkStart))
			if !ok {
				break
			}
			word, tail, _ := strings.Cut(after, string(searchMarkEnd))
			if w := strings.ToLower(strings.TrimSpace(word)); w != "" {
				seen[w] = true
			}
			rest = tail
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: search highlights: %w", err)
	}
	out := make([]string, 0, len(seen))
	for w := range seen {
		out = append(out, w)
	}
	slices.Sort(out)
	return out, nil
}
