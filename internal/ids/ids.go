// Package ids checks the grammar of Matrix identifiers: server names, user
// IDs and room IDs.
package ids

import (
	"net/netip"
	"strings"
)

// ValidUserID checks the shape Synapse checks: "@", a localpart without ":",
// ":" and a valid server name. Historical localparts are accepted.
func ValidUserID(s string) bool {
	local, server, ok := strings.Cut(s, ":")
	return ok && strings.HasPrefix(local, "@") && ValidServerName(server)
}

// ValidRoomID accepts "!opaque:server" (room versions before 12) and "!"
// followed by 43 unpadded URL-safe base64 characters (version 12 on).
func ValidRoomID(s string) bool {
	rest, ok := strings.CutPrefix(s, "!")
	if !ok {
		return false
	}
	if local, server, ok := strings.Cut(rest, ":"); ok {
		return !strings.ContainsRune(local, 0) && ValidServerName(server)
	}
	if len(rest) != 43 {
		return false
	}
	for _, c := range []byte(rest) {
		if !isAlnum(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// ValidServerName checks the spec's server_name grammar: a DNS name, an IPv4
// address or a bracketed IPv6 address, then optionally ":" and 1-5 digits.
// Like Synapse it also rejects empty DNS labels.
func ValidServerName(s string) bool {
	host := s
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.HasSuffix(s, "]") {
		host = s[:i]
		port := s[i+1:]
		if len(port) < 1 || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return false
		}
	}
	if inner, ok := strings.CutPrefix(host, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		if !ok || len(inner) < 2 || len(inner) > 45 || strings.Trim(inner, "0123456789abcdefABCDEF:.") != "" {
			return false
		}
		addr, err := netip.ParseAddr(inner)
		return err == nil && addr.Is6()
	}
	if len(host) == 0 || len(host) > 255 {
		return false
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" {
			return false
		}
		for _, c := range []byte(label) {
			if !isAlnum(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
