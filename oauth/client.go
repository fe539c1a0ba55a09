package oauth

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aula-chat/aula/storage"
)

// Grant types, response types and application types the server knows.
const (
	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"
	appWeb                 = "web"
	appNative              = "native"
)

// Bounds on registered metadata, so that one registration stays small
// (it also travels in the authorization cookie).
const (
	maxURILen       = 512
	maxNameLen      = 200
	maxRedirectURIs = 10
)

// ClientMetadata is a client's registered metadata (RFC 7591 §2, the
// fields the Matrix spec uses), as stored and as returned by registration.
type ClientMetadata struct {
	RedirectURIs            []string `json:"redirect_uris"`
	ClientName              string   `json:"client_name,omitempty"`
	ClientURI               string   `json:"client_uri"`
	LogoURI                 string   `json:"logo_uri,omitempty"`
	TOSURI                  string   `json:"tos_uri,omitempty"`
	PolicyURI               string   `json:"policy_uri,omitempty"`
	ApplicationType         string   `json:"application_type"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
}

// Client is a registered client.
type Client struct {
	ClientID string `json:"client_id"`
	ClientMetadata
}

// Name is what the consent page calls the client: its client_name, or
// its client_uri's host.
func (c *Client) Name() string {
	if c.ClientName != "" {
		return c.ClientName
	}
	return c.Host()
}

// Host is the host of the client's client_uri.
func (c *Client) Host() string {
	u, err := url.Parse(c.ClientURI)
	if err != nil {
		return c.ClientURI
	}
	return u.Host
}

// can reports whether the client registered a grant type.
func (c *Client) can(grant string) bool { return slices.Contains(c.GrantTypes, grant) }

// Register validates a registration request (a JSON body) and stores the
// client; addr is the requester's address for the rate limit. Refusals
// are *Error with invalid_redirect_uri or invalid_client_metadata (400),
// or 429 when addr registered too many new clients. Registrations with
// the same metadata share one client ID.
func (s *Server) Register(ctx context.Context, body []byte, addr string) (*Client, error) {
	md, err := parseClientMetadata(body)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(md)
	if err != nil {
		return nil, err
	}
	hash := hashSecret(string(raw))
	now := s.now()
	if _, err := s.db.OAuthClientByHash(ctx, hash); errors.Is(err, storage.ErrNotFound) {
		if wait := s.registrations.Wait(addr, now); wait > 0 {
			return nil, &Error{Status: http.StatusTooManyRequests, Code: "invalid_request",
				Description: "Too many client registrations from this address; try again later", RetryAfter: wait}
		}
		s.registrations.Take(addr, now)
	} else if err != nil {
		return nil, err
	}
	id, _, err := s.db.RegisterOAuthClient(ctx, rand.Text(), string(raw), hash, now.UnixMilli())
	if err != nil {
		return nil, err
	}
	return &Client{ClientID: id, ClientMetadata: *md}, nil
}

// client loads a registered client, or returns storage.ErrNotFound.
func (s *Server) client(ctx context.Context, clientID string) (*Client, error) {
	if clientID == "" || len(clientID) > 64 {
		return nil, storage.ErrNotFound
	}
	c, err := s.db.OAuthClient(ctx, clientID)
	if err != nil {
		return nil, err
	}
	out := &Client{ClientID: c.ClientID}
	if err := json.Unmarshal([]byte(c.Metadata), &out.ClientMetadata); err != nil {
		return nil, fmt.Errorf("oauth: stored metadata of %s: %w", clientID, err)
	}
	return out, nil
}

// registrationRequest is the part of RFC 7591 client metadata aula reads;
// other fields, localized variants ("client_name#fr") included, are
// ignored.
type registrationRequest struct {
	RedirectURIs            []string `json:"redirect_uris"`
	ClientName              string   `json:"client_name"`
	ClientURI               string   `json:"client_uri"`
	LogoURI                 string   `json:"logo_uri"`
	TOSURI                  string   `json:"tos_uri"`
	PolicyURI               string   `json:"policy_uri"`
	ApplicationType         string   `json:"application_type"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
}

func invalidMetadata(format string, args ...any) *Error {
	return badRequest("invalid_client_metadata", fmt.Sprintf(format, args...))
}

