//go:build linux

package storage

import (
	"os"
	"syscall"
)

// fdatasync makes f's data (and the metadata needed to read it: its size)
// durable, without the timestamps fsync would also write.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

// flockExclusive takes a non-blocking exclusive flock on f. flock locks
// belong to the open file description, so a second open of the same
// directory in this process conflicts too (unlike fcntl locks).
func flockExclusive(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// mmapShared maps n bytes of f from off, shared and writable: stores into
// the mapping are in the file's page cache at once.
func mmapShared(f *os.File, off, n int64) ([]byte, error) {
	return syscall.Mmap(int(f.Fd()), off, int(n), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
}

func munmap(b []byte) error { return syscall.Munmap(b) }
