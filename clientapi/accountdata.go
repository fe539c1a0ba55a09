package clientapi

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
)

// getAccountData answers GET /user/{userId}[/rooms/{roomId}]/account_data/{type}.
// The global m.push_rules is not stored as account data: it is the user's
// push rules, which clients may read here as well (spec: servers must allow
// reading the server-managed types).
func (a *API) getAccountData(r *http.Request, d *auth.Device) (any, error) {
	v := mux.Vars(r)
	if v["userId"] == d.UserID && v["roomId"] == "" && v["type"] == "m.push_rules" {
		rs, err := a.push.Rules(r.Context(), d.UserID)
		if err != nil {
			return nil, err
		}
		return map[string]any{"global": rs}, nil
	}
	return a.account.AccountData(r.Context(), d.UserID, v["userId"], v["roomId"], v["type"])
}

// setAccountData answers PUT /user/{userId}[/rooms/{roomId}]/account_data/{type}.
// The service checks the body after the requester and the type, so that
// another user's data is 403 and a server-managed type 405 whatever the body.
func (a *API) setAccountData(r *http.Request, d *auth.Device) (any, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	v := mux.Vars(r)
	return nil, a.account.PutAccountData(r.Context(), d.UserID, v["userId"], v["roomId"], v["type"], body)
}

// createFilter answers POST /user/{userId}/filter.
func (a *API) createFilter(r *http.Request, d *auth.Device) (any, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	id, err := a.sync.CreateFilter(r.Context(), d.UserID, mux.Vars(r)["userId"], body)
	if err != nil {
		return nil, err
	}
	return map[string]string{"filter_id": id}, nil
}

// getFilter answers GET /user/{userId}/filter/{filterId}.
func (a *API) getFilter(r *http.Request, d *auth.Device) (any, error) {
	v := mux.Vars(r)
	return a.sync.Filter(r.Context(), d.UserID, v["userId"], v["filterId"])
}
