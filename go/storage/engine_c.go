//go:build ccore && cgo

package storage

// The C engine: the C core (build/libmantis.a: an MVCC skiplist and a
// concurrent cache, bindings/mantis.h) behind StorageEngine, through the cgo
// layer in cgo_c.go. docs/architecture/go-cengine.md explains the design;
// the rules it keeps are:
//
//   - Handles, never pointers. The engine holds a db handle and a cache
//     handle (64-bit, generation-checked by the C handle table); iterators
//     and transactions hold iterator and snapshot handles. A stale handle
//     gets MANTIS_CLOSED from C, never undefined behaviour, so Close may run
//     concurrently with calls in flight and a backstop cleanup can never
//     double-free.
//   - One cgo call per operation: Get (the storage read; with a cache, the
//     cache lookup and, on a miss, the storage read and fill, in C), Put, Delete, one per batch (BatchPut,
//     BatchDelete, Commit: one encoded buffer, one mantis_db_write), one per
//     BatchGet (mantis_db_multiget) and one per chunk of iterator entries
//     (mantis_iter_next_chunk), never one per item.
//   - Strings go to C without copying (unsafe.StringData, read during the
//     call only). Values come back copied once, by C, into a fresh Go
//     buffer that becomes the returned string (unsafe.String): no second
//     copy, and no allocation beyond the result.
//   - No cache unless StorageConfig.CacheSize asks for one: every value is
//     in memory already, and a cache in front of it made every point suite
//     slower (docs/performance/go-cengine.md, "The cache, measured"). With
//     one: cache-through writes and cache-aside reads by the C core's
//     coherence protocol (mantis_coherent_*, csrc/mt_coherent.c), so that no
//     Get ever reads a value older than a write that returned before it
//     began.
//
// Lifetimes: Close closes, in order, every open iterator and snapshot handle
// (registered in cres), the db and the cache; the C core frees their memory
// when the last call in flight on each returns. runtime.AddCleanup closes
// the same handles if an engine becomes unreachable without Close; a handle
// closed twice only gets MANTIS_CLOSED back.

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// maxHint bounds the size hint of the first read buffer (Get, BatchGet): a
// value larger than this costs a second cgo call at its exact size, so one
// large value (up to MaxValueSize) never makes later reads allocate its size.
const maxHint = 1 << 20

// cstate is an open engine's handles; immutable, published by Init.
type cstate struct {
	db, cache uint64
	dur       *durable // the log of a data directory; nil in memory (durable_c.go)
}

// cres is what Close and the backstop cleanup release. It does not point to
// the engine, so that the engine can become unreachable.
type cres struct {
	mu    sync.Mutex
	state int // stateNew, stateOpen, stateClosed
	st    *cstate
	// open iterator (true) and snapshot (false) handles not yet closed.
	open map[uint64]bool
	// cleanup is the engine's backstop, stopped by Close.
	cleanup runtime.Cleanup
}

// CStorageEngine is the C engine. It implements Engine. Create it with
// NewCStorageEngine and open it with Init; the zero value is not usable.
type CStorageEngine struct {
	cfg StorageConfig
	st  atomic.Pointer[cstate] // nil unless open
	res *cres

	dataDir    string        // under res.mu
	batchReads atomic.Uint64 // keys read by BatchGet (Stats.Reads)
	dupDeletes atomic.Uint64 // repeated keys of BatchDelete calls (Stats.Deletes)
	hint       atomic.Int64  // the last value length read: Get's first buffer size
	getRetries atomic.Uint64 // cache lookups repeated for a bigger buffer (Stats.Reads)
	txnReads   atomic.Uint64 // storage reads of transactions (not in Stats.Reads)
	scanHint   atomic.Int64  // bytes the last prefix scan fetched to its end (iterator_c.go)

	durOpts *durableOptions // test knobs of the data directory, read by Init
}

var _ Engine = (*CStorageEngine)(nil)

