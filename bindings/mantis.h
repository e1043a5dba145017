/*
 * mantis.h - the public C API of MantisDB core.
 *
 * MantisDB core is an in-memory ordered key-value store with MVCC snapshots
 * ("db") and a concurrent bounded cache ("cache"). Both are reached through
 * 64-bit handles, never through pointers, so that a host such as Go can keep
 * them in its own memory and a stale or forged handle is rejected with an
 * error code instead of causing undefined behaviour.
 *
 * Conventions (as in LMDB):
 *  - Every function returns an int: MANTIS_OK (0) or a negative error code
 *    from the reserved range [-30999, -30900]. Results are passed out through
 *    pointer arguments, which are written only on success unless a function
 *    says otherwise.
 *  - Keys and values are arbitrary bytes (NUL included), given as pointer and
 *    length. A key is 1..MANTIS_KEY_MAX bytes; a value 0..MANTIS_VALUE_MAX.
 *    Keys are ordered bytewise (memcmp; on a tie the shorter key first).
 *  - The library never keeps a caller's pointer past the return of a call:
 *    it copies what it keeps. Caller buffers stay owned by the caller.
 *  - Every function is thread-safe unless it says otherwise; any thread may
 *    call any function with any handle at any time, including concurrently
 *    with mantis_*_close on the same handle (the object is freed when the
 *    last call using it returns; later calls get MANTIS_CLOSED).
 *  - Threads need no registration. Per-thread state is created on a
 *    thread's first call and recycled when the thread exits.
 */
#ifndef MANTIS_H
#define MANTIS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */

/* Success. */
#define MANTIS_OK 0
/* The key is absent, deleted, expired, or newer than the snapshot. */
#define MANTIS_NOTFOUND (-30900)
/* A NULL pointer where one is required, a malformed batch, a bad option. */
#define MANTIS_EINVAL (-30901)
/* The key is empty. */
#define MANTIS_EKEY (-30902)
/* A key over MANTIS_KEY_MAX, a value over MANTIS_VALUE_MAX, a batch over
 * MANTIS_BATCH_MAX, or a cache entry whose cost exceeds the capacity. */
#define MANTIS_ETOOLARGE (-30903)
/* An allocation failed. Nothing of the failed call is visible. */
#define MANTIS_ENOMEM (-30904)
/* A handle that was never issued, or is of the wrong kind for the call. */
#define MANTIS_EBADHANDLE (-30905)
/* A handle that was valid and has since been closed (its generation is
 * stale). A second close of the same handle returns this. */
#define MANTIS_CLOSED (-30906)
/* mantis_db_write with conflict checks: a checked key was written after
 * the check sequence number. Nothing of the batch was applied. */
#define MANTIS_CONFLICT (-30907)
/* The caller's output buffer is too small. The required size is written
 * to the length out-argument; nothing else is written. Retry with a
 * buffer of at least that size. */
#define MANTIS_EBUFSIZE (-30908)
/* The iterator is exhausted (mantis_iter_next*) . */
#define MANTIS_DONE (-30909)

/* Returns a static, NUL-terminated English description of code (also of
 * MANTIS_OK and of unknown codes). The pointer is valid forever. */
const char *mantis_strerror(int code);

/* ---------------------------------------------------------------- limits */

/* Values up to 512 MiB (Redis's limit): lengths are size_t at the API and
 * u32 in records and stored versions, so every length on the path fits. A
 * batch holds at least one value of the largest size (record header and
 * largest key included). */
#define MANTIS_KEY_MAX   4096u         /* bytes */
#define MANTIS_VALUE_MAX (512u << 20)  /* bytes: 512 MiB */
#define MANTIS_BATCH_MAX (1024u << 20) /* bytes of an encoded batch: 1 GiB */

/* ---------------------------------------------------------------- db */

/* Options for mantis_db_open. Zero-initialise and set what you need;
 * a NULL options pointer means all defaults. */
