package storage

// The write-ahead log writer: appends, group commit, segment rotation.
//
// Appending is a short critical section (mu): the record gets the next seq
// and its frame is copied into buf. Engines call append while they hold the
// locks that ordered the write's apply (the pure-Go engine's write lock, the
// C engine's key stripes, durable.go), so two writes of one key are logged
// in the order they were applied. Everything slow happens after those locks
// are released:
//
//   - writeOut(seq) moves buf to the kernel (everything appended so far at
//     once, under wmu: whoever holds wmu writes for everyone queued behind
//     it). SyncWrites false acknowledges here: the bytes survive the
//     process being killed. The segment is preallocated with zeros
//     (preallocate), so the bytes go into allocated blocks inside the
//     file's size, by a copy into a shared mapping of the file (store: no
//     system call, the page cache takes them at once) or by pwrite where
//     the file cannot be mapped.
//   - syncTo(seq) makes seq durable: pipelined group commit. A waiter whose
//     record is not in the kernel writes it out first (writeOut), also
//     while an fdatasync is in flight, so the next group's write overlaps
//     the running sync. A record is acknowledged only by an fdatasync that
//     started after its write (or store) returned. When no sync is in
//     flight, one waiter leads: it gathers (waits, yielding in Go, for the
//     writers the last sync released to come back), writes out everything
//     pending, runs the fdatasync and wakes every waiter; the others sleep
//     on a sync.Cond meanwhile. So waiting writers are parked goroutines,
//     never threads blocked in C.
//
// Failure is sticky (PostgreSQL's fsync lesson): the first failed write or
// sync stores err, every later append is refused (check) and every waiter
// whose record was not yet durable gets the error. A failed fdatasync is
// never retried: after one, the kernel may have dropped the dirty pages and
// a second sync would report success for data that is gone.
//
// Rotation (a segment past segMax, or a checkpoint asking for a fresh
// segment) happens under wmu: the old segment gets every byte destined for
// it and a sync, then the new segment is created, its header synced, and
// the directory synced. A sync leader never races it: rotation waits until
// no sync is in flight and holds the syncing flag itself.

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

type walLog struct {
	fs     walFS
	dir    string
	segMax int64

	mu       sync.Mutex // the append critical section
	buf      []byte     // frames appended, not yet written
	bufFirst uint64     // seq of buf's first frame (if len(buf) > 0)
	nextSeq  uint64     // the seq the next append gets

	wmu      sync.Mutex // serialises file writes and rotation
	f        walFile    // the current segment
	segFirst uint64     // the seq of its first record
	segSize  int64      // bytes of header and records in the current segment
	segAlloc int64      // its file size: segSize and the zeros preallocated after it
	prealloc int64      // bytes of zeros added at a time (0: none)
	spare    []byte     // a written buffer, reused for the next buf
	mapOn    bool       // store records through a mapping (else pwrite)
	win      []byte     // the mapped window of the current segment (nil: none)
	winOff   int64      // its offset in the file

	smu     sync.Mutex
	scond   sync.Cond
	written uint64 // the last seq in the kernel
	synced  uint64 // the last seq durable
	syncing bool   // a sync leader (or a rotation) is in flight
	// gathering: a leader-to-be waits for the next group (syncTo).
	// expect is how many records the last sync's cycle held (covered by
	// it or appended while it ran), lastSyncDur its duration.
	gathering   bool
	expect      uint64
	lastSyncDur time.Duration
	sf          walFile // the segment that holds written
	err         error   // sticky failure

	failed       atomic.Bool
	syncs        atomic.Uint64 // fdatasyncs of group commit (for benchmarks)
	syncNanos    atomic.Int64  // and their total duration
	sinceCkpt    atomic.Int64  // bytes written since the last checkpoint's rotation
	ckptWanted   func()        // called (non-blocking) after a write once sinceCkpt passes ckptTrigger
	ckptTrigger  atomic.Int64
	totalWritten atomic.Int64
}

