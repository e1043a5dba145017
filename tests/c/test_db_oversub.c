/*
 * test_db_oversub.c - oversubscribed stress (issue 8): 8 and 32 threads
 * pinned to 2 CPUs run random operations on one db (puts, deletes, batches,
 * gets, multigets, snapshots, iterators, sweeps), each checked against the
 * thread's own expectations (every thread owns a key range: it knows
 * exactly what each of its keys holds, at the latest state and at its
 * snapshots), while a closer thread opens and closes a second db that the
 * same threads call on. Every test fails on a watchdog rather than hang,
 * and ends with the invariant checker (mt_check_db) on the quiescent db.
 */
#include "mantis.h"
#include "mt_check.h"
#include "mt_db.h"
#include "mt_handle.h"
#include "mt_pr.h"
#include "test_db_util.h"
#include "test_util.h"
#include "test_cpus.h"
#include "test_watchdog.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#define TO_KEYS 32 /* keys per thread */

struct to_shared {
	uint64_t db;
	uint64_t db2; /* opened and closed by the closer */
	uint64_t stop;
	uint64_t done;
};

struct to_arg {
	struct to_shared *sh;
	int id;
	uint64_t ops;
	/* The thread's keys: value counter (0: absent). */
	uint32_t val[TO_KEYS];
};

static uint64_t to_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void to_key(char *out, size_t cap, int id, int k)
{
	snprintf(out, cap, "t%03d-%02d", id, k);
}

static void to_val(char *out, size_t cap, int id, int k, uint32_t v)
{
	snprintf(out, cap, "v%03d-%02d-%08u", id, k, v);
}

/* Checks key k of thread a reads as expected (want 0: absent) at snap. */
static void to_expect(struct to_arg *a, uint64_t snap, int k, uint32_t want)
{
	char key[32], exp[48];
	const char *got = NULL;
	int rc;

	to_key(key, sizeof(key), a->id, k);
	rc = tdb_get(a->sh->db, snap, key, &got);
	if (want == 0) {
		cr_assert_eq(rc, MANTIS_NOTFOUND, "%s: %s, expected absent", key,
		             mantis_strerror(rc));
		return;
	}
	to_val(exp, sizeof(exp), a->id, k, want);
	cr_assert_eq(rc, MANTIS_OK, "%s: %s", key, mantis_strerror(rc));
	cr_assert_str_eq(got, exp, "%s", key);
}

static void to_iter_check(struct to_arg *a, uint64_t snap, const uint32_t *want)
{
	char prefix[16], key[32], exp[48];
	const void *k, *v;
	size_t kl, vl;
	uint64_t it;
	int next = 0, rc;

	snprintf(prefix, sizeof(prefix), "t%03d-", a->id);
	cr_assert_eq(mantis_iter_open(a->sh->db, snap, prefix, strlen(prefix), &it), MANTIS_OK);
	while ((rc = mantis_iter_next(it, &k, &kl, &v, &vl)) == MANTIS_OK) {
		while (next < TO_KEYS && want[next] == 0)
			next++;
		cr_assert_lt(next, TO_KEYS, "iterator: an extra key");
		to_key(key, sizeof(key), a->id, next);
		to_val(exp, sizeof(exp), a->id, next, want[next]);
		cr_assert(kl == strlen(key) && memcmp(k, key, kl) == 0, "iterator: key of %s", key);
		cr_assert(vl == strlen(exp) && memcmp(v, exp, vl) == 0, "iterator: value of %s",
		          key);
		next++;
	}
	cr_assert_eq(rc, MANTIS_DONE);
	while (next < TO_KEYS && want[next] == 0)
		next++;
	cr_assert_eq(next, TO_KEYS, "iterator: a key missing");
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
}

static void to_put(struct to_arg *a, int k, uint32_t v)
{
	char key[32], val[48];

	to_key(key, sizeof(key), a->id, k);
	to_val(val, sizeof(val), a->id, k, v);
	tdb_put(a->sh->db, key, val);
	a->val[k] = v;
}

