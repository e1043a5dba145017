//go:build !linux && unix

package storage

import (
	"os"
	"syscall"
)

// fdatasync: fsync where fdatasync is not available.
func fdatasync(f *os.File) error { return f.Sync() }

func flockExclusive(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// mmapShared is not used outside Linux: the log writes with pwrite there.
func mmapShared(*os.File, int64, int64) ([]byte, error) { return nil, errNoMmap }

func munmap([]byte) error { return nil }
