package storage

// The durable layer shared by both engines: the log, group commit,
// checkpoints, recovery and Backup live here (and in wal_*.go,
// checkpoint.go), so the pure-Go and the C engine write one format and get
// one set of guarantees. An engine keeps a *durable (nil for Init(""), so
// the in-memory path pays one nil check) and calls four hooks:
//
//	d.check(op)          before applying a write: refuses it once the log
//	                     failed (read-only state)
//	d.log.append(fill)   after applying it, while still holding the locks
//	                     that ordered the apply: the log order of two writes
//	                     of one key is their apply order
//	d.commit(op, seq)    after releasing every lock: waits (parked in Go) for
//	                     the write (SyncWrites false) or the group fsync
//	d.snap               the engine's snapshot scan, for checkpoints
//
// The C engine's writes are ordered by key stripes held here (stripes,
// lockKeys): its own C-side stripes are released inside the cgo call, so
// the log append needs a Go-side lock that spans apply and append. The
// pure-Go engine's write lock already does.
//
// Background: one goroutine runs checkpoints when the log written since the
// last one passes max(ckptMin, half the size of the last checkpoint) (so
// between checkpoints log plus checkpoint stay within 1.5x the live data
// under steady overwrites; while one is written the old one, the new one and
// the log written meanwhile coexist), and,
// with SyncWrites false, an fdatasync every syncInterval (Redis
// "appendfsync everysec").
//
// Backpressure: a writer faster than the checkpointer would grow the log
// without bound. So once the log written since the rotation of the last
// completed checkpoint passes logMax (default twice the trigger: about the
// live data once the database is larger than 2*ckptMin), commit parks the
// writer (sync.Cond, in Go, after every engine lock is released, so the
// checkpoint's snapshot never waits for it) until a checkpoint brings the
// log back within the limit. The log stays within logMax plus two records
// per writer (one that passed the check as another crossed the limit, and
// the one it parks with: commit comes after the append). A failed attempt
// (or Close) releases the parked writers, so nothing waits forever on a
// checkpoint that cannot succeed.

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// durableOptions are the knobs tests and benchmarks turn; the zero value
// means the defaults.
type durableOptions struct {
	fs           walFS         // nil: the operating system's
	segmentSize  int64         // log segment size; 0: 64 MiB
	ckptMin      int64         // log bytes that trigger a checkpoint at least; 0: 64 MiB; <0: never
	syncInterval time.Duration // SyncWrites false: background fdatasync period; 0: 1 s
	logMax       int64         // log bytes since the last checkpoint past which writers wait; 0: 2x the trigger; <0: never
	prealloc     int64         // log preallocation step (wal_log.go); 0: 1 MiB, at most the segment size; <0: none
	mapSync      bool          // SyncWrites true: log through the mapping too (default: pwrite, see openDurable)
}

const durStripes = 1024

type durable struct {
	fs     walFS
	dir    string
	sync   bool
	opts   durableOptions
	log    *walLog
	unlock func() error
	snap   snapshotFunc
	rec    dirState // what recovery found

	ckptMu   sync.Mutex
	ckptErr  error  // the last checkpoint's failure (under ckptMu)
	ckptSeq  uint64 // the seq of the newest durable checkpoint, 0: none (under ckptMu)
	ckptSize atomic.Int64
	ckpts    atomic.Uint64

	// Backpressure (see the file comment): doneBase is log.totalWritten
	// at the rotation of the last completed checkpoint; bpGen counts
	// ended checkpoint attempts, bpFailed says the last one failed (both
	// under bpMu, with bpCond).
	bpMu     sync.Mutex
	bpCond   sync.Cond
	bpGen    uint64
	bpFailed bool
	doneBase atomic.Int64
	logMax   atomic.Int64 // 0: no backpressure
	parked   atomic.Int64 // writers waiting now
	stalls   atomic.Uint64

	stop   chan struct{}
	kick   chan struct{}
	bg     sync.WaitGroup
	closed atomic.Bool

	seed    maphash.Seed
	stripes [durStripes]sync.Mutex
}