func invalidRedirect(format string, args ...any) *Error {
	return badRequest("invalid_redirect_uri", fmt.Sprintf(format, args...))
}

// parseClientMetadata decodes and validates a registration request and
// returns the metadata to register, with defaults filled in and values
// the server does not understand dropped, as RFC 7591 §2 asks.
func parseClientMetadata(body []byte) (*ClientMetadata, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' || !json.Valid(body) {
		return nil, invalidMetadata("The body must be a JSON object")
	}
	var req registrationRequest
	if err := json.Unmarshal(body, &req); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return nil, invalidMetadata("%s has the wrong type", typeErr.Field)
		}
		return nil, invalidMetadata("The body is not valid client metadata")
	}
	md := &ClientMetadata{
		ClientName: req.ClientName, ClientURI: req.ClientURI, LogoURI: req.LogoURI, TOSURI: req.TOSURI, PolicyURI: req.PolicyURI,
		ApplicationType: req.ApplicationType, TokenEndpointAuthMethod: req.TokenEndpointAuthMethod,
	}

	if md.ClientURI == "" {
		return nil, invalidMetadata("client_uri is required")
	}
	client, err := httpsURL(md.ClientURI)
	if err != nil {
		return nil, invalidMetadata("client_uri %v", err)
	}
	clientHost := strings.ToLower(client.Hostname())
	if len(md.ClientName) > maxNameLen || !validName(md.ClientName) {
		return nil, invalidMetadata("client_name must be at most %d bytes of printable text", maxNameLen)
	}
	for _, f := range []struct{ key, value string }{{"logo_uri", md.LogoURI}, {"tos_uri", md.TOSURI}, {"policy_uri", md.PolicyURI}} {
		if f.value == "" {
			continue
		}
		u, err := httpsURL(f.value)
		if err != nil {
			return nil, invalidMetadata("%s %v", f.key, err)
		}
		if !sameSite(u.Hostname(), clientHost) {
			return nil, invalidMetadata("%s must be on the host of client_uri or a subdomain of it", f.key)
		}
	}

	switch md.ApplicationType {
	case "":
		md.ApplicationType = appWeb
	case appWeb, appNative:
	default:
		return nil, invalidMetadata("application_type must be web or native")
	}
	switch md.TokenEndpointAuthMethod {
	case "":
		md.TokenEndpointAuthMethod = "none" // only public clients here
	case "none":
	default:
		return nil, invalidMetadata("token_endpoint_auth_method must be none: only public clients are supported")
	}

	grants := req.GrantTypes
	if grants == nil {
		grants = []string{grantAuthorizationCode} // RFC 7591 §2
	}
	for _, g := range []string{grantAuthorizationCode, grantRefreshToken} {
		if slices.Contains(grants, g) {
			md.GrantTypes = append(md.GrantTypes, g)
		}
	}
	if !slices.Contains(md.GrantTypes, grantAuthorizationCode) {
		return nil, invalidMetadata("grant_types must include authorization_code")
	}
	if req.ResponseTypes != nil && !slices.Contains(req.ResponseTypes, "code") {
		return nil, invalidMetadata("response_types must include code")
	}
	md.ResponseTypes = []string{"code"}

	if len(req.RedirectURIs) == 0 {
		return nil, invalidRedirect("redirect_uris must list at least one URI")
	}
	if len(req.RedirectURIs) > maxRedirectURIs {
		return nil, invalidRedirect("redirect_uris may list at most %d URIs", maxRedirectURIs)
	}
	for _, r := range req.RedirectURIs {
		if err := checkRedirectURI(r, md.ApplicationType, clientHost); err != nil {
			return nil, err
		}
		if !slices.Contains(md.RedirectURIs, r) {
			md.RedirectURIs = append(md.RedirectURIs, r)
		}
	}
	return md, nil
}

// httpsURL parses an absolute https URL without user information.
func httpsURL(raw string) (*url.URL, error) {
	if len(raw) > maxURILen {
		return nil, fmt.Errorf("is longer than %d bytes", maxURILen)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || !utf8.ValidString(raw):
		return nil, errors.New("is not a valid URL")
	case u.Scheme != "https":
		return nil, errors.New("must be an https URL")
	case u.Host == "" || u.Hostname() == "":
		return nil, errors.New("must have a host")
	case u.User != nil:
		return nil, errors.New("must not contain a user name or password")
	}
	return u, nil
}

