package clientapi

import (
	"context"
	"net/http"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// The user directory: POST /user_directory/search, what clients' "start a
// chat" and "invite" dialogs call as the user types. By default it finds
// the users who share a room with the searcher; with
// user_directory.search_all_users every local user. Deactivated users,
// support accounts and the server notices account are never found.

// UserDirectory is the search the user directory needs (a *storage.DB).
type UserDirectory interface {
	SearchUserDirectory(ctx context.Context, q storage.UserDirectoryQuery) ([]storage.DirectoryUser, bool, error)
}

// Limits of a search: the spec's default limit and the most we return.
const (
	userDirDefaultLimit = 10
	userDirMaxLimit     = 50
	userDirMaxTermBytes = 256
)

// userDirResult is one entry of the answer's results.
type userDirResult struct {
	UserID      string `json:"user_id"`
	DisplayName string `json:"display_name,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

// searchUserDirectory answers POST /user_directory/search.
func (a *API) searchUserDirectory(r *http.Request, d *auth.Device) (any, error) {
	var body struct {
		SearchTerm *string `json:"search_term"`
		Limit      *int    `json:"limit"`
	}
	if err := decodeJSON(r, &body, false); err != nil {
		return nil, err
	}
	if body.SearchTerm == nil {
		return nil, mxerr.MissingParam("search_term is required")
	}
	if len(*body.SearchTerm) > userDirMaxTermBytes {
		return nil, mxerr.InvalidParam("search_term is longer than %d bytes", userDirMaxTermBytes)
	}
	limit := userDirDefaultLimit
	if body.Limit != nil {
		if *body.Limit < 1 {
			return nil, mxerr.InvalidParam("limit must be a positive integer")
		}
		limit = min(*body.Limit, userDirMaxLimit)
	}
	var exclude []string
	if lp := a.cfg.ServerNotices.Localpart; lp != "" {
		exclude = append(exclude, "@"+lp+":"+a.cfg.ServerName)
	}
	found, limited, err := a.userDir.SearchUserDirectory(r.Context(), storage.UserDirectoryQuery{
		Searcher: d.UserID,
		Term:     *body.SearchTerm,
		AllUsers: a.cfg.UserDirectory.SearchAllUsers,
		Exclude:  exclude,
		Limit:    limit,
	})
	if err != nil {
		return nil, err
	}
	results := make([]userDirResult, len(found))
	for i, u := range found {
		results[i] = userDirResult{UserID: u.UserID, DisplayName: u.DisplayName, AvatarURL: u.AvatarURL}
	}
	return map[string]any{"results": results, "limited": limited}, nil
}