// NewCStorageEngine returns a C engine with configuration cfg. It is usable
// after Init. cfg.CacheSize > 0 puts a cache of that many bytes in front of
// the database (0 or negative, the default: no cache; see the rules at the
// top of this file); BufferSize is ignored. A data directory given to Init
// makes it durable (durable_c.go).
func NewCStorageEngine(cfg StorageConfig) *CStorageEngine {
	e := &CStorageEngine{cfg: cfg, res: &cres{open: make(map[uint64]bool)}}
	e.hint.Store(64)
	return e
}

// Init opens the engine: a C database and, if configured, a C cache. See
// StorageEngine.Init.
func (e *CStorageEngine) Init(dataDir string) error {
	r := e.res
	r.mu.Lock()
	state := r.state
	r.mu.Unlock()
	switch state {
	case stateOpen:
		return ErrInitialized
	case stateClosed:
		return fmt.Errorf("%w (init)", ErrClosed)
	}
	if dataDir != "" {
		if err := checkDataDir(dataDir); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.state {
	case stateOpen:
		return ErrInitialized
	case stateClosed:
		return fmt.Errorf("%w (init)", ErrClosed)
	}
	db, rc := cDBOpen()
	if rc != cOK {
		return cError("init: open database", rc)
	}
	var cache uint64 // 0: no cache
	if e.cfg.CacheSize > 0 {
		if cache, rc = cCacheOpen(uint64(e.cfg.CacheSize)); rc != cOK {
			cDBClose(db)
			return cError("init: open cache", rc)
		}
	}
	st := &cstate{db: db, cache: cache}
	if dataDir != "" {
		if err := e.openDurableC(st, dataDir); err != nil {
			cDBClose(db)
			cCacheClose(cache)
			return err
		}
	}
	r.st = st
	r.state = stateOpen
	e.dataDir = dataDir
	e.st.Store(st)
	// The backstop: if e becomes unreachable without Close, close its
	// handles. It holds r, not e.
	r.cleanup = runtime.AddCleanup(e, func(r *cres) { r.close() }, r)
	return nil
}

// Close closes the engine; see StorageEngine.Close. It is idempotent and
// deterministic: when it returns, every handle of the engine (its iterators'
// and transactions' included) is closed and the C core frees their memory as
// soon as the calls in flight on them return.
func (e *CStorageEngine) Close() error {
	e.res.mu.Lock()
	if e.res.state == stateOpen {
		// Calls that load st from now on fail with ErrClosed; calls
		// that loaded it before get MANTIS_CLOSED from C.
		e.st.Store(nil)
		e.res.cleanup.Stop()
	}
	e.res.mu.Unlock()
	return e.res.close()
}

// close releases everything r holds, once: open iterators and snapshots
// first (they keep the database alive in C), then the database, then the
// cache. A second call finds the state closed and does nothing. It returns
// the log's failure to flush and close (nil in memory).
func (r *cres) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == stateClosed {
		return nil
	}
	prev := r.state
	r.state = stateClosed
	if prev != stateOpen {
		return nil
	}
	var err error
	if r.st.dur != nil {
		err = r.st.dur.close() // flushes the log
	}
	for h, isIter := range r.open {
		if isIter {
			cIterClose(h)
		} else {
			cSnapshotClose(h)
		}
	}
	clear(r.open)
	cDBClose(r.st.db)
	cCacheClose(r.st.cache)
	return err
}

// register records an open iterator (isIter) or snapshot handle so that
// Close closes it. It fails with ErrClosed, closing h itself, if the engine
// closed meanwhile.
func (r *cres) register(h uint64, isIter bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != stateOpen {
		closeHandle(h, isIter)
		return ErrClosed
	}
	r.open[h] = isIter
	return nil
}

// release closes h if it is still registered (the engine's Close may have
// closed it already). Safe to call any number of times.
func (r *cres) release(h uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if isIter, ok := r.open[h]; ok {
		delete(r.open, h)
		closeHandle(h, isIter)
	}
}

