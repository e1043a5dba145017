/*
 * test_db_nowait.c - writers never wait for another writer (issue 8's
 * 32-thread p99.9, issue 11's write tails; mt_db.c, READY RING).
 *
 * held_writer: one writer is held (the mt_db_test_hold hook) between
 * taking its seq and being ready; puts, batches and deletes of other
 * threads must still return (watchdog) and be seen by gets, multigets, new
 * snapshots and new iterators, while the held write is seen by none. One of
 * the other writes takes a key of the held batch: the held writer must lose
 * it (SAME-KEY ORDER) and retry once released. Before the change every
 * later writer waited for the held one: the watchdog fired.
 *
 * linear_*: 8 and 32 threads on 2 CPUs, each batch-writing its own pair
 * of keys with a rising counter and publishing what returned, while others
 * read: read-your-writes across threads (a write that returned is seen by
 * any later get, multiget, snapshot or iterator), no torn batch (a pair read
 * by one multiget, snapshot or iterator agrees; read by two gets, the later
 * one is not older), and hot keys written by every thread, whose readers
 * never see a lower seq after a higher one and whose final value is the
 * write with the highest seq. Ends with the invariant checker.
 */
#include "mantis.h"
#include "mt_check.h"
#include "mt_db.h"
#include "mt_pr.h"
#include "test_db_util.h"
#include "test_util.h"
#include "test_cpus.h"
#include "test_watchdog.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ held writer */

static __thread int tw_hold_me; /* this thread's next attempt is held */
static uint64_t tw_held_seq;    /* the held attempt's seq, once held */
static uint64_t tw_release;     /* set to let it go */
static uint64_t tw_attempts;    /* attempts of the held thread's write */

static void tw_hook(uint64_t s)
{
	if (!tw_hold_me)
		return;
	ck_pr_inc_64(&tw_attempts);
	if (tw_hold_me == 2)
		return; /* the retry runs through */
	tw_hold_me = 2;
	ck_pr_store_64(&tw_held_seq, s);
	while (!ck_pr_load_64(&tw_release))
		usleep(1000);
}

struct tw_held {
	uint64_t db;
	uint64_t seq;
	int rc;
};

static void *tw_held_main(void *p)
{
	struct tw_held *h = p;
	struct tdb_batch b = {0};

	tdb_batch_put(&b, "held-a", "held");
	tdb_batch_put(&b, "shared", "held");
	tw_hold_me = 1;
	h->rc = mantis_db_write(h->db, b.buf, b.len, 0, &h->seq);
	tw_hold_me = 0;
	tdb_batch_free(&b);
	return NULL;
}

/* Starts thread *t running f(arg), whose next write is held (tw_hook),
 * under watchdog w; returns the held write's seq once it is held. */
static uint64_t tw_start_held(pthread_t *t, void *(*f)(void *), void *arg, struct test_watchdog *w,
                              const char *what)
{
	uint64_t held;

	ck_pr_store_64(&tw_release, 0);
	ck_pr_store_64(&tw_held_seq, 0);
	ck_pr_store_64(&tw_attempts, 0);
	mt_db_test_hold = tw_hook;
	test_watchdog_start(w, what, 60);
	cr_assert_eq(pthread_create(t, NULL, f, arg), 0);
	while ((held = ck_pr_load_64(&tw_held_seq)) == 0)
		usleep(1000);
	return held;
}

/* Reads k through a multiget (snap 0): 1 and *out (static) if present. */
static int tw_multiget(uint64_t db, uint64_t snap, const char *k, char *out, size_t cap)
{
	unsigned char keys[64], buf[256];
	size_t klen = strlen(k), len = 0;
	uint32_t vlen;

	tdb_le32(keys, (uint32_t)klen);
	memcpy(keys + 4, k, klen);
	cr_assert_eq(mantis_db_multiget(db, snap, keys, 4 + klen, 1, buf, sizeof(buf), &len),
	             MANTIS_OK);
	vlen = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 |
	       (uint32_t)buf[3] << 24;
	if (vlen == MANTIS_ABSENT)
		return 0;
	cr_assert_lt(vlen, cap);
	memcpy(out, buf + 4, vlen);
	out[vlen] = '\0';
	return 1;
}

