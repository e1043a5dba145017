package storage

// faultFS: the fault-injecting file layer under the durable layer (walFS), on
// real files in a real directory. It remembers, per file, every change since
// its last sync (appends, writes over earlier bytes such as the log's
// preallocated zeros, truncations, each with the bytes it replaced), and
// which directory operations (creates, renames, removes; a rename over an
// existing file is a remove of it and the rename, undone together) were made
// durable by a SyncDir of their directory. powerLoss() then does what a machine losing power may do:
// every file is put back to its synced content, optionally keeping a random
// prefix of its unsynced changes (the next one possibly torn) or with
// garbage where the first one was, and the directory operations since the
// last SyncDir are undone;
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
	"unsafe"
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
	pending []dirOp
	locks   []func() error
	crashed bool
	nrm     int

	mapping   bool  // files can be mapped (walMapper), see faultFile.Map
	failWrite int   // fail the n-th write from now (1: the next); 0: never
	failSync  int   // fail the n-th sync from now; 0: never
	budget    int64 // bytes writable before ENOSPC; <0: unlimited
	writes    int
	syncs     int
	// crashAfter, if set, is asked after every directory operation
	// ("create", "rename", "remove"; name: the entry created, renamed to
	// or removed) whether the power fails right after it.
	crashAfter func(op, name string) bool
	// killAfter: crashAfter's crash is a process kill (calls fail from
	// then on, nothing is undone; see kill), not a power loss.
	killAfter bool
	// keepRemoves: a power loss keeps the unsynced removes and undoes
	// the other directory operations.
	keepRemoves bool
}

// dirOpDone records op as pending (not durable until SyncDir) and runs the
// crashAfter hook. Call under fs.mu.
func (fs *faultFS) dirOpDone(op dirOp, name string) {
	fs.pending = append(fs.pending, op)
	fs.crashPoint(op.kind, name)
}

// crashPoint asks crashAfter whether the power fails (or the process is
// killed) after op on name. Call under fs.mu.
func (fs *faultFS) crashPoint(op, name string) {
	switch {
	case fs.crashAfter == nil || fs.crashed || !fs.crashAfter(op, name):
	case fs.killAfter:
		fs.crashed = true
	default:
		fs.powerLossLocked()
	}
}

func newFaultFS(seed uint64) *faultFS {
	return &faultFS{rng: rand.New(rand.NewPCG(seed, 7)), files: map[string]*faultFile{}, budget: -1}
}

// faultFile is a real file and the undo log of what changed it since its
// last sync: appends, writes over earlier bytes (the log's preallocated
// zeros) and truncations, each with the bytes it replaced.
type faultFile struct {
	fs   *faultFS
	path string
	f    *os.File
	size int64
	pos  int64 // where Write appends
	undo []faultChange
	maps []faultMap
}

type faultChange struct {
	off     int64
	old     []byte // the bytes from off that the change replaced
	oldSize int64
	data    []byte // what a write wrote (nil: a truncation)
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
	_, serr := os.Lstat(name)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, err
	}
	// The truncation is durable at once: a simplification. A file that
	// existed before (a former run's) keeps its entry.
	ff := &faultFile{fs: fs, path: name, f: f}
	_, known := fs.files[name]
	fs.files[name] = ff
	if !known && errors.Is(serr, os.ErrNotExist) {
		fs.dirOpDone(dirOp{kind: "create", a: name}, name)
	}
	return ff, nil
}

func (ff *faultFile) Write(b []byte) (int, error) {
	ff.fs.mu.Lock()
	defer ff.fs.mu.Unlock()
	n, err := ff.writeAtLocked(b, ff.pos)
	ff.pos += int64(n)
	return n, err
}

func (ff *faultFile) WriteAt(b []byte, off int64) (int, error) {
	ff.fs.mu.Lock()
	defer ff.fs.mu.Unlock()
	return ff.writeAtLocked(b, off)
}

// writeAtLocked writes b at off, remembering what it replaced. Call under
// fs.mu.
func (ff *faultFile) writeAtLocked(b []byte, off int64) (int, error) {
	fs := ff.fs
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
	if ff.mappedLocked(off, int64(n)) && !allZero(b[:n]) {
		// The log writes only zeros (preallocation) where it maps.
		return 0, fmt.Errorf("faultFS: write of data into a mapped range at %d", off)
	}
	ff.flushMapsLocked()
	m, werr := ff.changeLocked(b[:n], off)
	for i := range ff.maps { // the zeros are visible in the mappings
		ff.maps[i].base = ff.visibleLocked(ff.maps[i].b, ff.maps[i].off)
	}
	if fs.budget >= 0 {
		fs.budget -= int64(m)
	}
	if werr != nil {
		return m, werr
	}
	return m, err
}

