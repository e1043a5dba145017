package storage

import (
	"context"
	"iter"
	"time"
)

// StorageEngine is an ordered key-value store with atomic batches, snapshot
// iterators and optimistic transactions. Every method is safe for concurrent
// use by any number of goroutines, including concurrently with Close.
//
// Keys are 1..MaxKeySize arbitrary bytes; values are 0..MaxValueSize
// arbitrary bytes (NUL and invalid UTF-8 included; a Go string is only the
// container). Returned strings are the caller's: they stay valid and
// unchanged for as long as the caller keeps them.
//
// Every method that takes a context checks it before doing anything; a
// context that is already done fails the call with ctx.Err() and the call
// changes nothing. A nil context is treated as context.Background().
type StorageEngine interface {
	// Init opens the engine; every other method (but Close) fails with
	// ErrNotInitialized until it is called. dataDir "" keeps everything in memory.
	// A non-empty dataDir is a durable database (docs/format.md): created
	// if missing (mode 0750), else recovered (the newest checkpoint, then
	// the log after it). It must be a writable directory, else Init fails
	// with the operating system's error; another engine holding it open
	// fails Init with ErrLocked, a damaged file with ErrCorrupt naming the
	// file and offset. See StorageConfig.SyncWrites for what survives a
	// crash. A second Init fails with ErrInitialized, an Init after Close
	// with ErrClosed.
	Init(dataDir string) error

	// Close releases everything the engine holds. It is idempotent (a
	// second Close returns nil) and safe to call while other calls are in
	// flight: they finish or fail with ErrClosed, never crash. After Close
	// every call fails with ErrClosed, and so do open iterators (Next
	// returns false, Error returns ErrClosed) and unfinished transactions.
	Close() error

	// Put writes key -> value, replacing any previous value and removing
	// any TTL the key had.
	Put(ctx context.Context, key, value string) error

	// Get returns the value of key, or ErrNotFound if the key is absent,
	// deleted or expired. Get sees every write that returned before it
	// began.
	Get(ctx context.Context, key string) (string, error)

	// Delete removes key. Deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error

	// BatchPut writes every pair atomically: no reader sees some of the
	// pairs without the others. If any key or value is invalid, or the
	// batch exceeds MaxBatchSize, nothing is written. An empty or nil map is
	// a no-op.
	BatchPut(ctx context.Context, kvPairs map[string]string) error

	// BatchGet reads keys at one snapshot and returns a new map holding the
	// keys that were found (missing or expired keys are omitted; duplicates
	// are harmless). An invalid key fails the whole call.
	BatchGet(ctx context.Context, keys []string) (map[string]string, error)

	// BatchDelete deletes every key atomically: no reader sees some of the
	// keys deleted and the others not. An invalid key fails the whole call
	// and deletes nothing.
	BatchDelete(ctx context.Context, keys []string) error

	// NewIterator returns an iterator over the keys that start with prefix
	// ("" for all keys), in ascending bytewise order, as of a snapshot
	// taken when NewIterator is called: later writes are invisible to it.
	// The caller must Close it. A prefix over MaxKeySize fails with
	// ErrTooLarge.
	NewIterator(ctx context.Context, prefix string) (Iterator, error)

	// BeginTransaction starts an optimistic transaction. See Transaction.
	// The transaction is bound to ctx: once ctx is done, its Put, Get,
	// Delete and Commit fail with ctx.Err() (Commit then applies nothing).
	BeginTransaction(ctx context.Context) (Transaction, error)

	// HealthCheck returns nil if the engine is initialised, open and
	// serving, ErrClosed if it is closed, ErrNotInitialized before Init,
	// ErrReadOnly (wrapping the cause) once its log failed.
	HealthCheck(ctx context.Context) error
}