/* Asserts that k reads as v (NULL: absent) through get, multiget, a new
 * snapshot and a new iterator over k's prefix of exactly k. */
static void tw_seen(uint64_t db, const char *k, const char *v)
{
	char got[128], want[160];
	uint64_t snap = 0, it = 0;

	tdb_expect(db, 0, k, v);
	if (v != NULL) {
		cr_assert(tw_multiget(db, 0, k, got, sizeof(got)), "multiget %s", k);
		cr_assert_str_eq(got, v, "multiget %s", k);
	} else {
		cr_assert(!tw_multiget(db, 0, k, got, sizeof(got)), "multiget %s", k);
	}
	cr_assert_eq(mantis_snapshot_open(db, &snap, NULL), MANTIS_OK);
	tdb_expect(db, snap, k, v);
	cr_assert_eq(mantis_iter_open(db, snap, k, strlen(k), &it), MANTIS_OK);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	if (v != NULL)
		snprintf(want, sizeof(want), "%s=%s;", k, v);
	else
		want[0] = '\0';
	cr_assert_str_eq(tdb_iter_all(it), want, "iterator over %s", k);
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	it = 0;
	cr_assert_eq(mantis_iter_open(db, 0, k, strlen(k), &it), MANTIS_OK);
	cr_assert_str_eq(tdb_iter_all(it), want, "iterator (own view) over %s", k);
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
}

Test(db_nowait, held_writer_holds_nobody, .timeout = 120)
{
	struct tw_held h = {0};
	struct test_watchdog w;
	struct tdb_batch b = {0};
	pthread_t t;
	uint64_t held, s1 = 0, s2 = 0, s3 = 0, snap = 0, snap_seq = 0;
	mantis_db_stats_t st;
	char key[32];

	h.db = tdb_open();
	tdb_put(h.db, "old", "x");
	held = tw_start_held(&t, tw_held_main, &h, &w, "writers behind a held writer");
	/* Writes after the held one: each returns, and is seen at once. */
	cr_assert_eq(mantis_db_put(h.db, "p", 1, "1", 1, 0, &s1), MANTIS_OK);
	cr_assert_gt(s1, held);
	tw_seen(h.db, "p", "1");
	tdb_batch_put(&b, "b1", "2");
	tdb_batch_put(&b, "b2", "2");
	cr_assert_eq(mantis_db_write(h.db, b.buf, b.len, 0, &s2), MANTIS_OK);
	tdb_batch_free(&b);
	tw_seen(h.db, "b1", "2");
	tw_seen(h.db, "b2", "2");
	cr_assert_eq(mantis_db_delete(h.db, "old", 3, &s3), MANTIS_OK);
	tw_seen(h.db, "old", NULL);
	/* More writes than the old ring's 256 slots. */
	for (int i = 0; i < 1000; i++) {
		tdb_key(key, sizeof(key), "many", (uint64_t)i);
		tdb_put(h.db, key, "m");
	}
	tw_seen(h.db, "many00000999", "m");
	/* The held write is seen by nobody, and published waits for it. */
	tw_seen(h.db, "held-a", NULL);
	tw_seen(h.db, "shared", NULL);
	st = tdb_stats(h.db);
	cr_assert_eq(st.seq, held - 1, "published %llu, held %llu", (unsigned long long)st.seq,
	             (unsigned long long)held);
	/* A higher seq takes a key of the held batch: the held one loses it. */
	tdb_put(h.db, "shared", "later");
	tw_seen(h.db, "shared", "later");
	/* A snapshot's seq covers every write it holds (the held one, pending,
	 * is not in it), so a transaction that read "p" there conflicts with
	 * nothing: its commit (which waits for the held seq) must succeed. */
	cr_assert_eq(mantis_snapshot_open(h.db, &snap, &snap_seq), MANTIS_OK);
	cr_assert_geq(snap_seq, s1, "snapshot seq %llu below a write it holds (%llu)",
	              (unsigned long long)snap_seq, (unsigned long long)s1);
	ck_pr_store_64(&tw_release, 1);
	cr_assert_eq(pthread_join(t, NULL), 0);
	tdb_batch_check(&b, "p");
	tdb_batch_put(&b, "p", "tx");
	cr_assert_eq(mantis_db_write(h.db, b.buf, b.len, snap_seq, NULL), MANTIS_OK,
	             "the transaction conflicted with nothing");
	tdb_batch_free(&b);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	test_watchdog_stop(&w);
	mt_db_test_hold = NULL;
	cr_assert_eq(h.rc, MANTIS_OK);
	cr_assert_eq(ck_pr_load_64(&tw_attempts), 2, "the held write retried once");
	cr_assert_gt(h.seq, held);
	/* The retry came after "later": it wins the key, as a batch. */
	tw_seen(h.db, "held-a", "held");
	tw_seen(h.db, "shared", "held");
	tw_seen(h.db, "p", "tx");
	st = tdb_stats(h.db);
	cr_assert_gt(st.seq, h.seq);
	cr_assert_eq(st.entries, 1005, "entries %llu", (unsigned long long)st.entries);
	tdb_check(h.db);
	cr_assert_eq(mantis_db_sweep(h.db, NULL), MANTIS_OK);
	tdb_check(h.db);
	cr_assert_eq(mantis_db_close(h.db), MANTIS_OK);
}

