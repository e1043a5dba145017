//go:build ccore && cgo

package storage

// The thin cgo layer of the C engine: the only file that includes mantis.h.
//
// The preamble holds a few C helpers (mgo_*) that run a whole engine
// operation (the cache and the storage calls it needs, under the key's stripe
// lock) in one crossing of the cgo boundary, so that a Get, a Put or a whole
// batch costs one cgo call. They use nothing but the public API of
// bindings/mantis.h plus pthread mutexes.
//
// Pointer rules: Go passes pointers to its own memory (string bytes through
// unsafe.StringData, []byte buffers, out-variables) for the duration of one
// call; C copies what it keeps and never stores a Go pointer (the library
// promises the same in mantis.h). Every such function is declared
// "#cgo noescape" (its pointer arguments do not escape, so out-variables stay
// on the goroutine's stack) and "#cgo nocallback" (it never calls into Go).
// The one piece of Go memory C writes to besides results is the engine's TTL
// bitmap (see mgo_ttl_*), written with C atomics under the stripe lock and
// never read by Go.
//
// Why stripe locks (the cache-aside protocol; docs/architecture/go-cengine.md
// argues it in full): a Get that misses the cache reads storage and fills the
// cache. Without coordination the fill of a value read before a concurrent
// Delete (or a Put whose cache insert the admission policy declined) can land
// after that write returned, and a later Get would read the old value from
// the cache. Versioned inserts alone cannot reject it, because nothing newer
// is resident. So a write and a miss-fill of the same key are serialised by
// one of MGO_STRIPES process-wide mutexes chosen by the key's hash: a write
// holds the stripe across "invalidate the cache, write storage, insert the
// new version into the cache"; a fill holds it across "read storage, insert
// with the version read". Cache hits take no lock. Batches and commits lock
// every stripe they write, in ascending order (no deadlock). The lock table
// is static, so no engine's Close can free it under a call in flight.

