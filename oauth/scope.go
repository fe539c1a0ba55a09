package oauth

import (
	"regexp"
	"slices"
	"strings"
)

// Scope tokens of the Matrix spec, and the unstable MSC2967 forms that
// matrix-rust-sdk (Element X) and older matrix-js-sdk still send.
const (
	scopeAPI            = "urn:matrix:client:api:*"
	scopeAPIUnstable    = "urn:matrix:org.matrix.msc2967.client:api:*"
	scopeDevice         = "urn:matrix:client:device:"
	scopeDeviceUnstable = "urn:matrix:org.matrix.msc2967.client:device:"
	scopeOpenID         = "openid" // sent by older OpenID-Connect-minded clients; not granted
	maxScopeLen         = 1024
)

// deviceIDPattern is what aula accepts as a client-chosen device ID: the
// RFC 3986 unreserved characters the spec recommends, and long enough to
// be unique among a user's devices (the spec lets the server refuse
// others).
var deviceIDPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{5,64}$`)

// grant is a validated scope: the device it allocates, and the scope
// string that is granted (the API and device tokens, in the form asked
// for).
type grant struct {
	DeviceID string
	Scope    string
}

// parseScope checks a requested scope: the full client API token and
// exactly one device token with a valid device ID, each in the stable or
// the unstable form. "openid" is ignored; any other token is refused.
func parseScope(raw string) (grant, *Error) {
	if raw == "" {
		return grant{}, badRequest("invalid_scope", "scope is required")
	}
	if len(raw) > maxScopeLen {
		return grant{}, badRequest("invalid_scope", "scope is too long")
	}
	var api, device []string
	var deviceID string
	for _, tok := range strings.Fields(raw) {
		switch {
		case tok == scopeAPI || tok == scopeAPIUnstable:
			if !slices.Contains(api, tok) {
				api = append(api, tok)
			}
		case strings.HasPrefix(tok, scopeDevice) || strings.HasPrefix(tok, scopeDeviceUnstable):
			id := strings.TrimPrefix(strings.TrimPrefix(tok, scopeDevice), scopeDeviceUnstable)
			if !deviceIDPattern.MatchString(id) {
				return grant{}, badRequest("invalid_scope", "The device ID in "+tok+" must be 5-64 characters of A-Z a-z 0-9 - . _ ~")
			}
			device = append(device, tok)
			deviceID = id
		case tok == scopeOpenID:
		default:
			return grant{}, badRequest("invalid_scope", "Unsupported scope token "+tok)
		}
	}
	if len(api) == 0 {
		return grant{}, badRequest("invalid_scope", "scope must contain "+scopeAPI)
	}
	if len(device) != 1 {
		return grant{}, badRequest("invalid_scope", "scope must contain exactly one "+scopeDevice+"<device_id> token")
	}
	return grant{DeviceID: deviceID, Scope: strings.Join(append(api, device...), " ")}, nil
}
