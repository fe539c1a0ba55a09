//go:build !linux

package main

import "os"

// datasync flushes f to stable storage (fsync where fdatasync is missing).
func datasync(f *os.File) error { return f.Sync() }
