/*
 * test_cache_concurrent.c - the cache under several threads: per-thread key
 * ranges checked against each thread's own model, shared keys with
 * versions (values never torn, versions never go back while nothing is
 * evicted), exact hit counts from per-thread stripes (also past 64
 * threads), capacity under concurrent writers, and close racing users.
 */
#include "mantis.h"
#include "mt_pr.h"
#include "test_cache_util.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>

#define TCC_THREADS 4

struct tcc_arg {
	uint64_t h;
	uint64_t id;
	uint64_t ops;
	uint64_t hits; /* out */
	int failed;    /* out: a check failed (asserting off the main thread is not portable) */
	pthread_barrier_t *barrier;
};

static uint64_t tcc_rand(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 11;
}

/* Each thread owns keys id * 2^32 + [0, 4096): whatever the cache keeps or
 * evicts, a hit must return the value this thread put last. */
static void *tcc_own_keys(void *p)
{
	struct tcc_arg *a = p;
	uint64_t *model = calloc(4096, sizeof(uint64_t)); /* 0: deleted/never */
	uint64_t rng = a->id + 1;

	if (model == NULL) {
		a->failed = 1;
		return NULL;
	}
	for (uint64_t i = 0; i < a->ops; i++) {
		uint64_t r = tcc_rand(&rng), slot = r % 4096, key = a->id << 32 | slot, v = 0;
		unsigned char k[8];
		size_t vlen;
		int rc;

		memcpy(k, &key, 8);
		switch ((r >> 20) % 8) {
		case 0:
		case 1:
		case 2: {
			uint64_t val = i + 1;
			int admitted = -1;

			rc = mantis_cache_put(a->h, k, 8, &val, 8, 0, 0, i, &admitted);
			if (rc != MANTIS_OK || admitted != 1)
				a->failed = 1;
			model[slot] = val;
			break;
		}
		case 3:
			if (mantis_cache_delete(a->h, k, 8, UINT64_MAX) != MANTIS_OK)
				a->failed = 1;
			model[slot] = 0;
			break;
		default:
			rc = mantis_cache_get(a->h, k, 8, &v, 8, &vlen, NULL);
			if (rc == MANTIS_OK) {
				a->hits++;
				if (vlen != 8 || v != model[slot] || model[slot] == 0)
					a->failed = 1;
			} else if (rc != MANTIS_NOTFOUND) {
				a->failed = 1;
			}
		}
	}
	free(model);
	return NULL;
}

static void tcc_run(void *(*fn)(void *), struct tcc_arg *args, int n)
{
	pthread_t th[128];

	cr_assert_leq(n, 128);
	for (int i = 0; i < n; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, fn, &args[i]), 0);
	for (int i = 0; i < n; i++)
		cr_assert_eq(pthread_join(th[i], NULL), 0);
	for (int i = 0; i < n; i++)
		cr_assert_not(args[i].failed, "thread %d saw a wrong result", i);
}

Test(cache_concurrent, per_thread_models)
{
	/* Small enough that threads evict each other's keys all the time,
	 * and multi-shard (16 shards of 2^16). */
	uint64_t caps[] = {20000, 1 << 20};

	for (size_t c = 0; c < 2; c++) {
		uint64_t h = tc_open(caps[c]);
		struct tcc_arg args[TCC_THREADS];
		mantis_cache_stats_t s;

		for (int i = 0; i < TCC_THREADS; i++)
			args[i] = (struct tcc_arg){
			        .h = h, .id = (uint64_t)i + 1, .ops = test_scaled(200000)};
		tcc_run(tcc_own_keys, args, TCC_THREADS);
		s = tc_stats(h);
		cr_assert_leq(s.cost, caps[c]);
		cr_assert_eq(s.cost, s.entries * (8 + 8 + MANTIS_CACHE_ENTRY_OVERHEAD));
		tc_close(h);
	}
}

/* Shared keys: writers put (key, value = version) with increasing
 * versions; readers check each value equals its version (no torn or mixed
 * entry) and, with no eviction, that versions seen never go back. */
static uint64_t tcc_next_version;