typedef struct mantis_db_options {
	uint32_t reserved; /* must be 0 */
} mantis_db_options_t;

/* Opens a new, empty in-memory database. On success writes its handle to
 * *db_out. The caller owns the handle and must release it with
 * mantis_db_close. Errors: MANTIS_EINVAL (db_out NULL or bad options),
 * MANTIS_ENOMEM. */
int mantis_db_open(const mantis_db_options_t *opts, uint64_t *db_out);

/* Closes db. Snapshots and iterators opened on it keep working until they
 * are closed themselves; the database's memory is freed when the last of
 * them is closed. Errors: MANTIS_EBADHANDLE, MANTIS_CLOSED (already
 * closed). */
int mantis_db_close(uint64_t db);

/* Writes key -> value as one new version with its own sequence number.
 * ttl_ms > 0 makes the entry expire ttl_ms milliseconds from now (an expired
 * entry is invisible to every read); 0 means no expiry. If seq_out is not
 * NULL, the write's sequence number is written there. Errors: MANTIS_EINVAL
 * (key NULL, or value NULL with vlen > 0), MANTIS_EKEY, MANTIS_ETOOLARGE,
 * MANTIS_ENOMEM, MANTIS_EBADHANDLE, MANTIS_CLOSED. */
int mantis_db_put(uint64_t db, const void *key, size_t klen, const void *value, size_t vlen,
                  uint64_t ttl_ms, uint64_t *seq_out);

/* Writes a tombstone for key (deleting an absent key is not an error). Same
 * errors as mantis_db_put. */
int mantis_db_delete(uint64_t db, const void *key, size_t klen, uint64_t *seq_out);

/* Reads key as of snapshot snap (0: the latest committed state). Copies the
 * value into buf (cap bytes; buf may be NULL when cap is 0) and writes its
 * length to *vlen_out. If seq_out is not NULL, writes the sequence number of
 * the version read. On MANTIS_EBUFSIZE, *vlen_out holds the value's length
 * and nothing else is written. Errors: MANTIS_NOTFOUND, MANTIS_EBUFSIZE,
 * MANTIS_EINVAL, MANTIS_EKEY, MANTIS_ETOOLARGE, MANTIS_EBADHANDLE (db or
 * snap), MANTIS_CLOSED (db or snap). A snap of another db: MANTIS_EINVAL. */
int mantis_db_get(uint64_t db, uint64_t snap, const void *key, size_t klen, void *buf, size_t cap,
                  size_t *vlen_out, uint64_t *seq_out);

/* Returns in *seq_out the sequence number of the newest version of key,
 * tombstones included, whether or not it is visible (0 if the key has never
 * been written or its history was reclaimed). Used by hosts to validate a
 * cache fill. Errors as mantis_db_get but MANTIS_NOTFOUND is never returned. */
int mantis_db_key_seq(uint64_t db, const void *key, size_t klen, uint64_t *seq_out);

/*
 * Batches. A batch is one byte buffer of records, encoded little-endian
 * with no padding:
 *
 *   u8  op          MANTIS_OP_PUT, MANTIS_OP_DELETE or MANTIS_OP_CHECK
 *   u32 klen
 *   u32 vlen        0 unless op is MANTIS_OP_PUT
 *   u64 ttl_ms      0 unless op is MANTIS_OP_PUT
 *   klen bytes      the key
 *   vlen bytes      the value
 *
 * mantis_db_write applies every PUT and DELETE under one sequence number:
 * every reader, point or iterator, sees all of the batch or none of it. A
 * key written twice in one batch takes its last write. CHECK records write
 * nothing: if check_seq is not 0, the batch is applied only if no CHECK,
 * PUT or DELETE key has a version newer than check_seq; otherwise nothing is
 * applied and MANTIS_CONFLICT is returned (a compare-and-set against the
 * seq a get returned; check_seq 0 disables the checks, and every call, even
 * an empty batch, takes a sequence number). Optimistic transactions use
 * mantis_db_commit instead.
 *
 * The buffer is read during the call only. A malformed buffer (truncated
 * record, unknown op, lengths past the end) returns MANTIS_EINVAL and applies
 * nothing. An empty buffer is a no-op that still returns a sequence number.
 * Errors: MANTIS_EINVAL, MANTIS_EKEY, MANTIS_ETOOLARGE, MANTIS_CONFLICT,
 * MANTIS_ENOMEM, MANTIS_EBADHANDLE, MANTIS_CLOSED.
 */
