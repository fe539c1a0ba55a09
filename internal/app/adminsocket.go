package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/aula-chat/aula/clientapi"
)

// OperatorUserHeader is the request header with which a local command on
// the admin socket names the local user it acts as (clientapi).
const OperatorUserHeader = clientapi.OperatorUserHeader

// adminSocket is the running server's admin socket: a Unix socket on which
// the admin API is served to local commands (clientapi.AdminSocketHandler),
// so that commands writing room events go through the one process that
// hands out stream positions. Only the server's user can connect: the
// socket file has mode 0600 from the moment it appears under its name, and
// its directory must not be writable by anyone else.
type adminSocket struct {
	path string
	info os.FileInfo // the socket file as created, to remove only our own
	srv  *http.Server
	errc chan error
}

// listenAdminSocket starts serving h on the Unix socket at path. A socket
// file left behind by a server that is gone is replaced; one that answers
// belongs to a running server, which is an error.
func listenAdminSocket(path string, h http.Handler, log *slog.Logger) (*adminSocket, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("admin_socket: %w", err)
	}
	if err := checkPrivateDir(dir); err != nil {
		return nil, err
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	// Bind in a fresh private directory, restrict the socket to its owner
	// and only then move it to its name: nobody can connect in between.
	// A short name: config.Validate leaves room for it (16 bytes).
	tmp, err := os.MkdirTemp(dir, ".as")
	if err != nil {
		return nil, fmt.Errorf("admin_socket: %w", err)
	}
	defer os.RemoveAll(tmp)
	tmpPath := filepath.Join(tmp, "s")
	ln, err := net.Listen("unix", tmpPath)
	if err != nil {
		return nil, fmt.Errorf("admin_socket: listen: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // it is removed by name in shutdown
	fail := func(err error) (*adminSocket, error) {
		ln.Close()
		return nil, fmt.Errorf("admin_socket: %w", err)
	}
	if err := os.Chmod(tmpPath, 0o600); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmpPath, path); err != nil {
		return fail(err)
	}
	info, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	s := &adminSocket{path: path, info: info, errc: make(chan error, 1), srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}
	go func() { s.errc <- s.srv.Serve(ln) }()
	return s, nil
}

// checkPrivateDir refuses a socket directory that another user owns or may
// write to: they could replace the socket and read what commands send.
func checkPrivateDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("admin_socket: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("admin_socket: %s is not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("admin_socket: directory %s belongs to another user; use a directory of the server's user", dir)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("admin_socket: directory %s is writable by other users (mode %04o): chmod 700 it, or set admin_socket to a path in a private directory", dir, fi.Mode().Perm())
	}
	return nil
}

// removeStaleSocket removes a socket file at path that nothing answers on.
// A socket that answers means another server is running on it; anything
// but a socket is left alone.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("admin_socket: %w", err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("admin_socket: %s exists and is not a socket; remove it or choose another path", path)
	}
	conn, err := net.DialTimeout("unix", path, 2*time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("admin_socket: another server is running on %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("admin_socket: remove stale socket: %w", err)
	}
	return nil
}

// shutdown stops accepting requests, waits for running ones until ctx
// ends, and removes the socket file if it is still ours.
func (s *adminSocket) shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	if fi, lerr := os.Lstat(s.path); lerr == nil && os.SameFile(fi, s.info) {
		if rerr := os.Remove(s.path); rerr != nil && err == nil {
			err = rerr
		}
	}
	if serr := <-s.errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("admin socket shutdown: %w", err)
	}
	return nil
}
