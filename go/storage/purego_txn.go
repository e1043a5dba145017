package storage

// Transactions of the pure-Go engine. See engine_purego.go for the history
// scheme (invariant H) that gives them snapshot reads without copying the
// map, and for the conflict rule: at Commit, a key read or written conflicts
// iff its newest version (tombstones included) has seq > begin.

import (
	"context"
	"fmt"
	"maps"
	"slices"
)

// pgTxn is a transaction of a PureGoStorageEngine. Not safe for concurrent
// use (as Transaction says). The write and read sets are the embedded
// txnWrites (txn_writes.go).
type pgTxn struct {
	e     *PureGoStorageEngine
	ctx   context.Context
	begin uint64
	done  bool
	txnWrites
}

// BeginTransaction starts a transaction reading the current state. See
// StorageEngine.BeginTransaction and Transaction.
func (e *PureGoStorageEngine) BeginTransaction(ctx context.Context) (Transaction, error) {
	if err := checkCtx(ctx); err != nil {
		return nil, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.openErr(); err != nil {
		return nil, err
	}
	t := &pgTxn{e: e, ctx: ctx, begin: e.seq}
	if e.nactive == 0 || t.begin < e.minActive {
		e.minActive = t.begin
	}
	e.active[t.begin]++
	e.nactive++
	return t, nil
}

// check returns the error every call of an unfinished transaction fails
// with: ErrTxnDone, ErrClosed, or the context's error.
func (t *pgTxn) check() error {
	if t.done {
		return ErrTxnDone
	}
	if t.e.closedFlag.Load() {
		return ErrClosed
	}
	return checkCtx(t.ctx)
}

func (t *pgTxn) Put(key, value string) error {
	if err := t.check(); err != nil {
		return err
	}
	return t.put(key, value)
}

func (t *pgTxn) Delete(key string) error {
	if err := t.check(); err != nil {
		return err
	}
	return t.del(key)
}

func (t *pgTxn) Get(key string) (string, error) {
	if err := t.check(); err != nil {
		return "", err
	}
	if value, done, err := t.own(key); done {
		return value, err
	}
	e := t.e
	e.mu.RLock()
	if e.state != stateOpen {
		e.mu.RUnlock()
		return "", ErrClosed
	}
	x, ok := e.m[key]
	var v *pgEntry
	if ok {
		// The newest version this snapshot can see (invariant H).
		for v = &x; v != nil && v.seq > t.begin; v = v.prev {
		}
	}
	found := v != nil && visible(v, e.now())
	var value string
	if found {
		value = v.value
	}
	e.mu.RUnlock()
	t.noteRead(key)
	if !found {
		return "", ErrNotFound
	}
	return value, nil
}

func (t *pgTxn) Commit() error {
	if t.done {
		return ErrTxnDone
	}
	t.done = true
	e := t.e
	if err := checkCtx(t.ctx); err != nil {
		e.endTxn(t)
		return err
	}
	if err := checkBatchSize("commit", t.commitSize()); err != nil {
		e.endTxn(t)
		return err
	}
	e.mu.Lock()
	locked := true
	defer func() {
		if locked {
			e.mu.Unlock()
		}
	}()
	if err := e.openErr(); err != nil {
		return err // Close dropped the transaction bookkeeping
	}
	k, conflict := t.conflict()
	writes := t.writes
	// Unregister before applying: the history this commit's writes must
	// keep is for the other open transactions only.
	e.endTxnLocked(t)
	if conflict {
		return fmt.Errorf("%w (commit: key %q was written after the transaction began)", ErrConflict, clip(k))
	}
	if len(writes) == 0 {
		return nil
	}
	if err := e.writeErr("commit"); err != nil {
		return err
	}
	e.seq++
	var puts, dels uint64
	// Sorted so that the result does not depend on map order (it cannot,
	// but a deterministic apply keeps the history chains reproducible).
	for _, k := range slices.Sorted(maps.Keys(writes)) {
		if w := writes[k]; w.deleted {
			e.applyDelete(k, e.seq)
			dels++
		} else {
			e.applyPut(k, w.value, 0, e.seq)
			puts++
		}
	}
	var lsn uint64
	if e.dur != nil {
		lsn = e.dur.logWrites(writes)
	}
	e.reapExpired()
	e.writes.Add(puts)
	e.deletes.Add(dels)
	e.mu.Unlock()
	locked = false
	if lsn != 0 {
		return e.dur.commit("commit", lsn)
	}
	return nil
}

// conflict returns a key read or written by t whose newest version is newer
// than t's snapshot. Call under e.mu.
func (t *pgTxn) conflict() (string, bool) {
	for k := range t.reads {
		if x, ok := t.e.m[k]; ok && x.seq > t.begin {
			return k, true
		}
	}
	for k := range t.writes {
		if x, ok := t.e.m[k]; ok && x.seq > t.begin {
			return k, true
		}
	}
	return "", false
}

func (t *pgTxn) Rollback() error {
	if t.done {
		return ErrTxnDone
	}
	t.done = true
	t.e.endTxn(t)
	if t.e.closedFlag.Load() {
		return ErrClosed
	}
	return nil
}

// clip shortens a key for an error message.
func clip(k string) string {
	if len(k) > 64 {
		return k[:64] + "..."
	}
	return k
}

// endTxn unregisters t (takes the lock).
func (e *PureGoStorageEngine) endTxn(t *pgTxn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.endTxnLocked(t)
}

// endTxnLocked unregisters t and, when the oldest snapshot moves forward,
// sweeps the history it no longer needs. Call under e.mu (write).
func (e *PureGoStorageEngine) endTxnLocked(t *pgTxn) {
	if e.state != stateOpen {
		return // Close dropped the bookkeeping
	}
	if n := e.active[t.begin]; n > 1 {
		e.active[t.begin] = n - 1
	} else {
		delete(e.active, t.begin)
	}
	e.nactive--
	t.reset()
	if e.nactive == 0 {
		e.sweepHistory()
		e.reapExpired()
		return
	}
	if t.begin != e.minActive || e.active[t.begin] > 0 {
		return
	}
	e.minActive = ^uint64(0)
	for b := range e.active {
		e.minActive = min(e.minActive, b)
	}
	// Amortised: sweep when the history has doubled since the last sweep,
	// so each entry is swept O(1) times per doubling.
	if len(e.history) >= 2*e.histSwept+64 {
		e.sweepHistory()
	}
}

// sweepHistory prunes every key in e.history to what the open transactions
// still need (invariant H): chains are cut, tombstones that no open
// transaction began before leave the map. With no transaction open, all
// history goes. Call under e.mu (write).
func (e *PureGoStorageEngine) sweepHistory() {
	for k := range e.history {
		x, ok := e.m[k]
		if !ok {
			delete(e.history, k)
			continue
		}
		if e.nactive == 0 {
			x.prev = nil
		} else {
			pruneChain(&x, e.minActive)
		}
		if x.deleted && x.prev == nil && (e.nactive == 0 || x.seq <= e.minActive) {
			delete(e.m, k)
			delete(e.history, k)
			continue
		}
		e.m[k] = x
		if x.prev == nil && !x.deleted {
			delete(e.history, k)
		}
	}
	e.histSwept = len(e.history)
}