#define MANTIS_OP_PUT    1
#define MANTIS_OP_DELETE 2
#define MANTIS_OP_CHECK  3
#define MANTIS_BATCH_HDR 17 /* bytes before the key in a record */

int mantis_db_write(uint64_t db, const void *batch, size_t len, uint64_t check_seq,
                    uint64_t *seq_out);

/*
 * As mantis_db_write, checked against snapshot snap of db (open; it stays
 * open): the batch is applied only if no CHECK, PUT or DELETE key has a
 * committed version that snap does not see, else MANTIS_CONFLICT and
 * nothing is applied. Optimistic transactions: open a snapshot (seq_out
 * NULL: no write in flight is disturbed), read through it, commit the
 * writes and the read set as CHECK records. Exact: a write that returned
 * before the snapshot was opened never conflicts, one that commits after
 * it always does. Errors: those of mantis_db_write; MANTIS_EINVAL if snap
 * is 0 or another db's; MANTIS_EBADHANDLE or MANTIS_CLOSED for snap.
 */
int mantis_db_commit(uint64_t db, uint64_t snap, const void *batch, size_t len, uint64_t *seq_out);

/*
 * Reads many keys at one snapshot in one call. keys is a buffer of records
 * "u32 klen, klen bytes" (little-endian, no padding), nkeys of them. The
 * results go to out, one record per key in the same order:
 *
 *   u32 vlen        0xFFFFFFFF if the key is absent (no bytes follow)
 *   vlen bytes      the value
 *
 * *out_len receives the bytes written. On MANTIS_EBUFSIZE, *out_len receives
 * the size needed for the whole result and out's contents are unspecified.
 * snap 0 takes a fresh snapshot for the call. Errors: as mantis_db_get, and
 * MANTIS_EINVAL for a malformed keys buffer; an empty or oversized key in
 * the buffer fails the whole call with MANTIS_EKEY / MANTIS_ETOOLARGE.
 */
#define MANTIS_ABSENT 0xFFFFFFFFu

int mantis_db_multiget(uint64_t db, uint64_t snap, const void *keys, size_t keys_len,
                       uint32_t nkeys, void *out, size_t out_cap, size_t *out_len);

/* Removes expired entries and versions that no live snapshot can see, and
 * frees their memory (deferred until no reader can hold them). Writes are
 * also reclaimed lazily; call this to bound memory held by entries nobody
 * touches. If reclaimed_out is not NULL, the number of versions reclaimed is
 * written there. Errors: MANTIS_EBADHANDLE, MANTIS_CLOSED. */
int mantis_db_sweep(uint64_t db, uint64_t *reclaimed_out);

typedef struct mantis_db_stats {
	uint64_t reads;     /* point reads (get, multiget keys, key_seq) */
	uint64_t writes;    /* put records applied */
	uint64_t deletes;   /* delete records applied */
	uint64_t entries;   /* keys whose newest version is a live value */
	uint64_t bytes;     /* key and value bytes of all versions held */
	uint64_t snapshots; /* live snapshots, iterators' included */
	uint64_t seq;       /* the last committed sequence number */
	uint64_t versions;  /* versions held, tombstones included */
} mantis_db_stats_t;

/* Writes db's counters to *out. The counters are summed from per-thread
 * parts without stopping writers: each is exact for a quiescent db and
 * approximate while writes run. Errors: MANTIS_EINVAL, MANTIS_EBADHANDLE,
 * MANTIS_CLOSED. */