func closeHandle(h uint64, isIter bool) {
	if isIter {
		cIterClose(h)
	} else {
		cSnapshotClose(h)
	}
}

// DataDir returns the directory given to Init ("" for in-memory engines).
func (e *CStorageEngine) DataDir() string {
	e.res.mu.Lock()
	defer e.res.mu.Unlock()
	return e.dataDir
}

// state returns the open engine's handles, or ErrNotInitialized before Init,
// ErrClosed after Close.
func (e *CStorageEngine) state() (*cstate, error) {
	st := e.st.Load()
	if st == nil {
		return nil, e.res.notOpen()
	}
	return st, nil
}

// notOpen is the error of a call that found no handles: ErrNotInitialized
// before Init, else ErrClosed (Close clears the handles before it changes
// the state, so a call racing Close gets ErrClosed).
func (r *cres) notOpen() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == stateNew {
		return ErrNotInitialized
	}
	return ErrClosed
}

// Put writes key -> value. See StorageEngine.Put.
func (e *CStorageEngine) Put(ctx context.Context, key, value string) error {
	return e.put(ctx, "put", key, value, 0)
}

// PutWithTTL writes key -> value expiring ttl from now. See Engine.PutWithTTL.
// Values with a TTL are not cached (reads of them go to storage).
func (e *CStorageEngine) PutWithTTL(ctx context.Context, key, value string, ttl time.Duration) error {
	return e.put(ctx, "put with ttl", key, value, ttl)
}

func (e *CStorageEngine) put(ctx context.Context, op, key, value string, ttl time.Duration) error {
	if err := checkCtx(ctx); err != nil {
		return err
	}
	if err := checkKV(op, key, value); err != nil {
		return err
	}
	st, err := e.state()
	if err != nil {
		return err
	}
	if st.dur != nil {
		return putDurable(st, op, key, value, ttl)
	}
	if rc := cPut(st.db, st.cache, key, value, ttlMillis(ttl)); rc != cOK {
		return cError(op, rc)
	}
	return nil
}

// probeAbove is the value size from which Get asks C for the exact size
// before allocating: one more cgo call (a cache hit, about 0.1 µs) instead of
// a result buffer sized by a guess, which for values of 16-64 KiB is too
// small half the time (a wasted allocation and a second call) and too big
// the other half (a second allocation and copy into an exact string).
const probeAbove = 4 << 10

// Get returns key's value. See StorageEngine.Get. A cached key costs one cgo
// call and one allocation (the value's buffer, which becomes the string);
// values over probeAbove cost one more cgo call, which tells their size.
func (e *CStorageEngine) Get(ctx context.Context, key string) (string, error) {
	// The buffer is sized by the last value read, so one call usually
	// suffices; getAppend grows it to the exact size when it does not.
	hint := int(e.hint.Load())
	size := hint
	if size > probeAbove {
		size = 0
	}
	buf, err := e.getAppend(ctx, make([]byte, 0, size), key)
	if err != nil {
		return "", err
	}
	return e.valueString(buf, hint), nil
}

// getAppend appends key's value to dst and returns the extended slice; on
// an error it returns dst unchanged. The value is copied once, by C, into
// dst's spare capacity; if it does not fit, dst is grown to fit it exactly
// (a new array: the caller's is left as it was) and read again. It
// allocates nothing when the value fits. The caller owns dst and the result;
// C keeps no pointer to either.
func (e *CStorageEngine) getAppend(ctx context.Context, dst []byte, key string) ([]byte, error) {
	if err := checkCtx(ctx); err != nil {
		return dst, err
	}
	if err := checkKey("get", key); err != nil {
		return dst, err
	}
	st, err := e.state()
	if err != nil {
		return dst, err
	}
	out := dst
	rc, n := cGet(st.db, st.cache, key, out)
	for rc == cEBufSize {
		// The value is larger than the room left: read it again into an
		// exact buffer (it may have grown in between: loop). The repeated
		// cache lookup is not another read (Stats.Reads).
		e.getRetries.Add(1)
		out = make([]byte, len(dst), len(dst)+n)
		copy(out, dst)
		rc, n = cGet(st.db, st.cache, key, out)
	}
	switch rc {
	case cOK:
		return out[:len(out)+n], nil
	case cNotFound:
		return dst, ErrNotFound
	}
	return dst, cError("get", rc)
}

