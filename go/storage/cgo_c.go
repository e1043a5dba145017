//go:build ccore && cgo

package storage

// The thin cgo layer of the C engine: the only file that includes mantis.h.
//
// The preamble holds declarations only. Each operation is one call into the
// C core: a Get, a Put, a Delete or a whole batch is one call of
// mantis_coherent_* (csrc/mt_coherent.c: the cache-aside read and
// cache-through write protocol, with its argument and tests), so that it
// costs one crossing of the cgo boundary.
//
// Pointer rules: Go passes pointers to its own memory (string bytes through
// unsafe.StringData, []byte buffers, out-variables) for the duration of one
// call; C copies what it keeps and never stores a Go pointer (the library
// promises the same in mantis.h). Every such function is declared
// "#cgo noescape" (its pointer arguments do not escape, so out-variables stay
// on the goroutine's stack) and "#cgo nocallback" (it never calls into Go).
//
// cgo checks every unsafe.Pointer argument at run time for Go pointers in
// the memory it points to (cgocheck), but not a pointer to char, whose
// target cannot hold a pointer. So the functions Go calls with buffers are
// declared again here under mgo_* names with char pointers, bound by an asm
// label to the library's symbol: same function, same ABI (void * and char *
// are passed alike), no wrapper code and no check.

/*
#cgo CFLAGS: -O2 -Wall
#cgo noescape mgo_get
#cgo nocallback mgo_get
#cgo noescape mgo_put
#cgo nocallback mgo_put
#cgo noescape mgo_delete
#cgo nocallback mgo_delete
#cgo noescape mgo_write
#cgo nocallback mgo_write
#cgo noescape mgo_snap_get
#cgo nocallback mgo_snap_get
#cgo noescape mgo_db_put
#cgo nocallback mgo_db_put
#cgo noescape mgo_db_delete
#cgo nocallback mgo_db_delete
#cgo noescape mgo_db_multiget
#cgo nocallback mgo_db_multiget
#cgo noescape mgo_write_raw
#cgo nocallback mgo_write_raw
#cgo noescape mgo_commit
#cgo nocallback mgo_commit
#cgo noescape mgo_commit_raw
#cgo nocallback mgo_commit_raw
#cgo noescape mgo_multiget
#cgo nocallback mgo_multiget
#cgo noescape mgo_iter_open
#cgo nocallback mgo_iter_open
#cgo noescape mgo_iter_chunk
#cgo nocallback mgo_iter_chunk
#cgo noescape mgo_bench_cache_get
#cgo nocallback mgo_bench_cache_get
#cgo nocallback mt_bench_nop
#cgo nocallback mt_coherent_test_hooks
#cgo nocallback mt_handle_open_count
#cgo noescape mantis_db_stats
#cgo nocallback mantis_db_stats
#cgo noescape mantis_cache_stats
#cgo nocallback mantis_cache_stats
#cgo noescape mantis_db_open
#cgo nocallback mantis_db_open
#cgo nocallback mantis_db_close
#cgo noescape mantis_cache_open
#cgo nocallback mantis_cache_open
#cgo nocallback mantis_cache_close
#cgo noescape mantis_snapshot_open
#cgo nocallback mantis_snapshot_open
#cgo nocallback mantis_snapshot_close
#cgo nocallback mantis_iter_close
#cgo nocallback mantis_strerror

#include <mantis.h>

#include <stddef.h>
#include <stdint.h>

// The coherent point operations and batches (mantis.h).
int mgo_get(uint64_t db, uint64_t cache, const char *key, size_t klen, char *buf, size_t cap,
	    size_t *vlen_out, uint64_t *seq_out) __asm__("mantis_coherent_get");
int mgo_put(uint64_t db, uint64_t cache, const char *key, size_t klen, const char *value,
	    size_t vlen, uint64_t ttl_ms, uint64_t *seq_out) __asm__("mantis_coherent_put");
int mgo_delete(uint64_t db, uint64_t cache, const char *key, size_t klen, uint64_t *seq_out)
	__asm__("mantis_coherent_delete");
int mgo_write(uint64_t db, uint64_t cache, const char *batch, size_t len, uint64_t check_seq,
	      uint64_t *seq_out) __asm__("mantis_coherent_write");
int mgo_commit(uint64_t db, uint64_t cache, uint64_t snap, const char *batch, size_t len,
	       uint64_t *seq_out) __asm__("mantis_coherent_commit");

// Storage reads and writes that bypass the cache (mantis.h): transactions,
// and every call of an engine without a cache (cache handle 0).
int mgo_snap_get(uint64_t db, uint64_t snap, const char *key, size_t klen, char *buf, size_t cap,
		 size_t *vlen_out, uint64_t *seq_out) __asm__("mantis_db_get");
int mgo_db_put(uint64_t db, const char *key, size_t klen, const char *value, size_t vlen,
	       uint64_t ttl_ms, uint64_t *seq_out) __asm__("mantis_db_put");
int mgo_db_delete(uint64_t db, const char *key, size_t klen, uint64_t *seq_out)
	__asm__("mantis_db_delete");
int mgo_db_multiget(uint64_t db, uint64_t snap, const char *keys, size_t keys_len, uint32_t nkeys,
		    char *out, size_t out_cap, size_t *out_len) __asm__("mantis_db_multiget");
int mgo_write_raw(uint64_t db, const char *batch, size_t len, uint64_t check_seq,
		  uint64_t *seq_out) __asm__("mantis_db_write");
int mgo_commit_raw(uint64_t db, uint64_t snap, const char *batch, size_t len,
		   uint64_t *seq_out) __asm__("mantis_db_commit");
int mgo_multiget(uint64_t db, uint64_t cache, const char *keys, size_t keys_len, uint32_t nkeys,
		 char *out, size_t out_cap, size_t *out_len) __asm__("mantis_coherent_multiget");
int mgo_iter_open(uint64_t db, uint64_t snap, const char *prefix, size_t plen, uint64_t *it_out)
	__asm__("mantis_iter_open");
int mgo_iter_chunk(uint64_t it, char *buf, size_t cap, uint32_t max_entries, size_t *len_out,
		   uint32_t *count_out) __asm__("mantis_iter_next_chunk");

// Not public API, linked from libmantis.a for tests and benchmarks: the
// handle table's count of open handles (csrc/mt_handle.h), an empty C
// function (the floor of every cgo call) and a loop of n cache lookups over
// encoded keys (csrc/mt_bench.h); and the coherence protocol's test hook
// (csrc/mt_coherent.h), with which benchmarks compare write policies.
uint64_t mt_handle_open_count(void);
int mt_bench_nop(void);
void mt_coherent_test_hooks(unsigned breaks, uint64_t delay_ns, int policy);
uint64_t mgo_bench_cache_get(uint64_t cache, const char *keys, size_t len, uint64_t n)
	__asm__("mt_bench_cache_get");
*/
import "C"

