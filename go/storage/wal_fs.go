package storage

// The file layer under the write-ahead log and the checkpoints. Everything
// durable goes through walFS, so that tests can put a fault-injecting layer
// underneath both engines (wal_fault_test.go: it remembers what was synced,
// drops the rest on a simulated power loss, fails a chosen write or sync,
// returns ENOSPC). osFS is the real one: os files, fdatasync for Sync, fsync
// of the directory for SyncDir, flock for Lock.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// walFile is an open file of the log or of a checkpoint.
type walFile interface {
	io.Writer
	io.ReaderAt
	// WriteAt writes at off without moving the offset Write appends at
	// (the log's preallocation).
	io.WriterAt
	// Truncate sets the file's size (not synced).
	Truncate(size int64) error
	// Sync makes everything written so far durable (fdatasync).
	Sync() error
	Close() error
}

// walMapper is a walFile that can map a range of itself, shared and
// writable (the log's stores, wal_log.go). A store into the mapping is in the
// kernel's page cache at once, so it survives the process being killed, and
// Sync makes it durable like a write. Stores go only to bytes inside the
// file's size; the file is neither written nor truncated under stores in
// the mapping while it is mapped.
type walMapper interface {
	// Map maps n bytes from off (a multiple of the page size).
	Map(off, n int64) ([]byte, error)
	// Unmap releases a mapping; what was stored stays in the page cache
	// (a later Sync makes it durable).
	Unmap(b []byte) error
}

var errNoMmap = errors.New("storage: mmap not supported")

// walFS is the directory operations the durable layer uses. Names are paths.
type walFS interface {
	// Create creates (or truncates) name for writing.
	Create(name string) (walFile, error)
	// ReadFile returns name's whole content.
	ReadFile(name string) ([]byte, error)
	// List returns the names (not paths) in dir, sorted.
	List(dir string) ([]string, error)
	Rename(from, to string) error
	Remove(name string) error
	// Truncate cuts name to size bytes (and syncs it).
	Truncate(name string, size int64) error
	// SyncDir makes the directory's entries (creates, renames, removes)
	// durable.
	SyncDir(dir string) error
	// Lock takes an exclusive lock on name (created if missing) that no
	// other open of the directory, in this process or another, can take
	// until release is called. It fails with ErrLocked if held.
	Lock(name string) (release func() error, err error)
}

// osFS is the operating system's file layer.
type osFS struct{}

type osFile struct{ *os.File }

func (f osFile) Sync() error { return fdatasync(f.File) }

func (f osFile) Map(off, n int64) ([]byte, error) { return mmapShared(f.File, off, n) }

func (f osFile) Unmap(b []byte) error { return munmap(b) }

func (osFS) Create(name string) (walFile, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

func (osFS) List(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

func (osFS) Rename(from, to string) error { return os.Rename(from, to) }
func (osFS) Remove(name string) error     { return os.Remove(name) }

func (osFS) Truncate(name string, size int64) error {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (osFS) Lock(name string) (func() error, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	if err := flockExclusive(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w (%s: %v)", ErrLocked, filepath.Dir(name), err)
	}
	return f.Close, nil // closing the descriptor releases the flock
}
