package clientapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
)

// Media admin API on Synapse's paths, so synapse-admin and synadm work.

// adminUserMedia answers GET /_synapse/admin/v1/users/{userId}/media:
// {"media": [...], "total": n, "next_token": from+count while more}.
func (a *API) adminUserMedia(r *http.Request, _ *auth.Device) (any, error) {
	q := r.URL.Query()
	from, err := intParam(q, "from", 0, 0, 1<<30)
	if err != nil {
		return nil, err
	}
	limit, err := intParam(q, "limit", 100, 0, 1000)
	if err != nil {
		return nil, err
	}
	items, total, err := a.media.UserMedia(r.Context(), mux.Vars(r)["userId"], from, limit)
	if err != nil {
		return nil, err
	}
	body := map[string]any{"media": items, "total": total}
	if next := from + len(items); next < total {
		body["next_token"] = next
	}
	return body, nil
}

// adminDeleteUserMedia answers DELETE /_synapse/admin/v1/users/{userId}/media.
func (a *API) adminDeleteUserMedia(r *http.Request, _ *auth.Device) (any, error) {
	deleted, err := a.media.DeleteUserMedia(r.Context(), mux.Vars(r)["userId"])
	if err != nil {
		return nil, err
	}
	return deletedMedia(deleted), nil
}

func deletedMedia(ids []string) map[string]any {
	if ids == nil {
		ids = []string{}
	}
	return map[string]any{"deleted_media": ids, "total": len(ids)}
}

// adminDeleteMedia answers DELETE /_synapse/admin/v1/media/{serverName}/{mediaId}.
func (a *API) adminDeleteMedia(r *http.Request, _ *auth.Device) (any, error) {
	v := mux.Vars(r)
	deleted, err := a.media.DeleteOne(r.Context(), v["serverName"], v["mediaId"])
	if err != nil {
		return nil, err
	}
	return deletedMedia(deleted), nil
}

// adminQuarantineMedia answers POST
// /_synapse/admin/v1/media/quarantine/{serverName}/{mediaId}.
func (a *API) adminQuarantineMedia(r *http.Request, d *auth.Device) (any, error) {
	v := mux.Vars(r)
	return emptyObject, a.media.Quarantine(r.Context(), v["serverName"], v["mediaId"], d.UserID)
}

// adminUnquarantineMedia answers POST
// /_synapse/admin/v1/media/unquarantine/{serverName}/{mediaId}.
func (a *API) adminUnquarantineMedia(r *http.Request, _ *auth.Device) (any, error) {
	v := mux.Vars(r)
	return emptyObject, a.media.Quarantine(r.Context(), v["serverName"], v["mediaId"], "")
}

// adminMediaInfo answers GET /_synapse/admin/v1/media/{serverName}/{mediaId}:
// {"media_info": {...}}.
func (a *API) adminMediaInfo(r *http.Request, _ *auth.Device) (any, error) {
	v := mux.Vars(r)
	info, err := a.media.MediaInfo(r.Context(), v["serverName"], v["mediaId"])
	if err != nil {
		return nil, err
	}
	return map[string]any{"media_info": info}, nil
}

// adminPurgeMedia answers POST /_synapse/admin/v1/media/delete?before_ts=
// (and /_synapse/admin/v1/media/{serverName}/delete): local media not
// downloaded since before_ts (ms) is deleted; avatars are kept.
func (a *API) adminPurgeMedia(r *http.Request, _ *auth.Device) (any, error) {
	if sn, ok := mux.Vars(r)["serverName"]; ok && sn != a.media.ServerName() {
		return nil, mxerr.InvalidParam("Can only delete local media")
	}
	q := r.URL.Query()
	if q.Get("before_ts") == "" {
		return nil, mxerr.MissingParam("Missing integer query parameter before_ts")
	}
	before, err := strconv.ParseInt(q.Get("before_ts"), 10, 64)
	if err != nil || before < 0 {
		return nil, mxerr.InvalidParam("before_ts must be a non-negative integer (milliseconds)")
	}
	if sg := q.Get("size_gt"); sg != "" && sg != "0" {
		return nil, mxerr.InvalidParam("size_gt is not supported")
	}
	if kp := q.Get("keep_profiles"); kp == "false" {
		return nil, mxerr.InvalidParam("keep_profiles=false is not supported: avatars are always kept")
	}
	deleted, err := a.media.PurgeBefore(r.Context(), time.UnixMilli(before))
	if err != nil {
		return nil, err
	}
	return deletedMedia(deleted), nil
}