int mantis_db_stats(uint64_t db, mantis_db_stats_t *out);

/* ---------------------------------------------------------------- snapshots */

/* Takes a snapshot of db's latest committed state. Reads with it see exactly
 * the writes committed at one instant of this call (every write that
 * returned before it). Writes its handle to *snap_out and, if seq_out is not
 * NULL, its sequence number: the snapshot holds exactly the writes with a
 * seq at or below it. Asking for it costs the writers in flight at the
 * call: each is made to retry with a higher seq (mantis_db_commit needs no
 * number: pass NULL for transactions). The caller owns the handle
 * and releases it with mantis_snapshot_close; versions it can see are kept
 * until then. Errors: MANTIS_EINVAL, MANTIS_ENOMEM, MANTIS_EBADHANDLE,
 * MANTIS_CLOSED. */
int mantis_snapshot_open(uint64_t db, uint64_t *snap_out, uint64_t *seq_out);

/* Releases a snapshot. Errors: MANTIS_EBADHANDLE, MANTIS_CLOSED. */
int mantis_snapshot_close(uint64_t snap);

/* ---------------------------------------------------------------- iterators */

/* Opens an iterator over db at snapshot snap (0: a new snapshot owned by the
 * iterator), restricted to keys that start with prefix (plen 0: all keys;
 * prefix may be NULL then). The iterator starts before its first entry: call
 * mantis_iter_next (or _seek) to position it. The caller owns the handle and
 * releases it with mantis_iter_close. An iterator is for one thread at a
 * time (calls on the same iterator must not overlap); different iterators
 * are independent. Errors: MANTIS_EINVAL, MANTIS_ETOOLARGE (prefix over
 * MANTIS_KEY_MAX), MANTIS_ENOMEM, MANTIS_EBADHANDLE, MANTIS_CLOSED. */
int mantis_iter_open(uint64_t db, uint64_t snap, const void *prefix, size_t plen, uint64_t *it_out);

/* Positions the iterator at the first visible key >= key (and with the
 * prefix): the next mantis_iter_next (or _next_chunk) returns that key
 * first. Returns MANTIS_DONE if there is none. Errors: MANTIS_EINVAL, MANTIS_EKEY,
 * MANTIS_ETOOLARGE, MANTIS_EBADHANDLE, MANTIS_CLOSED. */
int mantis_iter_seek(uint64_t it, const void *key, size_t klen);

/* Advances to the next visible entry with the prefix and points key and value
 * at its bytes inside the library. Those pointers stay valid until the next
 * call on this iterator (next, seek, next_chunk or close); copy what you
 * keep. Any of key, klen, value, vlen may be NULL. Returns MANTIS_DONE past
 * the last entry. Errors: MANTIS_EBADHANDLE, MANTIS_CLOSED. */
int mantis_iter_next(uint64_t it, const void **key, size_t *klen, const void **value, size_t *vlen);

/* Advances over as many entries as fit in buf and copies them there, each
 * as "u32 klen, u32 vlen, klen key bytes, vlen value bytes" (little-endian,
 * no padding). Writes the bytes used to *len_out and the entries to
 * *count_out. Stops early after max_entries entries (0: no limit). Returns
 * MANTIS_DONE with *count_out 0 when nothing is left; MANTIS_EBUFSIZE (with
 * the size needed for the next entry in *len_out) if not even one entry
 * fits. This is for hosts that cross a costly boundary per call. Errors:
 * MANTIS_EINVAL, MANTIS_EBADHANDLE, MANTIS_CLOSED. */
int mantis_iter_next_chunk(uint64_t it, void *buf, size_t cap, uint32_t max_entries,
                           size_t *len_out, uint32_t *count_out);

/* mantis_iter_next that also writes the entry's remaining time to live to
 * *ttl_ms (0: no expiry; at least 1 for an entry with one), for hosts that
 * persist a snapshot with absolute expiry times. Same pointer lifetimes as
 * mantis_iter_next. Returns MANTIS_DONE past the last entry. Errors:
 * MANTIS_EINVAL (ttl_ms NULL), MANTIS_EBADHANDLE, MANTIS_CLOSED. */
