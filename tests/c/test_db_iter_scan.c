/*
 * test_db_iter_scan.c - prefix scans through the bounded, prefetching walk
 * (mt_iter.c "SCANS AT THE MEMORY LIMIT", mt_sl_cur's lookahead):
 *
 *  - the range's end computed from the prefix (trailing 0xff bytes, a
 *    prefix of 0xff bytes only: no bound), against a model, with every
 *    buffer size and entry limit that changes the cursor's first scan;
 *  - scans racing inserts and removals in the very leaves they read and
 *    prefetch (keys interleaved with the scanned ones, and just outside the
 *    prefix on both sides), with more threads than cores: every stable key
 *    exactly once and in order, nothing outside the prefix, every value
 *    the one its key was written with; then the invariant checker.
 */
#include "mantis.h"
#include "mt_bptree.h"
#include "mt_check.h"
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

static uint32_t tsc_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ------------------------------------------------------------ the model */

/* Keys over a small alphabet with the extreme bytes, lengths 1..3. */
static const unsigned char tsc_alpha[] = {0x00, 0x01, 0x7f, 0xfe, 0xff};
#define TSC_A      5
#define TSC_NKEYS  (TSC_A + TSC_A * TSC_A + TSC_A * TSC_A * TSC_A)
#define TSC_KEYMAX 3

struct tsc_key {
	unsigned char b[TSC_KEYMAX];
	size_t len;
	int live;
};

static struct tsc_key tsc_keys[TSC_NKEYS];

static int tsc_cmp(const void *x, const void *y)
{
	const struct tsc_key *a = x, *b = y;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->b, b->b, n);

	return c != 0 ? c : (a->len > b->len) - (a->len < b->len);
}

static void tsc_model(void)
{
	size_t k = 0;

	for (size_t len = 1; len <= TSC_KEYMAX; len++) {
		size_t count = 1;

		for (size_t i = 0; i < len; i++)
			count *= TSC_A;
		for (size_t x = 0; x < count; x++, k++) {
			size_t y = x;

			for (size_t i = 0; i < len; i++, y /= TSC_A)
				tsc_keys[k].b[len - 1 - i] = tsc_alpha[y % TSC_A];
			tsc_keys[k].len = len;
			tsc_keys[k].live = k % 7 != 3; /* some deleted after their put */
		}
	}
	qsort(tsc_keys, TSC_NKEYS, sizeof(tsc_keys[0]), tsc_cmp);
}

/* The value of a key: its bytes twice (so a value read for the wrong key
 * shows). */
static size_t tsc_value(unsigned char *out, const unsigned char *k, size_t klen)
{
	memcpy(out, k, klen);
	memcpy(out + klen, k, klen);
	return 2 * klen;
}

/* Is k live and does it start with p? */
static int tsc_wanted(const struct tsc_key *k, const unsigned char *p, size_t plen)
{
	return k->live && k->len >= plen && (plen == 0 || memcmp(k->b, p, plen) == 0);
}

/* Scans prefix p through next_chunk (cap bytes, max entries per chunk) and
 * checks the entries against the model. */
static void tsc_scan_chunks(uint64_t db, const unsigned char *p, size_t plen, size_t cap,
                            uint32_t max)
{
	unsigned char buf[1 << 12];
	size_t at = 0; /* the model's next key */
	uint64_t it;
	int rc;

	cr_assert_leq(cap, sizeof(buf));
	cr_assert_eq(mantis_iter_open(db, 0, p, plen, &it), MANTIS_OK);
	for (;;) {
		size_t len, off = 0;
		uint32_t count;

		rc = mantis_iter_next_chunk(it, buf, cap, max, &len, &count);
		if (rc != MANTIS_OK)
			break;
		cr_assert(max == 0 || count <= max);
		for (uint32_t c = 0; c < count; c++) {
			uint32_t kl = tsc_le32(buf + off), vl = tsc_le32(buf + off + 4);
			unsigned char v[2 * TSC_KEYMAX];

			while (at < TSC_NKEYS && !tsc_wanted(&tsc_keys[at], p, plen))
				at++;
			cr_assert_lt(at, TSC_NKEYS, "an entry past the prefix's keys");
			cr_assert_eq(kl, tsc_keys[at].len);
			cr_assert_eq(memcmp(buf + off + 8, tsc_keys[at].b, kl), 0);
			cr_assert_eq(vl, tsc_value(v, tsc_keys[at].b, kl));
			cr_assert_eq(memcmp(buf + off + 8 + kl, v, vl), 0);
			off += 8 + kl + vl;
			at++;
		}
		cr_assert_eq(off, len);
	}
	cr_assert_eq(rc, MANTIS_DONE, "next_chunk: %s", mantis_strerror(rc));
	while (at < TSC_NKEYS && !tsc_wanted(&tsc_keys[at], p, plen))
		at++;
	cr_assert_eq(at, TSC_NKEYS, "a key of the prefix was not returned");
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
}