import (
	"unsafe"
)

// mantis.h's codes and limits, for the Go side.
const (
	cOK        = int(C.MANTIS_OK)
	cNotFound  = int(C.MANTIS_NOTFOUND)
	cEInval    = int(C.MANTIS_EINVAL)
	cEKey      = int(C.MANTIS_EKEY)
	cETooLarge = int(C.MANTIS_ETOOLARGE)
	cENoMem    = int(C.MANTIS_ENOMEM)
	cEBadHndl  = int(C.MANTIS_EBADHANDLE)
	cClosed    = int(C.MANTIS_CLOSED)
	cConflict  = int(C.MANTIS_CONFLICT)
	cEBufSize  = int(C.MANTIS_EBUFSIZE)
	cDone      = int(C.MANTIS_DONE)

	cOpPut    = byte(C.MANTIS_OP_PUT)
	cOpDelete = byte(C.MANTIS_OP_DELETE)
	cOpCheck  = byte(C.MANTIS_OP_CHECK)
	cAbsent   = uint32(C.MANTIS_ABSENT)
)

// Compile-time checks that the Go limits are the C core's.
var (
	_ [MaxKeySize - int(C.MANTIS_KEY_MAX)]struct{}
	_ [int(C.MANTIS_KEY_MAX) - MaxKeySize]struct{}
	_ [MaxValueSize - int(C.MANTIS_VALUE_MAX)]struct{}
	_ [int(C.MANTIS_VALUE_MAX) - MaxValueSize]struct{}
	_ [MaxBatchSize - int(C.MANTIS_BATCH_MAX)]struct{}
	_ [int(C.MANTIS_BATCH_MAX) - MaxBatchSize]struct{}
	_ [BatchRecordOverhead - int(C.MANTIS_BATCH_HDR)]struct{}
	_ [int(C.MANTIS_BATCH_HDR) - BatchRecordOverhead]struct{}
)