// Iterator walks a snapshot of the keys with a prefix, in ascending bytewise
// order. It is not safe for concurrent use by several goroutines (the engine
// it came from is). Use it as
//
//	it, err := e.NewIterator(ctx, "user/")
//	if err != nil { ... }
//	defer it.Close()
//	for it.Next() {
//		use(it.Key(), it.Value())
//	}
//	if err := it.Error(); err != nil { ... }
//
// or with All for a range-over-func loop.
type Iterator interface {
	// Next advances to the next entry and reports whether there is one. It
	// returns false at the end, after Close, after an error (see Error),
	// once the context given to NewIterator is done, and once the engine
	// is closed.
	Next() bool

	// Key returns the current entry's key; "" before the first Next and
	// after Next returned false.
	Key() string

	// Value returns the current entry's value; "" before the first Next
	// and after Next returned false.
	Value() string

	// Error returns what stopped the iteration: nil at the normal end or
	// after Close, ctx.Err() if the context given to NewIterator is done,
	// ErrClosed if the engine was closed.
	Error() error

	// Close releases the iterator's snapshot. It is idempotent and returns
	// nil. Keys and values already returned stay valid.
	Close() error
}

// BytesIterator is an Iterator whose current entry can also be read as
// byte slices, so that a scan allocates nothing per entry. The iterators of
// both engines implement it:
//
//	it, err := e.NewIterator(ctx, prefix)
//	...
//	bit := it.(storage.BytesIterator)
//	for bit.Next() {
//		use(bit.KeyBytes(), bit.ValueBytes())
//	}
type BytesIterator interface {
	Iterator

	// KeyBytes returns the current entry's key; nil before the first Next
	// and after Next returned false. The slice is valid until the next
	// call of Next or Close, and must not be modified; copy what you keep.
	// (Key returns a string that stays valid forever; mixing both is fine.)
	KeyBytes() []byte

	// ValueBytes returns the current entry's value (empty, not nil, for an
	// empty value), with the same lifetime and rules as KeyBytes.
	ValueBytes() []byte
}

// Transaction is an optimistic transaction. Its reads see the snapshot taken
// at BeginTransaction plus its own writes (read-your-own-writes). Its writes
// are buffered and applied by Commit, atomically for every reader. Commit
// fails with ErrConflict, applying nothing, if any key the transaction read
// (found or not) or wrote was written by anyone else after the transaction
// began.
//
// Commit and Rollback always finish the transaction, whatever they return;
// after that every call returns ErrTxnDone. While it is unfinished, its calls
// fail with ErrClosed once the engine is closed, and with ctx.Err() once the
// context given to BeginTransaction is done (Rollback still returns nil then).
// A Transaction is not safe for concurrent use by several goroutines.
type Transaction interface {
	// Put buffers key -> value. Invalid keys and values fail with the
	// same errors as StorageEngine.Put and leave the transaction usable.
	Put(key, value string) error
	// Get returns the transaction's own write of key if any, else the
	// value in the snapshot taken at BeginTransaction; ErrNotFound if
	// absent, deleted (by the transaction or before it began) or expired.
	Get(key string) (string, error)
	// Delete buffers the deletion of key.
	Delete(key string) error
	// Commit applies the buffered writes atomically, or fails with
	// ErrConflict (see Transaction), ErrTooLarge (the commit exceeds
	// MaxBatchSize), ErrClosed or the context's error, applying nothing.
	Commit() error
	// Rollback discards the buffered writes.
	Rollback() error
}

// StorageConfig configures an engine.
type StorageConfig struct {
	// DataDir is recorded for callers (typically passed on to Init); Init's
	// argument is what the engine uses.
	DataDir string
	// BufferSize is a hint for the size of internal write buffers, in
	// bytes; 0 means the default. The pure-Go engine ignores it.
	BufferSize int64
	// CacheSize, if positive, puts a cache of that many bytes in front of
	// the C engine's database; 0 (the default) means none: every value is
	// in memory already, and the C engine reads it there faster than
	// through a cache (docs/performance/go-cengine.md). The pure-Go engine
	// has no cache and ignores it.
	CacheSize int64
	// UseCGO records that the caller wants the C engine. It does not change
	// which engine NewStorageEngine returns (the build decides that; see
	// the package documentation).
	UseCGO bool
	// SyncWrites, for a durable database (Init with a data directory):
	// true, a write (Put, PutWithTTL, Delete, BatchPut, BatchDelete, a
	// Commit) that returned nil survives the process being killed and the
	// machine losing power (concurrent writers share each fdatasync);
	// false, it survives the process being killed (its bytes reached the
	// kernel) and a power loss may lose about the last second (a background
	// fdatasync every second). No effect in memory.
	SyncWrites bool
}

