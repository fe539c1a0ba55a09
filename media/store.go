package media

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// store keeps file contents under a directory, each file named by the
// SHA-256 of its bytes (dir/ab/cd/abcd…), so identical uploads share one
// file. New files are written to dir/tmp, hashed on the way, and renamed
// into place, so a reader never sees a partial file.
type store struct {
	dir string
}

// errTooLarge is returned by write when the stream is longer than allowed.
var errTooLarge = errors.New("media: content too large")

// readError marks a failure to read the content (the client's upload), as
// opposed to a failure to store it.
type readError struct{ err error }

func (e readError) Error() string { return "media: reading content: " + e.err.Error() }
func (e readError) Unwrap() error { return e.err }

// taggedReader wraps the errors of r in readError.
type taggedReader struct{ r io.Reader }

func (t taggedReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		err = readError{err}
	}
	return n, err
}

func newStore(dir string) (store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return store{}, fmt.Errorf("media: create store: %w", err)
	}
	return store{dir: dir}, nil
}

// validHash reports whether h is a lower-case hex SHA-256.
func validHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (s store) path(hash string) string {
	return filepath.Join(s.dir, hash[:2], hash[2:4], hash)
}

// tempFile is content written to the store's temporary directory and not
// yet committed.
type tempFile struct {
	path string
	hash string
	size int64
}

// write copies r to a temporary file, at most max bytes (errTooLarge if
// r holds more), and hashes it. Errors reading r are a readError. The
// caller commits or discards the result.
func (s store) write(r io.Reader, max int64) (*tempFile, error) {
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "upload-*")
	if err != nil {
		return nil, fmt.Errorf("media: temp file: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(taggedReader{r}, max+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > max {
		err = errTooLarge
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	return &tempFile{path: f.Name(), hash: hex.EncodeToString(h.Sum(nil)), size: n}, nil
}

// discard removes an uncommitted temporary file.
func (t *tempFile) discard() {
	if t != nil && t.path != "" {
		os.Remove(t.path)
		t.path = ""
	}
}

// commit moves the temporary file to its content-addressed name; when a
// file of that content exists already, the temporary one is dropped.
func (s store) commit(t *tempFile) error {
	dst := s.path(t.hash)
	if _, err := os.Stat(dst); err == nil {
		t.discard()
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("media: store directory: %w", err)
	}
	if err := os.Rename(t.path, dst); err != nil {
		return fmt.Errorf("media: store file: %w", err)
	}
	t.path = ""
	return nil
}

// open opens the file with the given content hash.
func (s store) open(hash string) (*os.File, error) {
	if !validHash(hash) {
		return nil, fmt.Errorf("media: bad content hash %q", hash)
	}
	f, err := os.Open(s.path(hash))
	if err != nil {
		return nil, fmt.Errorf("media: open stored file: %w", err)
	}
	return f, nil
}

// remove deletes the file with the given content hash; a missing file is
// not an error.
func (s store) remove(hash string) error {
	if !validHash(hash) {
		return nil
	}
	if err := os.Remove(s.path(hash)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("media: remove stored file: %w", err)
	}
	return nil
}