// strPtr returns a pointer to s's bytes for a call's duration (nil for "").
// C reads them during the call only; passing the pointer as an argument of
// the cgo call keeps the string alive until the call returns. A *C.char
// (not an unsafe.Pointer) spares the call cgo's run-time pointer check.
func strPtr(s string) *C.char { return (*C.char)(unsafe.Pointer(unsafe.StringData(s))) }

// bufPtr returns a pointer to b's first byte, or nil if cap(b) is 0.
func bufPtr(b []byte) *C.char {
	if cap(b) == 0 {
		return nil
	}
	return (*C.char)(unsafe.Pointer(unsafe.SliceData(b)))
}

func cStrerror(rc int) string { return C.GoString(C.mantis_strerror(C.int(rc))) }

// cNop is an empty cgo call: the floor of every call into C.
func cNop() int { return int(C.mt_bench_nop()) }

// cBenchCacheGet runs n lookups of the encoded keys in cache from C
// (benchmarks) and returns the hits.
func cBenchCacheGet(cache uint64, keys []byte, n int) uint64 {
	return uint64(C.mgo_bench_cache_get(C.uint64_t(cache), bufPtr(keys), C.size_t(len(keys)), C.uint64_t(n)))
}

// cSetWritePolicy sets the coherence protocol's write policy, process-wide
// (benchmarks only): 0 insert a written key's new version only if it was
// cached (the default), 1 always, 2 never.
func cSetWritePolicy(policy int) { C.mt_coherent_test_hooks(0, 0, C.int(policy)) }

// cHandleOpenCount is the number of C handles open in the process (tests).
func cHandleOpenCount() uint64 { return uint64(C.mt_handle_open_count()) }

func cDBOpen() (uint64, int) {
	var h C.uint64_t
	rc := C.mantis_db_open(nil, &h)
	return uint64(h), int(rc)
}

func cDBClose(db uint64) int { return int(C.mantis_db_close(C.uint64_t(db))) }

func cCacheOpen(capacity uint64) (uint64, int) {
	var h C.uint64_t
	opts := C.mantis_cache_options_t{capacity: C.uint64_t(capacity)}
	rc := C.mantis_cache_open(&opts, &h)
	return uint64(h), int(rc)
}

// cCacheClose closes cache; 0 (no cache) is nothing to close.
func cCacheClose(cache uint64) int {
	if cache == 0 {
		return cOK
	}
	return int(C.mantis_cache_close(C.uint64_t(cache)))
}

// The point operations and batches below take the engine's cache handle:
// 0 (no cache, the default) calls the db alone, anything else the
// coherence protocol over the db and that cache.

// cGet runs a Get into buf[len(buf):cap(buf)]. It returns the code and the
// value's length (the room needed on cEBufSize).
func cGet(db, cache uint64, key string, buf []byte) (int, int) {
	var n C.size_t
	free := buf[len(buf):cap(buf)]
	var rc C.int
	if cache == 0 {
		rc = C.mgo_snap_get(C.uint64_t(db), 0, strPtr(key), C.size_t(len(key)),
			bufPtr(free), C.size_t(len(free)), &n, nil)
	} else {
		rc = C.mgo_get(C.uint64_t(db), C.uint64_t(cache), strPtr(key), C.size_t(len(key)),
			bufPtr(free), C.size_t(len(free)), &n, nil)
	}
	return int(rc), int(n)
}

// cSnapGet reads key at snapshot snap from storage only (transactions).
func cSnapGet(db, snap uint64, key string, buf []byte) (int, int) {
	var n C.size_t
	rc := C.mgo_snap_get(C.uint64_t(db), C.uint64_t(snap), strPtr(key), C.size_t(len(key)),
		bufPtr(buf), C.size_t(cap(buf)), &n, nil)
	return int(rc), int(n)
}

func cPut(db, cache uint64, key, value string, ttlMs uint64) int {
	if cache == 0 {
		return int(C.mgo_db_put(C.uint64_t(db), strPtr(key), C.size_t(len(key)),
			strPtr(value), C.size_t(len(value)), C.uint64_t(ttlMs), nil))
	}
	return int(C.mgo_put(C.uint64_t(db), C.uint64_t(cache), strPtr(key), C.size_t(len(key)),
		strPtr(value), C.size_t(len(value)), C.uint64_t(ttlMs), nil))
}

