package storage

// The pure-Go engine: the seed design's "before", kept as the default build,
// the CGO_ENABLED=0 build and the baseline the C engine is measured against.
//
// Design. One Go map from key to entry behind one sync.RWMutex. Point reads
// and BatchGet take the read lock; every write (Put, Delete, batches,
// Commit) takes the write lock, so a batch or a commit is applied while no
// reader can look: atomicity comes from mutual exclusion, not from versions.
//
// Sequence numbers. e.seq counts committed write groups: every Put, Delete,
// BatchPut, BatchDelete and Commit takes the next number, and every entry
// records the number of the write that made it. A transaction remembers
// e.seq at BeginTransaction (its "begin"); at Commit, a key it read or
// wrote conflicts iff its entry's seq is greater than begin.
//
// History (only while transactions are open). Transactions read a snapshot.
// Instead of copying the map at BeginTransaction, a write that replaces an
// entry while a transaction is open keeps the replaced entry on the new
// entry's prev chain, and a Delete leaves a tombstone entry (deleted=true)
// instead of removing the key, so that
//   - a transaction reads the newest version with seq <= begin (walking
//     prev), which is exactly its snapshot, and
//   - a key deleted (or deleted while absent) after begin still shows a seq
//     greater than begin to the conflict check.
// Invariant H: for every open transaction T and key k, the chain of k holds
// the newest version of k with seq <= T.begin, if k had one when T began.
// Pruning keeps it: a chain is cut only after its first version with seq <=
// minActive (the smallest begin of the open transactions), and every open
// begin is >= minActive, so every version an open transaction needs lies at
// or before the cut. A tombstone (or an expired entry) is removed from the
// map only when its seq <= minActive or no transaction is open: then no open
// transaction began before it, so none can see a difference between it and
// absence, neither in a read nor in the conflict check. Keys with a chain or
// a tombstone are listed in e.history, which is swept when the last
// transaction ends and, amortised, when minActive advances.
//
// TTL. An entry has an absolute expiry on the engine's monotonic clock (0 =
// never). Reads treat an expired entry as absent. Expired entries are
// reclaimed lazily: a min-heap of (expiry, key, seq) is drained a few items
// per write; an item whose key has since been rewritten (seq differs) is
// dropped.
//
// Close takes the write lock, marks the engine closed and drops the map, so
// a call in flight either finished before or sees the closed state after
// acquiring a lock. Iterators hold their own sorted copy and check the
// engine's atomic closed flag on every Next; transactions check the state
// under the lock.