// openLog starts a log whose next record has seq next, in a new segment
// with prealloc bytes of zeros preallocated at a time (0: none).
func openLog(fs walFS, dir string, next uint64, segMax, prealloc int64, mapOn bool) (*walLog, error) {
	l := &walLog{fs: fs, dir: dir, segMax: segMax, nextSeq: next, written: next - 1, synced: next - 1,
		prealloc: prealloc, mapOn: mapOn}
	l.scond.L = &l.smu
	f, alloc, err := l.createSegment(next)
	if err != nil {
		return nil, err
	}
	l.f, l.sf, l.segSize, l.segAlloc, l.segFirst = f, f, fileHeaderSize, alloc, next
	return l, nil
}

// createSegment creates the segment whose first record is seq, with its
// header and its first preallocated zeros synced and the directory entry
// synced; it returns the file and its size.
func (l *walLog) createSegment(seq uint64) (walFile, int64, error) {
	name := filepath.Join(l.dir, segmentName(seq))
	f, err := l.fs.Create(name)
	if err != nil {
		return nil, 0, err
	}
	alloc := int64(fileHeaderSize)
	if _, err = f.Write(fileHeader(walMagic, seq)); err == nil {
		if alloc, err = l.preallocate(f, alloc, alloc+1); err == nil {
			if err = f.Sync(); err == nil {
				err = l.fs.SyncDir(l.dir)
			}
		}
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("create log segment %s: %w", name, err)
	}
	return f, alloc, nil
}

// zeroChunk is what preallocate writes, a slice at a time.
var zeroChunk = make([]byte, 256<<10)

// preallocate extends f, whose size is alloc, with zeros (written, so the
// blocks are allocated and initialised) to the next multiple of prealloc
// past need, and returns the new size. Records then overwrite allocated
// blocks within the file's size, so the fdatasync that makes them durable
// writes data pages only, not the inode's size and extents (on ext4 one
// journal commit, or without a journal one inode write, per prealloc bytes
// of log instead of one per sync). The zeros cost one extra write of the
// log's bytes, in prealloc-sized pieces (sequential). Recovery reads
// the zeros after the last record as the end of the log (docs/format.md).
func (l *walLog) preallocate(f walFile, alloc, need int64) (int64, error) {
	if l.prealloc <= 0 || need <= alloc {
		return alloc, nil
	}
	end := need + l.prealloc - 1 - (need-1)%l.prealloc
	for off := alloc; off < end; {
		n, err := f.WriteAt(zeroChunk[:min(int64(len(zeroChunk)), end-off)], off)
		off += int64(n)
		if err != nil {
			return off, fmt.Errorf("preallocate log: %w", err)
		}
	}
	return end, nil
}

// winSize is the length of the mapped window of a segment: it moves along
// as records fill it, so the process maps (and counts in its RSS) at most
// this much of the log.
const winSize = 1 << 20

// store puts b at segSize, inside the preallocated zeros, with a copy into
// the mapped window when the file can be mapped: no system call, and the
// bytes are in the page cache (they survive the process being killed; the
// fdatasync that syncTo runs after the copy writes them like written
// pages). Otherwise, or for a record past a fresh window, pwrite. Call
// under wmu. As with any mapped file, a store into a page the kernel has
// evicted reads it back first, and an I/O error there (or a filesystem that
// cannot place the page) is a SIGBUS: copyMapped turns it into an error,
// which makes the log read-only like a failed write.
func (l *walLog) store(b []byte) (int, error) {
	start, end := l.segSize, l.segSize+int64(len(b))
	if l.mapOn && end <= l.segAlloc {
		if l.win == nil || end > l.winOff+int64(len(l.win)) {
			l.unmapLocked()
			off := start &^ int64(pageSize-1)
			if m, ok := l.f.(walMapper); !ok {
				l.mapOn = false // this file cannot be mapped: pwrite
			} else if w, err := m.Map(off, winSize); err != nil {
				l.mapOn = false
			} else {
				l.win, l.winOff = w, off
			}
		}
		if l.win != nil && end <= l.winOff+int64(len(l.win)) {
			return copyMapped(l.win[start-l.winOff:], b)
		}
	}
	return l.f.WriteAt(b, start)
}

var pageSize = os.Getpagesize()

// copyMapped copies src into the mapping dst. A fault on the mapping (the
// kernel could not read the page back or give it a block) panics instead of
// crashing the process (debug.SetPanicOnFault, for this goroutine only), and
// the panic becomes the error the caller reports; nothing copied counts.
func copyMapped(dst, src []byte) (n int, err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			f, ok := r.(interface{ Addr() uintptr })
			if !ok {
				panic(r)
			}
			n, err = 0, fmt.Errorf("store into the mapped log: memory fault at %#x (I/O error or no space)", f.Addr())
		}
	}()
	return forwardCopy(dst, src), nil
}