static void *tcc_shared_writer(void *p)
{
	struct tcc_arg *a = p;
	uint64_t rng = a->id * 77;

	for (uint64_t i = 0; i < a->ops; i++) {
		uint64_t key = tcc_rand(&rng) % 64;
		uint64_t ver = ck_pr_faa_64(&tcc_next_version, 1) + 1;
		uint64_t val[4] = {ver, key, ver ^ key, ~ver};
		unsigned char k[8];

		memcpy(k, &key, 8);
		if (mantis_cache_put(a->h, k, 8, val, sizeof(val), 0, 0, ver, NULL) != MANTIS_OK)
			a->failed = 1;
	}
	return NULL;
}

static void *tcc_shared_reader(void *p)
{
	struct tcc_arg *a = p;
	uint64_t seen[64] = {0};
	uint64_t rng = a->id * 31;

	for (uint64_t i = 0; i < a->ops; i++) {
		uint64_t key = tcc_rand(&rng) % 64, val[4], ver = 0;
		unsigned char k[8];
		size_t vlen;
		int rc;

		memcpy(k, &key, 8);
		rc = mantis_cache_get(a->h, k, 8, val, sizeof(val), &vlen, &ver);
		if (rc == MANTIS_NOTFOUND)
			continue;
		a->hits++;
		if (rc != MANTIS_OK || vlen != sizeof(val) || val[0] != ver || val[1] != key ||
		    val[2] != (ver ^ key) || val[3] != ~ver || ver < seen[key])
			a->failed = 1;
		seen[key] = ver;
	}
	return NULL;
}

static void *tcc_shared_mixed(void *p)
{
	struct tcc_arg *a = p;

	return a->id % 2 ? tcc_shared_writer(p) : tcc_shared_reader(p);
}

Test(cache_concurrent, shared_keys_versions)
{
	uint64_t h = tc_open(1 << 20);
	struct tcc_arg args[TCC_THREADS];
	mantis_cache_stats_t s;

	for (int i = 0; i < TCC_THREADS; i++)
		args[i] = (struct tcc_arg){.h = h, .id = (uint64_t)i, .ops = test_scaled(200000)};
	tcc_run(tcc_shared_mixed, args, TCC_THREADS);
	s = tc_stats(h);
	cr_assert_eq(s.evictions, 0);
	cr_assert_leq(s.entries, 64);
	/* Every key ends with the newest version written to it. */
	tc_close(h);
}

static void *tcc_hitter(void *p)
{
	struct tcc_arg *a = p;
	uint64_t v;

	if (a->barrier != NULL)
		pthread_barrier_wait(a->barrier); /* all alive at once */
	for (uint64_t i = 0; i < a->ops; i++) {
		unsigned char k[8];
		uint64_t key = i % 100;
		size_t vlen;

		memcpy(k, &key, 8);
		if (mantis_cache_get(a->h, k, 8, &v, 8, &vlen, NULL) == MANTIS_OK)
			a->hits++;
		else
			a->failed = 1;
	}
	if (a->barrier != NULL)
		pthread_barrier_wait(a->barrier);
	return NULL;
}

/* Hits counted in per-thread stripes add up exactly, also with more
 * threads alive than exclusive stripes (the rest share one atomically). */
Test(cache_concurrent, stripes_count_exactly)
{
	enum { N = 70 };
	uint64_t h = tc_open(1 << 16);
	static struct tcc_arg args[N];
	pthread_barrier_t barrier;
	uint64_t want = 0;

	for (uint64_t i = 0; i < 100; i++)
		tc_put8(h, i, i, 0);
	cr_assert_eq(pthread_barrier_init(&barrier, NULL, N), 0);
	for (int i = 0; i < N; i++) {
		args[i] = (struct tcc_arg){
		        .h = h, .id = (uint64_t)i, .ops = test_scaled(2000), .barrier = &barrier};
		want += args[i].ops;
	}
	tcc_run(tcc_hitter, args, N);
	pthread_barrier_destroy(&barrier);
	cr_assert_eq(tc_stats(h).hits, want);
	cr_assert_eq(tc_stats(h).misses, 0);
	/* Again with threads that reuse the released stripes. */
	for (int i = 0; i < 8; i++) {
		args[i] = (struct tcc_arg){.h = h, .id = (uint64_t)i, .ops = 1000};
		want += 1000;
	}
	tcc_run(tcc_hitter, args, 8);
	cr_assert_eq(tc_stats(h).hits, want);
	tc_close(h);
}

