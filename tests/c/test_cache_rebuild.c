/*
 * test_cache_rebuild.c - incremental table rebuilds (issue 11, point 2).
 *
 * A shard's table grows and shrinks by migrating a bounded step per write
 * while readers probe the new table and the one migrating into it. These
 * tests drive rebuilds of one large shard (cost 1 per entry, nothing ever
 * evicted, so every key's state is known exactly): 8 and 32 threads pinned
 * to 2 CPUs insert, replace, delete and read their own keys, and every read
 * must see exactly the thread's last write (a miss of a resident key during
 * a migration, or a deleted value found in the old table, fails); a
 * watchdog turns a hang into a failure. After each run, and after every few
 * operations in the single-threaded test, the shard invariants (including
 * the migration's M1 and M2) are checked, and no rebuild may have had to
 * finish a pending migration at once (the bound argued in mt_cache.c).
 */
#include "mantis.h"
#include "mt_cache.h"
#include "mt_pr.h"
#include "test_cache_util.h"
#include "test_util.h"
#include "test_cpus.h"
#include "test_watchdog.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TR_KEYS 1024 /* keys per thread */

struct tr_arg {
	uint64_t h;
	int id;
	uint64_t rounds;
	uint64_t version[TR_KEYS]; /* last version written; 0: never */
	uint32_t val[TR_KEYS];     /* value counter; 0: absent */
};

static uint64_t tr_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void tr_check(uint64_t h)
{
	char msg[256] = "";
	struct mt_cache_test_counters n;

	cr_assert_eq(mt_cache_test_check(h, msg, sizeof(msg)), MANTIS_OK, "%s", msg);
	cr_assert_eq(mt_cache_test_counters(h, &n), MANTIS_OK);
	cr_assert_eq(n.forced, 0, "a rebuild found the previous migration unfinished");
}

static void tr_expect(struct tr_arg *a, int k)
{
	char key[32], buf[64], exp[64];
	uint64_t version = 0;
	int rc;

	snprintf(key, sizeof(key), "r%03d-%05d", a->id, k);
	rc = tc_get(a->h, key, buf, sizeof(buf), &version);
	if (a->val[k] == 0) {
		cr_assert_eq(rc, MANTIS_NOTFOUND, "%s: found %s, expected absent", key,
		             rc == MANTIS_OK ? buf : mantis_strerror(rc));
		return;
	}
	snprintf(exp, sizeof(exp), "v%03d-%05d-%u", a->id, k, a->val[k]);
	cr_assert_eq(rc, MANTIS_OK, "%s: %s, expected %s", key, mantis_strerror(rc), exp);
	cr_assert_str_eq(buf, exp, "%s", key);
	cr_assert_eq(version, a->version[k], "%s", key);
}

static void tr_write(struct tr_arg *a, int k, int del)
{
	char key[32], val[64];

	snprintf(key, sizeof(key), "r%03d-%05d", a->id, k);
	a->version[k]++;
	if (del) {
		cr_assert_eq(mantis_cache_delete(a->h, key, strlen(key), a->version[k]), MANTIS_OK);
		a->val[k] = 0;
		return;
	}
	a->val[k]++;
	snprintf(val, sizeof(val), "v%03d-%05d-%u", a->id, k, a->val[k]);
	cr_assert_eq(tc_put(a->h, key, val, 1, 0, a->version[k]), 1, "%s not admitted", key);
}

/* One round: insert every key (the tables grow), read them, delete most of
 * them (tombstones; the next round's inserts shrink or rebuild), reading a
 * random key after every write. */
static void *tr_thread(void *p)
{
	struct tr_arg *a = p;
	uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(a->id + 1);

	for (uint64_t round = 0; round < a->rounds; round++) {
		for (int k = 0; k < TR_KEYS; k++) {
			tr_write(a, k, 0);
			tr_expect(a, (int)(tr_rand(&seed) % TR_KEYS));
		}
		for (int k = 0; k < TR_KEYS; k++)
			tr_expect(a, k);
		for (int k = 0; k < TR_KEYS; k++) {
			if (k % 16 != 0)
				tr_write(a, k, 1);
			tr_expect(a, (int)(tr_rand(&seed) % TR_KEYS));
		}
		for (int k = 0; k < TR_KEYS; k++)
			tr_expect(a, k);
	}
	return NULL;
}

