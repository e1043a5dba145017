//go:build ccore && cgo

package storage

// Iterators of the C engine. A C iterator (mantis_iter_open with snapshot 0)
// owns a snapshot taken when NewIterator is called. Entries cross the cgo
// boundary in chunks: one mantis_iter_next_chunk call copies as many entries
// as fit into a fresh Go buffer ("u32 klen, u32 vlen, key, value" each), and
// Key and Value are strings over that buffer (unsafe.String): each byte is
// copied once, by C, and a chunk costs one cgo call and one allocation
// whatever its number of entries. A chunk is never reused or written again
// once filled, so the strings stay valid forever; keeping one of them keeps
// its chunk (at most maxChunk bytes, or one entry's size) alive.
//
// Allocation-free scans (BytesIterator): KeyBytes and ValueBytes are views
// into the chunk, and Key and Value make their strings on demand, marking
// the chunk as pinned. The next fill reuses an unpinned chunk's memory
// instead of allocating, so a scan that reads only bytes allocates nothing
// per entry once its chunk has reached full size; a chunk behind a string
// handed out is never written again, as before.
//
// Chunks start at minChunk bytes and double up to maxChunk, so a short scan
// allocates little and a long one crosses the boundary rarely. Chunks of up
// to slabCarve bytes are carved from shared slabs of slabSize bytes (a
// sync.Pool of partly used slabs) instead of allocated one by one: a short
// scan's 4 and 8 KiB allocations each went through the runtime's central
// span lists (a refill for every one or two objects of those size classes),
// which profiles put at 15-17% of a prefix scan (session 3, see
// docs/performance/go-cengine.md). Chunks never overlap, so the rules above
// hold; the cost is retention: a string kept from a carved chunk keeps its
// whole slab (slabSize bytes) alive, not just the chunk. After a chunk
// that came back with more than a quarter of its room unused (the C core
// stops at the end of the entries, or before an entry that does not fit),
// the next fill first asks with no buffer: at the end that costs one cgo
// call and no allocation.
//
// Prefix scans are usually short and alike (a group of keys), so a prefix
// iterator's first chunk is sized by the bytes the engine's last prefix scan
// fetched to its end (plus an eighth), up to maxChunk: such a scan then
// takes one chunk and one allocation instead of a 4 KiB chunk, an 8 KiB one
// and so on, and probes for the end as soon as it fetched that much.
//
// The iterator handle is registered with the engine (cres), which closes it
// on Close; the iterator releases it itself at the end of the entries, on
// error, or on Close. A runtime cleanup releases it if the iterator is
// dropped unclosed; release is idempotent, so nothing is closed twice.

import (
	"context"
	"encoding/binary"
	"runtime"
	"sync"
	"unsafe"
)

const (
	minChunk  = 4 << 10
	maxChunk  = 64 << 10
	slabSize  = 128 << 10
	slabCarve = 32 << 10 // larger chunks are allocated on their own
)

// chunkSlab is the unused tail of a slab.
type chunkSlab struct{ free []byte }

var chunkSlabs = sync.Pool{New: func() any { return new(chunkSlab) }}

// newChunk returns a zeroed chunk of exactly n bytes (its capacity is n, so
// no other chunk can reach into it).
func newChunk(n int) []byte {
	if n > slabCarve {
		return make([]byte, n)
	}
	s := chunkSlabs.Get().(*chunkSlab)
	if len(s.free) < n {
		s.free = make([]byte, slabSize)
	}
	c := s.free[:n:n]
	s.free = s.free[n:]
	chunkSlabs.Put(s)
	return c
}

type cIter struct {
	e   *CStorageEngine
	ctx context.Context
	h   uint64 // 0 once released

	chunk []byte // the current chunk's entries
	off   int    // offset of the next entry in chunk
	left  int    // entries left in chunk
	size  int    // the next chunk's size
	probe bool   // the last chunk was not full: probe for the end first

	prefixed bool // a prefix iterator: it reads and updates e.scanHint
	hint     int  // e.scanHint when opened (0: none)
	fetched  int  // bytes of entries fetched so far

	// The current entry: key at chunk[koff:koff+klen], value right after
	// it (vlen bytes); valid is false before the first Next and at the end.
	koff, klen, vlen int
	valid            bool
	pinned           bool // a string over chunk was returned: do not reuse it

	err     error
	closed  bool
	cleanup runtime.Cleanup
}

// NewIterator returns an iterator over the snapshot taken now of the keys
// with prefix. See StorageEngine.NewIterator.
func (e *CStorageEngine) NewIterator(ctx context.Context, prefix string) (Iterator, error) {
	if err := checkCtx(ctx); err != nil {
		return nil, err
	}
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	st, err := e.state()
	if err != nil {
		return nil, err
	}
	h, rc := cIterOpen(st.db, prefix)
	if rc != cOK {
		return nil, cError("iterator", rc)
	}
	if err := e.res.register(h, true); err != nil {
		return nil, err
	}
	it := &cIter{e: e, ctx: ctx, h: h, size: minChunk, prefixed: prefix != ""}
	if it.prefixed {
		if hint := int(e.scanHint.Load()); hint > 0 {
			it.hint = hint
			it.size = min(max(hint+hint/8, minChunk), maxChunk)
		}
	}
	r := e.res // the cleanup must not hold it (nor need e)
	it.cleanup = runtime.AddCleanup(it, func(h uint64) { r.release(h) }, h)
	return it, nil
}