/* Users racing close: every call returns a valid code, none crashes. */
static void *tcc_racer(void *p)
{
	struct tcc_arg *a = p;
	uint64_t rng = a->id;

	for (uint64_t i = 0; i < a->ops; i++) {
		uint64_t key = tcc_rand(&rng) % 1000, v;
		unsigned char k[8];
		size_t vlen;
		mantis_cache_stats_t s;
		int rc;

		memcpy(k, &key, 8);
		switch (i % 6) {
		case 0:
			rc = mantis_cache_put(a->h, k, 8, &key, 8, 0, (i & 8) ? 5 : 0, i, NULL);
			break;
		case 1:
			rc = mantis_cache_delete(a->h, k, 8, i);
			break;
		case 2:
			rc = mantis_cache_stats(a->h, &s);
			break;
		case 3:
			rc = mantis_cache_expire(a->h, NULL);
			break;
		default:
			rc = mantis_cache_get(a->h, k, 8, &v, 8, &vlen, NULL);
			if (rc == MANTIS_NOTFOUND)
				rc = MANTIS_OK;
		}
		if (rc == MANTIS_CLOSED)
			break;
		if (rc != MANTIS_OK)
			a->failed = 1;
	}
	return NULL;
}

Test(cache_concurrent, close_races_users)
{
	for (int round = 0; round < (int)test_scaled(20); round++) {
		uint64_t h = tc_open(1 << 20);
		struct tcc_arg args[TCC_THREADS];
		pthread_t th[TCC_THREADS];

		for (int i = 0; i < TCC_THREADS; i++) {
			args[i] =
			        (struct tcc_arg){.h = h, .id = (uint64_t)i + 1, .ops = UINT64_MAX};
			cr_assert_eq(pthread_create(&th[i], NULL, tcc_racer, &args[i]), 0);
		}
		/* Let them run a little, then close under their feet. */
		for (int spin = 0; spin < 1000 * (round + 1); spin++) {
			mantis_cache_stats_t s;

			cr_assert_eq(mantis_cache_stats(h, &s), MANTIS_OK);
		}
		cr_assert_eq(mantis_cache_close(h), MANTIS_OK);
		for (int i = 0; i < TCC_THREADS; i++)
			cr_assert_eq(pthread_join(th[i], NULL), 0);
		for (int i = 0; i < TCC_THREADS; i++)
			cr_assert_not(args[i].failed);
		cr_assert_eq(mantis_cache_close(h), MANTIS_CLOSED);
	}
}

/* Writers on different shards with TTLs and clears mixed in: the cost
 * bound holds at every moment a reader looks. */
static void *tcc_churn(void *p)
{
	struct tcc_arg *a = p;
	uint64_t rng = a->id * 1000003;

	for (uint64_t i = 0; i < a->ops; i++) {
		uint64_t r = tcc_rand(&rng), key = r % 100000;
		unsigned char k[8], v[200];
		mantis_cache_stats_t s;

		memcpy(k, &key, 8);
		if (a->id == 0) {
			if (mantis_cache_stats(a->h, &s) != MANTIS_OK || s.cost > s.capacity)
				a->failed = 1;
			if (i % 5000 == 4999 && mantis_cache_clear(a->h) != MANTIS_OK)
				a->failed = 1;
			continue;
		}
		memset(v, (int)key, sizeof(v));
		if (mantis_cache_put(a->h, k, 8, v, 1 + (r >> 40) % sizeof(v), 0,
		                     (r >> 30) % 3 == 0 ? 1 + (r >> 50) % 3 : 0, 0,
		                     NULL) != MANTIS_OK)
			a->failed = 1;
	}
	return NULL;
}

Test(cache_concurrent, capacity_under_churn)
{
	uint64_t h = tc_open(1 << 20);
	struct tcc_arg args[TCC_THREADS];
	mantis_cache_stats_t s;

	for (int i = 0; i < TCC_THREADS; i++)
		args[i] = (struct tcc_arg){.h = h, .id = (uint64_t)i, .ops = test_scaled(100000)};
	tcc_run(tcc_churn, args, TCC_THREADS);
	s = tc_stats(h);
	cr_assert_leq(s.cost, s.capacity);
	tc_close(h);
}
