package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"text/template"

	"github.com/aula-chat/aula/storage"
)

// maxLocalpartTries bounds the numbered alternatives tried for a taken
// localpart (alice, alice1, alice2, ...).
const maxLocalpartTries = 1000

// mapUser finds the account of subject at p, or creates it on the first
// sign-in from the claims. A link, once made, wins over later changes of
// the claims; a taken localpart is never taken over unless
// allow_existing_users says so.
func (s *SSO) mapUser(ctx context.Context, p *oidcProvider, subject string, claims map[string]any) (string, error) {
	userID, err := s.linkedUser(ctx, p.cfg.ID, subject)
	if err != nil || userID != "" {
		return userID, err
	}
	m := p.cfg.Mapping()
	wanted, err := render(m.LocalpartTemplate, claims)
	if err != nil {
		return "", pageError(http.StatusInternalServerError, "Sign-in failed", "The server could not derive a user name from your identity.", err)
	}
	base := mapLocalpart(wanted)
	if base == "" {
		return "", pageError(http.StatusBadRequest, "Sign-in failed", "The identity provider did not send a user name this server can use.", errors.New("empty localpart from the localpart template"))
	}
	displayName, _ := render(m.DisplayNameTemplate, claims)
	email, _ := render(m.EmailTemplate, claims)
	if verified, ok := claims["email_verified"].(bool); ok && !verified {
		email = "" // an unverified address proves nothing
	}
	email = strings.ToLower(strings.TrimSpace(email))
	if !strings.Contains(email, "@") {
		email = ""
	}

	s.mapMu.Lock()
	defer s.mapMu.Unlock()
	// Another sign-in of the same subject may have won the lock first.
	if userID, err := s.linkedUser(ctx, p.cfg.ID, subject); err != nil || userID != "" {
		return userID, err
	}
	if p.cfg.AllowExistingUsers {
		userID := s.svc.UserID(base)
		u, err := s.db.User(ctx, userID)
		switch {
		case err == nil && !u.Deactivated && u.UserType == "":
			if err := s.db.LinkExternalID(ctx, p.cfg.ID, subject, userID); err != nil {
				return "", err
			}
			if email != "" {
				if err := s.db.AddThreePID(ctx, userID, "email", email); err != nil {
					return "", err
				}
			}
			s.log.Info("sso: linked existing account", "provider", p.cfg.ID, "user_id", userID)
			return userID, nil
		case err != nil && !errors.Is(err, storage.ErrNotFound):
			return "", err
		}
	}
	for i := 0; i < maxLocalpartTries; i++ {
		localpart := base
		if i > 0 {
			localpart = base + strconv.Itoa(i)
		}
		if s.svc.checkRequestedLocalpart(localpart) != nil {
			continue
		}
		userID := s.svc.UserID(localpart)
		name := strings.TrimSpace(displayName)
		if name == "" {
			name = localpart
		}
		err := s.db.CreateSSOUser(ctx, storage.User{UserID: userID, Localpart: localpart, DisplayName: name}, p.cfg.ID, subject, email)
		if errors.Is(err, storage.ErrConflict) {
			continue // the localpart is taken (or reserved by a deactivated account)
		}
		if err != nil {
			return "", err
		}
		s.log.Info("sso: created account on first sign-in", "provider", p.cfg.ID, "user_id", userID)
		return userID, nil
	}
	return "", pageError(http.StatusConflict, "Sign-in failed", "No free user name could be found for your identity. Please contact the administrators.", fmt.Errorf("no free localpart for %q", base))
}

// linkedUser returns the account linked to subject, or "" if none. A
// deactivated account ends the sign-in.
func (s *SSO) linkedUser(ctx context.Context, provider, subject string) (string, error) {
	userID, err := s.db.UserByExternalID(ctx, provider, subject)
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	u, err := s.db.User(ctx, userID)
	if err != nil {
		return "", err
	}
	if u.Deactivated {
		return "", pageError(http.StatusForbidden, "Account deactivated", "The account "+userID+" has been deactivated.", nil)
	}
	return userID, nil
}

// render executes a mapping template over the claims. A missing claim
// renders as empty.
func render(text string, claims map[string]any) (string, error) {
	t, err := template.New("mapping").Option("missingkey=zero").Parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, claims); err != nil {
		return "", err
	}
	return strings.TrimSpace(strings.ReplaceAll(b.String(), "<no value>", "")), nil
}

// mapLocalpart reduces a name to the user-ID grammar the way Synapse
// does: lower case, and every byte outside a-z 0-9 . _ = - / written as
// =xx; a leading _ (reserved) becomes =5f.
func mapLocalpart(name string) string {
	name = strings.ToLower(strings.TrimSpace(name))
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("._=-/", c) >= 0
		if c == '_' && i == 0 {
			ok = false
		}
		if c == '=' {
			ok = false // '=' introduces escapes
		}
		if ok {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "=%02x", c)
		}
	}
	return b.String()
}
