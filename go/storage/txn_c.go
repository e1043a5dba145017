//go:build ccore && cgo

package storage

// Transactions of the C engine. BeginTransaction opens a C snapshot
// (mantis_snapshot_open); Get reads
// the transaction's own buffered write if any, else storage at the snapshot
// (the cache is not used: it holds the latest versions, not the snapshot's).
// Commit is one mantis_db_commit (through the cache-maintaining
// mantis_coherent_commit with a cache) against the snapshot: the buffered
// writes as PUT and DELETE records, every key only read as a CHECK record,
// so the C core applies the whole batch atomically only if every key's
// newest committed version is the one the snapshot sees, else returns
// MANTIS_CONFLICT (ErrConflict) and applies nothing. The snapshot handle is released by Commit and Rollback
// (or by the engine's Close, or by a cleanup if the transaction is dropped
// unfinished).

import (
	"context"
	"fmt"
	"runtime"
)

// cTxn is a transaction of a CStorageEngine. The write and read sets are the
// embedded txnWrites (txn_writes.go).
type cTxn struct {
	e       *CStorageEngine
	ctx     context.Context
	snap    uint64
	done    bool
	cleanup runtime.Cleanup
	txnWrites
}

// BeginTransaction starts a transaction on a snapshot of the current state.
// See StorageEngine.BeginTransaction and Transaction.
func (e *CStorageEngine) BeginTransaction(ctx context.Context) (Transaction, error) {
	if err := checkCtx(ctx); err != nil {
		return nil, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	st, err := e.state()
	if err != nil {
		return nil, err
	}
	snap, rc := cSnapshotOpen(st.db)
	if rc != cOK {
		return nil, cError("begin transaction", rc)
	}
	if err := e.res.register(snap, false); err != nil {
		return nil, err
	}
	t := &cTxn{e: e, ctx: ctx, snap: snap}
	r := e.res
	t.cleanup = runtime.AddCleanup(t, func(h uint64) { r.release(h) }, snap)
	return t, nil
}

// check returns the error every call of an unfinished transaction fails
// with: ErrTxnDone, ErrClosed, or the context's error.
func (t *cTxn) check() error {
	if t.done {
		return ErrTxnDone
	}
	if t.e.st.Load() == nil {
		return ErrClosed
	}
	return checkCtx(t.ctx)
}

func (t *cTxn) Put(key, value string) error {
	if err := t.check(); err != nil {
		return err
	}
	return t.put(key, value)
}

func (t *cTxn) Delete(key string) error {
	if err := t.check(); err != nil {
		return err
	}
	return t.del(key)
}

func (t *cTxn) Get(key string) (string, error) {
	if err := t.check(); err != nil {
		return "", err
	}
	if value, done, err := t.own(key); done {
		return value, err
	}
	st, err := t.e.state()
	if err != nil {
		return "", err
	}
	hint := int(t.e.hint.Load())
	buf := make([]byte, hint)
	rc, n := cSnapGet(st.db, t.snap, key, buf)
	reads := uint64(1)
	for rc == cEBufSize {
		buf = make([]byte, n)
		rc, n = cSnapGet(st.db, t.snap, key, buf)
		reads++
	}
	t.e.txnReads.Add(reads)
	if rc != cOK && rc != cNotFound {
		return "", cError("transaction get", rc)
	}
	t.noteRead(key)
	if rc == cNotFound {
		return "", ErrNotFound
	}
	return t.e.valueString(buf[:n], hint), nil
}

func (t *cTxn) Commit() error {
	if t.done {
		return ErrTxnDone
	}
	t.done = true
	defer t.finish()
	if err := checkCtx(t.ctx); err != nil {
		return err
	}
	size := t.commitSize()
	if err := checkBatchSize("commit", size); err != nil {
		return err
	}
	st, err := t.e.state()
	if err != nil {
		return err
	}
	if size == 0 {
		return nil
	}
	b := getBatch(int(size))
	for k, w := range t.writes {
		if w.deleted {
			b.add(cOpDelete, k, "")
		} else {
			b.add(cOpPut, k, w.value)
		}
	}
	for k := range t.reads {
		if _, ok := t.writes[k]; !ok {
			b.add(cOpCheck, k, "")
		}
	}
	var rc int
	if st.dur != nil {
		writes := t.writes
		rc, err = writeDurable(st, "commit", t.keys(), b.buf, t.snap,
			func(d *durable) uint64 { return d.logWrites(writes) })
	} else {
		rc, _ = cWrite(st.db, st.cache, b.buf, t.snap)
	}
	putBatch(b)
	if err != nil {
		return err
	}
	switch rc {
	case cOK:
		return nil
	case cConflict:
		return fmt.Errorf("%w (commit: a key read or written was written after the transaction began)", ErrConflict)
	}
	return cError("commit", rc)
}

func (t *cTxn) Rollback() error {
	if t.done {
		return ErrTxnDone
	}
	t.done = true
	t.finish()
	if t.e.st.Load() == nil {
		return ErrClosed
	}
	return nil
}

// finish releases the snapshot (unless the engine's Close did) and the
// buffered state.
func (t *cTxn) finish() {
	t.e.res.release(t.snap)
	t.cleanup.Stop()
	t.reset()
}
