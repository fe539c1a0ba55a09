package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
)

// getAccountData answers GET /user/{userId}[/rooms/{roomId}]/account_data/{type}.
func (a *API) getAccountData(r *http.Request, d *auth.Device) (any, error) {
	v := mux.Vars(r)
	return a.account.AccountData(r.Context(), d.UserID, v["userId"], v["roomId"], v["type"])
}

// setAccountData answers PUT /user/{userId}[/rooms/{roomId}]/account_data/{type}.
func (a *API) setAccountData(r *http.Request, d *auth.Device) (any, error) {
	var content json.RawMessage
	if err := decodeJSON(r, &content, false); err != nil {
		return nil, err
	}
	v := mux.Vars(r)
	return nil, a.account.PutAccountData(r.Context(), d.UserID, v["userId"], v["roomId"], v["type"], content)
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
