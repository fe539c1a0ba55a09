package config

import "time"

// Privacy controls what the server records about its users' connections.
type Privacy struct {
	// StoreIPAddresses records client IP addresses in the request log and
	// in device records (last_seen_ip). Off, no IP address or user agent
	// is written anywhere; devices keep only last_seen_ts. The older
	// log.ip_addresses is an alias: either turns recording on.
	StoreIPAddresses bool `yaml:"store_ip_addresses"`
}

// Retention limits how long room history is kept.
type Retention struct {
	// MaxLifetime, when not 0, removes the content of non-state events
	// older than this from every room (the room's state stays). 0: keep
	// history forever.
	MaxLifetime Duration `yaml:"max_lifetime"`
	// PurgeInterval is how often the purge runs when MaxLifetime is set.
	PurgeInterval Duration `yaml:"purge_interval"`
}

// StoreIPAddresses reports whether client IP addresses may be recorded:
// privacy.store_ip_addresses, or its alias log.ip_addresses.
func (c *Config) StoreIPAddresses() bool {
	return c.Privacy.StoreIPAddresses || c.Log.IPAddresses
}

// validatePrivacy checks privacy and retention.
func (c *Config) validatePrivacy(bad func(key, format string, args ...any)) {
	if d := c.Retention.MaxLifetime.D(); d < 0 {
		bad("retention.max_lifetime", "must not be negative (0 keeps history forever)")
	} else if d != 0 && d < time.Hour {
		bad("retention.max_lifetime", "%s is too short (at least 1h, or 0 to keep history forever)", c.Retention.MaxLifetime)
	}
	if d := c.Retention.PurgeInterval.D(); d < time.Minute {
		bad("retention.purge_interval", "%s is too short (at least 1m)", c.Retention.PurgeInterval)
	}
}
