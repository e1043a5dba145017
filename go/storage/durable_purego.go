package storage

// The pure-Go engine's side of durability (durable.go has the shared
// layer): recovery into the map, the log records of its writes, the
// snapshot for checkpoints, and Backup.
//
// Ordering: every write holds e.mu (write) across apply and log append, so
// the log order is the apply order, for every key at once. The wait for the
// write or the group fsync happens after e.mu is released.
//
// Expiry: the map keeps expiries on the engine's monotonic clock; the log
// and checkpoints keep absolute wall-clock Unix milliseconds. A write logs
// wallExpiry(ttl) computed from the same TTL; recovery and snapshots convert
// with the offset between the two clocks read once.

import (
	"context"
	"time"
)

// openDurableLocked recovers dir into the (empty) map and opens its log.
// Call under e.mu (write) during Init.
func (e *PureGoStorageEngine) openDurableLocked(dir string) error {
	wallNow := time.Now().UnixMilli()
	mono := e.now()
	monoExpiry := func(exp int64) (int64, bool) {
		if exp == 0 {
			return 0, true
		}
		if exp <= wallNow {
			return 0, false // expired while the database was closed
		}
		return mono + (exp-wallNow)*int64(time.Millisecond), true
	}
	load := func(ops []walOp) error {
		e.seq++
		for _, o := range ops {
			if x, ok := monoExpiry(o.expiry); ok {
				e.applyPut(string(o.key), string(o.value), x, e.seq)
			}
		}
		return nil
	}
	apply := func(_ uint64, ops []walOp) error {
		e.seq++
		for _, o := range ops {
			x, live := monoExpiry(o.expiry)
			if o.op == opDelete || !live {
				e.applyDelete(string(o.key), e.seq)
			} else {
				e.applyPut(string(o.key), string(o.value), x, e.seq)
			}
		}
		return nil
	}
	d, err := openDurable(dir, e.cfg.SyncWrites, e.durOpts, e.snapshot, load, apply)
	if err != nil {
		return err
	}
	e.dur = d
	return nil
}

// snapshot emits every live key with its absolute expiry. The copy is made
// under the read lock (writers wait for it; the values are shared, not
// copied); emit runs after the lock is released.
func (e *PureGoStorageEngine) snapshot(emit func(key, value string, expiry int64) error) error {
	type kv struct {
		k, v string
		x    int64
	}
	e.mu.RLock()
	if e.state != stateOpen {
		e.mu.RUnlock()
		return ErrClosed
	}
	now := e.now()
	wallNow := time.Now().UnixMilli()
	all := make([]kv, 0, e.live)
	for k, x := range e.m {
		if visible(&x, now) {
			all = append(all, kv{k, x.value, x.expires})
		}
	}
	e.mu.RUnlock()
	for _, x := range all {
		var exp int64
		if x.x != 0 {
			// Round up: an entry never outlives its expiry.
			exp = wallNow + (x.x-now+int64(time.Millisecond)-1)/int64(time.Millisecond)
		}
		if err := emit(x.k, x.v, exp); err != nil {
			return err
		}
	}
	return nil
}

// Backup writes a consistent copy of the database, taken now, into dir
// (created if missing; it must be empty), as a directory that Init opens.
// It works for in-memory engines too. Writes may continue meanwhile; they
// are not in the copy.
func (e *PureGoStorageEngine) Backup(ctx context.Context, dir string) error {
	if err := checkCtx(ctx); err != nil {
		return err
	}
	seq := uint64(1)
	e.mu.RLock()
	if e.state != stateOpen {
		e.mu.RUnlock()
		return ErrClosed
	}
	if e.dur != nil {
		seq = e.dur.log.lastSeq() + 1
	}
	e.mu.RUnlock()
	return backupTo(ctx, dir, seq, e.snapshot)
}

// Checkpoint writes a checkpoint now (they also run in the background) and
// removes the log it makes obsolete. In-memory engines return nil.
func (e *PureGoStorageEngine) Checkpoint() error {
	e.mu.RLock()
	d, err := e.dur, e.openErr()
	e.mu.RUnlock()
	if err != nil || d == nil {
		return err
	}
	return d.checkpoint()
}

// The log records of the engine's writes. Call under e.mu (write), after
// the apply; they return the record's seq for durable.commit.

func (d *durable) logPut(key, value string, expiry int64) uint64 {
	return d.log.append(func(b []byte) []byte { return appendOp(b, opPut, key, value, expiry) })
}

func (d *durable) logDelete(key string) uint64 {
	return d.log.append(func(b []byte) []byte { return appendOp(b, opDelete, key, "", 0) })
}

func (d *durable) logBatchPut(kv map[string]string) uint64 {
	return d.log.append(func(b []byte) []byte {
		for k, v := range kv {
			b = appendOp(b, opPut, k, v, 0)
		}
		return b
	})
}

func (d *durable) logBatchDelete(keys []string) uint64 {
	return d.log.append(func(b []byte) []byte {
		for _, k := range keys {
			b = appendOp(b, opDelete, k, "", 0)
		}
		return b
	})
}

func (d *durable) logWrites(w map[string]txnWrite) uint64 {
	return d.log.append(func(b []byte) []byte {
		for k, x := range w {
			if x.deleted {
				b = appendOp(b, opDelete, k, "", 0)
			} else {
				b = appendOp(b, opPut, k, x.value, 0)
			}
		}
		return b
	})
}

// setDurableOptions sets the test knobs of the data directory; call it
// before Init.
func (e *PureGoStorageEngine) setDurableOptions(o *durableOptions) { e.durOpts = o }

// durable returns the engine's durable layer (nil in memory), for tests.
func (e *PureGoStorageEngine) durable() *durable {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.dur
}