func (it *cIter) Next() bool {
	it.valid = false
	if it.closed || it.err != nil {
		return false
	}
	if it.e.st.Load() == nil {
		it.stop(ErrClosed)
		return false
	}
	if err := checkCtx(it.ctx); err != nil {
		it.stop(err)
		return false
	}
	if it.left == 0 && !it.fill() {
		return false
	}
	b := it.chunk[it.off:]
	it.klen = int(binary.LittleEndian.Uint32(b))
	it.vlen = int(binary.LittleEndian.Uint32(b[4:]))
	it.koff = it.off + 8
	it.valid = true
	it.off = it.koff + it.klen + it.vlen
	it.left--
	return true
}

// reusable returns the current chunk's memory for the next fill if no
// string points into it and it holds at least size bytes, else nil.
func (it *cIter) reusable(size int) []byte {
	if it.pinned || cap(it.chunk) < size {
		return nil
	}
	return it.chunk[:cap(it.chunk)]
}

// fill fetches the next chunk with one cgo call. It returns false at the
// end (releasing the C iterator early) or on error.
func (it *cIter) fill() bool {
	if it.h == 0 {
		return false
	}
	buf := it.reusable(it.size)
	rc, n, count := cEBufSize, 0, 0
	if buf != nil {
		// Reusing costs no allocation: no need to probe first.
		rc, n, count = cIterChunk(it.h, buf)
	} else if it.probe {
		// The last chunk had room to spare, so the scan has probably
		// ended: ask with no buffer first, so that the end costs no
		// allocation (MANTIS_DONE, or MANTIS_EBUFSIZE with the size of
		// the next entry).
		rc, n, _ = cIterChunk(it.h, nil)
		n = max(n, it.size)
	} else {
		buf = newChunk(it.size)
		rc, n, count = cIterChunk(it.h, buf)
	}
	if rc == cEBufSize {
		// Not even one entry fits: n is the size it needs.
		if buf = it.reusable(n); buf == nil {
			buf = newChunk(max(n, it.size))
		}
		rc, n, count = cIterChunk(it.h, buf)
	}
	switch {
	case rc == cDone:
		it.stop(nil)
		return false
	case rc != cOK:
		it.stop(cError("iterator", rc))
		return false
	case count == 0:
		// Not DONE and nothing copied: the C core broke its contract.
		it.stop(cError("iterator: empty chunk", cEInval))
		return false
	}
	// Full chunks (less room left than a quarter) grow the next one;
	// one with more room left is most likely the last, and so is the
	// one that reached the size of the last prefix scan.
	it.fetched += n
	it.probe = cap(buf)-n > cap(buf)/4 || (it.hint > 0 && it.fetched >= it.hint)
	if !it.probe && it.size < maxChunk {
		it.size *= 2
	}
	it.chunk, it.off, it.left, it.pinned = buf[:n], 0, count, false
	return true
}

// stop ends the iteration with err (nil: the normal end) and releases the
// C iterator and the current chunk.
func (it *cIter) stop(err error) {
	if err == nil && it.prefixed && it.fetched != it.hint {
		it.e.scanHint.Store(int64(it.fetched))
	}
	it.err = err
	it.valid = false
	it.chunk, it.left = nil, 0
	it.release()
}

func (it *cIter) release() {
	if it.h != 0 {
		it.e.res.release(it.h)
		it.cleanup.Stop()
		it.h = 0
	}
}

// Key returns the current key as a string over the chunk (no copy), which
// pins the chunk. See Iterator.Key.
func (it *cIter) Key() string {
	if !it.valid {
		return ""
	}
	it.pinned = true
	return unsafe.String(&it.chunk[it.koff], it.klen) // keys are never empty
}

// Value returns the current value like Key. See Iterator.Value.
func (it *cIter) Value() string {
	if !it.valid || it.vlen == 0 {
		return ""
	}
	it.pinned = true
	return unsafe.String(&it.chunk[it.koff+it.klen], it.vlen)
}

// KeyBytes returns a view of the current key in the chunk. See
// BytesIterator.
func (it *cIter) KeyBytes() []byte {
	if !it.valid {
		return nil
	}
	return it.chunk[it.koff : it.koff+it.klen : it.koff+it.klen]
}

// ValueBytes returns a view of the current value in the chunk. See
// BytesIterator.
func (it *cIter) ValueBytes() []byte {
	if !it.valid {
		return nil
	}
	v := it.koff + it.klen
	return it.chunk[v : v+it.vlen : v+it.vlen]
}

var _ BytesIterator = (*cIter)(nil)

func (it *cIter) Error() error {
	if it.closed {
		return nil
	}
	return it.err
}

func (it *cIter) Close() error {
	it.closed = true
	it.valid = false
	it.chunk, it.left = nil, 0
	it.release()
	return nil
}
