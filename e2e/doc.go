// Package e2e holds end-to-end tests that drive aula through a real Matrix
// client library (maunium.net/go/mautrix) over real HTTP, against a server
// per database engine started by internal/apitest. The package has no
// non-test code.
package e2e
