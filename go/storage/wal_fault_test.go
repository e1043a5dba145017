package storage

// faultFS: the fault-injecting file layer under the durable layer (walFS), on
// real files in a real directory. It remembers, per file, how much was
// synced, and which directory operations (creates, renames, removes) were
// made durable by SyncDir. powerLoss() then does what a machine losing
// power may do: every file is cut back to its synced size, optionally
// keeping a random part of the unsynced tail (a torn write) or adding
// garbage, and the directory operations since the last SyncDir are undone;
// every later call through this layer fails, so the abandoned engine cannot
// write anything more. It can also fail the n-th write or sync, or return
// ENOSPC once a byte budget is spent. Models: LevelDB's
// FaultInjectionTestEnv, pebble's strict in-memory filesystem.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

var errInjected = errors.New("injected I/O error")

type dirOp struct {
	kind     string // "create", "rename", "remove"
	a, b     string // create: a; rename: a -> b; remove: a hidden as b
	prevSize int64
}

type faultFS struct {
	mu      sync.Mutex
	rng     *rand.Rand
	files   map[string]*faultFile // by path, the open or known files
	synced  map[string]int64      // by path: durable size
	pending []dirOp
	locks   []func() error
	crashed bool
	nrm     int

	failWrite int   // fail the n-th write from now (1: the next); 0: never
	failSync  int   // fail the n-th sync from now; 0: never
	budget    int64 // bytes writable before ENOSPC; <0: unlimited
	writes    int
	syncs     int
}

func newFaultFS(seed uint64) *faultFS {
	return &faultFS{rng: rand.New(rand.NewPCG(seed, 7)), files: map[string]*faultFile{},
		synced: map[string]int64{}, budget: -1}
}

type faultFile struct {
	fs   *faultFS
	path string
	f    *os.File
	size int64
}

func (fs *faultFS) errIfCrashed() error {
	if fs.crashed {
		return fmt.Errorf("after power loss: %w", errInjected)
	}
	return nil
}

func (fs *faultFS) Create(name string) (walFile, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.errIfCrashed(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, err
	}
	ff := &faultFile{fs: fs, path: name, f: f}
	fs.files[name] = ff
	if _, known := fs.synced[name]; !known {
		fs.pending = append(fs.pending, dirOp{kind: "create", a: name})
	}
	fs.synced[name] = 0 // the truncation is durable only after a sync: simplification
	return ff, nil
}

func (ff *faultFile) Write(b []byte) (int, error) {
	fs := ff.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.errIfCrashed(); err != nil {
		return 0, err
	}
	fs.writes++
	if fs.failWrite > 0 {
		if fs.failWrite--; fs.failWrite == 0 {
			return 0, fmt.Errorf("write: %w", errInjected)
		}
	}
	n := len(b)
	var err error
	if fs.budget >= 0 && int64(n) > fs.budget {
		n, err = int(fs.budget), syscall.ENOSPC
	}
	m, werr := ff.f.Write(b[:n])
	ff.size += int64(m)
	if fs.budget >= 0 {
		fs.budget -= int64(m)
	}
	if werr != nil {
		return m, werr
	}
	return m, err
}

func (ff *faultFile) ReadAt(b []byte, off int64) (int, error) { return ff.f.ReadAt(b, off) }

func (ff *faultFile) Sync() error {
	fs := ff.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.errIfCrashed(); err != nil {
		return err
	}
	fs.syncs++
	if fs.failSync > 0 {
		if fs.failSync--; fs.failSync == 0 {
			return fmt.Errorf("fsync: %w", errInjected)
		}
	}
	if fs.files[ff.path] == ff {
		fs.synced[ff.path] = ff.size
	}
	return nil
}

func (ff *faultFile) Close() error { return ff.f.Close() }

func (fs *faultFS) ReadFile(name string) ([]byte, error) {
	if err := fs.check(); err != nil {
		return nil, err
	}
	return os.ReadFile(name)
}

