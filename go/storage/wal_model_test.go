package storage

// The workload model shared by the durability tests: deterministic random
// operations (puts, puts with a TTL, deletes, batches, transactions) on the
// keys of one writer, applied to the engine and to a map, and the check that
// a recovered state is the model's state after some prefix of the writer's
// operations no shorter than what was acknowledged.

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

type durableTestEngine interface {
	Engine
	setDurableOptions(*durableOptions)
	Checkpoint() error
	Backup(ctx context.Context, dir string) error
}

const (
	wPut = iota
	wPutTTL
	wDelete
	wBatchPut
	wBatchDelete
	wTxn
	wKinds
)

// wOp is one operation: for each key, a value or a delete ("" in vals with
// del set).
type wOp struct {
	kind int
	keys []string
	vals []string
	del  []bool
}

// genOp returns the i-th operation of a writer whose keys are prefix+0..n-1.
func genOp(r *rand.Rand, prefix string, n, i int) wOp {
	op := wOp{kind: r.IntN(wKinds)}
	cnt := 1
	if op.kind == wBatchPut || op.kind == wBatchDelete || op.kind == wTxn {
		cnt = 1 + r.IntN(4)
	}
	seen := map[string]bool{}
	for len(op.keys) < cnt {
		k := fmt.Sprintf("%s%03d", prefix, r.IntN(n))
		if seen[k] {
			cnt-- // a batch of fewer keys
			continue
		}
		seen[k] = true
		del := op.kind == wDelete || op.kind == wBatchDelete || (op.kind == wTxn && r.IntN(3) == 0)
		v := ""
		if !del {
			v = fmt.Sprintf("%s#%d/%s", k, i, strings.Repeat("x", r.IntN(200)))
		}
		op.keys, op.vals, op.del = append(op.keys, k), append(op.vals, v), append(op.del, del)
	}
	return op
}

// do runs op on e.
func (op wOp) do(ctx context.Context, e Engine) error {
	switch op.kind {
	case wPut:
		return e.Put(ctx, op.keys[0], op.vals[0])
	case wPutTTL:
		return e.PutWithTTL(ctx, op.keys[0], op.vals[0], time.Hour)
	case wDelete:
		return e.Delete(ctx, op.keys[0])
	case wBatchPut:
		m := map[string]string{}
		for i, k := range op.keys {
			m[k] = op.vals[i]
		}
		return e.BatchPut(ctx, m)
	case wBatchDelete:
		return e.BatchDelete(ctx, op.keys)
	}
	tx, err := e.BeginTransaction(ctx)
	if err != nil {
		return err
	}
	if _, err := tx.Get(op.keys[0]); err != nil && err != ErrNotFound {
		tx.Rollback()
		return err
	}
	for i, k := range op.keys {
		if op.del[i] {
			err = tx.Delete(k)
		} else {
			err = tx.Put(k, op.vals[i])
		}
		if err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

// apply applies op to the model m.
func (op wOp) apply(m map[string]string) {
	for i, k := range op.keys {
		if op.del[i] {
			delete(m, k)
		} else {
			m[k] = op.vals[i]
		}
	}
}

// readPrefix returns every key with prefix and its value.
func readPrefix(t testing.TB, e Engine, prefix string) map[string]string {
	t.Helper()
	it, err := e.NewIterator(context.Background(), prefix)
	if err != nil {
		t.Fatalf("iterator: %v", err)
	}
	defer it.Close()
	out := map[string]string{}
	for it.Next() {
		out[it.Key()] = it.Value()
	}
	if err := it.Error(); err != nil {
		t.Fatalf("iterator: %v", err)
	}
	return out
}

// matchPrefix returns the p in [acked, len(ops)] such that base with ops[:p]
// applied equals got, or -1.
func matchPrefix(base map[string]string, ops []wOp, acked int, got map[string]string) int {
	m := maps.Clone(base)
	for _, op := range ops[:acked] {
		op.apply(m)
	}
	for p := acked; ; p++ {
		if maps.Equal(m, got) {
			return p
		}
		if p == len(ops) {
			return -1
		}
		ops[p].apply(m)
	}
}

// diff describes how got differs from want, briefly.
func diff(want, got map[string]string) string {
	var b strings.Builder
	n := 0
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			if n++; n <= 5 {
				fmt.Fprintf(&b, " %s: want %.20q got %.20q (present %v);", k, v, g, ok)
			}
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			if n++; n <= 5 {
				fmt.Fprintf(&b, " %s: unexpected %.20q;", k, g)
			}
		}
	}
	return fmt.Sprintf("%d keys differ:%s", n, b.String())
}

// afterOps returns base with ops applied.
func afterOps(base map[string]string, ops []wOp) map[string]string {
	m := maps.Clone(base)
	for _, op := range ops {
		op.apply(m)
	}
	return m
}

// keyHistory lists the operations on the first key where got differs from
// want, for a failure message.
func keyHistory(ops []wOp, want, got map[string]string) string {
	var b strings.Builder
	for k := range got {
		if w, ok := want[k]; ok && w == got[k] {
			continue
		}
		fmt.Fprintf(&b, "\n  history of %s:", k)
		for i, op := range ops {
			for j, kk := range op.keys {
				if kk == k {
					fmt.Fprintf(&b, " op %d (kind %d, delete %v);", i, op.kind, op.del[j])
				}
			}
		}
		break
	}
	return b.String()
}

// durableOf returns e's durable layer.
func durableOf(e durableTestEngine) *durable {
	return e.(interface{ durable() *durable }).durable()
}
