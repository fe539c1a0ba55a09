package main

import (
	"crypto/rand"
	"fmt"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/devidp"
)

// addDevIdP creates the development OpenID Provider of `aula --dev`,
// served on the homeserver's own listener under devidp.PathPrefix, and
// registers it as the server's identity provider "dev". It is called on
// the --dev path only: no configuration key turns it on.
func addDevIdP(cfg *config.Config) (*devidp.Provider, error) {
	secret := rand.Text() // a fresh client secret each start
	idp, err := devidp.New(cfg.PublicBaseURL+devidp.PathPrefix[1:], secret,
		[]string{cfg.PublicBaseURL + "_aula/client/oidc/callback"})
	if err != nil {
		return nil, fmt.Errorf("development identity provider: %w", err)
	}
	cfg.OIDCProviders = append(cfg.OIDCProviders, config.OIDCProvider{
		ID: "dev", Name: "Development login (alice, bob, carol)", Issuer: idp.Issuer(),
		ClientID: devidp.ClientID, ClientSecret: secret, Scopes: []string{"openid", "profile", "email"},
	})
	return idp, nil
}
