package config

import (
	"net/url"
	"strings"
)

// Push controls pushers and delivery to push gateways (docs/push.md).
type Push struct {
	// GatewayAllowlist lists the push gateway URLs (…/_matrix/push/v1/notify)
	// pushers may use, for example the university's own Sygnal. Empty
	// allows any gateway, which makes the server send requests wherever a
	// client points it.
	GatewayAllowlist []string `yaml:"gateway_allowlist"`
	// IncludeContent sends sender, room name and message content to the
	// gateway for pushers that did not ask for format event_id_only. Off,
	// every push carries only event and room IDs and counts.
	IncludeContent bool `yaml:"include_content"`
}

// validate checks the push section.
func (p Push) validate() []string {
	var out []string
	for _, g := range p.GatewayAllowlist {
		u, err := url.Parse(g)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !strings.HasSuffix(u.Path, "/_matrix/push/v1/notify") {
			out = append(out, "push.gateway_allowlist: "+g+" is not a push gateway URL (https://host/_matrix/push/v1/notify)")
		}
	}
	return out
}
