package auth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/aula-chat/aula/internal/mxerr"
)

// Stage names of user-interactive authentication.
const (
	StagePassword          = "m.login.password"
	StageDummy             = "m.login.dummy"
	StageRegistrationToken = "m.login.registration_token"
	StageTerms             = "m.login.terms"
)

// uiaSessionLifetime bounds how long a client may take to finish a flow.
const uiaSessionLifetime = 15 * time.Minute

// maxUIASessions bounds memory if a client opens sessions without end.
const maxUIASessions = 10000

// Flow is one sequence of stages that completes authentication.
type Flow struct {
	Stages []string `json:"stages"`
}

// AuthDict is the "auth" object of a request body.
type AuthDict struct {
	Type    string `json:"type"`
	Session string `json:"session"`
	// m.login.password
	Identifier *Identifier `json:"identifier,omitempty"`
	User       string      `json:"user,omitempty"` // deprecated form of identifier
	Password   string      `json:"password,omitempty"`
	// m.login.registration_token
	Token string `json:"token,omitempty"`
}

// Identifier is the spec's user identifier object.
type Identifier struct {
	Type string `json:"type"`
	User string `json:"user,omitempty"`
}

// uiaSession remembers the stages completed for one operation.
type uiaSession struct {
	op        string // what the session authorises: method and path
	userID    string // for operations on an existing account
	completed []string
	expires   time.Time
	// values a stage recorded for the operation, e.g. the registration token
	token string
}

// uiaSessions holds sessions in memory: they live for minutes, and a
// restart only makes a client start its flow again.
type uiaSessions struct {
	mu       sync.Mutex
	sessions map[string]*uiaSession
	sso      *SSO // single sign-on, for the m.login.sso stage (nil: none)
}

// setSSO makes the m.login.sso stage available (sso_uia.go).
func (u *uiaSessions) setSSO(s *SSO) {
	u.mu.Lock()
	u.sso = s
	u.mu.Unlock()
}

func newUIASessions() *uiaSessions {
	return &uiaSessions{sessions: make(map[string]*uiaSession)}
}

// UIARequest describes one attempt at a protected operation.
type UIARequest struct {
	Op     string          // identifies the operation, e.g. "POST /delete_devices"
	UserID string          // the authenticated user, or "" for registration
	Auth   json.RawMessage // the request's "auth" object, may be empty
	Flows  []Flow          // the flows that complete this operation
	Params map[string]any  // per-stage parameters
	// ClientIP is the client's address, which limits guessing of
	// registration tokens.
	ClientIP string
}

// UIAResult is what a completed flow established.
type UIAResult struct {
	Session string
	Token   string // the registration token used, if any
}

// checkUIA runs one step of user-interactive authentication. It returns the
// result when a flow is complete; otherwise a 401 error carrying the flows,
// the session and the completed stages (with an errcode if this step failed).
// A few failures are not a step the client can retry within the flow and
// come back as plain errors: an unknown session, a session started for
// another operation, a rate limit, and a stage completed as another user.
func (s *Service) checkUIA(ctx context.Context, r UIARequest) (*UIAResult, error) {
	var dict AuthDict
	if len(r.Auth) > 0 && string(r.Auth) != "null" {
		if err := json.Unmarshal(r.Auth, &dict); err != nil {
			return nil, mxerr.BadJSON("auth must be an object")
		}
	}
	flows, err := s.withSSOFlow(ctx, r) // sso_uia.go
	if err != nil {
		return nil, err
	}
	r.Flows = flows
	sess, id, err := s.uia.session(dict.Session, r, s.now())
	if err != nil {
		return nil, err
	}
	r.Params = s.oauthParams(r, id) // sso_uia.go
	// m.login.sso and m.oauth are completed through their fallback page;
	// submitting them only asks whether that has happened.
	if dict.Type != "" && dict.Type != StageSSO && dict.Type != StageOAuth {
		stageErr, fatal := s.completeStage(ctx, r, sess, &dict)
		if fatal != nil {
			return nil, fatal
		}
		if stageErr != nil {
			return nil, s.uia.challenge(id, r, stageErr)
		}
	}
	s.uia.mu.Lock()
	done := flowComplete(r.Flows, sess.completed)
	if done {
		delete(s.uia.sessions, id)
	}
	token := sess.token
	s.uia.mu.Unlock()
	if done {
		return &UIAResult{Session: id, Token: token}, nil
	}
	return nil, s.uia.challenge(id, r, nil)
}