// valueString returns buf, which C filled, as a string without copying it,
// and adapts the size hint. Only when the buffer is much larger than the
// value (the guess was stale), the value is copied into an exact string so
// that a small value never pins a large buffer.
func (e *CStorageEngine) valueString(buf []byte, hint int) string {
	n := len(buf)
	if n != hint && n <= maxHint {
		e.hint.Store(int64(n))
	}
	if n == 0 {
		return ""
	}
	if cap(buf)-n > 64 && cap(buf)-n > n/4 {
		return string(buf)
	}
	return unsafe.String(&buf[0], n)
}

// Delete removes key. See StorageEngine.Delete.
func (e *CStorageEngine) Delete(ctx context.Context, key string) error {
	if err := checkCtx(ctx); err != nil {
		return err
	}
	if err := checkKey("delete", key); err != nil {
		return err
	}
	st, err := e.state()
	if err != nil {
		return err
	}
	if st.dur != nil {
		return deleteDurable(st, key)
	}
	if rc := cDelete(st.db, st.cache, key); rc != cOK {
		return cError("delete", rc)
	}
	return nil
}

// BatchPut writes every pair atomically with one mantis_db_write. See
// StorageEngine.BatchPut.
func (e *CStorageEngine) BatchPut(ctx context.Context, kvPairs map[string]string) error {
	if err := checkCtx(ctx); err != nil {
		return err
	}
	var size int64
	for k, v := range kvPairs {
		if err := checkKV("batch put", k, v); err != nil {
			return err
		}
		size += recordSize(k, v)
	}
	if err := checkBatchSize("batch put", size); err != nil {
		return err
	}
	st, err := e.state()
	if err != nil {
		return err
	}
	if len(kvPairs) == 0 {
		return nil
	}
	b := getBatch(int(size))
	for k, v := range kvPairs {
		b.add(cOpPut, k, v)
	}
	var rc int
	if st.dur != nil {
		rc, err = writeDurable(st, "batch put", mapKeys(kvPairs), b.buf, 0,
			func(d *durable) uint64 { return d.logBatchPut(kvPairs) })
	} else {
		rc, _ = cWrite(st.db, st.cache, b.buf, 0)
	}
	putBatch(b)
	if err != nil {
		return err
	}
	if rc != cOK {
		return cError("batch put", rc)
	}
	return nil
}

// BatchDelete deletes every key atomically with one mantis_db_write. See
// StorageEngine.BatchDelete.
func (e *CStorageEngine) BatchDelete(ctx context.Context, keys []string) error {
	if err := checkCtx(ctx); err != nil {
		return err
	}
	var size int64
	for _, k := range keys {
		if err := checkKey("batch delete", k); err != nil {
			return err
		}
		size += recordSize(k, "")
	}
	if err := checkBatchSize("batch delete", size); err != nil {
		return err
	}
	st, err := e.state()
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	b := getBatch(int(size))
	for _, k := range keys {
		b.add(cOpDelete, k, "")
	}
	var rc int
	if st.dur != nil {
		rc, err = writeDurable(st, "batch delete", keys, b.buf, 0,
			func(d *durable) uint64 { return d.logBatchDelete(keys) })
	} else {
		rc, _ = cWrite(st.db, st.cache, b.buf, 0)
	}
	putBatch(b)
	if err != nil {
		return err
	}
	if rc != cOK {
		return cError("batch delete", rc)
	}
	// Stats.Deletes counts one per key given; the C core applies (and
	// counts) a key repeated in one batch once.
	if dups := countDuplicates(keys); dups != 0 {
		e.dupDeletes.Add(uint64(dups))
	}
	return nil
}

