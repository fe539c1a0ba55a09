package storage

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// The user directory (POST /user_directory/search). Matching is case- and
// accent-insensitive, which neither database does the same way, so the
// search keys are computed in Go and kept in user_directory: "\n"-separated
// tokens (the folded user ID, localpart and each word of the display name),
// matched with LIKE. Before each search, rows whose display name changed
// since their key was computed (or users without a row) are recomputed, so
// the keys need no hook in every code path that changes a profile.

// userDirFoldVersion is part of every row's source: changing fold changes
// it, and every key is recomputed at the next search.
const userDirFoldVersion = "1:"

// DirectoryUser is one result of a user directory search.
type DirectoryUser struct {
	UserID      string
	DisplayName string // empty: none
	AvatarURL   string // empty: none
}

// UserDirectoryQuery is one user directory search.
type UserDirectoryQuery struct {
	Searcher string   // the requesting user
	Term     string   // what the user typed; every word must match
	AllUsers bool     // every local user, not only those sharing a room with Searcher
	Exclude  []string // users never found (e.g. the server notices account)
	Limit    int      // at most this many results
}

// maxUserDirWords bounds the words of a search term that are matched.
const maxUserDirWords = 8

// SearchUserDirectory returns the users matching q.Term, best first (a word
// of the name or ID starting with the term's first word, then by name), and
// whether there were more than q.Limit. Deactivated and support users are
// never found; without AllUsers only users who share a joined room with the
// searcher are, the searcher not included. A term without letters or
// digits finds nobody.
func (db *DB) SearchUserDirectory(ctx context.Context, q UserDirectoryQuery) ([]DirectoryUser, bool, error) {
	words := strings.Fields(foldSearchText(q.Term))
	if len(words) == 0 || q.Limit <= 0 {
		return []DirectoryUser{}, false, nil
	}
	if len(words) > maxUserDirWords {
		words = words[:maxUserDirWords]
	}
	if err := db.refreshUserDirectory(ctx); err != nil {
		return nil, false, err
	}
	args := []any{false, "\n" + escapeLike(words[0]) + "%"}
	var where []string
	for _, w := range words {
		args = append(args, "%"+escapeLike(w)+"%")
		where = append(where, `d.search_key LIKE $`+strconv.Itoa(len(args))+` ESCAPE '\'`)
	}
	if len(q.Exclude) > 0 {
		cond, arg := db.engine.anyOf("u.user_id", len(args)+1, q.Exclude)
		args = append(args, arg)
		where = append(where, "NOT ("+cond+")")
	}
	if !q.AllUsers {
		args = append(args, q.Searcher)
		n := "$" + strconv.Itoa(len(args))
		where = append(where, `u.user_id <> `+n+` AND EXISTS (
			SELECT 1 FROM room_state mine JOIN room_state theirs ON theirs.room_id = mine.room_id
			WHERE mine.type = 'm.room.member' AND mine.to_depth IS NULL AND mine.state_key = `+n+`
			AND mine.membership = 'join'
			AND theirs.type = 'm.room.member' AND theirs.to_depth IS NULL AND theirs.state_key = u.user_id
			AND theirs.membership = 'join')`)
	}
	args = append(args, q.Limit+1)
	query := `SELECT u.user_id, u.displayname, u.avatar_url
		FROM user_directory d JOIN users u ON u.user_id = d.user_id
		WHERE u.deactivated = $1 AND (u.user_type IS NULL OR u.user_type <> 'support')
		AND ` + strings.Join(where, " AND ") + `
		ORDER BY CASE WHEN d.search_key LIKE '%' || $2 ESCAPE '\' THEN 0 ELSE 1 END, d.sort_key, u.user_id
		LIMIT $` + strconv.Itoa(len(args))
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, false, fmt.Errorf("storage: search user directory: %w", err)
	}
	defer rows.Close()
	out := []DirectoryUser{}
	for rows.Next() {
		var u DirectoryUser
		var dn, av sql.NullString
		if err := rows.Scan(&u.UserID, &dn, &av); err != nil {
			return nil, false, fmt.Errorf("storage: search user directory: %w", err)
		}
		u.DisplayName, u.AvatarURL = dn.String, av.String
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("storage: search user directory: %w", err)
	}
	limited := len(out) > q.Limit
	if limited {
		out = out[:q.Limit]
	}
	return out, limited, nil
}

// refreshUserDirectory (re)computes the search keys of users who have none
// or whose display name changed since theirs was computed.
func (db *DB) refreshUserDirectory(ctx context.Context) error {
	rows, err := db.read.QueryContext(ctx, `SELECT u.user_id, u.localpart, u.displayname
		FROM users u LEFT JOIN user_directory d ON d.user_id = u.user_id
		WHERE d.user_id IS NULL OR d.source <> ($1 || COALESCE(u.displayname, ''))`, userDirFoldVersion)
	if err != nil {
		return fmt.Errorf("storage: user directory: %w", err)
	}
	type stale struct{ userID, localpart, displayName string }
	var todo []stale
	for rows.Next() {
		var s stale
		var dn sql.NullString
		if err := rows.Scan(&s.userID, &s.localpart, &dn); err != nil {
			rows.Close()
			return fmt.Errorf("storage: user directory: %w", err)
		}
		s.displayName = dn.String
		todo = append(todo, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("storage: user directory: %w", err)
	}
	if len(todo) == 0 {
		return nil
	}
	return db.inTx(ctx, func(tx *Tx) error {
		for _, s := range todo {
			key, sortKey := userDirKeys(s.userID, s.localpart, s.displayName)
			if _, err := tx.ExecContext(ctx, `INSERT INTO user_directory (user_id, source, search_key, sort_key)
				VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE
				SET source = excluded.source, search_key = excluded.search_key, sort_key = excluded.sort_key`,
				s.userID, userDirFoldVersion+s.displayName, key, sortKey); err != nil {
				return fmt.Errorf("storage: user directory %s: %w", s.userID, err)
			}
		}
		return nil
	})
}

// userDirKeys returns a user's search key ("\n" + tokens, each followed by
// "\n") and sort key (the folded display name, or localpart).
func userDirKeys(userID, localpart, displayName string) (key, sortKey string) {
	tokens := []string{foldSearchText(userID), foldSearchText(localpart)}
	tokens = append(tokens, strings.Fields(foldSearchText(displayName))...)
	sortKey = foldSearchText(displayName)
	if strings.TrimSpace(sortKey) == "" {
		sortKey = foldSearchText(localpart)
	}
	return "\n" + strings.Join(tokens, "\n") + "\n", sortKey
}

// foldSpecial maps letters that do not decompose into a base letter and a
// combining mark.
var foldSpecial = strings.NewReplacer("ß", "ss", "æ", "ae", "œ", "oe", "ø", "o", "đ", "d", "ð", "d",
	"ł", "l", "ı", "i", "þ", "th", "ħ", "h")

// foldSearchText is s in lower case without accents or control characters
// ("Ömer Çelik" and "omer celik" fold alike), with compatibility forms
// (e.g. full-width letters) replaced by their plain equivalents.
func foldSearchText(s string) string {
	s = norm.NFKD.String(strings.ToLower(s))
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue
		case unicode.IsControl(r) || unicode.IsSpace(r):
			b.WriteByte(' ')
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return foldSpecial.Replace(b.String())
}

// escapeLike escapes LIKE's wildcards (and the escape character) in s.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
