package clientapi

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
)

// gated adapts an authenticated endpoint that creates or changes something
// other users see (rooms, events, joins, invites, profile, media). Until the
// user has agreed to the current terms of use it answers 403
// M_CONSENT_NOT_GIVEN with the personal consent link; joining one's own
// server-notices room stays allowed, so the notice can be read.
func (a *API) gated(h authedFunc) http.Handler {
	return a.authed(func(r *http.Request, d *auth.Device) (any, error) {
		if a.consent != nil {
			if err := a.consent.Gate(r.Context(), d.UserID); err != nil {
				exempt, xerr := a.joinsNoticeRoom(r, d)
				if xerr != nil {
					return nil, xerr
				}
				if !exempt {
					return nil, err
				}
			}
		}
		return h(r, d)
	})
}

// joinsNoticeRoom reports whether r joins the user's own notices room.
func (a *API) joinsNoticeRoom(r *http.Request, d *auth.Device) (bool, error) {
	if !strings.HasSuffix(r.URL.Path, "/join") && !strings.Contains(r.URL.Path, "/join/") {
		return false, nil
	}
	vars := mux.Vars(r)
	room := vars["roomId"]
	if room == "" {
		room = vars["roomIdOrAlias"]
	}
	if room == "" {
		return false, nil
	}
	return a.consent.IsNoticeRoom(r.Context(), d.UserID, room)
}

// keepNoticeInvite refuses rejecting the invite to one's server-notices
// room (403 M_CANNOT_LEAVE_SERVER_NOTICE_ROOM) before h (leave) runs.
func (a *API) keepNoticeInvite(h authedFunc) authedFunc {
	return func(r *http.Request, d *auth.Device) (any, error) {
		if a.consent != nil {
			if err := a.consent.CheckLeave(r.Context(), d.UserID, mux.Vars(r)["roomId"]); err != nil {
				return nil, err
			}
		}
		return h(r, d)
	}
}
