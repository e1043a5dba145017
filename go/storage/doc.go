// Package storage is MantisDB's storage layer: one interface, StorageEngine
// (and its extension Engine), with two engines behind it.
//
// # Engines and builds
//
//   - The pure-Go engine (PureGoStorageEngine, NewPureGoStorageEngine): a Go
//     map behind a sync.RWMutex. It is in every build.
//   - The C engine (CStorageEngine, NewCStorageEngine): the C core
//     (libmantis: MVCC key nodes ordered by an optimistic-lock-coupling
//     B+tree with a hash point index, and a concurrent cache) through
//     cgo. It is in builds with -tags ccore and cgo enabled, and links
//     libmantis through pkg-config (mantis.pc: installed by make install,
//     or build/pkgconfig in this repository; see link_c.go).
//
// NewStorageEngine returns the C engine in builds with -tags ccore and cgo,
// and the pure-Go engine otherwise (the default build, and every build with
// CGO_ENABLED=0). Init("") keeps everything in memory; Init(dir) opens a
// durable database in dir (a write-ahead log with group commit and
// checkpoints, docs/format.md), in one format that both engines read and
// write; StorageConfig.SyncWrites says what survives a crash.
//
// # Semantics (both engines, checked by one conformance suite)
//
//   - Keys are 1..MaxKeySize arbitrary bytes, values 0..MaxValueSize
//     arbitrary bytes (NUL and invalid UTF-8 included). The empty key fails
//     with ErrInvalidKey; a key or value over its limit, an iterator prefix
//     over MaxKeySize, and a batch or commit over MaxBatchSize fail with
//     ErrTooLarge; nothing is changed.
//   - Get of a missing, deleted or expired key fails with ErrNotFound. Every
//     write that returned is visible to every Get that begins after it.
//   - BatchPut and BatchDelete are atomic for every reader (point reads,
//     BatchGet, iterators, transactions). BatchGet reads one snapshot and
//     omits missing keys.
//   - Iterators yield the keys with a prefix in ascending bytewise order,
//     from the snapshot taken by NewIterator; later writes are invisible.
//     All turns an Iterator into an iter.Seq2[string, string].
//   - Transactions read the snapshot taken by BeginTransaction plus their
//     own writes; Commit is atomic; it fails with ErrConflict, applying
//     nothing, if a key the transaction read or wrote was written by anyone
//     else after it began (a Delete counts as a write even of an absent key).
//   - PutWithTTL(ttl > 0) makes a key expire ttl (rounded up to a whole
//     millisecond) from now; ttl <= 0 is a plain Put.
//   - A context that is done fails a call with ctx.Err(), changing nothing.
//   - Reads without allocation: Engine.GetAppend appends a value to the
//     caller's slice, and the iterators of both engines implement
//     BytesIterator (KeyBytes, ValueBytes: views valid until the next Next).
//
// # Lifetimes
//
//   - An engine: New... creates it, Init opens it, Close releases it
//     (idempotent, safe concurrently with calls in flight). Calls before
//     Init fail with ErrNotInitialized, calls after Close with ErrClosed.
//     An engine cannot be reopened.
//   - Strings passed in are only read during the call; strings returned are
//     the caller's and stay valid forever (they never alias engine memory
//     that could change or be freed).
//   - An Iterator lives until its Close, which the caller must call (also
//     after Next returned false). It stops (Next false, Error set) when the
//     engine closes (ErrClosed) or the context given to NewIterator is done
//     (ctx.Err()). It is used by one goroutine at a time.
//   - A Transaction lives until Commit or Rollback (either finishes it;
//     later calls fail with ErrTxnDone). A transaction that is never
//     finished keeps its snapshot's history alive: always finish one. Its
//     calls fail with ErrClosed once the engine closes, and with ctx.Err()
//     once the context given to BeginTransaction is done. It is used by one
//     goroutine at a time.
//
// # Errors
//
// Errors are the sentinels of this package (ErrNotFound, ErrClosed,
// ErrNotInitialized, ErrInvalidKey, ErrTooLarge, ErrConflict, ErrTxnDone, ErrInitialized),
// possibly wrapped with what failed, to be tested with errors.Is; a context's
// own error; or, from Init, the operating system's error about the data
// directory. Messages start with "storage: ". When a call has several faults
// at once (say, a bad key on a closed engine), which one it reports is
// unspecified, except in transactions: ErrTxnDone first, then ErrClosed,
// then the context's error, then bad input.
package storage