// dupSets are reused sets for countDuplicates.
var dupSets = sync.Pool{New: func() any { return make(map[string]struct{}) }}

// countDuplicates returns how many of keys repeat an earlier one, without
// allocating (short lists are compared pairwise, long ones go through a
// pooled set).
func countDuplicates(keys []string) int {
	n := 0
	if len(keys) <= 16 {
		for i := 1; i < len(keys); i++ {
			for j := 0; j < i; j++ {
				if keys[i] == keys[j] {
					n++
					break
				}
			}
		}
		return n
	}
	set := dupSets.Get().(map[string]struct{})
	for _, k := range keys {
		if _, ok := set[k]; ok {
			n++
		} else {
			set[k] = struct{}{}
		}
	}
	clear(set)
	if len(keys) <= 1<<16 {
		dupSets.Put(set)
	}
	return n
}

// BatchGet reads keys at one snapshot with one mantis_coherent_multiget
// (from the cache when every key is resident and no write of them is in
// flight, else mantis_db_multiget). See
// StorageEngine.BatchGet. The values found share one buffer (copied once
// by C): keeping any of them keeps that buffer alive.
func (e *CStorageEngine) BatchGet(ctx context.Context, keys []string) (map[string]string, error) {
	if err := checkCtx(ctx); err != nil {
		return nil, err
	}
	size := 0
	for _, k := range keys {
		if err := checkKey("batch get", k); err != nil {
			return nil, err
		}
		size += 4 + len(k)
	}
	if uint64(len(keys)) > uint64(^uint32(0)) {
		return nil, fmt.Errorf("%w (batch get: %d keys, limit %d)", ErrTooLarge, len(keys), ^uint32(0))
	}
	st, err := e.state()
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	b := getBatch(size)
	for _, k := range keys {
		b.buf = binary.LittleEndian.AppendUint32(b.buf, uint32(len(k)))
		b.buf = append(b.buf, k...)
	}
	// Guess the result's size from the last value length; on
	// MANTIS_EBUFSIZE C says the size needed: retry once with it (again if
	// the values grew in between).
	vals := make([]byte, min(len(keys)*(4+int(e.hint.Load())), 4*maxHint))
	rc, n := cMultiGet(st.db, st.cache, b.buf, len(keys), vals)
	for rc == cEBufSize {
		vals = make([]byte, n)
		rc, n = cMultiGet(st.db, st.cache, b.buf, len(keys), vals)
	}
	putBatch(b)
	if rc != cOK {
		return nil, cError("batch get", rc)
	}
	vals = vals[:n]
	off := 0
	for _, k := range keys {
		if off+4 > len(vals) {
			return nil, fmt.Errorf("storage: batch get: C result truncated at key %q", clip(k))
		}
		vlen := binary.LittleEndian.Uint32(vals[off:])
		off += 4
		if vlen == cAbsent {
			continue
		}
		if off+int(vlen) > len(vals) {
			return nil, fmt.Errorf("storage: batch get: C result truncated at key %q", clip(k))
		}
		if vlen == 0 {
			out[k] = ""
		} else {
			out[k] = unsafe.String(&vals[off], int(vlen))
		}
		off += int(vlen)
	}
	e.batchReads.Add(uint64(len(keys)))
	return out, nil
}

// HealthCheck reports whether the engine is open, its C handles answer and
// its log accepts writes (ErrReadOnly wrapping the log's failure if not).
// See StorageEngine.HealthCheck.
func (e *CStorageEngine) HealthCheck(ctx context.Context) error {
	if err := checkCtx(ctx); err != nil {
		return err
	}
	st, err := e.state()
	if err != nil {
		return err
	}
	if st.dur != nil {
		if err := st.dur.check("health check"); err != nil {
			return err
		}
	}
	var s cStats
	if rc := cReadStats(st.db, st.cache, &s); rc != cOK {
		return cError("health check", rc)
	}
	return nil
}

