//go:build ccore && cgo

package storage

// The C engine's side of durability (durable.go has the shared layer):
// recovery through mantis_db_write, the log records of its writes, the
// snapshot for checkpoints (a C iterator with mantis_iter_next_ttl), and
// Backup.
//
// Ordering: the C core takes its own key stripes inside each cgo call and
// releases them before returning, so they cannot cover the log append. A
// durable write therefore takes the durable layer's Go stripes of its keys
// (a batch or a commit all of them, ascending: no deadlock; a commit also
// the stripes of the keys it read, so that its conflict check and its log
// position are ordered with the writes of those keys), applies in C, appends
// to the log, releases the stripes, and only then waits for the write or the
// group fsync, parked in Go. Two writes of one key hold the same stripe
// across apply and append: the log order is the apply order. The in-memory
// path pays one nil check (st.dur).
//
// Expiry: the C core keeps TTLs on its monotonic clock; the log keeps
// absolute wall-clock Unix milliseconds. Recovery converts an expiry back
// to a remaining TTL; a key that expired while the database was closed is
// not loaded (a log record's put of it becomes a delete).

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"
)

// openDurableC recovers dir into st's (empty) database and opens its log.
// Init calls it before publishing st.
func (e *CStorageEngine) openDurableC(st *cstate, dir string) error {
	wallNow := time.Now().UnixMilli()
	ttlOf := func(exp int64) (uint64, bool) {
		if exp == 0 {
			return 0, true
		}
		if exp <= wallNow {
			return 0, false
		}
		return uint64(exp - wallNow), true
	}
	var b []byte
	write := func() error {
		if len(b) == 0 {
			return nil
		}
		if rc, _ := cWrite(st.db, st.cache, b, 0); rc != cOK {
			return cError("init: replay", rc)
		}
		return nil
	}
	load := func(ops []walOp) error {
		b = b[:0]
		for _, o := range ops {
			if ttl, ok := ttlOf(o.expiry); ok {
				b = appendCRecord(b, cOpPut, o.key, o.value, ttl)
			}
		}
		return write()
	}
	apply := func(_ uint64, ops []walOp) error {
		b = b[:0]
		for _, o := range ops {
			ttl, live := ttlOf(o.expiry)
			if o.op == opDelete || !live {
				b = appendCRecord(b, cOpDelete, o.key, nil, 0)
			} else {
				b = appendCRecord(b, cOpPut, o.key, o.value, ttl)
			}
		}
		return write()
	}
	d, err := openDurable(dir, e.cfg.SyncWrites, e.durOpts, snapshotC(st), load, apply)
	if err != nil {
		return err
	}
	st.dur = d
	return nil
}

// appendCRecord appends one mantis_db_write record (mantis.h's batch
// encoding) with a relative ttl_ms.
func appendCRecord(b []byte, op byte, key, value []byte, ttlMs uint64) []byte {
	var h [BatchRecordOverhead]byte
	h[0] = op
	binary.LittleEndian.PutUint32(h[1:], uint32(len(key)))
	binary.LittleEndian.PutUint32(h[5:], uint32(len(value)))
	binary.LittleEndian.PutUint64(h[9:], ttlMs)
	b = append(b, h[:]...)
	b = append(b, key...)
	return append(b, value...)
}

// snapshotC returns the snapshot scan of st's database: a C iterator owns
// an MVCC snapshot taken when it opens, so writes may go on meanwhile. It
// holds st, not the engine (the engine's backstop cleanup must stay able to
// run).
func snapshotC(st *cstate) snapshotFunc {
	return func(emit func(key, value string, expiry int64) error) error {
		h, rc := cIterOpen(st.db, "")
		if rc != cOK {
			return cError("snapshot", rc)
		}
		defer cIterClose(h)
		for {
			k, v, ttl, rc := cIterNextTTL(h)
			if rc == cDone {
				return nil
			}
			if rc != cOK {
				return cError("snapshot", rc)
			}
			var exp int64
			if ttl != 0 {
				exp = time.Now().UnixMilli() + int64(ttl)
			}
			if err := emit(k, v, exp); err != nil {
				return err
			}
		}
	}
}

// putDurable is Put and PutWithTTL of a durable engine.
func putDurable(st *cstate, op, key, value string, ttl time.Duration) error {
	d := st.dur
	if err := d.check(op); err != nil {
		return err
	}
	i := d.stripe(key)
	d.stripes[i].Lock()
	if rc := cPut(st.db, st.cache, key, value, ttlMillis(ttl)); rc != cOK {
		d.stripes[i].Unlock()
		return cError(op, rc)
	}
	seq := d.logPut(key, value, wallExpiry(ttl))
	d.stripes[i].Unlock()
	return d.commit(op, seq)
}

// deleteDurable is Delete of a durable engine.
func deleteDurable(st *cstate, key string) error {
	d := st.dur
	if err := d.check("delete"); err != nil {
		return err
	}
	i := d.stripe(key)
	d.stripes[i].Lock()
	if rc := cDelete(st.db, st.cache, key); rc != cOK {
		d.stripes[i].Unlock()
		return cError("delete", rc)
	}
	seq := d.logDelete(key)
	d.stripes[i].Unlock()
	return d.commit("delete", seq)
}

// writeDurable applies an encoded batch (or a commit, checked against
// snapshot checkSnap) under the stripes of keys and logs it with logRec if C
// applied it.
func writeDurable(st *cstate, op string, keys []string, batch []byte, checkSnap uint64, logRec func(*durable) uint64) (int, error) {
	d := st.dur
	if err := d.check(op); err != nil {
		return cOK, err
	}
	unlock := d.lockKeys(keys)
	rc, _ := cWrite(st.db, st.cache, batch, checkSnap)
	if rc != cOK {
		unlock()
		return rc, nil
	}
	seq := logRec(d)
	unlock()
	return cOK, d.commit(op, seq)
}

// Backup writes a consistent copy of the database, taken now from an MVCC
// snapshot, into dir (created if missing; it must be empty), as a directory
// that Init opens (with either engine). It works for in-memory engines too.
// Writes continue meanwhile; they are not in the copy.
func (e *CStorageEngine) Backup(ctx context.Context, dir string) error {
	if err := checkCtx(ctx); err != nil {
		return err
	}
	st, err := e.state()
	if err != nil {
		return err
	}
	seq := uint64(1)
	if st.dur != nil {
		seq = st.dur.log.lastSeq() + 1
	}
	return backupTo(ctx, dir, seq, snapshotC(st))
}

// Checkpoint writes a checkpoint now (they also run in the background) and
// removes the log it makes obsolete. In-memory engines return nil.
func (e *CStorageEngine) Checkpoint() error {
	st, err := e.state()
	if err != nil || st.dur == nil {
		return err
	}
	if err := st.dur.checkpoint(); err != nil {
		return fmt.Errorf("storage: checkpoint: %w", err)
	}
	return nil
}

// mapKeys returns the keys of a batch.
func mapKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// setDurableOptions sets the test knobs of the data directory; call it
// before Init.
func (e *CStorageEngine) setDurableOptions(o *durableOptions) { e.durOpts = o }

// durable returns the engine's durable layer (nil in memory or closed), for
// tests.
func (e *CStorageEngine) durable() *durable {
	if st := e.st.Load(); st != nil {
		return st.dur
	}
	return nil
}
