package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/url"
	"regexp"
	"unicode/utf8"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// maxDeviceNameLen is auth's limit on device display names; the client's
// name becomes the new device's display name.
const maxDeviceNameLen = 100

// codeVerifierPattern is a PKCE code verifier (RFC 7636 §4.1).
var codeVerifierPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// TokenResponse is the token endpoint's answer (RFC 6749 §5.1).
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in,omitempty"` // seconds; absent when the token does not expire
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

// Token answers a token request (the form of the token endpoint): the
// authorization_code and refresh_token grants. Refusals are *Error.
func (s *Server) Token(ctx context.Context, form url.Values) (*TokenResponse, error) {
	for k, v := range form {
		if len(v) > 1 {
			return nil, badRequest("invalid_request", k+" is given more than once")
		}
	}
	grantType := form.Get("grant_type")
	if grantType == "" {
		return nil, badRequest("invalid_request", "grant_type is required")
	}
	if grantType != grantAuthorizationCode && grantType != grantRefreshToken {
		return nil, badRequest("unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
	}
	if form.Get("client_id") == "" {
		return nil, invalidClient("client_id is required")
	}
	client, err := s.client(ctx, form.Get("client_id"))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, invalidClient("Unknown client")
	}
	if err != nil {
		return nil, err
	}
	if grantType == grantRefreshToken {
		return s.refresh(ctx, client, form.Get("refresh_token"))
	}
	return s.exchangeCode(ctx, client, form)
}

// exchangeCode is the authorization_code grant (RFC 6749 §4.1.3, RFC 7636
// §4.5). The code is used up by the first attempt, successful or not; a
// second use revokes the session the first one created (RFC 6749 §4.1.2).
func (s *Server) exchangeCode(ctx context.Context, client *Client, form url.Values) (*TokenResponse, error) {
	code, redirect, verifier := form.Get("code"), form.Get("redirect_uri"), form.Get("code_verifier")
	switch {
	case code == "":
		return nil, badRequest("invalid_request", "code is required")
	case redirect == "":
		return nil, badRequest("invalid_request", "redirect_uri is required")
	case verifier == "":
		return nil, badRequest("invalid_request", "code_verifier is required")
	}
	hash := hashSecret(code)
	c, err := s.db.ConsumeOAuthCode(ctx, hash, s.now().UnixMilli())
	switch {
	case errors.Is(err, storage.ErrUsed):
		s.revokeReplayed(ctx, hash)
		return nil, badRequest("invalid_grant", "The authorization code was used already")
	case errors.Is(err, storage.ErrNotFound):
		return nil, badRequest("invalid_grant", "Unknown authorization code")
	case errors.Is(err, storage.ErrExpired):
		return nil, badRequest("invalid_grant", "The authorization code has expired")
	case err != nil:
		return nil, err
	}
	if c.ClientID != client.ClientID {
		return nil, badRequest("invalid_grant", "The authorization code was issued to another client")
	}
	if c.RedirectURI != redirect {
		return nil, badRequest("invalid_grant", "redirect_uri differs from the authorization request's")
	}
	if !codeVerifierPattern.MatchString(verifier) {
		return nil, badRequest("invalid_grant", "code_verifier must be 43-128 characters of A-Z a-z 0-9 - . _ ~")
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(c.CodeChallenge)) != 1 {
		return nil, badRequest("invalid_grant", "code_verifier does not match the code challenge")
	}
	u, err := s.db.User(ctx, c.UserID)
	if err != nil {
		return nil, err
	}
	if u.Deactivated {
		return nil, badRequest("invalid_grant", "The account has been deactivated")
	}
	t, err := s.auth.IssueTokens(ctx, c.UserID, c.DeviceID, deviceName(client.Name()), true)
	if err != nil {
		return nil, err
	}
	if c.SessionID != "" { // for back-channel logout (docs/sso.md)
		if err := s.db.LinkDeviceSession(ctx, t.UserID, t.DeviceID, c.AuthProvider, c.SessionID); err != nil {
			return nil, err
		}
	}
	sess := storage.OAuthSession{UserID: t.UserID, DeviceID: t.DeviceID, ClientID: client.ClientID, Scope: c.Scope}
	if err := s.db.CreateOAuthSession(ctx, sess, hash); err != nil {
		return nil, err
	}
	s.log.Info("oauth: signed in", "user_id", t.UserID, "device_id", t.DeviceID, "client_id", client.ClientID)
	return tokenResponse(t, c.Scope), nil
}