int mantis_iter_next_ttl(uint64_t it, const void **key, size_t *klen, const void **value,
                         size_t *vlen, uint64_t *ttl_ms);

/* Releases the iterator and its snapshot if it owns one. Errors:
 * MANTIS_EBADHANDLE, MANTIS_CLOSED. */
int mantis_iter_close(uint64_t it);

/* ---------------------------------------------------------------- cache */

typedef struct mantis_cache_options {
	/* Capacity in cost units (> 0). With the default cost an entry costs
	 * its key and value bytes plus MANTIS_CACHE_ENTRY_OVERHEAD. */
	uint64_t capacity;
	uint32_t reserved; /* must be 0 */
} mantis_cache_options_t;

/* The cost charged per entry on top of its key and value bytes when the
 * caller gives no explicit cost. */
#define MANTIS_CACHE_ENTRY_OVERHEAD 64u

/* Opens a cache. Writes its handle to *cache_out; the caller releases it
 * with mantis_cache_close. Errors: MANTIS_EINVAL (NULL, capacity 0),
 * MANTIS_ENOMEM. */
int mantis_cache_open(const mantis_cache_options_t *opts, uint64_t *cache_out);

/* Closes the cache and frees its entries. Errors: MANTIS_EBADHANDLE,
 * MANTIS_CLOSED. */
int mantis_cache_close(uint64_t cache);

/* Looks key up. On a hit copies the value to buf (cap bytes), writes its
 * length to *vlen_out and, if version_out is not NULL, its version. Expired
 * entries are misses. Errors: MANTIS_NOTFOUND (miss), MANTIS_EBUFSIZE (with
 * *vlen_out set; counts as a hit), MANTIS_EINVAL, MANTIS_EKEY,
 * MANTIS_ETOOLARGE, MANTIS_EBADHANDLE, MANTIS_CLOSED. */
int mantis_cache_get(uint64_t cache, const void *key, size_t klen, void *buf, size_t cap,
                     size_t *vlen_out, uint64_t *version_out);

/* Inserts or replaces key -> value. cost 0 means the default cost; ttl_ms 0
 * means no expiry. version orders writes of the same key: if the resident
 * entry has a greater version, nothing changes (0 is the oldest version).
 * The policy may also decline to admit a new key, and a put whose cost
 * exceeds its shard's share of the capacity (at least 64 KiB, or 1/64 of
 * the capacity from 4 MiB up) is declined and removes any older version of
 * the key, so the cache never serves it stale. If admitted_out is not
 * NULL it receives 1 if the entry is now resident with this value, else 0.
 * Errors: MANTIS_EINVAL, MANTIS_EKEY, MANTIS_ETOOLARGE (also cost over the
 * capacity), MANTIS_ENOMEM, MANTIS_EBADHANDLE, MANTIS_CLOSED. */
int mantis_cache_put(uint64_t cache, const void *key, size_t klen, const void *value, size_t vlen,
                     uint64_t cost, uint64_t ttl_ms, uint64_t version, int *admitted_out);

/* Removes key if it is resident and its version is <= version (pass
 * UINT64_MAX to remove whatever is there). Removing an absent key is not an
 * error. Errors: MANTIS_EINVAL, MANTIS_EKEY, MANTIS_ETOOLARGE,
 * MANTIS_EBADHANDLE, MANTIS_CLOSED. */
int mantis_cache_delete(uint64_t cache, const void *key, size_t klen, uint64_t version);

/* Removes every entry. Errors: MANTIS_EBADHANDLE, MANTIS_CLOSED. */
int mantis_cache_clear(uint64_t cache);

/* Reclaims expired entries now (they are also reclaimed as time advances
 * during other calls). If expired_out is not NULL, the number reclaimed is
 * written there. Errors: MANTIS_EBADHANDLE, MANTIS_CLOSED. */