func cDelete(db, cache uint64, key string) int {
	if cache == 0 {
		return int(C.mgo_db_delete(C.uint64_t(db), strPtr(key), C.size_t(len(key)), nil))
	}
	return int(C.mgo_delete(C.uint64_t(db), C.uint64_t(cache), strPtr(key), C.size_t(len(key)), nil))
}

// cWrite applies an encoded batch (through the coherence protocol when
// there is a cache), checked against snapshot checkSnap if not 0 (a
// transaction's commit: mantis_db_commit).
func cWrite(db, cache uint64, batch []byte, checkSnap uint64) (int, uint64) {
	var seq C.uint64_t
	var rc C.int
	p, n := bufPtr(batch), C.size_t(len(batch))
	switch {
	case cache == 0 && checkSnap == 0:
		rc = C.mgo_write_raw(C.uint64_t(db), p, n, 0, &seq)
	case cache == 0:
		rc = C.mgo_commit_raw(C.uint64_t(db), C.uint64_t(checkSnap), p, n, &seq)
	case checkSnap == 0:
		rc = C.mgo_write(C.uint64_t(db), C.uint64_t(cache), p, n, 0, &seq)
	default:
		rc = C.mgo_commit(C.uint64_t(db), C.uint64_t(cache), C.uint64_t(checkSnap), p, n, &seq)
	}
	return int(rc), uint64(seq)
}

// cWriteRaw is a plain mantis_db_write (no cache maintenance, no checks).
func cWriteRaw(db uint64, batch []byte) (int, uint64) {
	var seq C.uint64_t
	rc := C.mgo_write_raw(C.uint64_t(db), bufPtr(batch), C.size_t(len(batch)), 0, &seq)
	return int(rc), uint64(seq)
}

// cMultiGet reads nkeys encoded keys at a fresh snapshot (from the cache
// when it can) into out (all of its capacity); it returns the code and the
// bytes written (needed on cEBufSize).
func cMultiGet(db, cache uint64, keys []byte, nkeys int, out []byte) (int, int) {
	var n C.size_t
	if cache == 0 {
		rc := C.mgo_db_multiget(C.uint64_t(db), 0, bufPtr(keys), C.size_t(len(keys)),
			C.uint32_t(nkeys), bufPtr(out), C.size_t(cap(out)), &n)
		return int(rc), int(n)
	}
	rc := C.mgo_multiget(C.uint64_t(db), C.uint64_t(cache), bufPtr(keys), C.size_t(len(keys)),
		C.uint32_t(nkeys), bufPtr(out), C.size_t(cap(out)), &n)
	return int(rc), int(n)
}

// cSnapshotOpen opens a snapshot without asking for its sequence number,
// which would make the writes in flight retry (mantis.h): commits check
// against the snapshot itself.
func cSnapshotOpen(db uint64) (uint64, int) {
	var h C.uint64_t
	rc := C.mantis_snapshot_open(C.uint64_t(db), &h, nil)
	return uint64(h), int(rc)
}

func cSnapshotClose(snap uint64) int { return int(C.mantis_snapshot_close(C.uint64_t(snap))) }

func cIterOpen(db uint64, prefix string) (uint64, int) {
	var h C.uint64_t
	rc := C.mgo_iter_open(C.uint64_t(db), 0, strPtr(prefix), C.size_t(len(prefix)), &h)
	return uint64(h), int(rc)
}

// cIterChunk copies the next entries into buf (all of its capacity); it
// returns the code, the bytes used (needed on cEBufSize) and the entries.
func cIterChunk(it uint64, buf []byte) (int, int, int) {
	var n C.size_t
	var count C.uint32_t
	rc := C.mgo_iter_chunk(C.uint64_t(it), bufPtr(buf), C.size_t(cap(buf)), 0, &n, &count)
	return int(rc), int(n), int(count)
}

func cIterClose(it uint64) int { return int(C.mantis_iter_close(C.uint64_t(it))) }

// cStats are the C core's counters of one engine.
type cStats struct {
	db    C.mantis_db_stats_t
	cache C.mantis_cache_stats_t
}

// cReadStats reads both counters and reports the cache's code, or the db's
// when the cache is fine. An engine's Close closes the db before the cache,
// so a closed cache means a closed engine.
func cReadStats(db, cache uint64, s *cStats) int {
	rc := int(C.mantis_db_stats(C.uint64_t(db), &s.db))
	if cache == 0 {
		return rc
	}
	rc2 := int(C.mantis_cache_stats(C.uint64_t(cache), &s.cache))
	if rc2 != cOK {
		return rc2
	}
	return rc
}