Test(db_iter_scan, prefix_ends_against_a_model)
{
	uint64_t db = tdb_open();
	static const size_t caps[] = {32, 200, 4096};
	static const uint32_t maxes[] = {0, 1, 3};

	tsc_model();
	for (size_t k = 0; k < TSC_NKEYS; k++) {
		unsigned char v[2 * TSC_KEYMAX];
		size_t vl = tsc_value(v, tsc_keys[k].b, tsc_keys[k].len);

		cr_assert_eq(mantis_db_put(db, tsc_keys[k].b, tsc_keys[k].len, v, vl, 0, NULL),
		             MANTIS_OK);
	}
	for (size_t k = 0; k < TSC_NKEYS; k++)
		if (!tsc_keys[k].live)
			cr_assert_eq(mantis_db_delete(db, tsc_keys[k].b, tsc_keys[k].len, NULL),
			             MANTIS_OK);
	/* Every key as a prefix (so every prefix of the alphabet up to three
	 * bytes, those ending in 0xff and those of 0xff only among them), and
	 * no prefix. */
	for (size_t k = 0; k <= TSC_NKEYS; k++) {
		const unsigned char *p = k < TSC_NKEYS ? tsc_keys[k].b : NULL;
		size_t plen = k < TSC_NKEYS ? tsc_keys[k].len : 0;

		for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++)
			for (size_t m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++)
				tsc_scan_chunks(db, p, plen, caps[c], maxes[m]);
	}
	/* A seek inside and past a prefix ending in 0xff: "\x01\xff". */
	{
		static const unsigned char p[] = {0x01, 0xff}, in[] = {0x01, 0xff, 0x7f},
		                           past[] = {0x02};
		const void *k;
		size_t kl;
		uint64_t it;

		cr_assert_eq(mantis_iter_open(db, 0, p, 2, &it), MANTIS_OK);
		cr_assert_eq(mantis_iter_seek(it, in, 3), MANTIS_OK);
		cr_assert_eq(mantis_iter_next(it, &k, &kl, NULL, NULL), MANTIS_OK);
		cr_assert(kl == 3 && memcmp(k, in, 3) == 0);
		cr_assert_eq(mantis_iter_next(it, &k, &kl, NULL, NULL), MANTIS_OK);
		cr_assert(kl == 3 && memcmp(k, "\x01\xff\xfe", 3) == 0);
		cr_assert_eq(mantis_iter_next(it, &k, &kl, NULL, NULL), MANTIS_OK);
		cr_assert(kl == 3 && memcmp(k, "\x01\xff\xff", 3) == 0);
		cr_assert_eq(mantis_iter_next(it, NULL, NULL, NULL, NULL), MANTIS_DONE);
		cr_assert_eq(mantis_iter_seek(it, past, 1), MANTIS_DONE);
		cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	}
	tdb_check(db);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* ------------------------------------------------------------ the race */

#define TSC_GROUPS 4
#define TSC_PER    300 /* stable keys per group: many leaves, several chunks */

struct tsc_race {
	uint64_t db;
	uint64_t stop;
	uint64_t scans, writes;
};

struct tsc_thread {
	struct tsc_race *r;
	int id;
};

/* Key i of group g: "g<g>|<i>a" stable, "g<g>|<i>b" toggled by writers
 * (between two stable keys, so in the leaves scans read); "g<g>{<i>" and
 * "g<g>}<i>" toggled just below and just above the prefix "g<g>|". */
static size_t tsc_race_key(char *out, int g, int i, char kind)
{
	if (kind == '{' || kind == '}')
		return (size_t)snprintf(out, 32, "g%d%c%05d", g, kind, i);
	return (size_t)snprintf(out, 32, "g%d|%05d%c", g, i, kind);
}

static void tsc_race_put(uint64_t db, const char *k, size_t kl)
{
	char v[80];
	int vl = snprintf(v, sizeof(v), "value of %s, padded to two lines of a version", k);

	cr_assert_eq(mantis_db_put(db, k, kl, v, (size_t)vl, 0, NULL), MANTIS_OK);
}

