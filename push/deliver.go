package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aula-chat/aula/storage"
)

// gatewayNotification is the "notification" object of the push gateway
// API (POST /_matrix/push/v1/notify).
type gatewayNotification struct {
	EventID           string          `json:"event_id"`
	RoomID            string          `json:"room_id"`
	Type              string          `json:"type,omitempty"`
	Sender            string          `json:"sender,omitempty"`
	SenderDisplayName string          `json:"sender_display_name,omitempty"`
	RoomName          string          `json:"room_name,omitempty"`
	UserIsTarget      bool            `json:"user_is_target,omitempty"`
	Content           json.RawMessage `json:"content,omitempty"`
	Prio              string          `json:"prio"`
	Counts            gatewayCounts   `json:"counts"`
	Devices           []gatewayDevice `json:"devices"`
}

type gatewayCounts struct {
	Unread int `json:"unread"`
}

type gatewayDevice struct {
	AppID     string                     `json:"app_id"`
	PushKey   string                     `json:"pushkey"`
	PushKeyTS int64                      `json:"pushkey_ts"`
	Data      map[string]json.RawMessage `json:"data,omitempty"`
	Tweaks    map[string]json.RawMessage `json:"tweaks"`
}

// pushBody builds the gateway request for one pusher. With format
// "event_id_only" (or include_content off) it carries only the event and
// room IDs, counts and the device: no sender, room name or content.
func (w *worker) pushBody(ev storage.Event, room *roomInfo, userID string, p storage.Pusher, res Result, badge int) ([]byte, error) {
	var data map[string]json.RawMessage
	if err := json.Unmarshal(p.Data, &data); err != nil {
		return nil, fmt.Errorf("push: pusher data: %w", err)
	}
	format, _ := jsonString(data["format"])
	delete(data, "url")
	tweaks := res.Tweaks
	if tweaks == nil {
		tweaks = map[string]json.RawMessage{}
	}
	n := gatewayNotification{EventID: ev.EventID, RoomID: ev.RoomID, Prio: "high",
		Counts:  gatewayCounts{Unread: badge},
		Devices: []gatewayDevice{{AppID: p.AppID, PushKey: p.PushKey, PushKeyTS: p.PushKeyTS / 1000, Data: data, Tweaks: tweaks}}}
	if !res.Highlight && ev.Type != "m.room.message" && ev.Type != "m.room.encrypted" && ev.Type != "m.call.invite" && ev.Type != "m.room.member" {
		n.Prio = "low"
	}
	if format != "event_id_only" && w.opts.IncludeContent {
		n.Type, n.Sender, n.SenderDisplayName, n.RoomName = ev.Type, ev.Sender, room.members[ev.Sender], room.name
		n.UserIsTarget = ev.StateKey != nil && *ev.StateKey == userID
		var pdu struct {
			Content json.RawMessage `json:"content"`
		}
		if json.Unmarshal(ev.JSON, &pdu) == nil {
			n.Content = pdu.Content
		}
	}
	return json.Marshal(map[string]any{"notification": n})
}

// deliverLoop sends pending deliveries until ctx ends: at once when new
// ones are queued, otherwise when the next retry is due.
func (w *worker) deliverLoop(ctx context.Context) {
	defer w.wg.Done()
	for {
		wait := 30 * time.Second
		if err := w.deliverDue(ctx); err != nil && ctx.Err() == nil {
			w.opts.Log.Error("push: deliver", "err", err)
		}
		if next, err := w.db.NextPushTS(ctx); err == nil && next > 0 {
			wait = min(wait, time.Until(time.UnixMilli(next)))
		}
		timer := time.NewTimer(max(wait, 10*time.Millisecond))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-w.deliver:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// deliverDue sends every delivery that is due.
func (w *worker) deliverDue(ctx context.Context) error {
	for {
		due, err := w.db.DuePushes(ctx, time.Now().UnixMilli(), 50)
		if err != nil || len(due) == 0 {
			return err
		}
		for _, d := range due {
			if err := w.deliverOne(ctx, d); err != nil {
				return err
			}
		}
		if len(due) < 50 {
			return nil
		}
	}
}

// errRetry marks a failure worth retrying (gateway 5xx or 429, network).
var errRetry = errors.New("push: gateway temporarily unavailable")

// deliverOne makes one delivery attempt and records its outcome.
func (w *worker) deliverOne(ctx context.Context, d storage.PushDelivery) error {
	ps, err := w.db.Pushers(ctx, d.UserID)
	if err != nil {
		return err
	}
	var gateway string
	for _, p := range ps {
		if p.AppID == d.AppID && p.PushKey == d.PushKey {
			var data struct {
				URL string `json:"url"`
			}
			_ = json.Unmarshal(p.Data, &data)
			gateway = data.URL
		}
	}
	if gateway == "" || !w.svc.gatewayAllowed(gateway) {
		return w.db.PushDone(ctx, d.ID) // the pusher is gone or no longer allowed
	}
	rejected, err := w.post(ctx, gateway, d.Body)
	switch {
	case errors.Is(err, errRetry):
		attempts := d.Attempts + 1
		if attempts >= w.opts.MaxAttempts {
			w.opts.Log.Warn("push: giving up on a delivery", "app_id", d.AppID, "attempts", attempts, "err", err)
			return w.db.PushDone(ctx, d.ID)
		}
		delay := w.opts.RetryBase << min(attempts-1, 20)
		delay = min(delay, w.opts.RetryMax)
		return w.db.PushRetry(ctx, d.ID, attempts, time.Now().Add(delay).UnixMilli())
	case err != nil:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.opts.Log.Warn("push: gateway refused a delivery", "app_id", d.AppID, "err", err)
		return w.db.PushDone(ctx, d.ID)
	}
	if rejected[d.PushKey] {
		if err := w.db.DeletePusher(ctx, d.UserID, d.AppID, d.PushKey); err != nil {
			return err
		}
		w.forgetPushers(d.UserID)
		return nil
	}
	return w.db.PushDone(ctx, d.ID)
}

// post sends one notification and returns the pushkeys the gateway
// rejected.
func (w *worker) post(ctx context.Context, gateway string, body []byte) (map[string]bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, gateway, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("push: gateway request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.opts.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %v", errRetry, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return nil, fmt.Errorf("%w: status %d", errRetry, resp.StatusCode)
	case resp.StatusCode >= 300:
		return nil, fmt.Errorf("push: gateway answered %d", resp.StatusCode)
	}
	var out struct {
		Rejected []string `json:"rejected"`
	}
	_ = json.Unmarshal(raw, &out)
	rejected := map[string]bool{}
	for _, k := range out.Rejected {
		rejected[k] = true
	}
	return rejected, nil
}
