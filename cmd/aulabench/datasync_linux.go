package main

import (
	"os"
	"syscall"
)

// datasync flushes f's data (not its metadata) to stable storage, as
// PostgreSQL's default wal_sync_method (fdatasync) does.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