import (
	"container/heap"
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Engine states (PureGoStorageEngine.state, guarded by mu).
const (
	stateNew = iota
	stateOpen
	stateClosed
)

// pgEntry is one version of a key. The map holds the newest version by value;
// older versions (kept only for open transactions) hang off prev.
type pgEntry struct {
	value   string
	seq     uint64   // the write group that made this version
	expires int64    // expiry on the engine clock (nanoseconds); 0 = never
	deleted bool     // a tombstone
	prev    *pgEntry // the version this one replaced, if still needed
}

// PureGoStorageEngine is the pure-Go engine: a map behind a sync.RWMutex. It
// implements Engine. Create it with NewPureGoStorageEngine and open it with
// Init; the zero value is not usable.
type PureGoStorageEngine struct {
	cfg   StorageConfig
	clock time.Time // the monotonic origin of expiry times

	closedFlag atomic.Bool // mirrors state == stateClosed, for lock-free checks

	reads, writes, deletes atomic.Uint64

	mu      sync.RWMutex
	state   int
	dataDir string
	m       map[string]pgEntry
	seq     uint64 // the last committed write group
	live    uint64 // entries that are not tombstones
	bytes   uint64 // key+value bytes of the entries that are not tombstones

	// Open transactions: begin seq -> count.
	active    map[uint64]int
	nactive   int
	minActive uint64 // the smallest key of active; meaningful if nactive > 0
	history   map[string]struct{}
	histSwept int // len(history) after the last sweep, for amortisation

	ttl      expHeap
	ttlLive  int // entries in m with an expiry
	ttlBuilt int // len(ttl) after the last rebuild, for amortisation

	// Durability (durable_purego.go): nil for Init(""). durOpts are
	// test knobs, read by Init.
	dur     *durable
	durOpts *durableOptions
}

var _ Engine = (*PureGoStorageEngine)(nil)

// NewPureGoStorageEngine returns a pure-Go engine with configuration cfg. It
// is usable after Init. CacheSize and BufferSize are ignored (the engine has
// no cache).
func NewPureGoStorageEngine(cfg StorageConfig) *PureGoStorageEngine {
	return &PureGoStorageEngine{cfg: cfg, clock: time.Now()}
}

// Init opens the engine. See StorageEngine.Init: "" keeps everything in
// memory; a non-empty dataDir is a durable database (durable_purego.go).
func (e *PureGoStorageEngine) Init(dataDir string) error {
	if e.closedFlag.Load() {
		return fmt.Errorf("%w (init)", ErrClosed)
	}
	if dataDir != "" {
		if err := checkDataDir(dataDir); err != nil {
			return err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch e.state {
	case stateOpen:
		return ErrInitialized
	case stateClosed:
		return fmt.Errorf("%w (init)", ErrClosed)
	}
	e.dataDir = dataDir
	e.m = make(map[string]pgEntry)
	e.active = make(map[uint64]int)
	e.history = make(map[string]struct{})
	if dataDir != "" {
		if err := e.openDurableLocked(dataDir); err != nil {
			e.resetLocked()
			return err
		}
	}
	e.state = stateOpen
	return nil
}

// checkDataDir creates dir if missing and checks that it is a directory in
// which files can be created.
func checkDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("storage: init: data directory %q: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("storage: init: data directory %q: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("storage: init: data directory %q is not a directory", dir)
	}
	f, err := os.CreateTemp(dir, ".mantis-probe-*")
	if err != nil {
		return fmt.Errorf("storage: init: data directory %q is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

// Close releases the engine's memory. It is idempotent; see
// StorageEngine.Close.
func (e *PureGoStorageEngine) Close() error {
	e.mu.Lock()
	if e.state == stateClosed {
		e.mu.Unlock()
		return nil
	}
	e.state = stateClosed
	e.closedFlag.Store(true)
	e.resetLocked()
	d := e.dur
	e.mu.Unlock()
	if d != nil {
		return d.close() // outside mu: a checkpoint may wait for it
	}
	return nil
}

// resetLocked drops the engine's data. Call under mu (write).
func (e *PureGoStorageEngine) resetLocked() {
	e.m = nil
	e.active = nil
	e.history = nil
	e.ttl = nil
	e.live, e.bytes, e.ttlLive, e.seq = 0, 0, 0, 0
}

// DataDir returns the directory given to Init ("" for in-memory engines).
func (e *PureGoStorageEngine) DataDir() string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.dataDir
}

// now is the engine clock: nanoseconds since the engine was created,
// monotonic.
func (e *PureGoStorageEngine) now() int64 { return int64(time.Since(e.clock)) + 1 }

// expiry converts a TTL to an absolute expiry (0 = never), rounding the TTL
// up to whole milliseconds like the C core.
func (e *PureGoStorageEngine) expiry(ttl time.Duration) int64 {
	ms := ttlMillis(ttl)
	if ms == 0 {
		return 0
	}
	return e.now() + int64(ms)*int64(time.Millisecond)
}

// visible reports whether x holds a value at time now.
func visible(x *pgEntry, now int64) bool {
	return !x.deleted && (x.expires == 0 || now < x.expires)
}

// openErr returns nil if the engine is open, ErrNotInitialized before Init,
// ErrClosed after Close. Call it under mu.
func (e *PureGoStorageEngine) openErr() error {
	switch e.state {
	case stateOpen:
		return nil
	case stateNew:
		return ErrNotInitialized
	}
	return ErrClosed
}

// Put writes key -> value. See StorageEngine.Put.
func (e *PureGoStorageEngine) Put(ctx context.Context, key, value string) error {
	return e.put(ctx, "put", key, value, 0)
}

// PutWithTTL writes key -> value expiring ttl from now. See Engine.PutWithTTL.
func (e *PureGoStorageEngine) PutWithTTL(ctx context.Context, key, value string, ttl time.Duration) error {
	return e.put(ctx, "put with ttl", key, value, ttl)
}

func (e *PureGoStorageEngine) put(ctx context.Context, op, key, value string, ttl time.Duration) error {
	if err := checkCtx(ctx); err != nil {
		return err
	}
	if err := checkKV(op, key, value); err != nil {
		return err
	}
	e.mu.Lock()
	if err := e.writeErr(op); err != nil {
		e.mu.Unlock()
		return err
	}
	e.seq++
	e.applyPut(key, value, e.expiry(ttl), e.seq)
	var lsn uint64
	if e.dur != nil {
		lsn = e.dur.logPut(key, value, wallExpiry(ttl))
	}
	e.reapExpired()
	e.mu.Unlock()
	e.writes.Add(1)
	if lsn != 0 {
		return e.dur.commit(op, lsn)
	}
	return nil
}

// writeErr returns why a write cannot start: the engine is not open, or its
// log failed (read-only). Call under mu.
func (e *PureGoStorageEngine) writeErr(op string) error {
	if err := e.openErr(); err != nil {
		return err
	}
	if e.dur != nil {
		return e.dur.check(op)
	}
	return nil
}

// Get returns key's value. See StorageEngine.Get.
func (e *PureGoStorageEngine) Get(ctx context.Context, key string) (string, error) {
	if err := checkCtx(ctx); err != nil {
		return "", err
	}
	if err := checkKey("get", key); err != nil {
		return "", err
	}
	e.mu.RLock()
	if e.state != stateOpen {
		err := e.openErr()
		e.mu.RUnlock()
		return "", err
	}
	x, ok := e.m[key]
	e.mu.RUnlock()
	e.reads.Add(1)
	if !ok || x.deleted || (x.expires != 0 && e.now() >= x.expires) {
		return "", ErrNotFound
	}
	return x.value, nil
}

// Delete removes key. See StorageEngine.Delete.
func (e *PureGoStorageEngine) Delete(ctx context.Context, key string) error {
	if err := checkCtx(ctx); err != nil {
		return err
	}
	if err := checkKey("delete", key); err != nil {
		return err
	}
	e.mu.Lock()
	if err := e.writeErr("delete"); err != nil {
		e.mu.Unlock()
		return err
	}
	e.seq++
	e.applyDelete(key, e.seq)
	var lsn uint64
	if e.dur != nil {
		lsn = e.dur.logDelete(key)
	}
	e.reapExpired()
	e.mu.Unlock()
	e.deletes.Add(1)
	if lsn != 0 {
		return e.dur.commit("delete", lsn)
	}
	return nil
}

// BatchPut writes every pair atomically. See StorageEngine.BatchPut.
func (e *PureGoStorageEngine) BatchPut(ctx context.Context, kvPairs map[string]string) error {
	if err := checkCtx(ctx); err != nil {
		return err
	}
	if err := checkBatchPut(kvPairs); err != nil {
		return err
	}
	e.mu.Lock()
	if err := e.writeErr("batch put"); err != nil || len(kvPairs) == 0 {
		e.mu.Unlock()
		return err
	}
	e.seq++
	for k, v := range kvPairs {
		e.applyPut(k, v, 0, e.seq)
	}
	var lsn uint64
	if e.dur != nil {
		lsn = e.dur.logBatchPut(kvPairs)
	}
	e.reapExpired()
	e.mu.Unlock()
	e.writes.Add(uint64(len(kvPairs)))
	if lsn != 0 {
		return e.dur.commit("batch put", lsn)
	}
	return nil
}

// BatchGet reads keys at one snapshot. See StorageEngine.BatchGet.
func (e *PureGoStorageEngine) BatchGet(ctx context.Context, keys []string) (map[string]string, error) {
	if err := checkCtx(ctx); err != nil {
		return nil, err
	}
	if err := checkBatchKeys("batch get", keys, false); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(keys))
	e.mu.RLock()
	if e.state != stateOpen {
		err := e.openErr()
		e.mu.RUnlock()
		return nil, err
	}
	now := e.now()
	for _, k := range keys {
		if x, ok := e.m[k]; ok && visible(&x, now) {
			out[k] = x.value
		}
	}
	e.mu.RUnlock()
	e.reads.Add(uint64(len(keys)))
	return out, nil
}

// BatchDelete deletes every key atomically. See StorageEngine.BatchDelete.
func (e *PureGoStorageEngine) BatchDelete(ctx context.Context, keys []string) error {
	if err := checkCtx(ctx); err != nil {
		return err
	}
	if err := checkBatchKeys("batch delete", keys, true); err != nil {
		return err
	}
	e.mu.Lock()
	if err := e.writeErr("batch delete"); err != nil || len(keys) == 0 {
		e.mu.Unlock()
		return err
	}
	e.seq++
	for _, k := range keys {
		e.applyDelete(k, e.seq)
	}
	var lsn uint64
	if e.dur != nil {
		lsn = e.dur.logBatchDelete(keys)
	}
	e.reapExpired()
	e.mu.Unlock()
	e.deletes.Add(uint64(len(keys)))
	if lsn != 0 {
		return e.dur.commit("batch delete", lsn)
	}
	return nil
}

// HealthCheck reports whether the engine is open and its log accepts writes
// (ErrReadOnly wrapping the log's failure if not). See
// StorageEngine.HealthCheck.
func (e *PureGoStorageEngine) HealthCheck(ctx context.Context) error {
	if err := checkCtx(ctx); err != nil {
		return err
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if err := e.writeErr("health check"); err != nil {
		return err
	}
	if e.m == nil {
		return fmt.Errorf("storage: health check: engine has no map")
	}
	return nil
}

// Stats returns the engine's counters. See Engine.Stats. The engine has no
// cache: the cache counters are always 0.
func (e *PureGoStorageEngine) Stats() Stats {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.state != stateOpen {
		return Stats{}
	}
	return Stats{
		Reads:   e.reads.Load(),
		Writes:  e.writes.Load(),
		Deletes: e.deletes.Load(),
		Entries: e.live,
		Bytes:   e.bytes,
	}
}

// ---------------------------------------------------------------- writes
// The apply functions run under the write lock with the write group's seq.

// applyPut makes key -> value (expiring at expires, 0 = never) the newest
// version of key.
func (e *PureGoStorageEngine) applyPut(key, value string, expires int64, seq uint64) {
	nx := pgEntry{value: value, seq: seq, expires: expires}
	if old, ok := e.m[key]; ok {
		e.unaccount(key, &old)
		nx.prev = e.keepHistory(key, &old, seq)
	}
	e.m[key] = nx
	e.live++
	e.bytes += uint64(len(key) + len(value))
	if expires != 0 {
		e.ttlLive++
		heap.Push(&e.ttl, expItem{expires: expires, key: key, seq: seq})
	}
}

// applyDelete deletes key: a tombstone while transactions are open (they
// must see the deletion's seq), else the key leaves the map.
func (e *PureGoStorageEngine) applyDelete(key string, seq uint64) {
	old, ok := e.m[key]
	if ok {
		e.unaccount(key, &old)
	}
	if e.nactive == 0 {
		if ok {
			delete(e.m, key)
		}
		return
	}
	tomb := pgEntry{seq: seq, deleted: true}
	if ok {
		tomb.prev = e.keepHistory(key, &old, seq)
	}
	e.m[key] = tomb
	e.history[key] = struct{}{}
}

// unaccount removes old (the current version of key, about to be replaced)
// from the counters.
func (e *PureGoStorageEngine) unaccount(key string, old *pgEntry) {
	if old.deleted {
		return
	}
	e.live--
	e.bytes -= uint64(len(key) + len(old.value))
	if old.expires != 0 {
		e.ttlLive--
	}
}

// keepHistory returns what the new version of key (written by group seq)
// should point to as prev: nothing if no transaction is open, else old, its
// chain pruned (invariant H). A version replaced within its own write group
// (a key twice in one batch) is never kept: no one could have seen it.
func (e *PureGoStorageEngine) keepHistory(key string, old *pgEntry, seq uint64) *pgEntry {
	if e.nactive == 0 {
		return nil
	}
	if old.seq == seq {
		return old.prev
	}
	kept := new(pgEntry)
	*kept = *old
	pruneChain(kept, e.minActive)
	e.history[key] = struct{}{}
	return kept
}

// pruneChain cuts the chain that starts at x after its first version with
// seq <= min: no open transaction can need anything older (invariant H).
func pruneChain(x *pgEntry, min uint64) {
	for ; x.prev != nil; x = x.prev {
		if x.seq <= min {
			x.prev = nil
			return
		}
	}
}

// ---------------------------------------------------------------- TTL

// expItem is a pending expiry: key's version seq expires at expires.
type expItem struct {
	expires int64
	key     string
	seq     uint64
}

// expHeap is a min-heap of expItems by expiry (container/heap).
type expHeap []expItem

func (h expHeap) Len() int           { return len(h) }
func (h expHeap) Less(i, j int) bool { return h[i].expires < h[j].expires }
func (h expHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expHeap) Push(x any)        { *h = append(*h, x.(expItem)) }
func (h *expHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = expItem{}
	*h = old[:len(old)-1]
	return it
}

// reapBatch bounds the expired entries reclaimed per write.
const reapBatch = 8

// reapExpired reclaims up to reapBatch expired entries and drops stale heap
// items. It runs under the write lock, at the end of every write. An expired
// entry that an open transaction could still tell apart from absence (its
// seq > minActive, or it has history) stays until the transactions end.
func (e *PureGoStorageEngine) reapExpired() {
	if len(e.ttl) == 0 {
		return
	}
	// Many stale items (keys rewritten before they expired): rebuild.
	if len(e.ttl) > 2*e.ttlLive+1024 && len(e.ttl) > 2*e.ttlBuilt {
		e.rebuildTTL()
	}
	now := e.now()
	for n := 0; n < reapBatch && len(e.ttl) > 0 && e.ttl[0].expires <= now; n++ {
		top := e.ttl[0]
		x, ok := e.m[top.key]
		if !ok || x.seq != top.seq || x.deleted || x.expires != top.expires {
			heap.Pop(&e.ttl) // stale: the key was rewritten or deleted
			continue
		}
		if e.nactive > 0 && (x.seq > e.minActive || x.prev != nil) {
			return // needed by an open transaction; retry after it ends
		}
		heap.Pop(&e.ttl)
		e.unaccount(top.key, &x)
		delete(e.m, top.key)
	}
}

// rebuildTTL drops the stale items of the expiry heap.
func (e *PureGoStorageEngine) rebuildTTL() {
	kept := e.ttl[:0]
	for _, it := range e.ttl {
		if x, ok := e.m[it.key]; ok && x.seq == it.seq && !x.deleted && x.expires == it.expires {
			kept = append(kept, it)
		}
	}
	clear(e.ttl[len(kept):])
	e.ttl = kept
	heap.Init(&e.ttl)
	e.ttlBuilt = len(e.ttl)
}