static void *tsc_writer(void *p)
{
	struct tsc_thread *t = p;
	uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(t->id + 1);

	while (!ck_pr_load_64(&t->r->stop)) {
		static const char kinds[] = {'b', 'b', 'b', '{', '}'};
		char k[32];
		uint64_t x;
		size_t kl;

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		x = rng;
		kl = tsc_race_key(k, (int)(x % TSC_GROUPS), (int)((x >> 8) % TSC_PER),
		                  kinds[(x >> 24) % 5]);
		if ((x >> 32) & 1)
			tsc_race_put(t->r->db, k, kl);
		else
			cr_assert_eq(mantis_db_delete(t->r->db, k, kl, NULL), MANTIS_OK);
		if (((x >> 40) & 1023) == 0) /* prune: nodes of deleted keys removed */
			cr_assert_eq(mantis_db_sweep(t->r->db, NULL), MANTIS_OK);
		/* Where threads run one at a time (valgrind), writers would
		 * take most turns: keep within 256 writes per scan. */
		if (ck_pr_faa_64(&t->r->writes, 1) > 256 * (ck_pr_load_64(&t->r->scans) + 1))
			usleep(100);
	}
	return NULL;
}

/* One scan of group g: ascending keys with the prefix, each value its
 * key's, every stable key once. */
static void tsc_scan_group(uint64_t db, int g, size_t cap, uint32_t max)
{
	static __thread unsigned char buf[1 << 16];
	char prefix[8], last[32] = "", want[32], v[80];
	size_t plen = (size_t)snprintf(prefix, sizeof(prefix), "g%d|", g), lastlen = 0;
	int stable = 0, rc;
	uint64_t it;

	cr_assert_eq(mantis_iter_open(db, 0, prefix, plen, &it), MANTIS_OK);
	for (;;) {
		size_t len, off = 0;
		uint32_t count;

		rc = mantis_iter_next_chunk(it, buf, cap, max, &len, &count);
		if (rc == MANTIS_DONE)
			break;
		cr_assert_eq(rc, MANTIS_OK, "next_chunk: %s", mantis_strerror(rc));
		for (uint32_t c = 0; c < count; c++) {
			uint32_t kl = tsc_le32(buf + off), vl = tsc_le32(buf + off + 4);
			const char *k = (const char *)buf + off + 8;
			int vn;

			cr_assert(kl >= plen && memcmp(k, prefix, plen) == 0,
			          "a key without the prefix");
			cr_assert(mt_bpt_cmp(last, lastlen, k, kl) < 0, "keys out of order");
			cr_assert_lt(kl, sizeof(last));
			memcpy(last, k, kl);
			lastlen = kl;
			last[kl] = '\0';
			vn = snprintf(v, sizeof(v), "value of %s, padded to two lines of a version",
			              last);
			cr_assert(vl == (uint32_t)vn && memcmp(k + kl, v, vl) == 0,
			          "a wrong value");
			if (last[kl - 1] == 'a') {
				tsc_race_key(want, g, stable, 'a');
				cr_assert_str_eq(last, want, "a stable key missed or repeated");
				stable++;
			}
			off += 8 + kl + vl;
		}
		cr_assert_eq(off, len);
	}
	cr_assert_eq(stable, TSC_PER, "stable keys missed");
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
}

static void *tsc_scanner(void *p)
{
	struct tsc_thread *t = p;
	static const size_t caps[] = {1 << 16, 4096, 300};
	static const uint32_t maxes[] = {0, 0, 50, 1};
	uint64_t n = 0;

	while (!ck_pr_load_64(&t->r->stop)) {
		tsc_scan_group(t->r->db, (int)((n + (uint64_t)t->id) % TSC_GROUPS), caps[n % 3],
		               maxes[(n / 3) % 4]);
		n++;
		ck_pr_inc_64(&t->r->scans);
	}
	return NULL;
}