// Engine is what both engines implement beyond StorageEngine.
type Engine interface {
	StorageEngine

	// PutWithTTL writes key -> value like Put, expiring it ttl from now
	// (rounded up to a whole millisecond). An expired key is invisible to
	// every read (Get, BatchGet, new iterators, transactions). ttl <= 0
	// means no expiry, exactly like Put.
	PutWithTTL(ctx context.Context, key, value string, ttl time.Duration) error

	// GetAppend appends key's value to dst and returns the extended slice;
	// it reads exactly like Get (same errors, same guarantee: it sees every
	// write that returned before it began, and counts as a Get in Stats).
	// It allocates nothing when dst has room for the value, so a caller
	// that reuses dst (dst[:0]) reads without allocating. On error it
	// returns dst unchanged. The engine keeps no reference to dst.
	GetAppend(ctx context.Context, dst []byte, key string) ([]byte, error)

	// Backup writes a consistent copy of the database, taken from an MVCC
	// snapshot while writes go on, into dir (created if missing; it must be
	// empty), as a data directory that Init opens with either engine. It
	// works for in-memory engines too. Writes that begin after the snapshot
	// are not in the copy.
	Backup(ctx context.Context, dir string) error

	// Stats returns the engine's counters. Each counter is exact when no
	// call is in flight and approximate while calls run. A closed or
	// uninitialised engine returns the zero Stats.
	Stats() Stats
}

// Stats are an engine's counters since Init.
type Stats struct {
	// Reads counts keys looked up by Get (one per successful call, found
	// or not found) and BatchGet (one per key of a successful call).
	// Transaction reads are not counted.
	Reads uint64
	// Writes counts keys written by Put, PutWithTTL, BatchPut (one per
	// pair) and committed transactions (one per buffered Put).
	Writes uint64
	// Deletes counts keys deleted by Delete, BatchDelete (one per key) and
	// committed transactions (one per buffered Delete), whether or not the
	// key existed.
	Deletes uint64
	// Entries is the number of keys that hold a value (expired keys not
	// yet reclaimed included).
	Entries uint64
	// Bytes is the key and value bytes held: at least the sum of
	// len(key)+len(value) over the keys that hold a value (expired keys not
	// yet reclaimed included). An engine may also count older versions it
	// still keeps for open snapshots and transactions. Per-entry overhead
	// is not included.
	Bytes uint64
	// CacheHits counts reads served by the engine's cache (0 in engines
	// without a cache).
	CacheHits uint64
	// CacheMisses counts reads that missed the cache and went to storage
	// (0 in engines without a cache).
	CacheMisses uint64
	// CacheEvictions counts entries the cache dropped to stay within its
	// capacity (0 in engines without a cache).
	CacheEvictions uint64
	// CacheHitRatio is CacheHits / (CacheHits + CacheMisses), or 0 if
	// both are 0.
	CacheHitRatio float64
}

// All returns it as a range-over-func sequence of (key, value) pairs:
//
//	it, err := e.NewIterator(ctx, prefix)
//	if err != nil { ... }
//	defer it.Close()
//	for k, v := range storage.All(it) { ... }
//	if err := it.Error(); err != nil { ... }
//
// All does not close it: the caller still owns it, must Close it, and should
// check it.Error() after the loop (a loop that stops early by break is fine).
// The sequence is single-use: it continues where the iterator stands.
func All(it Iterator) iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for it.Next() {
			if !yield(it.Key(), it.Value()) {
				return
			}
		}
	}
}