// forwardCopy copies src into dst with stores in address order, 8 bytes at
// a time. A process killed during the copy leaves in the page cache exactly
// the stores it made: with copy (runtime.memmove), whose large-copy path
// stores the first 32 bytes last, a kill could leave the first record's
// header unwritten behind whole later records, which recovery rightly reads
// as a corrupt middle, not a torn tail (TestWALKill, 1 cycle in a few
// thousand). In address order, only a tail can be missing.
func forwardCopy(dst, src []byte) int {
	n := min(len(dst), len(src))
	d, s := dst[:n], src[:n]
	for len(s) >= 32 { // four loads, then four stores in address order
		a, b := binary.LittleEndian.Uint64(s), binary.LittleEndian.Uint64(s[8:])
		c, e := binary.LittleEndian.Uint64(s[16:]), binary.LittleEndian.Uint64(s[24:32])
		binary.LittleEndian.PutUint64(d, a)
		binary.LittleEndian.PutUint64(d[8:], b)
		binary.LittleEndian.PutUint64(d[16:], c)
		binary.LittleEndian.PutUint64(d[24:32], e)
		d, s = d[32:], s[32:]
	}
	for len(s) >= 8 {
		binary.LittleEndian.PutUint64(d, binary.LittleEndian.Uint64(s))
		d, s = d[8:], s[8:]
	}
	copy(d, s) // under 8 bytes: within one word
	return n
}

// unmapLocked releases the mapped window (its stores stay in the page
// cache). Call under wmu.
func (l *walLog) unmapLocked() {
	if l.win != nil {
		l.f.(walMapper).Unmap(l.win)
		l.win = nil
	}
}

// trimLocked cuts the zeros preallocated after the current segment's last
// record (before its final sync: a closed segment ends with its last
// record). Call under wmu.
func (l *walLog) trimLocked() error {
	l.unmapLocked()
	if l.segAlloc <= l.segSize {
		return nil
	}
	if err := l.f.Truncate(l.segSize); err != nil {
		return fmt.Errorf("trim log: %w", err)
	}
	l.segAlloc = l.segSize
	return nil
}

// check returns nil if the log accepts writes, else the sticky failure as
// an ErrReadOnly. Engines call it before applying a write.
func (l *walLog) check(op string) error {
	if !l.failed.Load() {
		return nil
	}
	l.smu.Lock()
	err := l.err
	l.smu.Unlock()
	return readOnlyErr(op, err)
}

func readOnlyErr(op string, cause error) error {
	return fmt.Errorf("%w (%s: %w)", ErrReadOnly, op, cause)
}

// append logs one write group whose payload fill appends, and returns its
// seq. It never fails: a failure shows up when the caller waits (commit).
func (l *walLog) append(fill func([]byte) []byte) uint64 {
	l.mu.Lock()
	seq := l.nextSeq
	l.nextSeq++
	if len(l.buf) == 0 {
		l.bufFirst = seq
	}
	l.buf = appendFrame(l.buf, seq, fill)
	l.mu.Unlock()
	return seq
}

// commit returns once seq is in the kernel (sync false) or durable (sync
// true), or with the log's failure.
func (l *walLog) commit(op string, seq uint64, sync bool) error {
	if !sync {
		if err := l.writeOut(seq); err != nil {
			return readOnlyErr(op, err)
		}
		return nil
	}
	if err := l.syncTo(seq, true); err != nil {
		return readOnlyErr(op, err)
	}
	return nil
}

// state returns written, synced and err.
func (l *walLog) state() (written, synced uint64, err error) {
	l.smu.Lock()
	defer l.smu.Unlock()
	return l.written, l.synced, l.err
}

// fail records the first failure. Call under smu.
func (l *walLog) failLocked(err error) {
	if l.err == nil {
		l.err = err
		l.failed.Store(true)
	}
	l.scond.Broadcast()
}

// writeOut writes every appended frame to the kernel, unless seq is
// already written.
func (l *walLog) writeOut(seq uint64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	written, _, err := l.state()
	if written >= seq {
		return nil // in the kernel before any failure
	}
	if err != nil {
		return err
	}
	return l.writeLocked(false)
}