// revokeReplayed logs out the device a replayed code created, if any.
func (s *Server) revokeReplayed(ctx context.Context, codeHash []byte) {
	sess, err := s.db.OAuthSessionByCode(ctx, codeHash)
	if errors.Is(err, storage.ErrNotFound) {
		return
	}
	if err == nil {
		err = s.auth.Logout(ctx, &auth.Device{UserID: sess.UserID, DeviceID: sess.DeviceID})
	}
	if err != nil {
		s.log.Error("oauth: revoking the session of a replayed code", "err", err)
		return
	}
	s.log.Warn("oauth: authorization code replayed; its session is revoked", "user_id", sess.UserID, "device_id", sess.DeviceID, "client_id", sess.ClientID)
}

// refresh is the refresh_token grant (RFC 6749 §6): aula's refresh, which
// rotates both tokens, for a session this client obtained here.
func (s *Server) refresh(ctx context.Context, client *Client, token string) (*TokenResponse, error) {
	if token == "" {
		return nil, badRequest("invalid_request", "refresh_token is required")
	}
	if !client.can(grantRefreshToken) {
		return nil, badRequest("unauthorized_client", "The client did not register the refresh_token grant")
	}
	d, err := s.db.RefreshTokenDevice(ctx, hashSecret(token))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, badRequest("invalid_grant", "Unknown refresh token")
	}
	if err != nil {
		return nil, err
	}
	sess, err := s.db.OAuthSession(ctx, d.UserID, d.DeviceID)
	if errors.Is(err, storage.ErrNotFound) || err == nil && sess.ClientID != client.ClientID {
		return nil, badRequest("invalid_grant", "The refresh token was not issued to this client")
	}
	if err != nil {
		return nil, err
	}
	t, err := s.auth.Refresh(ctx, token)
	if e, ok := mxerr.As(err); ok && e.Code == "M_UNKNOWN_TOKEN" {
		return nil, badRequest("invalid_grant", "The refresh token is no longer valid")
	}
	if err != nil {
		return nil, err
	}
	return tokenResponse(t, sess.Scope), nil
}

func tokenResponse(t *auth.Tokens, scope string) *TokenResponse {
	return &TokenResponse{
		AccessToken: t.AccessToken, TokenType: "Bearer", ExpiresIn: int64(t.ExpiresIn.Seconds()),
		RefreshToken: t.RefreshToken, Scope: scope,
	}
}

// deviceName cuts a client name to a device display name.
func deviceName(name string) string {
	if len(name) <= maxDeviceNameLen {
		return name
	}
	cut := maxDeviceNameLen
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return name[:cut]
}

// Revoke answers a revocation request (RFC 7009; the form of the
// revocation endpoint): the access or refresh token's device is logged
// out, with every token it has, as POST /logout does. Any token of this
// server is accepted, whichever client sent it (the spec asks to revoke
// leaked tokens too); an unknown token is no error. It returns the device
// logged out, or nil.
func (s *Server) Revoke(ctx context.Context, form url.Values) (*storage.DeviceRef, error) {
	for k, v := range form {
		if len(v) > 1 {
			return nil, badRequest("invalid_request", k+" is given more than once")
		}
	}
	token := form.Get("token")
	if token == "" {
		return nil, badRequest("invalid_request", "token is required")
	}
	hash := hashSecret(token)
	lookups := []func() (storage.DeviceRef, error){
		func() (storage.DeviceRef, error) {
			o, err := s.db.TokenOwner(ctx, hash)
			return storage.DeviceRef{UserID: o.UserID, DeviceID: o.DeviceID}, err
		},
		func() (storage.DeviceRef, error) { return s.db.RefreshTokenDevice(ctx, hash) },
	}
	if form.Get("token_type_hint") == "refresh_token" {
		lookups[0], lookups[1] = lookups[1], lookups[0]
	}
	for _, lookup := range lookups {
		d, err := lookup()
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := s.auth.Logout(ctx, &auth.Device{UserID: d.UserID, DeviceID: d.DeviceID}); err != nil {
			return nil, err
		}
		s.log.Info("oauth: token revoked", "user_id", d.UserID, "device_id", d.DeviceID)
		return &d, nil
	}
	return nil, nil
}
