package storage

// Iterators of the pure-Go engine: NewIterator copies the matching entries
// (key and value string headers only; strings are immutable, so no bytes are
// copied) under the read lock, then sorts the copy outside the lock. The copy
// is the snapshot: later writes cannot reach it.

import (
	"context"
	"slices"
	"strings"
)

type pgKV struct{ k, v string }

// pgIter is an iterator of a PureGoStorageEngine.
type pgIter struct {
	e      *PureGoStorageEngine
	ctx    context.Context
	items  []pgKV
	i      int // index of the next entry
	key    string
	value  string
	err    error
	closed bool

	kbuf, vbuf []byte // KeyBytes and ValueBytes (purego_getappend.go)
}

// NewIterator returns an iterator over a sorted snapshot of the keys with
// prefix. See StorageEngine.NewIterator.
func (e *PureGoStorageEngine) NewIterator(ctx context.Context, prefix string) (Iterator, error) {
	if err := checkCtx(ctx); err != nil {
		return nil, err
	}
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	var items []pgKV
	e.mu.RLock()
	if e.state != stateOpen {
		err := e.openErr()
		e.mu.RUnlock()
		return nil, err
	}
	now := e.now()
	if prefix == "" {
		items = make([]pgKV, 0, e.live)
	}
	for k, x := range e.m {
		if strings.HasPrefix(k, prefix) && visible(&x, now) {
			items = append(items, pgKV{k, x.value})
		}
	}
	e.mu.RUnlock()
	slices.SortFunc(items, func(a, b pgKV) int { return strings.Compare(a.k, b.k) })
	return &pgIter{e: e, ctx: ctx, items: items}, nil
}

func (it *pgIter) Next() bool {
	it.key, it.value = "", ""
	if it.closed || it.err != nil {
		return false
	}
	if it.e.closedFlag.Load() {
		it.stop(ErrClosed)
		return false
	}
	if err := checkCtx(it.ctx); err != nil {
		it.stop(err)
		return false
	}
	if it.i >= len(it.items) {
		it.items = nil
		return false
	}
	kv := it.items[it.i]
	it.i++
	it.key, it.value = kv.k, kv.v
	return true
}

// stop ends the iteration with err and drops the snapshot.
func (it *pgIter) stop(err error) {
	it.err = err
	it.items = nil
}

func (it *pgIter) Key() string   { return it.key }
func (it *pgIter) Value() string { return it.value }

func (it *pgIter) Error() error {
	if it.closed {
		return nil
	}
	return it.err
}

func (it *pgIter) Close() error {
	it.closed = true
	it.items = nil
	it.key, it.value = "", ""
	return nil
}
