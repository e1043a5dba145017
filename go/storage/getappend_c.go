//go:build ccore && cgo

package storage

// GetAppend of the C engine: Get's cache-aside read (cgo_c.go: the cache,
// then on a miss storage and the fill, under the key's stripe lock) into the
// caller's spare capacity instead of a fresh buffer. When the C core moves
// the coherence protocol into csrc/, this method keeps its contract and
// calls the engine's internal read instead.

import (
	"context"
	"slices"
)

// GetAppend appends key's value to dst. See Engine.GetAppend. A value that
// fits in cap(dst)-len(dst) costs one cgo call and no allocation; a larger
// one grows dst to the size C reports and is read again from storage (the
// cache counted the read already), looping if the value grew meanwhile.
func (e *CStorageEngine) GetAppend(ctx context.Context, dst []byte, key string) ([]byte, error) {
	if err := checkCtx(ctx); err != nil {
		return dst, err
	}
	if err := checkKey("get", key); err != nil {
		return dst, err
	}
	st, err := e.state()
	if err != nil {
		return dst, err
	}
	out := dst
	rc, n := cGet(st.db, st.cache, key, out[len(out):], st.ttl)
	for rc == cEBufSize {
		out = slices.Grow(out, n)
		rc, n = cGetDB(st.db, st.cache, key, out[len(out):], st.ttl)
	}
	switch rc {
	case cOK:
		return out[:len(out)+n], nil
	case cNotFound:
		return dst, ErrNotFound
	}
	return dst, cError("get", rc)
}