/* A transaction's snapshot (no sequence number asked for) kills no write in
 * flight, and its commit (mantis_db_commit) checks against the snapshot
 * itself: exact with a write pending at its open. */
Test(db_nowait, a_transaction_disturbs_no_writer, .timeout = 120)
{
	struct tw_held h = {0};
	struct test_watchdog w;
	struct tdb_batch b = {0};
	pthread_t t;
	uint64_t held, s1 = 0, snap = 0, snap0 = 0, other;

	h.db = tdb_open();
	/* A snapshot of a db that never committed still checks (a sequence
	 * number of 0 would have disabled mantis_db_write's checks). */
	cr_assert_eq(mantis_snapshot_open(h.db, &snap0, NULL), MANTIS_OK);
	held = tw_start_held(&t, tw_held_main, &h, &w, "a transaction beside a held writer");
	cr_assert_eq(mantis_db_put(h.db, "p", 1, "1", 1, 0, &s1), MANTIS_OK);
	cr_assert_gt(s1, held);
	cr_assert_eq(mantis_snapshot_open(h.db, &snap, NULL), MANTIS_OK);
	tdb_expect(h.db, snap, "p", "1");
	tdb_expect(h.db, snap, "held-a", NULL);
	ck_pr_store_64(&tw_release, 1);
	cr_assert_eq(pthread_join(t, NULL), 0);
	test_watchdog_stop(&w);
	mt_db_test_hold = NULL;
	cr_assert_eq(h.rc, MANTIS_OK);
	cr_assert_eq(ck_pr_load_64(&tw_attempts), 1, "the held write was not retried");
	cr_assert_eq(h.seq, held);
	tw_seen(h.db, "held-a", "held");
	tdb_expect(h.db, snap, "held-a", NULL); /* committed after the snapshot's open */
	/* Read "p" (written before the snapshot), write "q": no conflict. */
	tdb_batch_check(&b, "p");
	tdb_batch_put(&b, "q", "tx");
	cr_assert_eq(mantis_db_commit(h.db, snap, b.buf, b.len, NULL), MANTIS_OK);
	tdb_batch_free(&b);
	tw_seen(h.db, "q", "tx");
	/* Read "held-a": its seq is below the snapshot's newest, but it
	 * committed after the open: a conflict, and nothing applied. */
	tdb_batch_check(&b, "held-a");
	tdb_batch_put(&b, "r", "tx");
	cr_assert_eq(mantis_db_commit(h.db, snap, b.buf, b.len, NULL), MANTIS_CONFLICT);
	tdb_batch_free(&b);
	tw_seen(h.db, "r", NULL);
	/* The empty db's snapshot: "p" was written after it. */
	tdb_batch_check(&b, "p");
	cr_assert_eq(mantis_db_commit(h.db, snap0, b.buf, b.len, NULL), MANTIS_CONFLICT);
	/* Bad snapshots: none, another db's, not a snapshot, closed. */
	cr_assert_eq(mantis_db_commit(h.db, 0, b.buf, b.len, NULL), MANTIS_EINVAL);
	other = tdb_open();
	cr_assert_eq(mantis_db_commit(other, snap, b.buf, b.len, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_db_commit(h.db, other, b.buf, b.len, NULL), MANTIS_EBADHANDLE);
	cr_assert_eq(mantis_db_close(other), MANTIS_OK);
	cr_assert_eq(mantis_snapshot_close(snap0), MANTIS_OK);
	cr_assert_eq(mantis_db_commit(h.db, snap0, b.buf, b.len, NULL), MANTIS_CLOSED);
	tdb_batch_free(&b);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	tdb_check(h.db);
	cr_assert_eq(mantis_db_close(h.db), MANTIS_OK);
}

/* A commit whose snapshot and db are closed while it runs (Close racing a
 * transaction's Commit in Go) holds the last reference to them when it
 * ends: it must drop it outside every epoch section (destroying the db
 * waits for a grace period; inside the cache's section of a coherent
 * commit, for ever: a hang found by CI). */
struct tw_commit {
	uint64_t db, cache, snap;
	int rc;
};

static void *tw_commit_main(void *p)
{
	struct tw_commit *c = p;
	struct tdb_batch b = {0};

	tdb_batch_put(&b, "k", "v");
	tw_hold_me = 1;
	if (c->cache != 0)
		c->rc = mantis_coherent_commit(c->db, c->cache, c->snap, b.buf, b.len, NULL);
	else
		c->rc = mantis_db_commit(c->db, c->snap, b.buf, b.len, NULL);
	tw_hold_me = 0;
	tdb_batch_free(&b);
	return NULL;
}

static void tw_commit_outlives(int coherent)
{
	mantis_cache_options_t o = {.capacity = 1 << 20};
	struct tw_commit c = {0};
	struct test_watchdog w;
	pthread_t t;

	c.db = tdb_open();
	if (coherent)
		cr_assert_eq(mantis_cache_open(&o, &c.cache), MANTIS_OK);
	cr_assert_eq(mantis_snapshot_open(c.db, &c.snap, NULL), MANTIS_OK);
	(void)tw_start_held(&t, tw_commit_main, &c, &w,
	                    "a commit whose snapshot and db close meanwhile");
	cr_assert_eq(mantis_snapshot_close(c.snap), MANTIS_OK);
	cr_assert_eq(mantis_db_close(c.db), MANTIS_OK);
	ck_pr_store_64(&tw_release, 1);
	cr_assert_eq(pthread_join(t, NULL), 0);
	mt_db_test_hold = NULL;
	cr_assert_eq(c.rc, MANTIS_OK, "%s", mantis_strerror(c.rc));
	if (coherent)
		cr_assert_eq(mantis_cache_close(c.cache), MANTIS_OK);
	test_watchdog_stop(&w);
}

Test(db_nowait, a_commit_outlives_its_snapshot_and_db, .timeout = 120)
{
	tw_commit_outlives(0);
	tw_commit_outlives(1);
}

/* ------------------------------------------------------------ linearizability stress */

#define TL_MAXT 32
#define TL_LOG  8192 /* hot writes and hot observations kept per thread */

/* A reader saw hot-a at seq hot, then writer w's marker at seq mark. */
struct tl_obs {
	uint64_t hot, mark;
	int w;
};

struct tl_shared {
	uint64_t db;
	int nthreads;
	uint64_t stop;
	uint64_t returned[TL_MAXT]; /* each pair's last counter whose write returned */
};

struct tl_arg {
	struct tl_shared *sh;
	int id;
	uint64_t ops;
	uint64_t hot_seq; /* this thread's highest hot write */
	uint64_t hot_val;
	uint64_t seen_seq; /* the highest hot seq this thread has read */
	uint64_t nhot, nobs;
	uint64_t hot_log[TL_LOG]; /* this thread's committed hot seqs, rising */
	struct tl_obs obs[TL_LOG];
};

static uint64_t tl_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void tl_pair(char *out, size_t cap, int id, char which)
{
	snprintf(out, cap, "p%03d-%c", id, which);
}

/* Reads a counter value of key k at snap: 0 if absent. */
static uint64_t tl_get(uint64_t db, uint64_t snap, const char *k, uint64_t *seq)
{
	char buf[64];
	size_t vlen = 0;
	int rc = mantis_db_get(db, snap, k, strlen(k), buf, sizeof(buf) - 1, &vlen, seq);

	if (rc == MANTIS_NOTFOUND)
		return 0;
	cr_assert_eq(rc, MANTIS_OK, "get %s: %s", k, mantis_strerror(rc));
	buf[vlen] = '\0';
	return strtoull(buf, NULL, 10);
}

/* Writes v to a, b (and c) in one batch, conflict-checked against
 * check_seq or snapshot check_snap if not 0 (only this thread writes a and
 * b: never a conflict). */
static void tl_write2(uint64_t db, const char *a, const char *b, const char *c, uint64_t v,
                      uint64_t check_seq, uint64_t check_snap, uint64_t *seq)
{
	struct tdb_batch bt = {0};
	char val[32];
	int rc;

	snprintf(val, sizeof(val), "%llu", (unsigned long long)v);
	tdb_batch_put(&bt, a, val);
	tdb_batch_put(&bt, b, val);
	if (c != NULL)
		tdb_batch_put(&bt, c, val);
	if (check_snap != 0)
		rc = mantis_db_commit(db, check_snap, bt.buf, bt.len, seq);
	else
		rc = mantis_db_write(db, bt.buf, bt.len, check_seq, seq);

	cr_assert_eq(rc, MANTIS_OK, "write of %s (check_seq %llu): %s", a,
	             (unsigned long long)check_seq, mantis_strerror(rc));
	tdb_batch_free(&bt);
}

/* A multiget of a and b: both values (0: absent). */
static void tl_multiget2(uint64_t db, const char *a, const char *b, uint64_t *va, uint64_t *vb)
{
	unsigned char keys[64], buf[128];
	size_t off = 0, len = 0;
	const char *k[2] = {a, b};
	uint64_t *out[2] = {va, vb};

	for (int i = 0; i < 2; i++) {
		tdb_le32(keys + off, (uint32_t)strlen(k[i]));
		memcpy(keys + off + 4, k[i], strlen(k[i]));
		off += 4 + strlen(k[i]);
	}
	cr_assert_eq(mantis_db_multiget(db, 0, keys, off, 2, buf, sizeof(buf), &len), MANTIS_OK);
	off = 0;
	for (int i = 0; i < 2; i++) {
		uint32_t vl = (uint32_t)buf[off] | (uint32_t)buf[off + 1] << 8 |
		              (uint32_t)buf[off + 2] << 16 | (uint32_t)buf[off + 3] << 24;
		char tmp[32];

		off += 4;
		if (vl == MANTIS_ABSENT) {
			*out[i] = 0;
			continue;
		}
		cr_assert_lt(vl, sizeof(tmp));
		memcpy(tmp, buf + off, vl);
		tmp[vl] = '\0';
		*out[i] = strtoull(tmp, NULL, 10);
		off += vl;
	}
}

static void *tl_thread(void *p)
{
	struct tl_arg *a = p;
	struct tl_shared *sh = a->sh;
	uint64_t db = sh->db, rnd = 0x9e3779b97f4a7c15ull * (uint64_t)(a->id + 1), mine = 0;
	uint64_t hot = 0;
	char ka[16], kb[16], ha[16], hb[16];

	snprintf(ha, sizeof(ha), "hot-a");
	snprintf(hb, sizeof(hb), "hot-b");
	while (!ck_pr_load_64(&sh->stop)) {
		int j = (int)(tl_rand(&rnd) % (uint64_t)sh->nthreads);
		uint64_t c = ck_pr_load_64(&sh->returned[j]), va, vb, seq = 0;
		uint64_t snap = 0, it = 0;

		tl_pair(ka, sizeof(ka), j, 'a');
		tl_pair(kb, sizeof(kb), j, 'b');
		switch (tl_rand(&rnd) % 7) {
		case 0: /* write this thread's pair; publish that it returned */
			tl_pair(ka, sizeof(ka), a->id, 'a');
			tl_pair(kb, sizeof(kb), a->id, 'b');
			tl_write2(db, ka, kb, NULL, ++mine, 0, 0, &seq);
			ck_pr_store_64(&sh->returned[a->id], mine);
			if (mine % 4 == 2) {
				/* A transaction after its own write: the snapshot's
				 * seq covers the write, so the conflict-checked
				 * write of the pair (nobody else writes it) commits. */
				uint64_t snap_seq = 0;

				cr_assert_eq(mantis_snapshot_open(db, &snap, &snap_seq), MANTIS_OK);
				cr_assert_geq(
				        snap_seq, seq,
				        "snapshot seq %llu below a write that returned (seq %llu)",
				        (unsigned long long)snap_seq, (unsigned long long)seq);
				tl_write2(db, ka, kb, NULL, ++mine, snap_seq, 0, NULL);
				ck_pr_store_64(&sh->returned[a->id], mine);
				cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
			} else if (mine % 4 == 0) {
				/* The same committed against the snapshot itself. */
				cr_assert_eq(mantis_snapshot_open(db, &snap, NULL), MANTIS_OK);
				tl_write2(db, ka, kb, NULL, ++mine, 0, snap, NULL);
				ck_pr_store_64(&sh->returned[a->id], mine);
				cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
			}
			break;
		case 1: /* two gets: b first, then a (never older) */
			vb = tl_get(db, 0, kb, NULL);
			va = tl_get(db, 0, ka, NULL);
			cr_assert_geq(vb, c, "read-your-writes: %s %llu < %llu", kb,
			              (unsigned long long)vb, (unsigned long long)c);
			cr_assert_geq(va, vb, "torn batch by gets: %s %llu, %s %llu", ka,
			              (unsigned long long)va, kb, (unsigned long long)vb);
			break;
		case 2: /* one multiget */
			tl_multiget2(db, ka, kb, &va, &vb);
			cr_assert_eq(va, vb, "torn batch by multiget");
			cr_assert_geq(va, c, "read-your-writes by multiget");
			break;
		case 3: /* a snapshot */
			cr_assert_eq(mantis_snapshot_open(db, &snap, NULL), MANTIS_OK);
			va = tl_get(db, snap, ka, NULL);
			vb = tl_get(db, snap, kb, NULL);
			cr_assert_eq(va, vb, "torn batch by snapshot");
			cr_assert_geq(va, c, "read-your-writes by snapshot");
			if (a->nobs < TL_LOG) { /* as for the hot reads below */
				char mk[16];
				struct tl_obs *o = &a->obs[a->nobs++];

				snprintf(mk, sizeof(mk), "m%03d", j);
				o->w = j;
				o->hot = 0;
				o->mark = 0;
				(void)tl_get(db, snap, ha, &o->hot);
				(void)tl_get(db, snap, mk, &o->mark);
			}
			cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
			break;
		case 4: { /* an iterator over the pair's prefix */
			const void *k, *v;
			size_t kl, vl;
			uint64_t got[2] = {0, 0};
			int n = 0, rc;

			cr_assert_eq(mantis_iter_open(db, 0, ka, 5, &it), MANTIS_OK);
			while ((rc = mantis_iter_next(it, &k, &kl, &v, &vl)) == MANTIS_OK) {
				char tmp[32];

				cr_assert_lt(n, 2);
				cr_assert_lt(vl, sizeof(tmp));
				memcpy(tmp, v, vl);
				tmp[vl] = '\0';
				got[n++] = strtoull(tmp, NULL, 10);
			}
			cr_assert_eq(rc, MANTIS_DONE);
			cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
			cr_assert_eq(got[0], got[1], "torn batch by iterator");
			cr_assert_geq(got[0], c, "read-your-writes by iterator");
			break;
		}
		case 5: { /* the hot pair, written by every thread with its marker */
			uint64_t v = (uint64_t)(a->id + 1) << 32 | ++hot;
			char mk[16];

			if (a->nhot == TL_LOG)
				break;
			snprintf(mk, sizeof(mk), "m%03d", a->id);
			tl_write2(db, ha, hb, mk, v, 0, 0, &seq);
			a->hot_log[a->nhot++] = seq;
			if (seq > a->hot_seq) {
				a->hot_seq = seq;
				a->hot_val = v;
			}
			if (seq > a->seen_seq)
				a->seen_seq = seq;
			break;
		}
		default: /* hot reads: never a lower seq after a higher one */
			(void)tl_get(db, 0, ha, &seq);
			cr_assert_geq(seq, a->seen_seq, "hot-a went back from seq %llu to %llu",
			              (unsigned long long)a->seen_seq, (unsigned long long)seq);
			a->seen_seq = seq;
			if (a->nobs < TL_LOG) {
				/* Then writer j's marker: every hot write of j
				 * with a lower seq than seen must show (checked
				 * at the end against what committed). */
				char mk[16];
				struct tl_obs *o = &a->obs[a->nobs++];

				snprintf(mk, sizeof(mk), "m%03d", j);
				o->hot = seq;
				o->w = j;
				o->mark = 0;
				(void)tl_get(db, 0, mk, &o->mark);
			}
			tl_multiget2(db, ha, hb, &va, &vb);
			cr_assert_eq(va, vb, "torn hot batch by multiget");
			break;
		}
		ck_pr_inc_64(&a->ops);
	}
	return NULL;
}

static void tl_run(int nthreads, uint64_t ops_each)
{
	struct tl_shared sh = {0};
	struct tl_arg *args = calloc(TL_MAXT, sizeof(*args));
	pthread_t t[TL_MAXT];
	pthread_attr_t attr;
	struct test_watchdog w;
	uint64_t best_seq = 0, best_val = 0;

	cr_assert_leq(nthreads, TL_MAXT);
	cr_assert_not_null(args);
	sh.db = tdb_open();
	sh.nthreads = nthreads;
	test_attr_two_cpus(&attr);
	test_watchdog_start(&w, "linearizability stress", 240);
	for (int i = 0; i < nthreads; i++) {
		args[i].sh = &sh;
		args[i].id = i;
		cr_assert_eq(pthread_create(&t[i], &attr, tl_thread, &args[i]), 0);
	}
	for (;;) {
		uint64_t sum = 0;

		for (int i = 0; i < nthreads; i++)
			sum += ck_pr_load_64(&args[i].ops);
		if (sum >= ops_each * (uint64_t)nthreads)
			break;
		usleep(2000);
	}
	ck_pr_store_64(&sh.stop, 1);
	for (int i = 0; i < nthreads; i++)
		cr_assert_eq(pthread_join(t[i], NULL), 0);
	test_watchdog_stop(&w);
	pthread_attr_destroy(&attr);
	/* The hot pair holds the write with the highest seq. */
	for (int i = 0; i < nthreads; i++) {
		if (args[i].hot_seq > best_seq) {
			best_seq = args[i].hot_seq;
			best_val = args[i].hot_val;
		}
	}
	/* Same-key order across keys: a reader that saw hot-a at seq h and
	 * then writer w's marker at seq m < h must not have missed a hot write
	 * of w with m < q < h that committed (it would have become visible
	 * after a higher seq on hot-a: no order of the writes explains both). */
	for (int i = 0; i < nthreads; i++) {
		for (uint64_t k = 0; k < args[i].nobs; k++) {
			const struct tl_obs *o = &args[i].obs[k];
			const struct tl_arg *wr = &args[o->w];

			uint64_t lo = 0, hi = wr->nhot;

			while (lo < hi) { /* the first committed seq above mark */
				uint64_t mid = lo + (hi - lo) / 2;

				if (wr->hot_log[mid] <= o->mark)
					lo = mid + 1;
				else
					hi = mid;
			}
			cr_assert(lo == wr->nhot || wr->hot_log[lo] >= o->hot,
			          "saw hot-a at seq %llu, then m%03d at seq %llu, missing its "
			          "committed seq %llu",
			          (unsigned long long)o->hot, o->w, (unsigned long long)o->mark,
			          (unsigned long long)(lo < wr->nhot ? wr->hot_log[lo] : 0));
		}
	}
	if (best_seq != 0) {
		uint64_t seq = 0;

		cr_assert_eq(tl_get(sh.db, 0, "hot-a", &seq), best_val);
		cr_assert_eq(seq, best_seq);
		cr_assert_eq(tl_get(sh.db, 0, "hot-b", NULL), best_val);
	}
	tdb_check(sh.db);
	cr_assert_eq(mantis_db_sweep(sh.db, NULL), MANTIS_OK);
	tdb_check(sh.db);
	cr_assert_eq(mantis_db_close(sh.db), MANTIS_OK);
	free(args);
}

Test(db_nowait, linear_8_threads_on_2_cpus, .timeout = 300)
{
	tl_run(8, test_scaled(100000));
}

Test(db_nowait, linear_32_threads_on_2_cpus, .timeout = 300)
{
	tl_run(32, test_scaled(25000));
}
