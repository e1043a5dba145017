/*
 * test_coherent.c - the coherence protocol (mantis_coherent_*,
 * csrc/mt_coherent.c): the API, and a stress test of its guarantee (no get
 * returns a version older than a write that returned before it began) with
 * more threads than cores and caches from 1 cost unit to 64 MiB. The same
 * stress test, run with each part of the protocol removed (test hooks) and
 * a sleep where a preemption would hurt, must find a stale read: it is a
 * test that can fail.
 */
#include "mantis.h"
#include "mt_coherent.h"
#include "test_db_util.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

static uint64_t coh_db(void)
{
	uint64_t db = 0;

	cr_assert_eq(mantis_db_open(NULL, &db), MANTIS_OK);
	return db;
}

static uint64_t coh_cache(uint64_t capacity)
{
	mantis_cache_options_t o = {.capacity = capacity};
	uint64_t c = 0;

	cr_assert_eq(mantis_cache_open(&o, &c), MANTIS_OK);
	return c;
}

static int coh_get(uint64_t db, uint64_t c, const char *k, char *buf, size_t cap, uint64_t *seq)
{
	size_t n = 0;
	int rc = mantis_coherent_get(db, c, k, strlen(k), buf, cap - 1, &n, seq);

	if (rc == MANTIS_OK)
		buf[n] = '\0';
	return rc;
}

