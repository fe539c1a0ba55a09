package auth

import (
	"context"
	"errors"
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
		if slices.Contains(f.Stages, StageSSO) {
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

// completeStageExternally marks stage completed in a UIA session of
// userID after it was done outside the API (the SSO fallback page).
func (s *Service) completeStageExternally(id, userID, stage string) error {
	s.uia.mu.Lock()
	defer s.uia.mu.Unlock()
	sess, ok := s.uia.sessions[id]
	if !ok || s.now().After(sess.expires) || sess.userID != userID {
		return errNoUIASession
	}
	if !slices.Contains(sess.completed, stage) {
		sess.completed = append(sess.completed, stage)
	}
	return nil
}
