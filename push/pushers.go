package push

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// Pusher is a pusher as GET /pushers returns it.
type Pusher struct {
	AppDisplayName    string          `json:"app_display_name"`
	AppID             string          `json:"app_id"`
	Data              json.RawMessage `json:"data"`
	DeviceDisplayName string          `json:"device_display_name"`
	Kind              string          `json:"kind"`
	Lang              string          `json:"lang"`
	ProfileTag        string          `json:"profile_tag,omitempty"`
	PushKey           string          `json:"pushkey"`
}

// SetPusherRequest is the body of POST /pushers/set.
type SetPusherRequest struct {
	AppDisplayName    string          `json:"app_display_name"`
	AppID             string          `json:"app_id"`
	Append            bool            `json:"append"`
	Data              json.RawMessage `json:"data"`
	DeviceDisplayName string          `json:"device_display_name"`
	Kind              *string         `json:"kind"` // null deletes
	Lang              string          `json:"lang"`
	ProfileTag        string          `json:"profile_tag"`
	PushKey           string          `json:"pushkey"`
}

// Pushers lists the user's pushers.
func (s *Service) Pushers(ctx context.Context, userID string) ([]Pusher, error) {
	ps, err := s.db.Pushers(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]Pusher, 0, len(ps))
	for _, p := range ps {
		out = append(out, Pusher{AppDisplayName: p.AppDisplayName, AppID: p.AppID, Data: p.Data,
			DeviceDisplayName: p.DeviceDisplayName, Kind: p.Kind, Lang: p.Lang, ProfileTag: p.ProfileTag, PushKey: p.PushKey})
	}
	return out, nil
}

// SetPusher creates, replaces or (kind null) deletes a pusher of the
// user's device. Only kind "http" is supported: "email" needs a mail
// server aula does not have (400 M_INVALID_PARAM, as for any other kind).
// data.url must be an absolute http(s) URL ending in
// /_matrix/push/v1/notify and, when an allowlist is configured, on it.
func (s *Service) SetPusher(ctx context.Context, userID, deviceID string, req SetPusherRequest) error {
	if req.AppID == "" {
		return mxerr.MissingParam("Missing 'app_id'")
	}
	if req.PushKey == "" {
		return mxerr.MissingParam("Missing 'pushkey'")
	}
	if len(req.AppID) > 64 {
		return mxerr.InvalidParam("'app_id' is longer than 64 characters")
	}
	if len(req.PushKey) > 512 {
		return mxerr.InvalidParam("'pushkey' is longer than 512 bytes")
	}
	if req.Kind == nil {
		err := s.db.DeletePusher(ctx, userID, req.AppID, req.PushKey)
		s.forgetPushers(userID)
		return err
	}
	switch *req.Kind {
	case "http":
	case "email":
		return mxerr.InvalidParam("Email pushers are not supported by this server")
	default:
		return mxerr.InvalidParam("Unsupported pusher kind %q", *req.Kind)
	}
	for name, v := range map[string]string{"app_display_name": req.AppDisplayName, "device_display_name": req.DeviceDisplayName, "lang": req.Lang} {
		if v == "" {
			return mxerr.MissingParam("Missing '%s'", name)
		}
	}
	if firstByte(req.Data) != '{' {
		return mxerr.MissingParam("Missing 'data' object")
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(req.Data, &data); err != nil {
		return mxerr.BadJSON("'data' must be an object")
	}
	raw, ok := data["url"]
	if !ok {
		return mxerr.MissingParam("'url' is required in 'data' for http pushers")
	}
	u, ok := jsonString(raw)
	if !ok {
		return mxerr.InvalidParam("'data.url' must be a string")
	}
	if err := s.checkGatewayURL(u); err != nil {
		return err
	}
	if f, ok := data["format"]; ok {
		if v, ok := jsonString(f); !ok || v != "event_id_only" {
			return mxerr.InvalidParam("'data.format' must be \"event_id_only\" when given")
		}
	}
	var compacted bytes.Buffer
	_ = json.Compact(&compacted, req.Data)
	p := storage.Pusher{UserID: userID, DeviceID: deviceID, Kind: *req.Kind, AppID: req.AppID, PushKey: req.PushKey,
		AppDisplayName: req.AppDisplayName, DeviceDisplayName: req.DeviceDisplayName, ProfileTag: req.ProfileTag,
		Lang: req.Lang, Data: compacted.Bytes(), PushKeyTS: time.Now().UnixMilli()}
	if err := s.db.SetPusher(ctx, p, req.Append); err != nil {
		return err
	}
	s.forgetPushers(userID)
	if !req.Append {
		// Other users' pushers with this key are gone: forget them all.
		if w := s.worker; w != nil {
			w.pmu.Lock()
			for u, ps := range w.pushers {
				if ps != nil {
					w.pushers[u] = nil
				}
			}
			w.pmu.Unlock()
		}
	}
	return nil
}

// checkGatewayURL validates a pusher's data.url.
func (s *Service) checkGatewayURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return mxerr.InvalidParam("'data.url' must be an absolute http or https URL")
	}
	if u.Path != "/_matrix/push/v1/notify" {
		return mxerr.InvalidParam("'data.url' must end in /_matrix/push/v1/notify")
	}
	if !s.gatewayAllowed(raw) {
		return mxerr.InvalidParam("'data.url' is not an allowed push gateway on this server")
	}
	return nil
}

// gatewayAllowed reports whether the allowlist admits the URL (an empty
// list admits every URL).
func (s *Service) gatewayAllowed(raw string) bool {
	if len(s.allow) == 0 {
		return true
	}
	return slices.ContainsFunc(s.allow, func(a string) bool { return strings.EqualFold(strings.TrimSpace(a), raw) })
}

// forgetPushers drops the cached pushers of a user; the next event loads
// them again (or learns there are none).
func (s *Service) forgetPushers(userID string) {
	if w := s.worker; w != nil {
		w.forgetPushers(userID)
	}
}

func (w *worker) forgetPushers(userID string) {
	w.pmu.Lock()
	w.pushers[userID] = nil // "may have some": checked on the next notification
	w.pmu.Unlock()
}

// hasPushers reports whether the user may have pushers.
func (w *worker) hasPushers(userID string) bool {
	w.pmu.Lock()
	defer w.pmu.Unlock()
	_, ok := w.pushers[userID]
	return ok
}

// pushersOf returns the user's pushers, from the cache once loaded.
func (w *worker) pushersOf(ctx context.Context, userID string) ([]storage.Pusher, error) {
	w.pmu.Lock()
	ps, ok := w.pushers[userID]
	w.pmu.Unlock()
	if ok && ps != nil {
		return ps, nil
	}
	ps, err := w.db.Pushers(ctx, userID)
	if err != nil {
		return nil, err
	}
	w.pmu.Lock()
	if len(ps) == 0 {
		delete(w.pushers, userID)
	} else {
		w.pushers[userID] = ps
	}
	w.pmu.Unlock()
	return ps, nil
}