// Stats returns the engine's counters from the C core (mantis_db_stats and
// mantis_cache_stats). See Engine.Stats. Without a cache, Reads is the C
// database's read counter less the retries of Gets with a bigger buffer
// and the reads of transactions. With one, Reads is the cache's hits plus
// misses (every Get looks up the cache once, plus once per retry, which is
// subtracted) plus the keys of BatchGet calls: the database's own counter
// then also counts the storage reads of cache misses.
func (e *CStorageEngine) Stats() Stats {
	st := e.st.Load()
	if st == nil {
		return Stats{}
	}
	var s cStats
	if rc := cReadStats(st.db, st.cache, &s); rc != cOK {
		return Stats{}
	}
	hits, misses := uint64(s.cache.hits), uint64(s.cache.misses)
	reads := hits + misses - e.getRetries.Load() + e.batchReads.Load()
	if st.cache == 0 {
		reads = uint64(s.db.reads) - e.getRetries.Load() - e.txnReads.Load()
	}
	out := Stats{
		Reads:          reads,
		Writes:         uint64(s.db.writes),
		Deletes:        uint64(s.db.deletes) + e.dupDeletes.Load(),
		Entries:        uint64(s.db.entries),
		Bytes:          uint64(s.db.bytes),
		CacheHits:      hits,
		CacheMisses:    misses,
		CacheEvictions: uint64(s.cache.evictions),
	}
	if hits+misses > 0 {
		out.CacheHitRatio = float64(hits) / float64(hits+misses)
	}
	return out
}

// cError maps a MANTIS_* code to the package's sentinels, wrapped with what
// failed and the C core's own description.
func cError(op string, rc int) error {
	var sentinel error
	switch rc {
	case cNotFound:
		sentinel = ErrNotFound
	case cEKey:
		sentinel = ErrInvalidKey
	case cETooLarge:
		sentinel = ErrTooLarge
	case cClosed, cEBadHndl:
		// A handle of this engine can only be bad once it is closed.
		sentinel = ErrClosed
	case cConflict:
		sentinel = ErrConflict
	case cENoMem:
		// The C core could not allocate: the request is too large for
		// the memory available.
		sentinel = ErrTooLarge
	default:
		// MANTIS_EINVAL and anything unexpected: a bug of this layer
		// (Go validates every argument before crossing).
		return fmt.Errorf("storage: %s: C core error %d (%s)", op, rc, cStrerror(rc))
	}
	return fmt.Errorf("%w (%s: %s)", sentinel, op, cStrerror(rc))
}

// ---------------------------------------------------------------- batches

// cBatch is an encoded batch (mantis.h: "u8 op, u32 klen, u32 vlen, u64
// ttl_ms, key, value", little-endian) or a multiget key list, built in a
// reused buffer.
type cBatch struct{ buf []byte }

// maxPooledBatch bounds the buffers kept for reuse.
const maxPooledBatch = 1 << 20

var batchPool = sync.Pool{New: func() any { return new(cBatch) }}

// getBatch returns an empty batch with room for size bytes.
func getBatch(size int) *cBatch {
	b := batchPool.Get().(*cBatch)
	if cap(b.buf) < size {
		b.buf = make([]byte, 0, size)
	}
	b.buf = b.buf[:0]
	return b
}

func putBatch(b *cBatch) {
	if cap(b.buf) > maxPooledBatch {
		b.buf = nil
	}
	batchPool.Put(b)
}

// add appends one record (no TTL: batches and commits never carry one).
func (b *cBatch) add(op byte, key, value string) {
	var hdr [BatchRecordOverhead]byte
	hdr[0] = op
	binary.LittleEndian.PutUint32(hdr[1:], uint32(len(key)))
	binary.LittleEndian.PutUint32(hdr[5:], uint32(len(value)))
	b.buf = append(b.buf, hdr[:]...)
	b.buf = append(b.buf, key...)
	b.buf = append(b.buf, value...)
}
