package storage

// The pure-Go engine's allocation-free reads (StorageEngine's Get and
// Iterator's Key and Value already return strings without copying; these
// give the same data to callers that want bytes).

import "context"

// GetAppend appends key's value to dst. See Engine.GetAppend. Get returns
// the stored string itself (no copy), so the only copy is the append, and
// nothing is allocated when dst has room.
func (e *PureGoStorageEngine) GetAppend(ctx context.Context, dst []byte, key string) ([]byte, error) {
	v, err := e.Get(ctx, key)
	if err != nil {
		return dst, err
	}
	return append(dst, v...), nil
}

var _ BytesIterator = (*pgIter)(nil)

// KeyBytes returns the current key copied into the iterator's reused
// buffer. See BytesIterator. The engine's strings are shared with every
// reader, so a view of them would let a caller's write corrupt the store;
// the copy costs no allocation once the buffer has grown.
func (it *pgIter) KeyBytes() []byte {
	if it.key == "" {
		return nil // keys are never empty: no current entry
	}
	it.kbuf = append(it.kbuf[:0], it.key...)
	return it.kbuf
}

// ValueBytes returns the current value like KeyBytes. See BytesIterator.
func (it *pgIter) ValueBytes() []byte {
	if it.key == "" {
		return nil
	}
	it.vbuf = append(it.vbuf[:0], it.value...)
	if it.vbuf == nil {
		it.vbuf = []byte{}
	}
	return it.vbuf
}
