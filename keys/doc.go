// Package keys stores and hands out what end-to-end encryption needs from
// the server: device keys, one-time and fallback keys, cross-signing keys
// and their signatures, and server-side key backups. The server never sees
// a private key or plaintext; it keeps what clients upload and gives it to
// the clients entitled to it. See docs/e2ee.md.
package keys