int mantis_cache_expire(uint64_t cache, uint64_t *expired_out);

typedef struct mantis_cache_stats {
	uint64_t hits;
	uint64_t misses;
	uint64_t inserts;     /* puts that made an entry resident */
	uint64_t evictions;   /* entries removed to make room */
	uint64_t expirations; /* entries removed because their TTL passed */
	uint64_t rejections;  /* puts declined: by the policy or older version */
	uint64_t entries;     /* resident entries */
	uint64_t cost;        /* resident cost */
	uint64_t capacity;
} mantis_cache_stats_t;

/* Writes the cache's counters to *out (summed from per-thread parts; exact
 * when quiescent). Errors: MANTIS_EINVAL, MANTIS_EBADHANDLE, MANTIS_CLOSED. */
int mantis_cache_stats(uint64_t cache, mantis_cache_stats_t *out);

/* ---------------------------------------------------------------- coherent reads and writes */

/*
 * A db with a cache in front of it, kept coherent: reads look the cache up
 * and fill it from the db on a miss; writes go to the db and keep the cache
 * in step. A mantis_coherent_get never returns a value older than a
 * coherent write (put, delete, write) that returned before it began, under
 * any interleaving and with a cache of any capacity, and never one older
 * than a version any db read (get, multiget, iterator) has already seen.
 * Nothing waits: no lock is held across a db call (csrc/mt_coherent.c
 * argues the protocol). Values written with a TTL are not cached.
 *
 * A cache used with these calls must serve one db only, and be written
 * only through them (a direct mantis_cache_put or a direct db write voids
 * the guarantee for its key). Arguments, lifetimes and errors are those of
 * the db call each one wraps (a read the cache answers does not look at
 * the db handle), plus the cache handle's (EBADHANDLE, CLOSED)
 * and MANTIS_ENOMEM on the first call of a cache (its coherence state,
 * about 72 KiB, is allocated then and freed with the cache).
 */

/* As mantis_db_get at the latest state (snap 0). *seq_out, if not NULL,
 * receives the version's sequence number. On MANTIS_EBUFSIZE, *vlen_out
 * holds the length; retry with a buffer that large. */
int mantis_coherent_get(uint64_t db, uint64_t cache, const void *key, size_t klen, void *buf,
                        size_t cap, size_t *vlen_out, uint64_t *seq_out);

/* As mantis_db_put. */
int mantis_coherent_put(uint64_t db, uint64_t cache, const void *key, size_t klen,
                        const void *value, size_t vlen, uint64_t ttl_ms, uint64_t *seq_out);

/* As mantis_db_delete. */
int mantis_coherent_delete(uint64_t db, uint64_t cache, const void *key, size_t klen,
                           uint64_t *seq_out);

/* As mantis_db_write (batches and checked writes). */
int mantis_coherent_write(uint64_t db, uint64_t cache, const void *batch, size_t len,
                          uint64_t check_seq, uint64_t *seq_out);

/* As mantis_db_commit (transactions). */
int mantis_coherent_commit(uint64_t db, uint64_t cache, uint64_t snap, const void *batch,
                           size_t len, uint64_t *seq_out);

/* As mantis_db_multiget at a fresh snapshot (snap 0). Batches of up to 256
 * keys that are all resident, and that no coherent write touches during
 * the call, are served from the cache (a snapshot too: every value is its
 * key's newest at one instant of the call); the others read the db. */
int mantis_coherent_multiget(uint64_t db, uint64_t cache, const void *keys, size_t keys_len,
                             uint32_t nkeys, void *out, size_t out_cap, size_t *out_len);

/* ---------------------------------------------------------------- threads */

/* Optional: releases the calling thread's per-thread state now instead of
 * at thread exit (after flushing its deferred frees). Safe to call at any
 * time; the next call from the thread creates the state again. */
void mantis_thread_release(void);

#ifdef __cplusplus
}
#endif

#endif /* MANTIS_H */
