package config

import (
	"fmt"
	"regexp"
	"strings"
)

// consentVersionRE is what a policy version may look like: it names
// template files, so no path separators.
var consentVersionRE = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$`)

// noticesLocalpartRE is the user ID grammar's localpart alphabet.
var noticesLocalpartRE = regexp.MustCompile(`^[a-z0-9._=/+-]+$`)

// validateConsent checks the server_notices and consent sections.
func (c *Config) validateConsent() []string {
	var p []string
	bad := func(key, format string, args ...any) {
		p = append(p, key+": "+fmt.Sprintf(format, args...))
	}
	n := c.ServerNotices
	if !noticesLocalpartRE.MatchString(n.Localpart) {
		bad("server_notices.localpart", "%q is not a valid localpart (a-z 0-9 . _ = - / +)", n.Localpart)
	}
	if n.AvatarURL != "" && !strings.HasPrefix(n.AvatarURL, "mxc://") {
		bad("server_notices.avatar_url", "%q is not an mxc:// URI", n.AvatarURL)
	}
	if strings.TrimSpace(n.RoomName) == "" {
		bad("server_notices.room_name", "must not be empty")
	}
	k := c.Consent
	if !consentVersionRE.MatchString(k.Version) || strings.Contains(k.Version, "..") {
		bad("consent.version", "%q is not a version like 1.0 (letters, digits, . _ -)", k.Version)
	}
	if k.FormSecret != "" && len(k.FormSecret) < 16 {
		bad("consent.form_secret", "is too short: use at least 16 random characters (or leave it empty)")
	}
	if !k.Enabled {
		return p
	}
	if !strings.Contains(k.ServerNoticeContent, "%(consent_uri)s") {
		bad("consent.server_notice_content", "must contain %%(consent_uri)s, where the consent link goes")
	}
	if strings.TrimSpace(k.BlockEventsError) == "" {
		bad("consent.block_events_error", "must not be empty")
	}
	return p
}