// changeLocked writes b at off, remembering what it replaced. Call under
// fs.mu.
func (ff *faultFile) changeLocked(b []byte, off int64) (int, error) {
	old := make([]byte, max(min(off+int64(len(b)), ff.size)-off, 0))
	if _, err := ff.f.ReadAt(old, off); err != nil && len(old) > 0 {
		return 0, err
	}
	ff.undo = append(ff.undo, faultChange{off: off, old: old, oldSize: ff.size, data: append([]byte(nil), b...)})
	m, err := ff.f.WriteAt(b, off)
	ff.size = max(ff.size, off+int64(m))
	return m, err
}

func (ff *faultFile) Truncate(size int64) error {
	fs := ff.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.errIfCrashed(); err != nil {
		return err
	}
	if len(ff.maps) > 0 {
		return errors.New("faultFS: truncate of a mapped file")
	}
	old := make([]byte, max(ff.size-size, 0))
	if _, err := ff.f.ReadAt(old, size); err != nil && len(old) > 0 {
		return err
	}
	if err := ff.f.Truncate(size); err != nil {
		return err
	}
	ff.undo = append(ff.undo, faultChange{off: size, old: old, oldSize: ff.size})
	ff.size = size
	return nil
}

// faultMap is a mapping of a faultFile: a real shared mapping of the real
// file (stores reach its page cache, as they would under osFS), and base,
// the range's content when the model last accounted for it. What differs
// from base becomes an unsynced change of the undo log (flushMapsLocked)
// on every Sync, Unmap, write, truncation and power loss.
type faultMap struct {
	off  int64
	b    []byte
	base []byte
}

// Map maps the range if fs.mapping (else errNoMmap: the log writes).
func (ff *faultFile) Map(off, n int64) ([]byte, error) {
	fs := ff.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.errIfCrashed(); err != nil {
		return nil, err
	}
	if !fs.mapping {
		return nil, errNoMmap
	}
	b, err := mmapShared(ff.f, off, n)
	if err != nil {
		return nil, err
	}
	ff.maps = append(ff.maps, faultMap{off: off, b: b, base: ff.visibleLocked(b, off)})
	return b, nil
}

// visibleLocked returns the file's content under the mapping b at off, up
// to the file's size (stores past it would be a SIGBUS), read from the file
// (the page cache the mapping shares), not through the mapping.
func (ff *faultFile) visibleLocked(b []byte, off int64) []byte {
	cur := make([]byte, max(min(int64(len(b)), ff.size-off), 0))
	ff.f.ReadAt(cur, off)
	return cur
}

func (ff *faultFile) Unmap(b []byte) error {
	ff.fs.mu.Lock()
	defer ff.fs.mu.Unlock()
	ff.flushMapsLocked()
	for i, m := range ff.maps {
		if &m.b[0] == &b[0] {
			ff.maps = append(ff.maps[:i], ff.maps[i+1:]...)
			return munmap(b)
		}
	}
	return errors.New("faultFS: unmap of an unknown mapping")
}

// flushMapsLocked records the stores made in ff's mappings since they were
// last accounted for as an unsynced change (they are in the page cache).
// Call under fs.mu.
func (ff *faultFile) flushMapsLocked() {
	for i := range ff.maps {
		m := &ff.maps[i]
		cur := ff.visibleLocked(m.b, m.off)
		lo, hi := 0, min(len(cur), len(m.base))
		for lo < hi && cur[lo] == m.base[lo] {
			lo++
		}
		for hi > lo && cur[hi-1] == m.base[hi-1] {
			hi--
		}
		if lo < hi {
			ff.undo = append(ff.undo, faultChange{off: m.off + int64(lo), old: m.base[lo:hi:hi],
				oldSize: ff.size, data: cur[lo:hi:hi]})
		}
		m.base = cur
	}
}

// mappedLocked reports whether [off, off+n) overlaps a mapping.
func (ff *faultFile) mappedLocked(off, n int64) bool {
	for _, m := range ff.maps {
		if off < m.off+int64(len(m.b)) && m.off < off+n {
			return true
		}
	}
	return false
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
		ff.flushMapsLocked()
		ff.undo = nil
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
	if _, err := os.Lstat(to); err == nil {
		// A rename over an existing file replaces it atomically: until
		// the directory is synced, a power loss brings the replaced
		// file back (not nothing), so it is hidden like a remove.
		if err := fs.hideLocked(to); err != nil {
			return err
		}
	}
	if err := os.Rename(from, to); err != nil {
		return err
	}
	fs.moveLocked(from, to)
	fs.dirOpDone(dirOp{kind: "rename", a: from, b: to}, to)
	return nil
}

func (fs *faultFS) moveLocked(from, to string) {
	if ff, ok := fs.files[from]; ok {
		ff.path = to
		fs.files[to] = ff
		delete(fs.files, from)
	}
}

func (fs *faultFS) Remove(name string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.errIfCrashed(); err != nil {
		return err
	}
	if err := fs.hideLocked(name); err != nil {
		return err
	}
	fs.crashPoint("remove", name)
	return nil
}

