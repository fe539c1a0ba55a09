package auth

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/url"
	"slices"

	"github.com/aula-chat/aula/storage"
)

// withSSOFlow adds the m.login.sso flow to the flows of an operation on an
// existing account that signs in through a configured provider.
func (s *Service) withSSOFlow(ctx context.Context, r UIARequest) ([]Flow, error) {
	s.uia.mu.Lock()
	sso := s.uia.sso
	s.uia.mu.Unlock()
	if !sso.Enabled() || r.UserID == "" {
		return r.Flows, nil
	}
	for _, f := range r.Flows {
		if slices.Contains(f.Stages, StageSSO) || slices.Contains(f.Stages, StageOAuth) {
			return r.Flows, nil
		}
	}
	links, err := s.db.ExternalIDs(ctx, r.UserID)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(links, func(l storage.ExternalID) bool { return sso.HasProvider(l.AuthProvider) }) {
		return r.Flows, nil
	}
	return append(slices.Clone(r.Flows), Flow{Stages: []string{StageSSO}}), nil
}

// StageOAuth is the UIA stage for devices signed in through the OAuth 2.0
// API (spec v1.17, only on POST /keys/device_signing/upload): the user
// approves in the browser, at the URL in the stage's params, and the
// client then submits just the session. Here that page is the same
// re-authentication at the identity provider as m.login.sso's fallback.
const StageOAuth = "m.oauth"

// ConfirmCrossSigningReset is Confirm for replacing cross-signing keys. A
// device signed in through the OAuth 2.0 API cannot do m.login.sso's
// redirect dance in the API, so it gets the m.oauth stage instead, as the
// spec says; other devices get the usual flows.
func (s *Service) ConfirmCrossSigningReset(ctx context.Context, d *Device, op string, auth json.RawMessage) error {
	s.uia.mu.Lock()
	sso := s.uia.sso
	s.uia.mu.Unlock()
	_, err := s.db.OAuthSession(ctx, d.UserID, d.DeviceID)
	if errors.Is(err, storage.ErrNotFound) || err == nil && !sso.Enabled() {
		return s.Confirm(ctx, d, op, auth)
	}
	if err != nil {
		return err
	}
	_, err = s.checkUIA(ctx, UIARequest{Op: op, UserID: d.UserID, Auth: auth, Flows: []Flow{{Stages: []string{StageOAuth}}}})
	return err
}

// oauthParams adds the m.oauth stage's approval URL for session id to the
// params of r, when r offers that stage.
func (s *Service) oauthParams(r UIARequest, id string) map[string]any {
	if !stageOffered(r.Flows, StageOAuth) {
		return r.Params
	}
	params := maps.Clone(r.Params)
	if params == nil {
		params = map[string]any{}
	}
	params[StageOAuth] = map[string]string{
		"url": s.cfg.PublicBaseURL + "_matrix/client/v3/auth/" + StageOAuth + "/fallback/web?session=" + url.QueryEscape(id),
	}
	return params
}

// errNoUIASession is an unknown or expired UIA session.
var errNoUIASession = errors.New("unknown or expired authentication session")

// UIASessionUser returns the user a UIA session was started for, so that
// the m.login.sso fallback page re-authenticates the right account.
func (s *Service) UIASessionUser(id string) (string, bool) {
	s.uia.mu.Lock()
	defer s.uia.mu.Unlock()
	sess, ok := s.uia.sessions[id]
	if !ok || s.now().After(sess.expires) || sess.userID == "" {
		return "", false
	}
	return sess.userID, true
}

// completeStagesExternally marks stages completed in a UIA session of
// userID after they were done outside the API (the fallback page's
// re-authentication at the identity provider).
func (s *Service) completeStagesExternally(id, userID string, stages ...string) error {
	s.uia.mu.Lock()
	defer s.uia.mu.Unlock()
	sess, ok := s.uia.sessions[id]
	if !ok || s.now().After(sess.expires) || sess.userID != userID {
		return errNoUIASession
	}
	for _, stage := range stages {
		if !slices.Contains(sess.completed, stage) {
			sess.completed = append(sess.completed, stage)
		}
	}
	return nil
}
