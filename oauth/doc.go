// Package oauth is aula's OAuth 2.0 authorization server: the "OAuth 2.0
// API" of the Matrix client-server specification (v1.15 and later; the
// MSC3861 family), through which Element X signs in. It owns the server
// metadata, dynamic client registration (RFC 7591 as the spec restricts
// it), the authorization code grant with PKCE S256 (RFC 6749, RFC 7636),
// the refresh token grant and token revocation (RFC 7009), together with
// the Matrix scopes, stable (urn:matrix:client:…) and MSC2967 unstable
// (urn:matrix:org.matrix.msc2967.client:…).
//
// aula does not check passwords here: the authorization endpoint sends
// the browser through aula's single sign-on at the university's identity
// provider (auth.SSO), the way the Matrix Authentication Service
// federates upstream, and then asks the signed-in user to allow the
// client. The tokens it issues are ordinary aula access and refresh
// tokens (auth.Service.IssueTokens), for the device named in the scope,
// so every other endpoint treats them like any login. The pending
// authorization travels in a signed, HttpOnly cookie; codes are stored
// only as hashes (storage/oauth.go). docs/oauth.md describes the flow.
package oauth