Test(coherent, put_get_delete_through_the_cache)
{
	uint64_t db = coh_db(), c = coh_cache(1 << 20), s1 = 0, s2 = 0, seq = 0;
	mantis_cache_stats_t cs;
	char buf[64];

	cr_assert_eq(coh_get(db, c, "k", buf, sizeof(buf), NULL), MANTIS_NOTFOUND);
	cr_assert_eq(mantis_coherent_put(db, c, "k", 1, "v1", 2, 0, &s1), MANTIS_OK);
	/* Not resident before the write: the write does not insert it. */
	cr_assert_eq(mantis_cache_stats(c, &cs), MANTIS_OK);
	cr_assert_eq(cs.entries, 0);
	cr_assert_eq(coh_get(db, c, "k", buf, sizeof(buf), &seq), MANTIS_OK);
	cr_assert_str_eq(buf, "v1");
	cr_assert_eq(seq, s1);
	/* The miss filled the cache: the next get hits. */
	cr_assert_eq(mantis_cache_stats(c, &cs), MANTIS_OK);
	cr_assert_eq(cs.entries, 1);
	cr_assert_eq(coh_get(db, c, "k", buf, sizeof(buf), &seq), MANTIS_OK);
	cr_assert_eq(mantis_cache_stats(c, &cs), MANTIS_OK);
	cr_assert_eq(cs.hits, 1);
	/* A resident key is written through. */
	cr_assert_eq(mantis_coherent_put(db, c, "k", 1, "v2", 2, 0, &s2), MANTIS_OK);
	cr_assert_gt(s2, s1);
	cr_assert_eq(coh_get(db, c, "k", buf, sizeof(buf), &seq), MANTIS_OK);
	cr_assert_str_eq(buf, "v2");
	cr_assert_eq(seq, s2);
	cr_assert_eq(mantis_cache_stats(c, &cs), MANTIS_OK);
	cr_assert_eq(cs.hits, 2);
	/* Delete removes it from both. */
	cr_assert_eq(mantis_coherent_delete(db, c, "k", 1, NULL), MANTIS_OK);
	cr_assert_eq(coh_get(db, c, "k", buf, sizeof(buf), NULL), MANTIS_NOTFOUND);
	cr_assert_eq(mantis_cache_stats(c, &cs), MANTIS_OK);
	cr_assert_eq(cs.entries, 0);
	cr_assert_eq(mantis_cache_close(c), MANTIS_OK);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

Test(coherent, small_buffer_and_ttl)
{
	uint64_t db = coh_db(), c = coh_cache(1 << 20);
	mantis_cache_stats_t cs;
	char buf[8];
	size_t n = 0;

	cr_assert_eq(mantis_coherent_put(db, c, "big", 3, "0123456789", 10, 0, NULL), MANTIS_OK);
	cr_assert_eq(mantis_coherent_get(db, c, "big", 3, buf, sizeof(buf), &n, NULL),
	             MANTIS_EBUFSIZE);
	cr_assert_eq(n, 10);
	/* A value with a TTL is never cached, and its key is not filled. */
	cr_assert_eq(mantis_coherent_put(db, c, "t", 1, "x", 1, 60000, NULL), MANTIS_OK);
	cr_assert_eq(coh_get(db, c, "t", buf, sizeof(buf), NULL), MANTIS_OK);
	cr_assert_str_eq(buf, "x");
	cr_assert_eq(mantis_cache_stats(c, &cs), MANTIS_OK);
	cr_assert_eq(cs.entries, 0);
	cr_assert_eq(mantis_cache_close(c), MANTIS_OK);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

Test(coherent, batches_and_checked_commits)
{
	uint64_t db = coh_db(), c = coh_cache(1 << 20), snap = 0, sseq = 0, seq = 0;
	struct tdb_batch b = {0};
	char buf[64];

	cr_assert_eq(mantis_coherent_put(db, c, "a", 1, "1", 1, 0, NULL), MANTIS_OK);
	cr_assert_eq(coh_get(db, c, "a", buf, sizeof(buf), NULL), MANTIS_OK); /* cached */
	tdb_batch_put(&b, "a", "2");
	tdb_batch_put(&b, "b", "3");
	tdb_batch_del(&b, "b");
	cr_assert_eq(mantis_coherent_write(db, c, b.buf, b.len, 0, &seq), MANTIS_OK);
	cr_assert_eq(coh_get(db, c, "a", buf, sizeof(buf), NULL), MANTIS_OK);
	cr_assert_str_eq(buf, "2");
	cr_assert_eq(coh_get(db, c, "b", buf, sizeof(buf), NULL), MANTIS_NOTFOUND);
	/* A conflicting commit applies nothing and reports the conflict. */
	cr_assert_eq(mantis_snapshot_open(db, &snap, &sseq), MANTIS_OK);
	cr_assert_eq(mantis_coherent_put(db, c, "a", 1, "4", 1, 0, NULL), MANTIS_OK);
	tdb_batch_free(&b);
	tdb_batch_check(&b, "a");
	tdb_batch_put(&b, "c", "5");
	cr_assert_eq(mantis_coherent_write(db, c, b.buf, b.len, sseq, NULL), MANTIS_CONFLICT);
	cr_assert_eq(coh_get(db, c, "c", buf, sizeof(buf), NULL), MANTIS_NOTFOUND);
	cr_assert_eq(coh_get(db, c, "a", buf, sizeof(buf), NULL), MANTIS_OK);
	cr_assert_str_eq(buf, "4");
	/* The same against the snapshot itself (mantis_db_commit). */
	cr_assert_eq(mantis_coherent_commit(db, c, snap, b.buf, b.len, NULL), MANTIS_CONFLICT);
	cr_assert_eq(coh_get(db, c, "c", buf, sizeof(buf), NULL), MANTIS_NOTFOUND);
	cr_assert_eq(mantis_coherent_commit(db, c, 0, b.buf, b.len, NULL), MANTIS_EINVAL);
	/* A malformed batch is refused. */
	cr_assert_eq(mantis_coherent_write(db, c, b.buf, b.len - 1, 0, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_coherent_commit(db, c, snap, b.buf, b.len - 1, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	/* A snapshot after the put of "a": the commit applies, and the cache
	 * serves the committed values. */
	cr_assert_eq(mantis_snapshot_open(db, &snap, NULL), MANTIS_OK);
	tdb_batch_free(&b);
	tdb_batch_check(&b, "a");
	tdb_batch_put(&b, "c", "6");
	cr_assert_eq(coh_get(db, c, "c", buf, sizeof(buf), NULL), MANTIS_NOTFOUND);
	cr_assert_eq(mantis_coherent_commit(db, c, snap, b.buf, b.len, &seq), MANTIS_OK);
	cr_assert_eq(coh_get(db, c, "c", buf, sizeof(buf), NULL), MANTIS_OK);
	cr_assert_str_eq(buf, "6");
	tdb_batch_free(&b);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	cr_assert_eq(mantis_cache_close(c), MANTIS_OK);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

Test(coherent, bad_arguments_and_handles)
{
	uint64_t db = coh_db(), c = coh_cache(1 << 20);
	char buf[8], big[MANTIS_KEY_MAX + 1];
	size_t n;

	memset(big, 'k', sizeof(big));
	cr_assert_eq(mantis_coherent_get(db, c, NULL, 1, buf, 8, &n, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_coherent_get(db, c, "k", 1, buf, 8, NULL, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_coherent_get(db, c, "k", 1, NULL, 8, &n, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_coherent_get(db, c, "k", 0, buf, 8, &n, NULL), MANTIS_EKEY);
	cr_assert_eq(mantis_coherent_get(db, c, big, sizeof(big), buf, 8, &n, NULL),
	             MANTIS_ETOOLARGE);
	cr_assert_eq(mantis_coherent_put(db, c, NULL, 1, "v", 1, 0, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_coherent_put(db, c, "k", 1, NULL, 1, 0, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_coherent_put(db, c, "k", 0, "v", 1, 0, NULL), MANTIS_EKEY);
	cr_assert_eq(mantis_coherent_put(db, c, "k", 1, "v", (size_t)MANTIS_VALUE_MAX + 1, 0, NULL),
	             MANTIS_ETOOLARGE);
	cr_assert_eq(mantis_coherent_delete(db, c, "", 0, NULL), MANTIS_EKEY);
	cr_assert_eq(mantis_coherent_write(db, c, NULL, 5, 0, NULL), MANTIS_EINVAL);
	/* Wrong kinds, forged and closed handles. */
	cr_assert_eq(mantis_coherent_put(db, db, "k", 1, "v", 1, 0, NULL), MANTIS_EBADHANDLE);
	cr_assert_eq(mantis_coherent_put(c, c, "k", 1, "v", 1, 0, NULL), MANTIS_EBADHANDLE);
	cr_assert_eq(mantis_coherent_get(db, 12345, "k", 1, buf, 8, &n, NULL), MANTIS_EBADHANDLE);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
	cr_assert_eq(mantis_coherent_put(db, c, "k", 1, "v", 1, 0, NULL), MANTIS_CLOSED);
	cr_assert_eq(mantis_coherent_get(db, c, "k", 1, buf, 8, &n, NULL), MANTIS_CLOSED);
	cr_assert_eq(mantis_cache_close(c), MANTIS_OK);
	cr_assert_eq(mantis_coherent_get(db, c, "k", 1, buf, 8, &n, NULL), MANTIS_CLOSED);
	cr_assert_eq(mantis_coherent_write(db, c, "", 0, 0, NULL), MANTIS_CLOSED);
}

/* ------------------------------------------------------------------ stress */

#define COH_KEYS 8

struct coh_run {
	uint64_t db, cache;
	uint64_t done[COH_KEYS]; /* the newest seq a write of key i returned */
	uint64_t stale, reads, ops;
	uint64_t deadline_ns; /* stop then, or at the first stale read if stop_on_stale */
	int stop_on_stale;
	int stop;
};

static uint64_t coh_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void coh_done(struct coh_run *run, unsigned k, uint64_t seq)
{
	uint64_t cur = __atomic_load_n(&run->done[k], __ATOMIC_SEQ_CST);

	while (cur < seq && !__atomic_compare_exchange_n(&run->done[k], &cur, seq, 0,
	                                                 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		;
}

static int coh_stopped(struct coh_run *run, uint64_t i)
{
	if (__atomic_load_n(&run->stop, __ATOMIC_RELAXED))
		return 1;
	if (i % 64 == 0 && coh_now_ns() > run->deadline_ns)
		__atomic_store_n(&run->stop, 1, __ATOMIC_RELAXED);
	return i >= run->ops;
}

static void *coh_writer(void *arg)
{
	struct coh_run *run = arg;
	uint64_t x = (uint64_t)(uintptr_t)&x | 1, seq;
	struct tdb_batch b = {0};

	for (uint64_t i = 0; !coh_stopped(run, i); i++) {
		unsigned k, k2, op;
		char key[8], key2[8];

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		k = (unsigned)(x % COH_KEYS);
		k2 = (unsigned)((x >> 8) % COH_KEYS);
		op = (unsigned)((x >> 16) % 8);
		snprintf(key, sizeof(key), "k%u", k);
		snprintf(key2, sizeof(key2), "k%u", k2);
		seq = 0;
		if (op < 4) {
			cr_assert_eq(mantis_coherent_put(run->db, run->cache, key, strlen(key), &x,
			                                 sizeof(x), 0, &seq),
			             MANTIS_OK);
			coh_done(run, k, seq);
		} else if (op < 7) {
			cr_assert_eq(
			        mantis_coherent_delete(run->db, run->cache, key, strlen(key), &seq),
			        MANTIS_OK);
			coh_done(run, k, seq);
		} else {
			b.len = 0;
			tdb_batch_rec(&b, MANTIS_OP_PUT, key, (uint32_t)strlen(key), &x, sizeof(x),
			              0);
			tdb_batch_del(&b, key2);
			cr_assert_eq(
			        mantis_coherent_write(run->db, run->cache, b.buf, b.len, 0, &seq),
			        MANTIS_OK);
			coh_done(run, k, seq);
			coh_done(run, k2, seq);
		}
	}
	tdb_batch_free(&b);
	mantis_thread_release();
	return NULL;
}

static void *coh_reader(void *arg)
{
	struct coh_run *run = arg;
	uint64_t x = (uint64_t)(uintptr_t)&x | 1;

	for (uint64_t i = 0; !coh_stopped(run, i); i++) {
		uint64_t floor, seq = 0, buf[4];
		char key[8];
		size_t n;
		unsigned k;
		int rc;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		k = (unsigned)(x % COH_KEYS);
		snprintf(key, sizeof(key), "k%u", k);
		floor = __atomic_load_n(&run->done[k], __ATOMIC_SEQ_CST);
		/* Every other read first reads storage directly: a coherent get
		 * that follows must not return an older version than it saw,
		 * even while the writer of that version is still in flight. */
		if (i % 2 == 0 &&
		    mantis_db_get(run->db, 0, key, strlen(key), buf, sizeof(buf), &n, &seq) ==
		            MANTIS_OK &&
		    seq > floor)
			floor = seq;
		seq = 0;
		rc = mantis_coherent_get(run->db, run->cache, key, strlen(key), buf, sizeof(buf),
		                         &n, &seq);
		cr_assert(rc == MANTIS_OK || rc == MANTIS_NOTFOUND);
		__atomic_add_fetch(&run->reads, 1, __ATOMIC_RELAXED);
		if (rc == MANTIS_OK && seq < floor) {
			__atomic_add_fetch(&run->stale, 1, __ATOMIC_SEQ_CST);
			if (run->stop_on_stale)
				__atomic_store_n(&run->stop, 1, __ATOMIC_RELAXED);
		}
	}
	mantis_thread_release();
	return NULL;
}

/* Runs `threads` threads (half writers) on COH_KEYS keys with a cache of
 * `capacity`; returns the stale reads seen. */
static uint64_t coh_stress(uint64_t capacity, unsigned threads, uint64_t ops, uint64_t seconds,
                           int stop_on_stale)
{
	struct coh_run run = {0};
	pthread_t t[64];

	cr_assert_leq(threads, 64);
	run.db = coh_db();
	run.cache = coh_cache(capacity);
	run.ops = ops;
	run.deadline_ns = coh_now_ns() + seconds * 1000000000ull;
	run.stop_on_stale = stop_on_stale;
	for (unsigned i = 0; i < threads; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, i % 2 ? coh_reader : coh_writer, &run), 0);
	for (unsigned i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	cr_assert_gt(run.reads, 0);
	cr_assert_eq(mantis_cache_close(run.cache), MANTIS_OK);
	cr_assert_eq(mantis_db_close(run.db), MANTIS_OK);
	return run.stale;
}

Test(coherent, no_stale_read_any_cache_size)
{
	static const uint64_t caps[] = {1, 300, 4096, 64u << 20};

	for (unsigned i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		cr_assert_eq(coh_stress(caps[i], 8, test_scaled(40000), 30, 0), 0,
		             "stale reads with a cache of %llu", (unsigned long long)caps[i]);
		cr_assert_eq(coh_stress(caps[i], 32, test_scaled(4000), 30, 0), 0,
		             "stale reads with a cache of %llu, 32 threads",
		             (unsigned long long)caps[i]);
	}
}

/* A sleep before every guarded put stands in for a preemption there: the
 * intact protocol stays correct with it. */
Test(coherent, no_stale_read_with_delayed_puts)
{
	mt_coherent_test_hooks(0, 20000, MT_COH_POLICY_RESIDENT);
	cr_assert_eq(coh_stress(1 << 20, 8, test_scaled(4000), 30, 0), 0);
	mt_coherent_test_hooks(0, 20000, MT_COH_POLICY_ALWAYS);
	cr_assert_eq(coh_stress(1 << 20, 8, test_scaled(4000), 30, 0), 0);
	mt_coherent_test_hooks(0, 0, MT_COH_POLICY_RESIDENT);
}

/* Each part removed: the stress test must see a stale read. */
static void coh_broken(unsigned breaks, int policy)
{
	uint64_t stale;

	mt_coherent_test_hooks(breaks, 20000, policy);
	stale = coh_stress(1 << 20, 8, UINT64_MAX, 60, 1);
	mt_coherent_test_hooks(0, 0, MT_COH_POLICY_RESIDENT);
	cr_assert_gt(stale, 0, "removing part %u went unnoticed", breaks);
}

Test(coherent, stress_notices_an_unguarded_fill)
{
	coh_broken(MT_COH_BREAK_GUARD, MT_COH_POLICY_NEVER);
}

Test(coherent, stress_notices_a_missing_invalidation)
{
	coh_broken(MT_COH_BREAK_INVALIDATE, MT_COH_POLICY_NEVER);
}

Test(coherent, stress_notices_an_overlapping_writer_insert)
{
	coh_broken(MT_COH_BREAK_ALONE, MT_COH_POLICY_ALWAYS);
}

/* A write replaces its key's cached entry after its storage write: a hit
 * that does not check the stripe returns the older version to a reader
 * that already saw the newer one in storage. */
Test(coherent, stress_notices_an_unvalidated_hit)
{
	coh_broken(MT_COH_BREAK_VALIDATE, MT_COH_POLICY_ALWAYS);
}

/* ------------------------------------------------------------------ multiget */

static void coh_keys(struct tdb_batch *b, const char *const *keys, unsigned n)
{
	unsigned char l[4];

	b->len = 0;
	for (unsigned i = 0; i < n; i++) {
		tdb_le32(l, (uint32_t)strlen(keys[i]));
		tdb_batch_raw(b, l, 4);
		tdb_batch_raw(b, keys[i], strlen(keys[i]));
	}
}

Test(coherent, multiget_from_the_cache_when_all_resident)
{
	static const char *const keys[] = {"a", "b", "c"};
	uint64_t db = coh_db(), c = coh_cache(1 << 20);
	unsigned char out[64], want[64];
	struct tdb_batch kb = {0};
	mantis_db_stats_t s0, s1;
	char buf[16];
	size_t n = 0, wn = 0;

	for (unsigned i = 0; i < 3; i++)
		cr_assert_eq(mantis_coherent_put(db, c, keys[i], 1, keys[i], 1, 0, NULL),
		             MANTIS_OK);
	coh_keys(&kb, keys, 3);
	/* Not resident: from storage. */
	cr_assert_eq(mantis_coherent_multiget(db, c, kb.buf, kb.len, 3, out, sizeof(out), &n),
	             MANTIS_OK);
	cr_assert_eq(mantis_db_multiget(db, 0, kb.buf, kb.len, 3, want, sizeof(want), &wn),
	             MANTIS_OK);
	cr_assert_eq(n, wn);
	cr_assert_arr_eq(out, want, n);
	/* Resident: from the cache, the db reads nothing. */
	for (unsigned i = 0; i < 3; i++)
		cr_assert_eq(coh_get(db, c, keys[i], buf, sizeof(buf), NULL), MANTIS_OK);
	cr_assert_eq(mantis_db_stats(db, &s0), MANTIS_OK);
	cr_assert_eq(mantis_coherent_multiget(db, c, kb.buf, kb.len, 3, out, sizeof(out), &n),
	             MANTIS_OK);
	cr_assert_eq(mantis_db_stats(db, &s1), MANTIS_OK);
	cr_assert_eq(s1.reads, s0.reads, "a resident batch reads the cache only");
	cr_assert_eq(n, wn);
	cr_assert_arr_eq(out, want, n);
	/* A small buffer gets the size needed; a deleted key reads absent. */
	cr_assert_eq(mantis_coherent_multiget(db, c, kb.buf, kb.len, 3, out, 5, &n),
	             MANTIS_EBUFSIZE);
	cr_assert_eq(n, wn);
	cr_assert_eq(mantis_coherent_delete(db, c, "b", 1, NULL), MANTIS_OK);
	cr_assert_eq(mantis_coherent_multiget(db, c, kb.buf, kb.len, 3, out, sizeof(out), &n),
	             MANTIS_OK);
	cr_assert_eq(n, 5 + 4 + 5);
	cr_assert_eq(memcmp(out + 5, "\xff\xff\xff\xff", 4), 0);
	/* Malformed key lists get storage's answer. */
	cr_assert_eq(mantis_coherent_multiget(db, c, kb.buf, kb.len - 1, 3, out, sizeof(out), &n),
	             MANTIS_EINVAL);
	cr_assert_eq(mantis_coherent_multiget(db, c, kb.buf, kb.len, 3, out, sizeof(out), NULL),
	             MANTIS_EINVAL);
	tdb_batch_free(&kb);
	cr_assert_eq(mantis_cache_close(c), MANTIS_OK);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

struct coh_mrun {
	uint64_t db, cache;
	uint64_t ops;
	uint64_t torn, cached;
	int stop;
};

/* Writes both keys in one batch with the same value, or deletes both. */
static void *coh_mwriter(void *arg)
{
	struct coh_mrun *run = arg;
	struct tdb_batch b = {0};

	for (uint64_t i = 1; i <= run->ops; i++) {
		b.len = 0;
		if (i % 5 == 0) {
			tdb_batch_del(&b, "x");
			tdb_batch_del(&b, "y");
		} else {
			tdb_batch_rec(&b, MANTIS_OP_PUT, "x", 1, &i, sizeof(i), 0);
			tdb_batch_rec(&b, MANTIS_OP_PUT, "y", 1, &i, sizeof(i), 0);
		}
		cr_assert_eq(mantis_coherent_write(run->db, run->cache, b.buf, b.len, 0, NULL),
		             MANTIS_OK);
	}
	__atomic_store_n(&run->stop, 1, __ATOMIC_SEQ_CST);
	tdb_batch_free(&b);
	mantis_thread_release();
	return NULL;
}

/* Fills the cache with gets, and checks that every multiget of both keys
 * sees one batch: the same value or both absent. */
static void *coh_mreader(void *arg)
{
	static const char *const keys[] = {"x", "y"};
	struct coh_mrun *run = arg;
	struct tdb_batch kb = {0};
	unsigned char out[64];
	uint64_t v[2], g;
	mantis_db_stats_t s0, s1;

	coh_keys(&kb, keys, 2);
	while (!__atomic_load_n(&run->stop, __ATOMIC_SEQ_CST)) {
		size_t n = 0, vn;
		uint32_t l0, l1;

		(void)mantis_coherent_get(run->db, run->cache, "x", 1, &g, sizeof(g), &vn, NULL);
		(void)mantis_coherent_get(run->db, run->cache, "y", 1, &g, sizeof(g), &vn, NULL);
		cr_assert_eq(mantis_db_stats(run->db, &s0), MANTIS_OK);
		cr_assert_eq(mantis_coherent_multiget(run->db, run->cache, kb.buf, kb.len, 2, out,
		                                      sizeof(out), &n),
		             MANTIS_OK);
		cr_assert_eq(mantis_db_stats(run->db, &s1), MANTIS_OK);
		memcpy(&l0, out, 4);
		if (l0 == MANTIS_ABSENT) {
			memcpy(&l1, out + 4, 4);
			if (l1 != MANTIS_ABSENT)
				__atomic_add_fetch(&run->torn, 1, __ATOMIC_RELAXED);
			continue;
		}
		memcpy(&v[0], out + 4, 8);
		memcpy(&l1, out + 12, 4);
		if (l1 == MANTIS_ABSENT) {
			__atomic_add_fetch(&run->torn, 1, __ATOMIC_RELAXED);
			continue;
		}
		memcpy(&v[1], out + 16, 8);
		if (v[0] != v[1])
			__atomic_add_fetch(&run->torn, 1, __ATOMIC_RELAXED);
		if (s1.reads == s0.reads)
			__atomic_add_fetch(&run->cached, 1, __ATOMIC_RELAXED);
	}
	tdb_batch_free(&kb);
	mantis_thread_release();
	return NULL;
}

/* Batches only invalidate, so fills race every batch: a multiget served
 * from the cache must still see whole batches. */
Test(coherent, multiget_sees_whole_batches)
{
	struct coh_mrun run = {0};
	pthread_t t[8];

	run.db = coh_db();
	run.cache = coh_cache(1 << 20);
	run.ops = test_scaled(100000);
	for (unsigned i = 0; i < 8; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, i < 2 ? coh_mwriter : coh_mreader, &run),
		             0);
	for (unsigned i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(run.torn, 0, "%llu multigets saw part of a batch",
	             (unsigned long long)run.torn);
	cr_log_info("multigets served from the cache: %llu", (unsigned long long)run.cached);
	cr_assert_eq(mantis_cache_close(run.cache), MANTIS_OK);
	cr_assert_eq(mantis_db_close(run.db), MANTIS_OK);
}

/* Values over 4 KiB are read from storage, never cached (mt_coherent.c,
 * "Large values"); writes of them still invalidate. */
Test(coherent, large_values_are_not_cached)
{
	static char big[8192], buf[8192];
	uint64_t db = coh_db(), c = coh_cache(1 << 20), seq = 0, s = 0;
	mantis_cache_stats_t cs;
	size_t n = 0;

	memset(big, 'v', sizeof(big));
	cr_assert_eq(mantis_coherent_put(db, c, "s", 1, "small", 5, 0, NULL), MANTIS_OK);
	cr_assert_eq(coh_get(db, c, "s", buf, sizeof(buf), NULL), MANTIS_OK); /* cached */
	cr_assert_eq(mantis_coherent_put(db, c, "s", 1, big, sizeof(big), 0, &s), MANTIS_OK);
	cr_assert_eq(mantis_coherent_put(db, c, "b", 1, big, sizeof(big), 0, NULL), MANTIS_OK);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(mantis_coherent_get(db, c, "s", 1, buf, sizeof(buf), &n, &seq),
		             MANTIS_OK);
		cr_assert_eq(n, sizeof(big));
		cr_assert_eq(seq, s);
		cr_assert_eq(mantis_coherent_get(db, c, "b", 1, buf, sizeof(buf), &n, NULL),
		             MANTIS_OK);
	}
	cr_assert_eq(mantis_cache_stats(c, &cs), MANTIS_OK);
	cr_assert_eq(cs.entries, 0);
	cr_assert_eq(cs.hits, 0);
	cr_assert_eq(cs.misses, 5);
	cr_assert_eq(mantis_cache_close(c), MANTIS_OK);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}