// openDurable locks dir, recovers it into the engine through load and
// apply (see recoverDir), opens the log and starts the background work. snap
// is the engine's snapshot scan; it is not called before openDurable
// returns.
func openDurable(dir string, syncWrites bool, o *durableOptions, snap snapshotFunc,
	load func([]walOp) error, apply func(uint64, []walOp) error) (*durable, error) {
	d := &durable{dir: dir, sync: syncWrites, snap: snap, seed: maphash.MakeSeed()}
	d.bpCond.L = &d.bpMu
	if o != nil {
		d.opts = *o
	}
	if d.opts.fs == nil {
		d.opts.fs = osFS{}
	}
	if d.opts.segmentSize <= 0 {
		d.opts.segmentSize = 64 << 20
	}
	if d.opts.ckptMin == 0 {
		d.opts.ckptMin = 64 << 20
	}
	if d.opts.prealloc == 0 {
		d.opts.prealloc = min(1<<20, d.opts.segmentSize)
	}
	if d.opts.syncInterval <= 0 {
		d.opts.syncInterval = time.Second
	}
	d.fs = d.opts.fs
	// Init may have just created dir: make its entry in the parent
	// durable before anything acknowledged lives in it.
	if err := d.fs.SyncDir(filepath.Dir(filepath.Clean(dir))); err != nil {
		return nil, fmt.Errorf("storage: init: sync the parent of %s: %w", dir, err)
	}
	unlock, err := d.fs.Lock(filepath.Join(dir, lockFileName))
	if err != nil {
		if isLocked(err) {
			return nil, err
		}
		return nil, fmt.Errorf("storage: init: lock %s: %w", dir, err)
	}
	d.unlock = unlock
	d.rec, err = recoverDir(d.fs, dir, true, load, apply)
	if err == nil {
		// Mapped stores save a write(2) per group, which is what unsynced
		// writes pay for; a synced group pays an fdatasync anyway, and
		// writing back a mapped page costs more than the write(2) it
		// saved (it is write-protected again, its TLB entries shot
		// down, and the next store faults): session 3 measured, on one
		// disk, sync-write-1 at 0.83-0.89x the fdatasync floor mapped
		// against 0.99-1.01x with pwrite, and 16 writers at 7.6-8.2x
		// against 9.3x (docs/performance/wal.md).
		mapped := !syncWrites || d.opts.mapSync
		d.log, err = openLog(d.fs, dir, d.rec.next, d.opts.segmentSize, max(d.opts.prealloc, 0), mapped)
	}
	if err != nil {
		unlock()
		return nil, fmt.Errorf("storage: init: recover %s: %w", dir, err)
	}
	d.ckptSize.Store(d.rec.ckptSize)
	d.ckptSeq = d.rec.ckpt
	d.stop = make(chan struct{})
	d.kick = make(chan struct{}, 1)
	if d.opts.ckptMin > 0 {
		d.setTrigger(d.rec.ckptSize)
		d.log.ckptWanted = func() {
			select {
			case d.kick <- struct{}{}:
			default:
			}
		}
	}
	d.bg.Add(1)
	go d.background()
	return d, nil
}

func isLocked(err error) bool { return errors.Is(err, ErrLocked) }

func (d *durable) background() {
	defer d.bg.Done()
	var tick <-chan time.Time
	if !d.sync {
		t := time.NewTicker(d.opts.syncInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-d.stop:
			return
		case <-d.kick:
			d.checkpoint()
		case <-tick:
			d.log.flush() // a failure is sticky in the log
		}
	}
}

// check refuses writes once the log failed.
func (d *durable) check(op string) error { return d.log.check(op) }

// commit waits until seq is acknowledged under the configured guarantee,
// first for a checkpoint if the log is past its limit (backpressure).
func (d *durable) commit(op string, seq uint64) error {
	if d.overLimit() {
		d.backpressure()
	}
	return d.log.commit(op, seq, d.sync)
}

// setTrigger sets the checkpoint trigger and the backpressure limit from the
// size of the last checkpoint.
func (d *durable) setTrigger(ckptSize int64) {
	t := max(d.opts.ckptMin, ckptSize/2)
	d.log.ckptTrigger.Store(t)
	switch {
	case d.opts.logMax > 0:
		d.logMax.Store(d.opts.logMax)
	case d.opts.logMax == 0:
		d.logMax.Store(2 * t)
	}
}

// overLimit reports whether the log written since the last completed
// checkpoint is past the backpressure limit (and the log still works: a
// failed one refuses the write anyway).
func (d *durable) overLimit() bool {
	lim := d.logMax.Load()
	return lim > 0 && d.log.totalWritten.Load()-d.doneBase.Load() > lim && !d.log.failed.Load()
}

// backpressure parks the caller, asking for checkpoints, until the log is
// back within its limit, the engine closes, or an attempt failed since the
// caller parked (a checkpoint that cannot succeed must not hold writes
// forever). A successful attempt whose rotation came soon after the previous
// one may leave the log past the limit: the caller waits for the next.
func (d *durable) backpressure() {
	d.bpMu.Lock()
	defer d.bpMu.Unlock()
	if !d.overLimit() || d.closed.Load() { // an attempt ended since the caller looked
		return
	}
	d.stalls.Add(1)
	d.parked.Add(1)
	defer d.parked.Add(-1)
	for {
		gen := d.bpGen
		d.log.ckptWanted()
		for d.bpGen == gen && !d.closed.Load() {
			d.bpCond.Wait()
		}
		if d.closed.Load() || d.bpFailed || !d.overLimit() {
			return
		}
	}
}