Test(db_iter_scan, scans_race_inserts_and_removals_in_their_leaves, .timeout = 300)
{
	enum { WRITERS = 4, SCANNERS = 4 };
	struct tsc_race r = {.db = tdb_open()};
	struct tsc_thread ts[WRITERS + SCANNERS];
	pthread_t th[WRITERS + SCANNERS];
	uint64_t want = test_scaled(8000);
	struct test_watchdog w;
	pthread_attr_t attr;
	char k[32];

	for (int g = 0; g < TSC_GROUPS; g++)
		for (int i = 0; i < TSC_PER; i++) {
			size_t kl = tsc_race_key(k, g, i, 'a');

			tsc_race_put(r.db, k, kl);
		}
	/* More threads than cores, whatever the machine. */
	test_attr_two_cpus(&attr);
	test_watchdog_start(&w, "scans racing writers", 240);
	for (int i = 0; i < WRITERS + SCANNERS; i++) {
		ts[i] = (struct tsc_thread){.r = &r, .id = i};
		cr_assert_eq(pthread_create(&th[i], &attr, i < WRITERS ? tsc_writer : tsc_scanner,
		                            &ts[i]),
		             0);
	}
	while (ck_pr_load_64(&r.scans) < want)
		usleep(2000);
	ck_pr_store_64(&r.stop, 1);
	for (int i = 0; i < WRITERS + SCANNERS; i++)
		cr_assert_eq(pthread_join(th[i], NULL), 0);
	test_watchdog_stop(&w);
	pthread_attr_destroy(&attr);
	cr_log_info("scan race: %llu scans checked against %llu writes",
	            (unsigned long long)r.scans, (unsigned long long)r.writes);
	tdb_check(r.db);
	cr_assert_eq(mantis_db_sweep(r.db, NULL), MANTIS_OK);
	tdb_check(r.db);
	cr_assert_eq(mantis_db_close(r.db), MANTIS_OK);
}

/* ------------------------------------------------------------ the prune bound */

struct tsc_bound {
	uint64_t db;
	uint64_t *stop;
	uint64_t scans; /* this thread's */
};

static void *tsc_bound_scanner(void *p)
{
	struct tsc_bound *b = p;
	static __thread unsigned char buf[1 << 16];

	while (!ck_pr_load_64(b->stop)) {
		uint64_t it;
		size_t len;
		uint32_t count;
		int rc;

		cr_assert_eq(mantis_iter_open(b->db, 0, "m", 1, &it), MANTIS_OK);
		while ((rc = mantis_iter_next_chunk(it, buf, sizeof(buf), 0, &len, &count)) ==
		       MANTIS_OK)
			;
		cr_assert_eq(rc, MANTIS_DONE);
		cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
		ck_pr_inc_64(&b->scans);
	}
	return NULL;
}

/*
 * Iterators register their snapshot without rescanning the slots (only
 * their close rescans, as a multiget's end does): back-to-back scans on two
 * threads, so that one is always registered, must still let the prune bound
 * rise, as in defect 2 of issue 8 for multigets. One thread overwrites a
 * key; once every scan in flight began after the overwrites, the next
 * writes must cut its chain.
 */
Test(db_iter_scan, back_to_back_scans_do_not_freeze_the_prune_bound, .timeout = 300)
{
	uint64_t writes = test_scaled(20000), db = tdb_open(), stop = 0, s0[2], held, i;
	struct tsc_bound b[2];
	struct test_watchdog w;
	pthread_t t[2];
	char key[32];

	for (i = 0; i < 2000; i++) {
		tdb_key(key, sizeof(key), "m", i);
		tdb_put(db, key, "value");
	}
	test_watchdog_start(&w, "scans and the prune bound", 120);
	for (int k = 0; k < 2; k++) {
		b[k] = (struct tsc_bound){.db = db, .stop = &stop};
		cr_assert_eq(pthread_create(&t[k], NULL, tsc_bound_scanner, &b[k]), 0);
	}
	for (int k = 0; k < 2; k++)
		while (ck_pr_load_64(&b[k].scans) < 2)
			sched_yield();
	for (i = 0; i < writes; i++)
		cr_assert_eq(mantis_db_put(db, "hot", 3, &i, sizeof(i), 0, NULL), MANTIS_OK);
	/* Let every scan in flight now finish, and one more begin, on each
	 * thread. */
	for (int k = 0; k < 2; k++)
		s0[k] = ck_pr_load_64(&b[k].scans);
	for (int k = 0; k < 2; k++)
		while (ck_pr_load_64(&b[k].scans) < s0[k] + 2)
			sched_yield();
	for (i = 0; i < 32; i++)
		cr_assert_eq(mantis_db_put(db, "hot", 3, &i, sizeof(i), 0, NULL), MANTIS_OK);
	held = tdb_stats(db).versions - 2000;
	ck_pr_store_64(&stop, 1);
	for (int k = 0; k < 2; k++)
		cr_assert_eq(pthread_join(t[k], NULL), 0);
	test_watchdog_stop(&w);
	cr_log_info("scans: %llu versions of the hot key held after %llu overwrites",
	            (unsigned long long)held, (unsigned long long)writes + 32);
	cr_assert_leq(held, 64, "the hot key's chain held %llu versions", (unsigned long long)held);
	tdb_check(db);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}