// writeLocked writes buf (taking it from the appenders), first rotating if
// the segment is full or rotate is set; with rotate the new segment starts at
// the seq after buf's frames, which it returns. Call under wmu.
func (l *walLog) writeLocked(rotate bool) error {
	l.mu.Lock()
	b, first, next := l.buf, l.bufFirst, l.nextSeq
	l.buf = l.spare[:0]
	l.mu.Unlock()
	l.spare = nil
	if len(b) > 0 && l.segSize > fileHeaderSize && l.segSize+int64(len(b)) > l.segMax {
		if err := l.rotateLocked(first); err != nil {
			return err
		}
	}
	if len(b) > 0 {
		var n int
		alloc, err := l.preallocate(l.f, l.segAlloc, l.segSize+int64(len(b)))
		l.segAlloc = alloc
		if err == nil {
			n, err = l.store(b)
			l.segSize += int64(n)
			if err == nil && n < len(b) {
				err = fmt.Errorf("short write of %d of %d bytes", n, len(b))
			}
			if err != nil {
				err = fmt.Errorf("write log: %w", err)
			}
		}
		if err != nil {
			l.smu.Lock()
			l.failLocked(err)
			l.smu.Unlock()
			return err
		}
		l.sinceCkpt.Add(int64(len(b)))
		l.totalWritten.Add(int64(len(b)))
		l.smu.Lock()
		l.written, l.sf = next-1, l.f
		l.smu.Unlock()
		if cap(b) <= 4<<20 {
			l.spare = b[:0]
		}
		if t := l.ckptTrigger.Load(); t > 0 && l.sinceCkpt.Load() > t && l.ckptWanted != nil {
			l.ckptWanted()
		}
	}
	if rotate && (l.segSize > fileHeaderSize || l.segFirst != next) {
		// (A segment that holds no record and starts at next is
		// what a rotation would create: creating it again would
		// truncate a live, synced file for nothing.)
		return l.rotateLocked(next)
	}
	return nil
}

// rotateLocked syncs and closes the current segment and starts a new one at
// seq (every record before seq is in the old segments). Call under wmu with
// every frame before seq written.
func (l *walLog) rotateLocked(seq uint64) error {
	l.smu.Lock()
	for l.syncing && l.err == nil {
		l.scond.Wait()
	}
	if l.err != nil {
		err := l.err
		l.smu.Unlock()
		return err
	}
	l.syncing = true
	l.smu.Unlock()

	err := l.trimLocked()
	if err == nil {
		if err = l.f.Sync(); err != nil {
			err = fmt.Errorf("sync log: %w", err)
		}
	}
	l.unmapLocked()
	var nf walFile
	var alloc int64
	if err == nil {
		l.f.Close()
		nf, alloc, err = l.createSegment(seq)
	}
	l.smu.Lock()
	l.syncing = false
	if err != nil {
		l.failLocked(err)
		l.smu.Unlock()
		return err
	}
	l.f, l.sf, l.segSize, l.segAlloc, l.segFirst = nf, nf, fileHeaderSize, alloc, seq
	l.synced = max(l.synced, seq-1)
	l.scond.Broadcast()
	l.smu.Unlock()
	return nil
}

// rotate writes everything appended so far into the current segment and
// starts a new one; it returns the new segment's first seq (every record
// appended before the call has a smaller seq) and totalWritten at the
// rotation.
func (l *walLog) rotate() (uint64, int64, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if _, _, err := l.state(); err != nil {
		return 0, 0, err
	}
	if err := l.writeLocked(true); err != nil {
		return 0, 0, err
	}
	l.smu.Lock()
	defer l.smu.Unlock()
	l.sinceCkpt.Store(0)
	return l.written + 1, l.totalWritten.Load(), nil
}