// checkpoint writes a checkpoint now and removes the log it makes obsolete.
func (d *durable) checkpoint() error {
	d.ckptMu.Lock()
	defer d.ckptMu.Unlock()
	if d.closed.Load() {
		return ErrClosed
	}
	base, err := d.checkpointLocked()
	d.ckptErr = err
	d.bpMu.Lock()
	if err == nil {
		d.doneBase.Store(base)
	}
	d.bpFailed = err != nil
	d.bpGen++
	d.bpCond.Broadcast()
	d.bpMu.Unlock()
	return err
}

// checkpointLocked writes a checkpoint and removes what it makes obsolete;
// it returns log.totalWritten at its rotation. Call under ckptMu.
func (d *durable) checkpointLocked() (int64, error) {
	seq, base, err := d.log.rotate()
	if err != nil {
		return 0, err
	}
	// Nothing logged since the newest checkpoint (the rotation kept the
	// empty segment that starts at its seq): it already holds every
	// record before seq, so it is not written again (a rename over it).
	if seq != d.ckptSeq {
		size, err := writeCheckpoint(d.fs, d.dir, seq, d.snap, d.log.flush)
		if err != nil {
			return 0, err
		}
		d.ckptSeq = seq
		d.ckptSize.Store(size)
		d.ckpts.Add(1)
		if d.opts.ckptMin > 0 {
			d.setTrigger(size)
		}
	}
	ckpts, segs, _, err := scanDir(d.fs, d.dir)
	if err != nil {
		return 0, err
	}
	for _, c := range ckpts {
		if c < seq {
			d.fs.Remove(filepath.Join(d.dir, checkpointName(c)))
		}
	}
	for _, s := range segs {
		if s < seq {
			d.fs.Remove(filepath.Join(d.dir, segmentName(s)))
		}
	}
	return base, d.fs.SyncDir(d.dir)
}

// close stops the background work, makes the log durable and releases the
// directory. It returns the log's failure (sticky, or of the final flush or
// close) wrapped in "storage: close". Idempotent: a second call returns nil.
func (d *durable) close() error {
	if d.closed.Swap(true) {
		return nil
	}
	close(d.stop)
	d.bpMu.Lock() // parked writers see closed (they checked it under bpMu)
	d.bpCond.Broadcast()
	d.bpMu.Unlock()
	d.bg.Wait()
	d.ckptMu.Lock() // a checkpoint started by a caller finishes first
	d.ckptMu.Unlock()
	err := d.log.close()
	if uerr := d.unlock(); err == nil {
		err = uerr
	}
	if err != nil {
		return fmt.Errorf("storage: close: %w", err)
	}
	return nil
}

// stripe returns key's stripe index.
func (d *durable) stripe(key string) int {
	return int(maphash.String(d.seed, key) % durStripes)
}

// lockKeys locks the stripes of keys (ascending, each once) and returns
// the unlock.
func (d *durable) lockKeys(keys []string) func() {
	if len(keys) == 1 {
		m := &d.stripes[d.stripe(keys[0])]
		m.Lock()
		return m.Unlock
	}
	idx := make([]int, len(keys))
	for i, k := range keys {
		idx[i] = d.stripe(k)
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		d.stripes[i].Lock()
	}
	return func() {
		for _, i := range idx {
			d.stripes[i].Unlock()
		}
	}
}

// wallExpiry converts a TTL to the log's absolute expiry (Unix ms; 0 none),
// rounding up to whole milliseconds like the engines.
func wallExpiry(ttl time.Duration) int64 {
	ms := ttlMillis(ttl)
	if ms == 0 {
		return 0
	}
	return time.Now().UnixMilli() + int64(ms)
}

// backupTo writes snap as a database in dir (created if missing, must be
// empty): one checkpoint whose seq is seq, which Init opens.
func backupTo(ctx context.Context, dir string, seq uint64, snap snapshotFunc) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("storage: backup: %w", err)
	}
	names, err := osFS{}.List(dir)
	if err != nil {
		return fmt.Errorf("storage: backup: %w", err)
	}
	if len(names) > 0 {
		return fmt.Errorf("storage: backup: directory %q is not empty", dir)
	}
	n := 0
	checked := func(emit func(string, string, int64) error) error {
		return snap(func(k, v string, exp int64) error {
			if n++; n%1024 == 0 {
				if err := checkCtx(ctx); err != nil {
					return err
				}
			}
			return emit(k, v, exp)
		})
	}
	if _, err := writeCheckpoint(osFS{}, dir, seq, checked, func() error {
		return osFS{}.SyncDir(filepath.Dir(filepath.Clean(dir)))
	}); err != nil {
		if cerr := checkCtx(ctx); cerr != nil {
			return cerr
		}
		return fmt.Errorf("storage: backup: %w", err)
	}
	return nil
}
