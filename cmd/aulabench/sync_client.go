package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// maxSyncBody bounds one /sync answer (an initial sync of hundreds of
// rooms is megabytes).
const maxSyncBody = 256 << 20

// dedicated returns a client with a connection of its own: one keep-alive
// connection, as a real Matrix client has, so that thousands of parked
// long-polls never queue behind each other for a connection. Requests time
// out after timeout.
func (c *client) dedicated(timeout time.Duration) *client {
	t := c.http.Transport.(*http.Transport).Clone() // keeps the loopback-only dialer
	t.MaxConnsPerHost = 1
	t.MaxIdleConns = 1
	t.MaxIdleConnsPerHost = 1
	t.IdleConnTimeout = 2 * time.Minute
	hc := *c.http
	hc.Transport = t
	hc.Timeout = timeout
	return &client{base: c.base, http: &hc}
}

// closeIdle closes the client's idle connections.
func (c *client) closeIdle() { c.http.CloseIdleConnections() }

// registerKeep creates user with shared-secret registration and returns
// the registration's tokens; when the user exists it logs in instead.
func (c *client) registerKeep(ctx context.Context, secret, user, password string) (tokens, bool, error) {
	t, created, err := c.sharedSecretRegister(ctx, secret, user, password)
	if err != nil {
		return tokens{}, false, err
	}
	if !created {
		t, err = c.login(ctx, user, password)
		return t, false, err
	}
	if t.AccessToken == "" || t.UserID == "" {
		return t, false, errors.New("registration answer has no access_token or user_id")
	}
	return t, true, nil
}

// uploadFilter stores the sync filter for the user and returns its ID.
func (c *client) uploadFilter(ctx context.Context, token, userID string) (string, error) {
	var out struct {
		FilterID string `json:"filter_id"`
	}
	err := c.call(ctx, "POST", "/_matrix/client/v3/user/"+url.PathEscape(userID)+"/filter", token,
		json.RawMessage(syncFilter), &out)
	if err == nil && out.FilterID == "" {
		err = errors.New("filter answer has no filter_id")
	}
	return out.FilterID, err
}

// createRoomPreset creates a room with the preset and returns its ID.
func (c *client) createRoomPreset(ctx context.Context, token, preset, name string) (string, error) {
	var out struct {
		RoomID string `json:"room_id"`
	}
	err := c.call(ctx, "POST", "/_matrix/client/v3/createRoom", token, map[string]any{"preset": preset, "name": name}, &out)
	if err == nil && out.RoomID == "" {
		err = errors.New("createRoom answer has no room_id")
	}
	return out.RoomID, err
}

// invite invites userID into the room.
func (c *client) invite(ctx context.Context, token, roomID, userID string) error {
	return c.call(ctx, "POST", "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/invite", token,
		map[string]string{"user_id": userID}, nil)
}

// syncPage is what the scenarios read from one /sync answer.
type syncPage struct {
	NextBatch   string
	Bytes       int               // size of the body
	JoinedRooms int               // rooms under rooms.join
	Presence    int               // events under presence
	Limited     int               // of them, with a limited timeline
	Bodies      []timelineMessage // timeline events with a text body
}

// timelineMessage is a timeline event with a body.
type timelineMessage struct {
	RoomID  string
	EventID string
	Body    string
}

// syncJSON is the part of a /sync answer the bench decodes.
type syncJSON struct {
	NextBatch *string `json:"next_batch"`
	Presence  struct {
		Events []json.RawMessage `json:"events"`
	} `json:"presence"`
	Rooms struct {
		Join map[string]struct {
			Timeline struct {
				Events []struct {
					EventID string `json:"event_id"`
					Content struct {
						Body any `json:"body"` // any: a bad body must not fail the decode
					} `json:"content"`
				} `json:"events"`
				Limited bool `json:"limited"`
			} `json:"timeline"`
		} `json:"join"`
	} `json:"rooms"`
}

// syncURL builds a /sync path; since "" is an initial sync, presence ""
// leaves set_presence out. Like matrix-js-sdk (Element Web, Cinny), it asks
// for MSC4222's state_after.
func syncURL(since, filter, presence string, timeout time.Duration) string {
	q := url.Values{"org.matrix.msc4222.use_state_after": {"true"}}
	if presence != "" {
		q.Set("set_presence", presence)
	}
	if since != "" {
		q.Set("since", since)
	}
	if filter != "" {
		q.Set("filter", filter)
	}
	q.Set("timeout", strconv.FormatInt(timeout.Milliseconds(), 10))
	return "/_matrix/client/v3/sync?" + q.Encode()
}

// sync sends one GET /sync and reads the answer.
func (c *client) sync(ctx context.Context, token, since, filter, presence string, timeout time.Duration) (*syncPage, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+syncURL(since, filter, presence, timeout), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxSyncBody))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, answerError(resp.StatusCode, data)
	}
	return parseSync(data)
}

// answerError turns a non-2xx answer into an *apiError.
func answerError(status int, data []byte) error {
	var e struct {
		Errcode string `json:"errcode"`
		Error   string `json:"error"`
	}
	json.Unmarshal(data, &e) // a non-JSON body leaves the fields empty
	if e.Errcode == "" && e.Error == "" {
		e.Error = string(bytes.TrimSpace(data[:min(len(data), 200)]))
	}
	return &apiError{Status: status, Errcode: e.Errcode, Msg: e.Error}
}

// parseSync reads a /sync answer; one without next_batch is an error.
func parseSync(data []byte) (*syncPage, error) {
	var s syncJSON
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("/sync: bad JSON answer: %w", err)
	}
	if s.NextBatch == nil || *s.NextBatch == "" {
		return nil, errors.New("/sync answer has no next_batch")
	}
	p := &syncPage{NextBatch: *s.NextBatch, Bytes: len(data), JoinedRooms: len(s.Rooms.Join), Presence: len(s.Presence.Events)}
	for id, r := range s.Rooms.Join {
		if r.Timeline.Limited {
			p.Limited++
		}
		for _, ev := range r.Timeline.Events {
			if b, ok := ev.Content.Body.(string); ok {
				p.Bodies = append(p.Bodies, timelineMessage{RoomID: id, EventID: ev.EventID, Body: b})
			}
		}
	}
	return p, nil
}