func (fs *faultFS) check() error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.errIfCrashed()
}

func (fs *faultFS) List(dir string) ([]string, error) {
	if err := fs.check(); err != nil {
		return nil, err
	}
	return osFS{}.List(dir)
}

func (fs *faultFS) Rename(from, to string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.errIfCrashed(); err != nil {
		return err
	}
	if err := os.Rename(from, to); err != nil {
		return err
	}
	fs.pending = append(fs.pending, dirOp{kind: "rename", a: from, b: to})
	fs.moveLocked(from, to)
	return nil
}

func (fs *faultFS) moveLocked(from, to string) {
	if ff, ok := fs.files[from]; ok {
		ff.path = to
		fs.files[to] = ff
		delete(fs.files, from)
	}
	if s, ok := fs.synced[from]; ok {
		fs.synced[to] = s
		delete(fs.synced, from)
	}
}

func (fs *faultFS) Remove(name string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.errIfCrashed(); err != nil {
		return err
	}
	fs.nrm++
	hidden := fmt.Sprintf("%s.%d.rm", name, fs.nrm)
	if err := os.Rename(name, hidden); err != nil {
		return err
	}
	fs.pending = append(fs.pending, dirOp{kind: "remove", a: name, b: hidden})
	fs.moveLocked(name, hidden)
	return nil
}

func (fs *faultFS) Truncate(name string, size int64) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.errIfCrashed(); err != nil {
		return err
	}
	if err := os.Truncate(name, size); err != nil {
		return err
	}
	fs.synced[name] = size
	if ff, ok := fs.files[name]; ok {
		ff.size = size
	}
	return nil
}

func (fs *faultFS) SyncDir(dir string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.errIfCrashed(); err != nil {
		return err
	}
	for _, op := range fs.pending {
		if op.kind == "remove" {
			os.Remove(op.b)
			delete(fs.synced, op.b)
			delete(fs.files, op.b)
		}
	}
	fs.pending = nil
	return nil
}

func (fs *faultFS) Lock(name string) (func() error, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.errIfCrashed(); err != nil {
		return nil, err
	}
	release, err := osFS{}.Lock(name)
	if err != nil {
		return nil, err
	}
	fs.locks = append(fs.locks, release)
	return release, nil
}

// powerLoss simulates the machine losing power now (see the file comment).
func (fs *faultFS) powerLoss() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.crashed {
		return
	}
	fs.crashed = true
	for path, ff := range fs.files {
		ff.f.Close()
		synced := fs.synced[path]
		if ff.size <= synced {
			continue
		}
		keep := synced
		switch fs.rng.IntN(3) {
		case 0: // a random prefix of the unsynced writes reached the disk
			keep = synced + fs.rng.Int64N(ff.size-synced+1)
			os.Truncate(path, keep)
		case 1: // nothing of them
			os.Truncate(path, keep)
		default: // garbage where they were
			os.Truncate(path, keep)
			junk := make([]byte, 1+fs.rng.IntN(64))
			for i := range junk {
				junk[i] = byte(fs.rng.Uint32())
			}
			if f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0); err == nil {
				f.Write(junk)
				f.Close()
			}
		}
	}
	for i := len(fs.pending) - 1; i >= 0; i-- {
		op := fs.pending[i]
		switch op.kind {
		case "create":
			os.Remove(op.a)
		case "rename", "remove":
			os.Rename(op.b, op.a)
		}
	}
	fs.pending = nil
	for _, release := range fs.locks {
		release()
	}
	fs.locks = nil
	// Leftover hidden files of synced removes are gone already; remove
	// the rest (unsynced removes were renamed back).
	if names, err := filepath.Glob(filepath.Join(filepath.Dir(fs.anyPath()), "*.rm")); err == nil {
		for _, n := range names {
			os.Remove(n)
		}
	}
}

func (fs *faultFS) anyPath() string {
	for p := range fs.files {
		return p
	}
	return "."
}
