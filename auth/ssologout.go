package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/aula-chat/aula/storage"
)

// backchannelLogoutEvent is the event a logout token must carry.
const backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// ErrBadLogoutToken is a logout token that is malformed, not from a
// configured provider, or fails verification.
var ErrBadLogoutToken = errors.New("invalid logout token")

// BackchannelLogout handles an OpenID Connect Back-Channel Logout token:
// after verifying it (signature, issuer, audience, events, no nonce, sid
// or sub), it deletes the devices created from the provider session it
// names (sid), or, with only sub, every device the subject's account
// signed in with through that provider. It returns how many devices were
// deleted.
func (s *SSO) BackchannelLogout(ctx context.Context, raw string) (int, error) {
	iss, aud, err := peekIssuerAudience(raw)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadLogoutToken, err)
	}
	var p *oidcProvider
	for _, c := range s.providers {
		if strings.TrimSuffix(c.cfg.Issuer, "/") == strings.TrimSuffix(iss, "/") && slices.Contains(aud, c.cfg.ClientID) && c.cfg.AcceptsBackchannelLogout() {
			p = c
			break
		}
	}
	if p == nil {
		return 0, fmt.Errorf("%w: no provider with back-channel logout for this issuer and audience", ErrBadLogoutToken)
	}
	prov, err := p.discover()
	if err != nil {
		return 0, err
	}
	// Logout tokens need not expire; iat is checked below instead.
	v := prov.Verifier(&oidc.Config{ClientID: p.cfg.ClientID, SkipExpiryCheck: true})
	tok, err := v.Verify(p.ctx(ctx), raw)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadLogoutToken, err)
	}
	var claims struct {
		Sub    string                     `json:"sub"`
		Sid    string                     `json:"sid"`
		Nonce  *string                    `json:"nonce"`
		Events map[string]json.RawMessage `json:"events"`
		Iat    int64                      `json:"iat"`
		Exp    int64                      `json:"exp"`
	}
	if err := tok.Claims(&claims); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadLogoutToken, err)
	}
	now := time.Now()
	switch {
	case claims.Events == nil || claims.Events[backchannelLogoutEvent] == nil:
		return 0, fmt.Errorf("%w: no back-channel logout event", ErrBadLogoutToken)
	case claims.Nonce != nil:
		return 0, fmt.Errorf("%w: a logout token must not have a nonce", ErrBadLogoutToken)
	case claims.Sid == "" && claims.Sub == "":
		return 0, fmt.Errorf("%w: neither sid nor sub", ErrBadLogoutToken)
	case claims.Iat == 0 || time.Unix(claims.Iat, 0).After(now.Add(5*time.Minute)):
		return 0, fmt.Errorf("%w: bad iat", ErrBadLogoutToken)
	case claims.Exp != 0 && time.Unix(claims.Exp, 0).Before(now.Add(-time.Minute)):
		return 0, fmt.Errorf("%w: expired", ErrBadLogoutToken)
	}
	userID := ""
	if claims.Sub != "" {
		userID, err = s.db.UserByExternalID(ctx, p.cfg.ID, claims.Sub)
		if errors.Is(err, storage.ErrNotFound) {
			return 0, nil // nobody signed in with this subject
		}
		if err != nil {
			return 0, err
		}
	}
	if claims.Sid != "" {
		if err := s.db.DeleteLoginTokens(ctx, p.cfg.ID, claims.Sid); err != nil {
			return 0, err
		}
	}
	devices, err := s.db.SessionDevices(ctx, p.cfg.ID, claims.Sid, userID)
	if err != nil {
		return 0, err
	}
	byUser := map[string][]string{}
	for _, d := range devices {
		if userID != "" && d.UserID != userID {
			continue // the session belongs to another subject: not ours to end
		}
		byUser[d.UserID] = append(byUser[d.UserID], d.DeviceID)
	}
	n := 0
	for user, ids := range byUser {
		err := s.db.DeleteDevices(ctx, user, ids)
		s.svc.tokens.forgetUser(user)
		if err != nil {
			return n, err
		}
		n += len(ids)
		s.log.Info("sso: back-channel logout", "provider", p.cfg.ID, "user_id", user, "devices", len(ids))
	}
	return n, nil
}

// peekIssuerAudience reads iss and aud from a JWT without verifying it, to
// find the provider whose keys verify it.
func peekIssuerAudience(raw string) (string, []string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", nil, errors.New("not a signed JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", nil, errors.New("bad payload encoding")
	}
	var c struct {
		Iss string          `json:"iss"`
		Aud json.RawMessage `json:"aud"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", nil, errors.New("bad payload")
	}
	var aud []string
	if err := json.Unmarshal(c.Aud, &aud); err != nil {
		var one string
		if err := json.Unmarshal(c.Aud, &one); err != nil {
			return "", nil, errors.New("bad aud")
		}
		aud = []string{one}
	}
	return c.Iss, aud, nil
}
