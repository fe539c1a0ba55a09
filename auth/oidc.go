package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/aula-chat/aula/config"
)

// discoveryRetry is how long a failed discovery is remembered before the
// provider is asked again.
const discoveryRetry = 5 * time.Second

// oidcProvider is one configured OpenID Connect provider. Its discovery
// document is fetched on first use and retried after failures, so the
// server starts even while the provider is down.
type oidcProvider struct {
	cfg         config.OIDCProvider
	redirectURL string
	client      *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
	failedAt time.Time
	lastErr  error
}

// errProviderUnavailable wraps discovery failures.
var errProviderUnavailable = errors.New("identity provider unavailable")

// discover returns the provider's metadata, fetching it if needed.
func (p *oidcProvider) discover() (*oidc.Provider, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.provider != nil {
		return p.provider, nil
	}
	if !p.failedAt.IsZero() && time.Since(p.failedAt) < discoveryRetry {
		return nil, p.lastErr
	}
	// The context lives as long as the provider: go-oidc fetches the key
	// set with it later. The HTTP client's timeout bounds each request.
	prov, err := oidc.NewProvider(p.ctx(context.Background()), strings.TrimSuffix(p.cfg.Issuer, "/"))
	if err != nil {
		p.failedAt, p.lastErr = time.Now(), fmt.Errorf("%w: %s: %v", errProviderUnavailable, p.cfg.ID, err)
		return nil, p.lastErr
	}
	p.provider, p.failedAt, p.lastErr = prov, time.Time{}, nil
	return prov, nil
}

// ctx carries the provider's HTTP client for go-oidc and oauth2.
func (p *oidcProvider) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, p.client)
}

// oauth2Config is the client configuration for the code flow.
func (p *oidcProvider) oauth2Config(prov *oidc.Provider) (*oauth2.Config, error) {
	secret, err := p.cfg.Secret()
	if err != nil {
		return nil, err
	}
	return &oauth2.Config{
		ClientID:     p.cfg.ClientID,
		ClientSecret: secret,
		Endpoint:     prov.Endpoint(),
		RedirectURL:  p.redirectURL,
		Scopes:       p.cfg.AllScopes(),
	}, nil
}

// verifier checks ID tokens: signature (with the provider's published
// keys), issuer, audience (our client ID) and expiry.
func (p *oidcProvider) verifier(prov *oidc.Provider) *oidc.IDTokenVerifier {
	return prov.Verifier(&oidc.Config{ClientID: p.cfg.ClientID})
}

// exchange trades the authorization code for tokens and returns the
// verified ID token's claims (merged with userinfo if configured) and the
// raw ID token.
func (p *oidcProvider) exchange(ctx context.Context, code, verifier, nonce string) (claims map[string]any, sid string, err error) {
	prov, err := p.discover()
	if err != nil {
		return nil, "", err
	}
	oc, err := p.oauth2Config(prov)
	if err != nil {
		return nil, "", err
	}
	var opts []oauth2.AuthCodeOption
	if verifier != "" {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tok, err := oc.Exchange(p.ctx(ctx), code, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("code exchange: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, "", errors.New("the token response has no id_token")
	}
	claims, err = verifyIDToken(p.ctx(ctx), p.verifier(prov), raw, nonce)
	if err != nil {
		return nil, "", err
	}
	if p.cfg.UserInfo {
		info, err := prov.UserInfo(p.ctx(ctx), oauth2.StaticTokenSource(tok))
		if err != nil {
			return nil, "", fmt.Errorf("userinfo: %w", err)
		}
		if info.Subject != claims["sub"] {
			return nil, "", errors.New("userinfo names another subject than the ID token")
		}
		var extra map[string]any
		if err := info.Claims(&extra); err != nil {
			return nil, "", fmt.Errorf("userinfo: %w", err)
		}
		for k, v := range extra {
			if k != "sub" {
				claims[k] = v
			}
		}
	}
	sid, _ = claims["sid"].(string)
	return claims, sid, nil
}

// verifyIDToken verifies an ID token (signature, issuer, audience, expiry
// by v; the nonce here) and returns its claims.
func verifyIDToken(ctx context.Context, v *oidc.IDTokenVerifier, raw, nonce string) (map[string]any, error) {
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("id token: %w", err)
	}
	if nonce == "" || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, errors.New("id token: nonce does not match the sign-in request")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("id token claims: %w", err)
	}
	if sub, _ := claims["sub"].(string); sub == "" {
		return nil, errors.New("id token has no subject")
	}
	return claims, nil
}