// hideLocked removes name until the next SyncDir: it is renamed to a hidden
// name, which powerLoss renames back and SyncDir deletes. Call under fs.mu.
func (fs *faultFS) hideLocked(name string) error {
	fs.nrm++
	hidden := fmt.Sprintf("%s.%d.rm", name, fs.nrm)
	if err := os.Rename(name, hidden); err != nil {
		return err
	}
	fs.moveLocked(name, hidden)
	fs.pending = append(fs.pending, dirOp{kind: "remove", a: name, b: hidden})
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
	if ff, ok := fs.files[name]; ok {
		ff.size, ff.pos, ff.undo = size, min(ff.pos, size), nil
	}
	return nil
}

func (fs *faultFS) SyncDir(dir string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.errIfCrashed(); err != nil {
		return err
	}
	// Only the entries of dir become durable (a sync of another
	// directory, such as Init's of the parent, leaves them pending).
	dir = filepath.Clean(dir)
	rest := fs.pending[:0]
	for _, op := range fs.pending {
		switch {
		case filepath.Dir(op.a) != dir:
			rest = append(rest, op)
		case op.kind == "remove":
			os.Remove(op.b)
			delete(fs.files, op.b)
		}
	}
	fs.pending = rest
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

// kill simulates the process being killed now, the machine staying up: the
// abandoned engine's calls fail from now on, and the returned layer (for the
// next open) keeps what the kernel holds and has not synced yet, each file's
// unsynced changes and the directory operations since the last SyncDir, so
// that a later powerLoss of it can still undo them.
func (fs *faultFS) kill() *faultFS {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	nfs := newFaultFS(fs.rng.Uint64())
	nfs.mapping = fs.mapping
	fs.crashed = true
	for p, ff := range fs.files {
		for _, m := range ff.maps {
			detach(m.b)
		}
		ff.flushMapsLocked()
		ff.maps = nil
		ff.f.Close()
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			panic(fmt.Sprintf("faultFS: kill: reopen %s: %v", p, err))
		}
		nfs.files[p] = &faultFile{fs: nfs, path: p, f: f, size: ff.size, pos: ff.pos, undo: ff.undo}
	}
	nfs.pending, fs.pending = fs.pending, nil
	for _, release := range fs.locks {
		release()
	}
	fs.locks = nil
	return nfs
}

// powerLoss simulates the machine losing power now (see the file comment).
func (fs *faultFS) powerLoss() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.powerLossLocked()
}

// powerLossLocked is powerLoss under fs.mu.
func (fs *faultFS) powerLossLocked() {
	if fs.crashed {
		return
	}
	fs.crashed = true
	for _, ff := range fs.files {
		ff.powerLoss()
	}
	for i := len(fs.pending) - 1; i >= 0; i-- {
		op := fs.pending[i]
		if fs.keepRemoves && op.kind == "remove" {
			// Reached the disk before the rest (POSIX orders no
			// two entry changes before the directory's sync).
			os.Remove(op.b)
			continue
		}
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

// powerLoss undoes what was not synced of ff: a random prefix of its
// unsynced changes reached the disk (the next one possibly in part),
// nothing of them did, or garbage is where the first one was. Call under
// fs.mu.
func (ff *faultFile) powerLoss() {
	for _, m := range ff.maps {
		detach(m.b) // first: a store racing the power loss lands in the file or nowhere
	}
	ff.flushMapsLocked()
	ff.maps = nil
	ff.f.Close()
	if len(ff.undo) == 0 {
		return
	}
	f, err := os.OpenFile(ff.path, os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer f.Close()
	rng := ff.fs.rng
	mode, keep := rng.IntN(3), 0
	if mode == 0 {
		keep = rng.IntN(len(ff.undo) + 1)
	}
	for i := len(ff.undo) - 1; i >= keep; i-- {
		c := ff.undo[i]
		f.WriteAt(c.old, c.off)
		f.Truncate(c.oldSize)
	}
	c := ff.undo[keep%len(ff.undo)]
	switch {
	case mode == 0 && keep < len(ff.undo) && c.data != nil: // torn: a prefix of the next write
		f.WriteAt(c.data[:rng.IntN(len(c.data)+1)], c.off)
	case mode == 2: // garbage where the first change was
		junk := make([]byte, 1+rng.IntN(64))
		for i := range junk {
			junk[i] = byte(rng.Uint32())
		}
		f.WriteAt(junk, ff.undo[0].off)
	}
}

// detach replaces the shared mapping b by private anonymous memory at the
// same address: the abandoned engine may go on storing into it after the
// power loss, and those stores must not reach the file (nor fault).
func detach(b []byte) {
	_, _, errno := syscall.Syscall6(syscall.SYS_MMAP, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_FIXED|syscall.MAP_PRIVATE|syscall.MAP_ANON, ^uintptr(0), 0)
	if errno != 0 {
		panic(fmt.Sprintf("faultFS: detach a mapping: %v", errno))
	}
}
