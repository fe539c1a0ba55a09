package config

import (
	"path/filepath"
	"strings"
)

// maxSocketPath is the longest Unix socket path the kernel accepts: Linux's
// sun_path holds 108 bytes including the terminating NUL (macOS 104).
// The server first binds the socket in a temporary directory next to it
// (internal/app/adminsocket.go), whose path is up to 16 bytes longer than
// the directory's, so the directory may be at most maxSocketPath-16 long.
const maxSocketPath = 103

// AdminSocketPath is the path of the admin socket: admin_socket, a
// relative one taken inside data_dir; "" when the socket is turned off.
func (c *Config) AdminSocketPath() string {
	if c.AdminSocket == "" {
		return ""
	}
	if filepath.IsAbs(c.AdminSocket) {
		return filepath.Clean(c.AdminSocket)
	}
	return filepath.Join(c.DataDir, c.AdminSocket)
}

// validateAdminSocket reports what is wrong with admin_socket, or "".
func (c *Config) validateAdminSocket() string {
	if c.AdminSocket == "" {
		return ""
	}
	if strings.ContainsRune(c.AdminSocket, 0) || strings.HasSuffix(c.AdminSocket, "/") {
		return "must be a file path (or \"\" to turn the admin socket off)"
	}
	if p := c.AdminSocketPath(); len(p) > maxSocketPath || len(filepath.Dir(p)) > maxSocketPath-16 {
		return "the path " + p + " is too long for a Unix socket (at most 103 bytes): set a shorter path, e.g. /run/aula/admin.sock"
	}
	return ""
}