static void tr_run(int nthreads, uint64_t rounds)
{
	struct tr_arg *args = calloc((size_t)nthreads, sizeof(*args));
	pthread_t *t = calloc((size_t)nthreads, sizeof(*t));
	/* One shard (capacity < 2^17) that never evicts: cost 1 per entry. */
	uint64_t h = tc_open((uint64_t)TR_KEYS * 64 + 1000);
	struct mt_cache_test_counters n;
	pthread_attr_t attr;
	struct test_watchdog w;

	cr_assert_not_null(args);
	cr_assert_not_null(t);
	cr_assert_eq(mt_cache_test_shards(h), 1);
	if (rounds == 0) /* MANTIS_TEST_SCALE divides */
		rounds = 1;
	test_attr_two_cpus(&attr);
	test_watchdog_start(&w, "rebuilds under oversubscription", 240);
	for (int i = 0; i < nthreads; i++) {
		args[i].h = h;
		args[i].id = i;
		args[i].rounds = rounds;
		cr_assert_eq(pthread_create(&t[i], &attr, tr_thread, &args[i]), 0);
	}
	for (int i = 0; i < nthreads; i++)
		cr_assert_eq(pthread_join(t[i], NULL), 0);
	test_watchdog_stop(&w);
	pthread_attr_destroy(&attr);
	tr_check(h);
	for (int i = 0; i < nthreads; i++)
		for (int k = 0; k < TR_KEYS; k++)
			tr_expect(&args[i], k);
	cr_assert_eq(mt_cache_test_counters(h, &n), MANTIS_OK);
	cr_assert_geq(n.rebuilds, 8, "only %llu rebuilds", (unsigned long long)n.rebuilds);
	cr_log_info("rebuild: %d threads on 2 CPUs, %llu rebuilds", nthreads,
	            (unsigned long long)n.rebuilds);
	tc_close(h);
	free(args);
	free(t);
}

Test(cache_rebuild, eight_threads_on_two_cpus, .timeout = 300)
{
	tr_run(8, test_scaled(6));
}

Test(cache_rebuild, thirty_two_threads_on_two_cpus, .timeout = 300)
{
	tr_run(32, test_scaled(2));
}

/* One thread, checking the invariants every few operations through growth,
 * shrink (a table of tombstones), costlier replacements, TTLs and a clear
 * in the middle of a migration. */
Test(cache_rebuild, invariants_through_growth_shrink_and_clear)
{
	uint64_t h = tc_open(60000);
	struct mt_cache_test_counters n;
	uint64_t seen_migrating = 0;
	char key[32], val[256];

	cr_assert_eq(mt_cache_test_shards(h), 1);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 20000; i++) {
			snprintf(key, sizeof(key), "k%06d", i);
			memset(val, 'a' + round, sizeof(val));
			val[(i % 7) * 30 + 10] = '\0'; /* costs vary: replacements grow */
			(void)tc_put(h, key, val, 2 + (uint64_t)(i % 3), i % 5 == 0 ? 60000 : 0,
			             (uint64_t)round * 100000 + (uint64_t)i + 1);
			/* Writes of older keys, likely migrated already while the
			 * old table is still linked: readers must see them. */
			if (i >= 64 && i % 4 == 1) {
				char got[256];

				snprintf(key, sizeof(key), "k%06d", i - 64);
				cr_assert_eq(
				        mantis_cache_delete(h, key, strlen(key), UINT64_MAX - 1),
				        MANTIS_OK);
				cr_assert_eq(tc_get(h, key, got, sizeof(got), NULL),
				             MANTIS_NOTFOUND, "%s deleted", key);
				snprintf(key, sizeof(key), "k%06d", i - 63);
				(void)tc_put(h, key, "replaced", 2, 0, UINT64_MAX - 1);
				cr_assert_eq(tc_get(h, key, got, sizeof(got), NULL), MANTIS_OK);
				cr_assert_str_eq(got, "replaced", "%s", key);
			}
			if (i % 97 == 0) {
				tr_check(h);
				cr_assert_eq(mt_cache_test_counters(h, &n), MANTIS_OK);
				seen_migrating += n.migrating;
			}
		}
		/* Delete all but a few: the next inserts rebuild smaller. */
		for (int i = 0; i < 20000; i++) {
			if (i % 1000 == 0)
				continue;
			snprintf(key, sizeof(key), "k%06d", i);
			cr_assert_eq(mantis_cache_delete(h, key, strlen(key), UINT64_MAX - 1),
			             MANTIS_OK);
			if (i % 89 == 0)
				tr_check(h);
		}
		for (int i = 0; i < 300; i++) {
			snprintf(key, sizeof(key), "n%d-%06d", round, i);
			(void)tc_put(h, key, "x", 1, 0, 1);
			tr_check(h);
			cr_assert_eq(mt_cache_test_counters(h, &n), MANTIS_OK);
			if (n.migrating && round == 1) {
				/* A clear in the middle of a migration. */
				cr_assert_eq(mantis_cache_clear(h), MANTIS_OK);
				tr_check(h);
				cr_assert_eq(tc_stats(h).entries, 0);
			}
		}
	}
	cr_assert_gt(seen_migrating, 0, "never checked during a migration");
	tc_close(h);
}
