// Package auth owns who a request comes from: access and refresh tokens,
// password hashing and checking, login, registration, user-interactive
// authentication sessions, and the account lifecycle operations that need
// them (password change, device deletion, deactivation).
package auth
