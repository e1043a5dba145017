package storage

import "errors"

// The sentinel errors of the package. Every error an engine returns either is
// one of these, wraps one of these (test with errors.Is), is a context's error
// (context.Canceled or context.DeadlineExceeded, returned unwrapped), or, from
// Init only, wraps the operating system's error about the data directory.
//
// Errors that wrap a sentinel say what failed, for example
// "storage: too large (put: key of 5000 bytes, limit 4096)".
var (
	// ErrNotFound: the key is absent, deleted or expired.
	ErrNotFound = errors.New("storage: key not found")

	// ErrClosed: the engine was closed. Open iterators and unfinished
	// transactions of a closed engine fail with it too.
	ErrClosed = errors.New("storage: engine closed")

	// ErrInvalidKey: the key is empty.
	ErrInvalidKey = errors.New("storage: invalid key")

	// ErrTooLarge: a key over MaxKeySize, a value over MaxValueSize, an
	// iterator prefix over MaxKeySize, or a batch or commit whose encoded
	// size exceeds MaxBatchSize.
	ErrTooLarge = errors.New("storage: too large")

	// ErrConflict: Commit found that a key the transaction read or wrote
	// was written by someone else after the transaction began. Nothing of
	// the transaction was applied; retry it from BeginTransaction.
	ErrConflict = errors.New("storage: transaction conflict")

	// ErrTxnDone: the transaction was already finished by Commit or
	// Rollback.
	ErrTxnDone = errors.New("storage: transaction already committed or rolled back")

	// ErrInitialized: Init was called on an engine that is already
	// initialised.
	ErrInitialized = errors.New("storage: engine already initialized")

	// ErrNotInitialized: a call before Init (distinct from ErrClosed, a
	// call after Close).
	ErrNotInitialized = errors.New("storage: engine not initialized")
)

// The sentinels of durable databases (Init with a data directory).
var (
	// ErrLocked: Init found the data directory open by another engine, in
	// this process or another (an flock on its LOCK file). Nothing was
	// touched.
	ErrLocked = errors.New("storage: data directory locked by another engine")

	// ErrCorrupt: a file of the data directory failed its checksum or is
	// malformed somewhere other than the torn tail of the newest log
	// segment. The error names the file and the offset.
	ErrCorrupt = errors.New("storage: data directory corrupt")

	// ErrReadOnly: an earlier write or fsync of the log failed (the cause,
	// a disk error or a full disk, is wrapped too): the engine accepts no
	// more writes; reads keep working. Reopen the directory to recover.
	ErrReadOnly = errors.New("storage: engine read-only after a log failure")
)