static void *to_thread(void *p)
{
	struct to_arg *a = p;
	uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(a->id + 1), snap;
	uint32_t counter = 1, snapv[TO_KEYS];
	char key[32], val[48];

	while (!ck_pr_load_64(&a->sh->stop)) {
		uint64_t r = to_rand(&rng);
		int k = (int)(r % TO_KEYS), rc;

		switch ((r >> 8) % 12) {
		case 0:
		case 1:
		case 2:
			to_put(a, k, counter++);
			break;
		case 3:
			to_key(key, sizeof(key), a->id, k);
			tdb_del(a->sh->db, key);
			a->val[k] = 0;
			break;
		case 4:
		case 5:
			to_expect(a, 0, k, a->val[k]);
			break;
		case 6: { /* a batch over three of the thread's keys */
			struct tdb_batch b = {0};

			for (int i = 0; i < 3; i++) {
				int kk = (k + i * 7) % TO_KEYS;

				to_key(key, sizeof(key), a->id, kk);
				if ((r >> (20 + i)) & 1) {
					tdb_batch_del(&b, key);
					a->val[kk] = 0;
				} else {
					to_val(val, sizeof(val), a->id, kk, counter);
					tdb_batch_put(&b, key, val);
					a->val[kk] = counter;
				}
			}
			counter++;
			cr_assert_eq(mantis_db_write(a->sh->db, b.buf, b.len, 0, NULL), MANTIS_OK);
			tdb_batch_free(&b);
			break;
		}
		case 7: { /* a multiget of two keys */
			unsigned char keys[2 * 36], out[2 * 52];
			size_t kl = 0, olen;
			uint32_t l;

			for (int i = 0; i < 2; i++) {
				to_key(key, sizeof(key), a->id, (k + i) % TO_KEYS);
				tdb_le32(keys + kl, (uint32_t)strlen(key));
				memcpy(keys + kl + 4, key, strlen(key));
				kl += 4 + strlen(key);
			}
			cr_assert_eq(mantis_db_multiget(a->sh->db, 0, keys, kl, 2, out, sizeof(out),
			                                &olen),
			             MANTIS_OK);
			memcpy(&l, out, 4);
			cr_assert_eq(l == MANTIS_ABSENT, a->val[k] == 0, "multiget: presence");
			break;
		}
		case 8: /* a snapshot: what it saw stays, whatever follows */
			cr_assert_eq(mantis_snapshot_open(a->sh->db, &snap, NULL), MANTIS_OK);
			memcpy(snapv, a->val, sizeof(snapv));
			to_put(a, k, counter++);
			to_key(key, sizeof(key), a->id, (k + 1) % TO_KEYS);
			tdb_del(a->sh->db, key);
			a->val[(k + 1) % TO_KEYS] = 0;
			to_expect(a, snap, k, snapv[k]);
			to_expect(a, snap, (k + 1) % TO_KEYS, snapv[(k + 1) % TO_KEYS]);
			if ((r >> 30) % 4 == 0)
				to_iter_check(a, snap, snapv);
			cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
			break;
		case 9:
			if ((r >> 30) % 8 == 0)
				to_iter_check(a, 0, a->val);
			break;
		case 10:
			if ((r >> 30) % 64 == 0)
				cr_assert_eq(mantis_db_sweep(a->sh->db, NULL), MANTIS_OK);
			break;
		default: { /* calls on the db the closer closes under us */
			uint64_t db2 = ck_pr_load_64(&a->sh->db2);
			const char *got;

			if (db2 == 0)
				break;
			rc = mantis_db_put(db2, "x", 1, "y", 1, 0, NULL);
			cr_assert(rc == MANTIS_OK || rc == MANTIS_CLOSED, "db2 put: %s",
			          mantis_strerror(rc));
			rc = tdb_get(db2, 0, "x", &got);
			cr_assert(rc == MANTIS_OK || rc == MANTIS_CLOSED || rc == MANTIS_NOTFOUND,
			          "db2 get: %s", mantis_strerror(rc));
			if (mantis_snapshot_open(db2, &snap, NULL) == MANTIS_OK) {
				rc = tdb_get(db2, snap, "x", &got);
				cr_assert(rc == MANTIS_OK || rc == MANTIS_CLOSED ||
				                  rc == MANTIS_NOTFOUND,
				          "db2 snapshot get: %s", mantis_strerror(rc));
				cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
			}
			break;
		}
		}
		ck_pr_store_64(&a->ops, a->ops + 1); /* the main thread sums them */
	}
	/* Last word: everything the thread wrote reads back. */
	for (int k = 0; k < TO_KEYS; k++)
		to_expect(a, 0, k, a->val[k]);
	mantis_thread_release();
	return NULL;
}