// syncTo returns once seq is durable: pipelined group commit.
//
// A record is acknowledged by an fdatasync that started after the write(2)
// that put it in the kernel returned (written is advanced only after the
// write returns, and a sync covers the written it read when it started).
// Writes do not wait for syncs: while one fdatasync is in flight, the next
// group's writers append, and the first of them to take wmu writes out
// everything pending in one write(2) (writeOut); the rest find their record
// written and wait. At most one sync is in flight (syncing; rotation takes
// the same flag).
//
// Gathering (PostgreSQL's commit_delay, made adaptive): the writers a sync
// acknowledges come back with their next record a few microseconds after
// it. A leader that started the next sync at once would cover only the
// records written during the last one, the returning writers would miss it
// and wait a whole sync more, and the groups settle at half the writers
// (measured: 7.5 writes per fdatasync with 16 writers against 15 with the
// gather). So the leader first waits, yielding in Go, until as many records
// are unsynced as the last sync's cycle held (covered by it or appended
// while it ran), or for half its duration, whichever comes first. A single
// writer (cycles of one) never waits, nor does flush (gather false: the
// background syncer, Close, checkpoints), which no writer is about to join.
func (l *walLog) syncTo(seq uint64, gather bool) error {
	l.smu.Lock()
	for l.synced < seq && l.err == nil {
		if l.written < seq {
			// Not in the kernel yet: write it (and everything appended
			// before it) out now, even while a sync is in flight.
			l.smu.Unlock()
			werr := l.writeOut(seq)
			l.smu.Lock()
			if werr != nil {
				break // sticky: l.err is set
			}
			continue
		}
		if l.syncing || l.gathering {
			// The sync in flight covers seq only if it started after
			// seq's write; either way the next one does.
			l.scond.Wait()
			continue
		}
		// Lead. First gather: the writers the last sync acknowledged
		// come back with their next record a few microseconds after
		// it; wait (yielding in Go) until as many records are unsynced
		// as were in the last sync's cycle, or for half its duration.
		l.gathering = true
		want, dur := l.expect, l.lastSyncDur
		l.smu.Unlock()
		if gather && want > 1 {
			// Yield, not sleep: a timer shorter than a millisecond
			// sleeps a whole one when the Ps are idle (the runtime's
			// netpoller waits in milliseconds), far longer than a
			// sync; Gosched lets the returning writers run and costs
			// at most half a sync of one P's time.
			deadline := time.Now().Add(dur / 2)
			for l.lastSeq()-l.syncedNow() < want && time.Now().Before(deadline) {
				runtime.Gosched()
			}
		}
		werr := l.writeOut(l.lastSeq())
		l.smu.Lock()
		l.gathering = false
		if werr != nil || l.syncing {
			// A failure is sticky (the loop ends); a rotation that
			// took the sync flag meanwhile is waited for, then retry.
			l.scond.Broadcast()
			continue
		}
		l.syncing = true
		f, target, prev := l.sf, l.written, l.synced
		l.smu.Unlock()
		start := time.Now()
		err := f.Sync()
		took := time.Since(start)
		l.syncs.Add(1)
		l.syncNanos.Add(int64(took))
		last := l.lastSeq()
		l.smu.Lock()
		l.syncing = false
		if err != nil {
			l.failLocked(fmt.Errorf("sync log: %w", err))
		} else {
			l.synced = max(l.synced, target)
			l.expect, l.lastSyncDur = last-prev, took
		}
		l.scond.Broadcast()
	}
	defer l.smu.Unlock()
	if l.synced >= seq {
		return nil // durable before any failure
	}
	return l.err
}

// syncedNow is the last durable seq.
func (l *walLog) syncedNow() uint64 {
	l.smu.Lock()
	defer l.smu.Unlock()
	return l.synced
}

// lastSeq is the seq of the last record appended.
func (l *walLog) lastSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nextSeq - 1
}

// flush makes everything appended durable (Close, the background syncer,
// checkpoints).
func (l *walLog) flush() error {
	seq := l.lastSeq()
	if err := l.writeOut(seq); err != nil {
		return err
	}
	return l.syncTo(seq, false) // no writer waits to join this sync
}

// close flushes, trims and closes the current segment. A failed log is
// closed as it is (recovery cuts the zeros after its last record).
func (l *walLog) close() error {
	err := l.flush()
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.smu.Lock()
	for l.syncing {
		l.scond.Wait()
	}
	l.smu.Unlock()
	if _, _, lerr := l.state(); err == nil && lerr == nil && l.segAlloc > l.segSize {
		if err = l.trimLocked(); err == nil {
			if err = l.f.Sync(); err != nil {
				err = fmt.Errorf("sync log: %w", err)
			}
		}
	}
	l.unmapLocked()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}