/*
#cgo CFLAGS: -O2 -Wall
#cgo noescape mgo_get
#cgo nocallback mgo_get
#cgo noescape mgo_get_db
#cgo nocallback mgo_get_db
#cgo noescape mgo_put
#cgo nocallback mgo_put
#cgo noescape mgo_delete
#cgo nocallback mgo_delete
#cgo noescape mgo_write
#cgo nocallback mgo_write
#cgo noescape mgo_stats
#cgo nocallback mgo_stats
#cgo nocallback mgo_nop
#cgo noescape mgo_bench_cache_get
#cgo nocallback mgo_bench_cache_get
#cgo nocallback mt_handle_open_count
#cgo noescape mgo_snap_get
#cgo nocallback mgo_snap_get
#cgo noescape mgo_write_raw
#cgo nocallback mgo_write_raw
#cgo noescape mgo_multiget
#cgo nocallback mgo_multiget
#cgo noescape mgo_iter_open
#cgo nocallback mgo_iter_open
#cgo noescape mgo_iter_chunk
#cgo nocallback mgo_iter_chunk
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

#include <pthread.h>
#include <stdint.h>
#include <string.h>

// Stripe locks: MGO_STRIPES mutexes, one cache line each, shared by every
// engine of the process. A key's stripe is its hash modulo MGO_STRIPES.
#define MGO_STRIPES 4096u
// The TTL bitmap of an engine: MGO_TTL_BITS bits (Go memory, 8 KiB). Bit
// hash % MGO_TTL_BITS is set, under the key's stripe lock, by every write
// with a TTL to a key of that hash; fills of such keys are skipped.
#define MGO_TTL_BITS 65536u

struct mgo_stripe {
	pthread_mutex_t mu;
} __attribute__((aligned(64)));

static struct mgo_stripe mgo_stripes[MGO_STRIPES] = {
	[0 ... MGO_STRIPES - 1] = {PTHREAD_MUTEX_INITIALIZER}};

static inline uint64_t mgo_hash(const void *key, size_t n)
{
	const unsigned char *p = key;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n, w;

	while (n >= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
		p += 8;
		n -= 8;
	}
	w = 0;
	memcpy(&w, p, n);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 29;
	h *= 0xff51afd7ed558ccdull;
	return h ^ (h >> 32);
}

static inline void mgo_lock(uint64_t h)
{
	pthread_mutex_lock(&mgo_stripes[h % MGO_STRIPES].mu);
}

static inline void mgo_unlock(uint64_t h)
{
	pthread_mutex_unlock(&mgo_stripes[h % MGO_STRIPES].mu);
}

// The TTL bitmap is Go memory passed in for the call. The bit of a key is
// only set and tested under the key's stripe lock (the mutex orders them);
// the atomics are for the other bits of the same word, owned by other
// stripes.
static inline void mgo_ttl_set(uint64_t *ttl, uint64_t h)
{
	uint32_t b = (uint32_t)(h % MGO_TTL_BITS);

	__atomic_fetch_or(&ttl[b / 64], 1ull << (b % 64), __ATOMIC_RELAXED);
}

static inline int mgo_ttl_test(const uint64_t *ttl, uint64_t h)
{
	uint32_t b = (uint32_t)(h % MGO_TTL_BITS);

	return (__atomic_load_n(&ttl[b / 64], __ATOMIC_RELAXED) >> (b % 64)) & 1;
}

// The handle table's count of open handles (csrc/mt_handle.h; not public
// API, linked from libmantis.a for the tests' leak checks).
uint64_t mt_handle_open_count(void);

// An empty C function: the floor every cgo call pays (benchmarks).
static int mgo_nop(void)
{
	return 0;
}

// The miss path of Get: under the key's stripe lock, read storage and fill
// the cache with the version read (unless the key's stripe has seen a TTL
// write: the fill would not know the entry's expiry). On MANTIS_EBUFSIZE,
// *vlen holds the value's length and nothing was filled.
static int mgo_get_db(uint64_t db, uint64_t cache, const char *key, size_t klen, char *buf,
		      size_t cap, size_t *vlen, uint64_t *ttl)
{
	uint64_t h = mgo_hash(key, klen), seq = 0;
	int rc;

	mgo_lock(h);
	rc = mantis_db_get(db, 0, key, klen, buf, cap, vlen, &seq);
	if (rc == MANTIS_OK && !mgo_ttl_test(ttl, h))
		(void)mantis_cache_put(cache, key, klen, buf, *vlen, 0, 0, seq, NULL);
	mgo_unlock(h);
	return rc;
}

// Get: the cache first (no lock); on a miss the storage read and fill.
static int mgo_get(uint64_t db, uint64_t cache, const char *key, size_t klen, char *buf,
		   size_t cap, size_t *vlen, uint64_t *ttl)
{
	int rc = mantis_cache_get(cache, key, klen, buf, cap, vlen, NULL);

	if (rc != MANTIS_NOTFOUND)
		return rc;
	return mgo_get_db(db, cache, key, klen, buf, cap, vlen, ttl);
}

// Cache maintenance after a storage write that returned rc: a failure of
// the cache call itself is ignored except for a closed cache (the engine is
// closing); the entry was invalidated before the storage write, so a failed
// insert only costs a later miss.
static inline int mgo_cache_rc(int rc)
{
	return rc == MANTIS_CLOSED || rc == MANTIS_EBADHANDLE ? rc : MANTIS_OK;
}

// Put and PutWithTTL: invalidate, write storage, insert the new version
// (values with a TTL are not cached: the cache entry could outlive the
// stored one by the time between the two calls).
static int mgo_put(uint64_t db, uint64_t cache, const char *key, size_t klen, const char *val,
		   size_t vlen, uint64_t ttl_ms, uint64_t *ttl)
{
	uint64_t h = mgo_hash(key, klen), seq = 0;
	int rc;

	mgo_lock(h);
	rc = mgo_cache_rc(mantis_cache_delete(cache, key, klen, UINT64_MAX));
	if (rc == MANTIS_OK)
		rc = mantis_db_put(db, key, klen, val, vlen, ttl_ms, &seq);
	if (rc == MANTIS_OK) {
		if (ttl_ms != 0)
			mgo_ttl_set(ttl, h);
		else
			(void)mantis_cache_put(cache, key, klen, val, vlen, 0, 0, seq, NULL);
	}
	mgo_unlock(h);
	return rc;
}

// Delete: invalidate, then write the tombstone (no fill can run in between
// or after with an older version: fills take the same lock).
static int mgo_delete(uint64_t db, uint64_t cache, const char *key, size_t klen)
{
	uint64_t h = mgo_hash(key, klen), seq = 0;
	int rc;

	mgo_lock(h);
	rc = mgo_cache_rc(mantis_cache_delete(cache, key, klen, UINT64_MAX));
	if (rc == MANTIS_OK)
		rc = mantis_db_delete(db, key, klen, &seq);
	mgo_unlock(h);
	return rc;
}

// One record of a batch built by Go.
struct mgo_rec {
	int op;
	uint32_t klen, vlen;
	uint64_t ttl_ms;
	const unsigned char *key, *val;
};

// Decodes the record at p (end e) into *r and returns the next record, or
// NULL at the end. Go builds batches well-formed; a short tail is treated as
// the end (mantis_db_write rejects it with MANTIS_EINVAL anyway). Fields are
// little-endian: amd64 and arm64 hosts read them with memcpy.
static const unsigned char *mgo_rec_next(const unsigned char *p, const unsigned char *e,
					 struct mgo_rec *r)
{
	if (p == NULL || (size_t)(e - p) < MANTIS_BATCH_HDR)
		return NULL;
	r->op = p[0];
	memcpy(&r->klen, p + 1, 4);
	memcpy(&r->vlen, p + 5, 4);
	memcpy(&r->ttl_ms, p + 9, 8);
	r->key = p + MANTIS_BATCH_HDR;
	r->val = r->key + r->klen;
	if ((size_t)(e - r->key) < (size_t)r->klen + r->vlen)
		return NULL;
	return r->val + r->vlen;
}

static inline int mgo_rec_writes(const struct mgo_rec *r)
{
	return r->op == MANTIS_OP_PUT || r->op == MANTIS_OP_DELETE;
}

// A batch or a commit: lock the stripes of every PUT and DELETE key in
// ascending order, invalidate those keys in the cache, apply the batch with
// one mantis_db_write (check_seq and CHECK records as given), then insert the
// new versions (records in order, so a key's last write wins), unlock.
static int mgo_write(uint64_t db, uint64_t cache, const char *batch, size_t len,
		     uint64_t check_seq, uint64_t *ttl, uint64_t *seq_out)
{
	const unsigned char *b = (const unsigned char *)batch, *e = b + len, *p, *q;
	uint64_t locked[MGO_STRIPES / 64], seq = 0, h;
	struct mgo_rec r;
	uint32_t i;
	int rc = MANTIS_OK;

	memset(locked, 0, sizeof(locked));
	for (p = b; (q = mgo_rec_next(p, e, &r)) != NULL; p = q) {
		if (mgo_rec_writes(&r)) {
			h = mgo_hash(r.key, r.klen) % MGO_STRIPES;
			locked[h / 64] |= 1ull << (h % 64);
		}
	}
	for (i = 0; i < MGO_STRIPES; i++)
		if (locked[i / 64] >> (i % 64) & 1)
			pthread_mutex_lock(&mgo_stripes[i].mu);

	for (p = b; rc == MANTIS_OK && (q = mgo_rec_next(p, e, &r)) != NULL; p = q)
		if (mgo_rec_writes(&r))
			rc = mgo_cache_rc(mantis_cache_delete(cache, r.key, r.klen, UINT64_MAX));
	if (rc == MANTIS_OK)
		rc = mantis_db_write(db, batch, len, check_seq, &seq);
	if (rc == MANTIS_OK) {
		for (p = b; (q = mgo_rec_next(p, e, &r)) != NULL; p = q) {
			if (r.op == MANTIS_OP_DELETE) {
				(void)mantis_cache_delete(cache, r.key, r.klen, seq);
			} else if (r.op == MANTIS_OP_PUT && r.ttl_ms != 0) {
				mgo_ttl_set(ttl, mgo_hash(r.key, r.klen));
			} else if (r.op == MANTIS_OP_PUT) {
				(void)mantis_cache_put(cache, r.key, r.klen, r.val, r.vlen, 0, 0, seq,
						       NULL);
			}
		}
		*seq_out = seq;
	}

	for (i = MGO_STRIPES; i-- > 0;)
		if (locked[i / 64] >> (i % 64) & 1)
			pthread_mutex_unlock(&mgo_stripes[i].mu);
	return rc;
}

// Thin wrappers of the calls Go makes directly, with char pointers: cgo
// checks every unsafe.Pointer argument at run time for Go pointers in the
// memory it points to (cgocheck), but not a pointer to char, whose target
// cannot hold a pointer. Same contracts as the wrapped functions.
static int mgo_snap_get(uint64_t db, uint64_t snap, const char *key, size_t klen, char *buf,
			size_t cap, size_t *vlen)
{
	return mantis_db_get(db, snap, key, klen, buf, cap, vlen, NULL);
}

static int mgo_write_raw(uint64_t db, const char *batch, size_t len, uint64_t *seq_out)
{
	return mantis_db_write(db, batch, len, 0, seq_out);
}

static int mgo_multiget(uint64_t db, const char *keys, size_t keys_len, uint32_t nkeys, char *out,
			size_t out_cap, size_t *out_len)
{
	return mantis_db_multiget(db, 0, keys, keys_len, nkeys, out, out_cap, out_len);
}

static int mgo_iter_open(uint64_t db, const char *prefix, size_t plen, uint64_t *it_out)
{
	return mantis_iter_open(db, 0, prefix, plen, it_out);
}

static int mgo_iter_chunk(uint64_t it, char *buf, size_t cap, size_t *len_out, uint32_t *count_out)
{
	return mantis_iter_next_chunk(it, buf, cap, 0, len_out, count_out);
}

// Benchmarks only: n cache lookups, cycling over the encoded keys ("u32
// klen, key" each), from C, to tell the C cache's own cost from the Go
// layer's. Returns the number of hits.
static uint64_t mgo_bench_cache_get(uint64_t cache, const char *keys, size_t len, uint64_t n)
{
	char buf[4096];
	uint64_t hits = 0, i;
	size_t off = 0, vlen;
	uint32_t klen;

	for (i = 0; i < n && len > 0; i++) {
		if (off >= len)
			off = 0;
		memcpy(&klen, keys + off, 4);
		if (mantis_cache_get(cache, keys + off + 4, klen, buf, sizeof(buf), &vlen, NULL) ==
		    MANTIS_OK)
			hits++;
		off += 4 + klen;
	}
	return hits;
}

// Both stats in one call. A closed cache leaves *cs zeroed and reports
// the db's code (or the cache's when the db is fine).
static int mgo_stats(uint64_t db, uint64_t cache, mantis_db_stats_t *ds, mantis_cache_stats_t *cs)
{
	int rc = mantis_db_stats(db, ds), rc2 = mantis_cache_stats(cache, cs);

	return rc != MANTIS_OK ? rc : rc2;
}
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

	// ttlWords is the length of an engine's TTL bitmap (MGO_TTL_BITS/64).
	ttlWords = int(C.MGO_TTL_BITS / 64)
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

// ttlPtr passes an engine's TTL bitmap (Go memory holding no pointers).
func ttlPtr(ttl *[ttlWords]uint64) *C.uint64_t { return (*C.uint64_t)(unsafe.Pointer(ttl)) }

func cStrerror(rc int) string { return C.GoString(C.mantis_strerror(C.int(rc))) }

// cNop is an empty cgo call: the floor of every call into C.
func cNop() int { return int(C.mgo_nop()) }

// cBenchCacheGet runs n lookups of the encoded keys in cache from C
// (benchmarks) and returns the hits.
func cBenchCacheGet(cache uint64, keys []byte, n int) uint64 {
	return uint64(C.mgo_bench_cache_get(C.uint64_t(cache), bufPtr(keys), C.size_t(len(keys)), C.uint64_t(n)))
}

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

func cCacheClose(cache uint64) int { return int(C.mantis_cache_close(C.uint64_t(cache))) }

// cGet runs the cache-aside Get into buf (all of its capacity). It returns
// the code and the value's length (the needed size on cEBufSize).
func cGet(db, cache uint64, key string, buf []byte, ttl *[ttlWords]uint64) (int, int) {
	var n C.size_t
	rc := C.mgo_get(C.uint64_t(db), C.uint64_t(cache), strPtr(key), C.size_t(len(key)),
		bufPtr(buf), C.size_t(cap(buf)), &n, ttlPtr(ttl))
	return int(rc), int(n)
}

// cGetDB is cGet's miss path alone (storage read and fill).
func cGetDB(db, cache uint64, key string, buf []byte, ttl *[ttlWords]uint64) (int, int) {
	var n C.size_t
	rc := C.mgo_get_db(C.uint64_t(db), C.uint64_t(cache), strPtr(key), C.size_t(len(key)),
		bufPtr(buf), C.size_t(cap(buf)), &n, ttlPtr(ttl))
	return int(rc), int(n)
}

// cSnapGet reads key at snapshot snap from storage only (transactions).
func cSnapGet(db, snap uint64, key string, buf []byte) (int, int) {
	var n C.size_t
	rc := C.mgo_snap_get(C.uint64_t(db), C.uint64_t(snap), strPtr(key), C.size_t(len(key)),
		bufPtr(buf), C.size_t(cap(buf)), &n)
	return int(rc), int(n)
}

func cPut(db, cache uint64, key, value string, ttlMs uint64, ttl *[ttlWords]uint64) int {
	return int(C.mgo_put(C.uint64_t(db), C.uint64_t(cache), strPtr(key), C.size_t(len(key)),
		strPtr(value), C.size_t(len(value)), C.uint64_t(ttlMs), ttlPtr(ttl)))
}

func cDelete(db, cache uint64, key string) int {
	return int(C.mgo_delete(C.uint64_t(db), C.uint64_t(cache), strPtr(key), C.size_t(len(key))))
}

// cWrite applies an encoded batch (see batch_c.go) with cache maintenance.
func cWrite(db, cache uint64, batch []byte, checkSeq uint64, ttl *[ttlWords]uint64) (int, uint64) {
	var seq C.uint64_t
	rc := C.mgo_write(C.uint64_t(db), C.uint64_t(cache), bufPtr(batch), C.size_t(len(batch)),
		C.uint64_t(checkSeq), ttlPtr(ttl), &seq)
	return int(rc), uint64(seq)
}

// cWriteRaw is a plain mantis_db_write (no cache maintenance, no checks).
func cWriteRaw(db uint64, batch []byte) (int, uint64) {
	var seq C.uint64_t
	rc := C.mgo_write_raw(C.uint64_t(db), bufPtr(batch), C.size_t(len(batch)), &seq)
	return int(rc), uint64(seq)
}

// cMultiGet reads nkeys encoded keys at a fresh snapshot into out (all of
// its capacity); it returns the code and the bytes written (needed on
// cEBufSize).
func cMultiGet(db uint64, keys []byte, nkeys int, out []byte) (int, int) {
	var n C.size_t
	rc := C.mgo_multiget(C.uint64_t(db), bufPtr(keys), C.size_t(len(keys)),
		C.uint32_t(nkeys), bufPtr(out), C.size_t(cap(out)), &n)
	return int(rc), int(n)
}

func cSnapshotOpen(db uint64) (uint64, uint64, int) {
	var h, seq C.uint64_t
	rc := C.mantis_snapshot_open(C.uint64_t(db), &h, &seq)
	return uint64(h), uint64(seq), int(rc)
}

func cSnapshotClose(snap uint64) int { return int(C.mantis_snapshot_close(C.uint64_t(snap))) }

func cIterOpen(db uint64, prefix string) (uint64, int) {
	var h C.uint64_t
	rc := C.mgo_iter_open(C.uint64_t(db), strPtr(prefix), C.size_t(len(prefix)), &h)
	return uint64(h), int(rc)
}

// cIterChunk copies the next entries into buf (all of its capacity); it
// returns the code, the bytes used (needed on cEBufSize) and the entries.
func cIterChunk(it uint64, buf []byte) (int, int, int) {
	var n C.size_t
	var count C.uint32_t
	rc := C.mgo_iter_chunk(C.uint64_t(it), bufPtr(buf), C.size_t(cap(buf)), &n, &count)
	return int(rc), int(n), int(count)
}

func cIterClose(it uint64) int { return int(C.mantis_iter_close(C.uint64_t(it))) }

// cStats are the C core's counters of one engine.
type cStats struct {
	db    C.mantis_db_stats_t
	cache C.mantis_cache_stats_t
}

func cReadStats(db, cache uint64, s *cStats) int {
	return int(C.mgo_stats(C.uint64_t(db), C.uint64_t(cache), &s.db, &s.cache))
}
