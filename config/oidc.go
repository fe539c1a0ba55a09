package config

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"text/template"
)

// OIDCProvider is one OpenID Connect identity provider users can sign in
// with (single sign-on, docs/sso.md).
type OIDCProvider struct {
	// ID names the provider in URLs and in stored account links; it must
	// not change once users have signed in.
	ID string `yaml:"id"`
	// Name is shown by clients on the sign-in button.
	Name string `yaml:"name"`
	// Icon is an optional mxc:// URI of the provider's logo.
	Icon string `yaml:"icon"`
	// Brand is an optional hint for clients' button styling (e.g. "apple").
	Brand string `yaml:"brand"`
	// Issuer is the provider's issuer URL; its discovery document is at
	// Issuer + "/.well-known/openid-configuration".
	Issuer string `yaml:"issuer"`
	// ClientID and ClientSecret are aula's registration at the provider.
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// ClientSecretFile, if set, holds the client secret instead.
	ClientSecretFile string `yaml:"client_secret_file"`
	// Scopes requested; "openid" is always included.
	Scopes []string `yaml:"scopes"`
	// PKCE sends a S256 code challenge (nil: true).
	PKCE *bool `yaml:"pkce"`
	// UserMapping turns the provider's claims into a Matrix account.
	UserMapping UserMapping `yaml:"user_mapping"`
	// AllowExistingUsers links a first sign-in to an existing account of
	// the same localpart instead of choosing another localpart.
	AllowExistingUsers bool `yaml:"allow_existing_users"`
	// AttributeRequirements are claims that must have given values.
	AttributeRequirements []AttributeRequirement `yaml:"attribute_requirements"`
	// UserInfo also fetches the userinfo endpoint and merges its claims.
	UserInfo bool `yaml:"userinfo"`
	// BackchannelLogout accepts OpenID Connect back-channel logout tokens
	// from the provider (nil: true).
	BackchannelLogout *bool `yaml:"backchannel_logout"`
}

// UserMapping holds Go templates over the claims of the ID token (and
// userinfo), e.g. {{ .preferred_username }}.
type UserMapping struct {
	LocalpartTemplate   string `yaml:"localpart_template"`
	DisplayNameTemplate string `yaml:"display_name_template"`
	EmailTemplate       string `yaml:"email_template"`
}

// AttributeRequirement is a claim that must be present; with Value or
// OneOf it must also have one of these values (for a list claim, one
// element must).
type AttributeRequirement struct {
	Attribute string   `yaml:"attribute"`
	Value     string   `yaml:"value"`
	OneOf     []string `yaml:"one_of"`
}

// SSO holds settings shared by every single sign-on provider.
type SSO struct {
	// ClientWhitelist lists clients that receive a login token without a
	// confirmation page: a host name (chat.uni.example) or a URL prefix
	// (https://app.element.io/).
	ClientWhitelist []string `yaml:"client_whitelist"`
	// OAuthAPI serves the Matrix OAuth 2.0 API (docs/oauth.md), through
	// which Element X signs in, whenever a provider is configured; false
	// leaves only m.login.sso (default true).
	OAuthAPI bool `yaml:"oauth_api"`
}

// UsesPKCE reports whether the provider gets a PKCE code challenge.
func (p OIDCProvider) UsesPKCE() bool { return p.PKCE == nil || *p.PKCE }

// AcceptsBackchannelLogout reports whether logout tokens are accepted.
func (p OIDCProvider) AcceptsBackchannelLogout() bool {
	return p.BackchannelLogout == nil || *p.BackchannelLogout
}

// AllScopes returns the scopes to request, with openid first.
func (p OIDCProvider) AllScopes() []string {
	scopes := []string{"openid"}
	list := p.Scopes
	if len(list) == 0 {
		list = []string{"openid", "profile"}
	}
	for _, s := range list {
		if s != "openid" {
			scopes = append(scopes, s)
		}
	}
	return scopes
}

// Secret returns the client secret, read from ClientSecretFile if set.
func (p OIDCProvider) Secret() (string, error) {
	if p.ClientSecretFile == "" {
		return p.ClientSecret, nil
	}
	raw, err := os.ReadFile(p.ClientSecretFile)
	if err != nil {
		return "", fmt.Errorf("oidc_providers %s: client_secret_file: %w", p.ID, err)
	}
	return strings.TrimSpace(string(raw)), nil
}

// Mapping returns the user mapping with defaults filled in.
func (p OIDCProvider) Mapping() UserMapping {
	m := p.UserMapping
	if m.LocalpartTemplate == "" {
		m.LocalpartTemplate = "{{ .preferred_username }}"
	}
	if m.DisplayNameTemplate == "" {
		m.DisplayNameTemplate = "{{ .name }}"
	}
	if m.EmailTemplate == "" {
		m.EmailTemplate = "{{ .email }}"
	}
	return m
}

// idpIDPattern is the grammar of identity provider IDs in the spec.
var idpIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.~-]{1,64}$`)

// validateSSO checks oidc_providers and sso.
func (c *Config) validateSSO(bad func(key, format string, args ...any)) {
	seen := map[string]bool{}
	for i, p := range c.OIDCProviders {
		key := fmt.Sprintf("oidc_providers[%d]", i)
		if !idpIDPattern.MatchString(p.ID) {
			bad(key+".id", "%q must be 1-64 characters of A-Z a-z 0-9 _ . ~ -", p.ID)
		} else if seen[p.ID] {
			bad(key+".id", "%q is used twice", p.ID)
		}
		seen[p.ID] = true
		if u, err := url.Parse(p.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad(key+".issuer", "%q is not an http(s) URL", p.Issuer)
		}
		if p.ClientID == "" {
			bad(key+".client_id", "must be set")
		}
		if p.ClientSecret != "" && p.ClientSecretFile != "" {
			bad(key+".client_secret_file", "set either client_secret or client_secret_file, not both")
		}
		if p.Icon != "" && !strings.HasPrefix(p.Icon, "mxc://") {
			bad(key+".icon", "%q is not an mxc:// URI", p.Icon)
		}
		m := p.Mapping()
		for name, text := range map[string]string{
			"localpart_template": m.LocalpartTemplate, "display_name_template": m.DisplayNameTemplate, "email_template": m.EmailTemplate,
		} {
			if _, err := template.New(name).Parse(text); err != nil {
				bad(key+".user_mapping."+name, "%v", err)
			}
		}
		for j, r := range p.AttributeRequirements {
			if r.Attribute == "" {
				bad(fmt.Sprintf("%s.attribute_requirements[%d].attribute", key, j), "must be set")
			}
		}
	}
	for _, w := range c.SSO.ClientWhitelist {
		if w == "" {
			bad("sso.client_whitelist", "entries must not be empty")
		}
	}
}