// sameSite reports whether host is base or a subdomain of it.
func sameSite(host, base string) bool {
	host = strings.ToLower(host)
	return host == base || strings.HasSuffix(host, "."+base)
}

// validName reports whether s is printable text (no control characters).
func validName(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsControl)
}

// checkRedirectURI applies the spec's redirect URI rules: never a
// fragment; web clients use https on the client_uri's host or a
// subdomain; native clients may also use a private-use scheme that is the
// client_uri's host in reverse (io.element:/callback for element.io) or a
// subdomain of it, without authority, or http on a loopback address
// without a port (any port is then accepted when authorizing).
func checkRedirectURI(raw, appType, clientHost string) error {
	if len(raw) > maxURILen {
		return invalidRedirect("redirect URIs must be at most %d bytes", maxURILen)
	}
	u, err := url.Parse(raw)
	if err != nil || !utf8.ValidString(raw) || u.Scheme == "" {
		return invalidRedirect("%q is not an absolute URI", raw)
	}
	if strings.Contains(raw, "#") {
		return invalidRedirect("%q must not have a fragment", raw)
	}
	if u.Scheme == "https" {
		if _, err := httpsURL(raw); err != nil {
			return invalidRedirect("%q %v", raw, err)
		}
		if !sameSite(u.Hostname(), clientHost) {
			return invalidRedirect("%q must be on the host of client_uri (%s) or a subdomain of it", raw, clientHost)
		}
		return nil
	}
	if appType != appNative {
		return invalidRedirect("%q: web clients must use https redirect URIs", raw)
	}
	if u.Scheme == "http" {
		if !isLoopback(u.Hostname()) || u.User != nil {
			return invalidRedirect("%q: http redirect URIs must be on localhost, 127.0.0.1 or [::1]", raw)
		}
		if u.Port() != "" {
			return invalidRedirect("%q: loopback redirect URIs must not have a port (any port is accepted when authorizing)", raw)
		}
		return nil
	}
	reversed := reverseHost(clientHost)
	if u.Scheme != reversed && !strings.HasPrefix(u.Scheme, reversed+".") {
		return invalidRedirect("%q: the scheme of a native client must be the client_uri's host in reverse order (%s) or begin with it", raw, reversed)
	}
	if u.Host != "" || u.User != nil || strings.HasPrefix(raw[len(u.Scheme)+1:], "//") {
		return invalidRedirect("%q must not have an authority (write %s:/path)", raw, u.Scheme)
	}
	return nil
}

// isLoopback reports whether host names the loopback interface as the
// spec allows it.
func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// reverseHost writes a host name in reverse-DNS order: element.io → io.element.
func reverseHost(host string) string {
	labels := strings.Split(host, ".")
	slices.Reverse(labels)
	return strings.Join(labels, ".")
}

// redirectAllowed reports whether uri is one of the client's redirect
// URIs: the same string, or for a registered loopback URI the same URI
// with any port.
func (c *Client) redirectAllowed(uri string) bool {
	if slices.Contains(c.RedirectURIs, uri) {
		return true
	}
	if c.ApplicationType != appNative {
		return false
	}
	got, err := url.Parse(uri)
	if err != nil || got.Scheme != "http" || got.User != nil || got.Fragment != "" || strings.Contains(uri, "#") {
		return false
	}
	if port := got.Port(); port == "" || strings.Trim(port, "0123456789") != "" {
		return false
	}
	for _, r := range c.RedirectURIs {
		reg, err := url.Parse(r)
		if err != nil || reg.Scheme != "http" || !isLoopback(reg.Hostname()) {
			continue
		}
		if got.Hostname() == reg.Hostname() && got.EscapedPath() == reg.EscapedPath() && got.RawQuery == reg.RawQuery &&
			got.ForceQuery == reg.ForceQuery && net.JoinHostPort(got.Hostname(), got.Port()) == got.Host {
			return true
		}
	}
	return false
}