static void *to_closer(void *p)
{
	struct to_shared *sh = p;

	while (!ck_pr_load_64(&sh->stop)) {
		uint64_t db2;

		cr_assert_eq(mantis_db_open(NULL, &db2), MANTIS_OK);
		ck_pr_store_64(&sh->db2, db2);
		for (int i = 0; i < 50; i++)
			sched_yield();
		cr_assert_eq(mantis_db_close(db2), MANTIS_OK);
	}
	return NULL;
}

static void to_run(int nthreads, uint64_t ops_each)
{
	struct to_shared sh = {0};
	struct to_arg *args = calloc((size_t)nthreads, sizeof(*args));
	pthread_t *t = calloc((size_t)nthreads + 1, sizeof(*t));
	pthread_attr_t attr;
	struct test_watchdog w;
	uint64_t total = 0;

	cr_assert_not_null(args);
	cr_assert_not_null(t);
	sh.db = tdb_open();
	/* Every thread on two CPUs: more threads than cores, whatever the
	 * machine (CPUs 0 and 1, or the only one). */
	test_attr_two_cpus(&attr);
	test_watchdog_start(&w, "oversubscribed stress", 240);
	for (int i = 0; i < nthreads; i++) {
		args[i].sh = &sh;
		args[i].id = i;
		cr_assert_eq(pthread_create(&t[i], &attr, to_thread, &args[i]), 0);
	}
	cr_assert_eq(pthread_create(&t[nthreads], &attr, to_closer, &sh), 0);
	for (;;) {
		uint64_t sum = 0;

		for (int i = 0; i < nthreads; i++)
			sum += ck_pr_load_64(&args[i].ops);
		if (sum >= ops_each * (uint64_t)nthreads)
			break;
		usleep(2000);
	}
	ck_pr_store_64(&sh.stop, 1);
	for (int i = 0; i <= nthreads; i++)
		cr_assert_eq(pthread_join(t[i], NULL), 0);
	test_watchdog_stop(&w);
	pthread_attr_destroy(&attr);
	for (int i = 0; i < nthreads; i++)
		total += args[i].ops;
	tdb_check(sh.db);
	cr_assert_eq(mantis_db_sweep(sh.db, NULL), MANTIS_OK);
	tdb_check(sh.db);
	cr_log_info("oversub: %d threads on 2 CPUs, %llu operations checked", nthreads,
	            (unsigned long long)total);
	cr_assert_eq(mantis_db_close(sh.db), MANTIS_OK);
	free(args);
	free(t);
}

Test(db_oversub, eight_threads_on_two_cpus, .timeout = 300)
{
	to_run(8, test_scaled(100000));
}

Test(db_oversub, thirty_two_threads_on_two_cpus, .timeout = 300)
{
	to_run(32, test_scaled(25000));
}

/* The checker itself: a counter off by one, a chain out of order. */
Test(db_oversub, checker_finds_a_broken_invariant)
{
	uint64_t db = tdb_open();
	struct mt_db *d;
	char msg[256];
	void *obj;

	tdb_put(db, "a", "1");
	tdb_put(db, "b", "2");
	tdb_check(db);
	cr_assert_eq(mt_handle_acquire(db, MT_HANDLE_DB, &obj), MANTIS_OK);
	d = obj;
	ck_pr_add_64(&d->stripe[0].versions, 1);
	cr_assert_eq(mt_check_db(db, msg, sizeof(msg)), MANTIS_EINVAL);
	cr_assert(strstr(msg, "counters") != NULL, "%s", msg);
	ck_pr_sub_64(&d->stripe[0].versions, 1);
	tdb_check(db);
	/* Swap the two keys' bytes: level 0 out of order. */
	{
		struct mt_sl_node *n = mt_sl_seek(&d->sl, NULL, 0);

		((unsigned char *)mt_sl_node_key(n))[0] = 'c';
		cr_assert_eq(mt_check_db(db, msg, sizeof(msg)), MANTIS_EINVAL);
		cr_assert(strstr(msg, "out of order") != NULL, "%s", msg);
		((unsigned char *)mt_sl_node_key(n))[0] = 'a';
	}
	tdb_check(db);
	mt_handle_release(db);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}