// session finds the client's session or starts one.
func (u *uiaSessions) session(id string, r UIARequest, now time.Time) (*uiaSession, string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if id != "" {
		sess, ok := u.sessions[id]
		if !ok || now.After(sess.expires) {
			delete(u.sessions, id)
			return nil, "", mxerr.New(http.StatusBadRequest, "M_UNKNOWN", "Unknown or expired authentication session")
		}
		if sess.op != r.Op || sess.userID != r.UserID {
			return nil, "", mxerr.New(http.StatusForbidden, "M_FORBIDDEN", "The authentication session belongs to a different request")
		}
		return sess, id, nil
	}
	if len(u.sessions) >= maxUIASessions {
		for k, s := range u.sessions {
			if now.After(s.expires) {
				delete(u.sessions, k)
			}
		}
		if len(u.sessions) >= maxUIASessions {
			return nil, "", mxerr.LimitExceeded(60_000)
		}
	}
	id = rand.Text()
	sess := &uiaSession{op: r.Op, userID: r.UserID, expires: now.Add(uiaSessionLifetime)}
	u.sessions[id] = sess
	return sess, id, nil
}

// challenge builds the 401 response that tells the client what is left.
func (u *uiaSessions) challenge(id string, r UIARequest, stageErr *mxerr.Error) error {
	u.mu.Lock()
	completed := []string{}
	if sess, ok := u.sessions[id]; ok {
		completed = append(completed, sess.completed...)
	}
	u.mu.Unlock()
	params := r.Params
	if params == nil {
		params = map[string]any{}
	}
	e := &mxerr.Error{Status: http.StatusUnauthorized, Extra: map[string]any{
		"flows":     r.Flows,
		"params":    params,
		"session":   id,
		"completed": completed,
	}}
	if stageErr != nil {
		e.Code, e.Msg = stageErr.Code, stageErr.Msg
	}
	return e
}

// completeStage checks one submitted stage and records it as completed. A
// stageErr is a failed attempt the client may retry (it goes into the 401);
// a fatal error ends the request as it is.
func (s *Service) completeStage(ctx context.Context, r UIARequest, sess *uiaSession, dict *AuthDict) (stageErr *mxerr.Error, fatal error) {
	if !stageOffered(r.Flows, dict.Type) {
		return mxerr.New(http.StatusBadRequest, "M_UNRECOGNIZED", "Authentication stage %s is not offered for this request", dict.Type), nil
	}
	switch dict.Type {
	case StageDummy, StageTerms:
		// m.login.terms: the client has shown the policies and the user
		// accepted them; Register records the agreement.
	case StagePassword:
		if stageErr, fatal := s.checkPasswordStage(ctx, r.UserID, dict); stageErr != nil || fatal != nil {
			return stageErr, fatal
		}
	case StageRegistrationToken:
		if retry := s.badRegTokens.Wait(r.ClientIP, s.now()); retry > 0 {
			return nil, limitExceeded(retry)
		}
		if !s.validRegistrationToken(dict.Token) {
			s.badRegTokens.Take(r.ClientIP, s.now())
			return mxerr.New(http.StatusUnauthorized, "M_UNAUTHORIZED", "Invalid registration token"), nil
		}
		s.uia.mu.Lock()
		sess.token = dict.Token
		s.uia.mu.Unlock()
	default:
		return mxerr.New(http.StatusBadRequest, "M_UNRECOGNIZED", "Unknown authentication stage %s", dict.Type), nil
	}
	s.uia.mu.Lock()
	if !slices.Contains(sess.completed, dict.Type) {
		sess.completed = append(sess.completed, dict.Type)
	}
	s.uia.mu.Unlock()
	return nil, nil
}

// checkPasswordStage verifies m.login.password for the authenticated user:
// the identifier must name that user, and the password must match. Naming
// another account is refused outright with 403 (as Synapse does), without
// checking that account's password: a stolen access token plus the thief's
// own password must not pass, and the endpoint must not become a way to test
// other people's passwords.
func (s *Service) checkPasswordStage(ctx context.Context, userID string, dict *AuthDict) (stageErr *mxerr.Error, fatal error) {
	if userID == "" {
		return mxerr.Forbidden("m.login.password needs an existing account"), nil
	}
	name := dict.User
	if dict.Identifier != nil {
		switch dict.Identifier.Type {
		case "m.id.user":
			name = dict.Identifier.User
		case "m.id.thirdparty", "m.id.phone":
			// No account has a third-party identifier here, and the spec
			// wants 403 for an unknown one.
			return mxerr.Forbidden("Unknown third-party identifier"), nil
		default:
			return mxerr.New(http.StatusBadRequest, "M_UNKNOWN", "Unsupported identifier type %s", dict.Identifier.Type), nil
		}
	}
	if name != "" && s.qualify(name) != userID {
		return nil, mxerr.Forbidden("The authentication data does not match the authenticated user")
	}
	err := s.verifyPassword(ctx, userID, dict.Password)
	if err == nil {
		return nil, nil
	}
	e, ok := mxerr.As(err)
	if !ok || e.Status == http.StatusTooManyRequests {
		return nil, err
	}
	return e, nil
}

func stageOffered(flows []Flow, stage string) bool {
	for _, f := range flows {
		if slices.Contains(f.Stages, stage) {
			return true
		}
	}
	return false
}

func flowComplete(flows []Flow, completed []string) bool {
	for _, f := range flows {
		done := true
		for _, st := range f.Stages {
			if !slices.Contains(completed, st) {
				done = false
				break
			}
		}
		if done {
			return true
		}
	}
	return false
}
