/*
 * test_db_stress.c - the storage engine under threads: random operations on
 * per-thread key ranges checked against per-thread expectations; shared
 * keys checked against the write with the highest sequence number; readers
 * that must never see part of a batch (snapshots, multiget, iterators);
 * latest reads racing with pruning; optimistic transactions; iterators over
 * churning keys; close while calls are in flight; and many short-lived
 * threads (epoch records recycled, nothing leaked).
 */
#include "mantis.h"
#include "mt_db.h"
#include "mt_epoch.h"
#include "mt_skiplist.h"
#include "test_db_util.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <pthread.h>

#define TS_THREADS 4

static uint64_t ts_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static void ts_run(void *(*fn)(void *), void *args, size_t argsize, int n)
{
	pthread_t t[16];

	cr_assert_leq(n, 16);
	for (int i = 0; i < n; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, fn, (char *)args + (size_t)i * argsize),
		             0);
	for (int i = 0; i < n; i++)
		cr_assert_eq(pthread_join(t[i], NULL), 0);
}

static uint32_t ts_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ------------------------------------------------------------ per-thread ranges */

#define TR_KEYS 128

struct tr_arg {
	uint64_t db;
	int id;
	uint64_t iters;
	char *val[TR_KEYS];    /* expected value, NULL: absent */
	uint64_t seq[TR_KEYS]; /* seq of our last write of the key */
};

static void tr_key(char *out, int id, int i)
{
	snprintf(out, 32, "t%d-%04d", id, i);
}

static void tr_set(struct tr_arg *a, int i, const char *v, uint64_t seq)
{
	free(a->val[i]);
	a->val[i] = v != NULL ? strdup(v) : NULL;
	a->seq[i] = seq;
}

static void tr_check_get(struct tr_arg *a, uint64_t snap, int i)
{
	char key[32];

	tr_key(key, a->id, i);
	tdb_expect(a->db, snap, key, a->val[i]);
}

static void tr_check_scan(struct tr_arg *a)
{
	char prefix[8], key[32];
	uint64_t it;
	unsigned char buf[512];
	int i = 0;

	snprintf(prefix, sizeof(prefix), "t%d-", a->id);
	cr_assert_eq(mantis_iter_open(a->db, 0, prefix, strlen(prefix), &it), MANTIS_OK);
	for (;;) {
		size_t len, off = 0;
		uint32_t count;
		int rc = mantis_iter_next_chunk(it, buf, sizeof(buf), 0, &len, &count);

		if (rc == MANTIS_DONE)
			break;
		cr_assert_eq(rc, MANTIS_OK);
		for (uint32_t c = 0; c < count; c++) {
			uint32_t kl = ts_le32(buf + off), vl = ts_le32(buf + off + 4);

			while (i < TR_KEYS && a->val[i] == NULL)
				i++;
			cr_assert_lt(i, TR_KEYS, "scan returned an extra key");
			tr_key(key, a->id, i);
			cr_assert_eq(kl, strlen(key));
			cr_assert_eq(memcmp(buf + off + 8, key, kl), 0);
			cr_assert_eq(vl, strlen(a->val[i]));
			cr_assert_eq(memcmp(buf + off + 8 + kl, a->val[i], vl), 0);
			off += 8 + kl + vl;
			i++;
		}
	}
	while (i < TR_KEYS && a->val[i] == NULL)
		i++;
	cr_assert_eq(i, TR_KEYS, "scan missed keys");
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
}

static void *tr_thread(void *p)
{
	struct tr_arg *a = p;
	uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(a->id + 1), seq;
	char key[32], val[160];

	for (uint64_t n = 0; n < a->iters; n++) {
		uint64_t r = ts_rand(&rng);
		int i = (int)(r % TR_KEYS), op = (int)((r >> 16) % 100);

		tr_key(key, a->id, i);
		if (op < 30) {
			int len = snprintf(val, sizeof(val), "%d:%d:%llu", a->id, i,
			                   (unsigned long long)n);

			if ((r >> 40) % 8 == 0) /* sometimes a longer value */
				len += snprintf(val + len, sizeof(val) - (size_t)len, "%0100d", 7);
			cr_assert_eq(mantis_db_put(a->db, key, strlen(key), val, (size_t)len,
			                           (r >> 48) % 4 == 0 ? 1000000000 : 0, &seq),
			             MANTIS_OK);
			tr_set(a, i, val, seq);
		} else if (op < 45) {
			cr_assert_eq(mantis_db_delete(a->db, key, strlen(key), &seq), MANTIS_OK);
			tr_set(a, i, NULL, seq);
		} else if (op < 75) {
			tr_check_get(a, 0, i);
		} else if (op < 80) {
			struct tdb_batch b = {0};
			int nrec = 1 + (int)((r >> 24) % 10), idx[10];

			for (int k = 0; k < nrec; k++) {
				idx[k] = (int)((r >> (k * 6)) % TR_KEYS);
				tr_key(key, a->id, idx[k]);
				if ((r >> (k + 30)) & 1) {
					snprintf(val, sizeof(val), "b%d:%llu:%d", a->id,
					         (unsigned long long)n, k);
					tdb_batch_put(&b, key, val);
				} else {
					tdb_batch_del(&b, key);
					idx[k] = -1 - idx[k];
				}
			}
			cr_assert_eq(mantis_db_write(a->db, b.buf, b.len, 0, &seq), MANTIS_OK);
			for (int k = 0; k < nrec; k++) {
				if (idx[k] >= 0) {
					snprintf(val, sizeof(val), "b%d:%llu:%d", a->id,
					         (unsigned long long)n, k);
					tr_set(a, idx[k], val, seq);
				} else {
					tr_set(a, -1 - idx[k], NULL, seq);
				}
			}
			tdb_batch_free(&b);
		} else if (op < 85) {
			unsigned char kb[8 * 16], out[8 * 200];
			size_t off = 0, olen;
			int nk = 1 + (int)((r >> 24) % 8), ks[8];

			for (int k = 0; k < nk; k++) {
				ks[k] = (int)((r >> (k * 5 + 8)) % TR_KEYS);
				tr_key(key, a->id, ks[k]);
				tdb_le32(kb + off, (uint32_t)strlen(key));
				memcpy(kb + off + 4, key, strlen(key));
				off += 4 + strlen(key);
			}
			cr_assert_eq(mantis_db_multiget(a->db, 0, kb, off, (uint32_t)nk, out,
			                                sizeof(out), &olen),
			             MANTIS_OK);
			off = 0;
			for (int k = 0; k < nk; k++) {
				uint32_t vl = ts_le32(out + off);

				off += 4;
				if (a->val[ks[k]] == NULL) {
					cr_assert_eq(vl, MANTIS_ABSENT);
					continue;
				}
				cr_assert_eq(vl, strlen(a->val[ks[k]]));
				cr_assert_eq(memcmp(out + off, a->val[ks[k]], vl), 0);
				off += vl;
			}
			cr_assert_eq(off, olen);
		} else if (op < 88) {
			tr_check_scan(a);
		} else if (op < 91) {
			uint64_t ks;

			cr_assert_eq(mantis_db_key_seq(a->db, key, strlen(key), &ks), MANTIS_OK);
			if (a->val[i] != NULL)
				cr_assert_eq(ks, a->seq[i], "key_seq of a live key");
			else
				cr_assert(ks == 0 || ks == a->seq[i]);
		} else if (op < 99) {
			uint64_t snap;

			cr_assert_eq(mantis_snapshot_open(a->db, &snap, NULL), MANTIS_OK);
			for (int k = 0; k < 4; k++)
				tr_check_get(a, snap, (i + k * 17) % TR_KEYS);
			cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
		} else {
			cr_assert_eq(mantis_db_sweep(a->db, NULL), MANTIS_OK);
		}
	}
	return NULL;
}

Test(db_stress, per_thread_ranges_match_expectations, .timeout = 300)
{
	uint64_t mem0 = (mt_epoch_barrier(), mt_sl_mem_bytes());
	struct tr_arg args[TS_THREADS];
	uint64_t db = tdb_open(), live = 0;
	mantis_db_stats_t st;

	memset(args, 0, sizeof(args));
	for (int t = 0; t < TS_THREADS; t++) {
		args[t].db = db;
		args[t].id = t;
		args[t].iters = test_scaled(40000);
	}
	ts_run(tr_thread, args, sizeof(args[0]), TS_THREADS);
	for (int t = 0; t < TS_THREADS; t++) {
		for (int i = 0; i < TR_KEYS; i++) {
			tr_check_get(&args[t], 0, i);
			live += args[t].val[i] != NULL;
		}
		tr_check_scan(&args[t]);
	}
	cr_assert_eq(mantis_db_sweep(db, NULL), MANTIS_OK);
	st = tdb_stats(db);
	cr_assert_eq(st.entries, live, "entries is exact when quiescent");
	cr_assert_eq(st.versions, live, "one version per live key after a sweep");
	cr_assert_eq(st.snapshots, 0);
	for (int t = 0; t < TS_THREADS; t++)
		for (int i = 0; i < TR_KEYS; i++)
			free(args[t].val[i]);
	tdb_check(db);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
	mt_epoch_barrier();
	cr_assert_eq(mt_sl_mem_bytes(), mem0);
}

/* ------------------------------------------------------------ shared keys */

#define TSH_KEYS 24

struct tsh_write {
	uint64_t seq;
	int key;
	int del;
	uint32_t val;
};

struct tsh_arg {
	uint64_t db;
	int id;
	uint64_t iters;
	struct tsh_write *log;
	size_t nlog;
};

static void *tsh_thread(void *p)
{
	struct tsh_arg *a = p;
	uint64_t rng = 0xC0FFEEull * (uint64_t)(a->id + 3), seq, snap;
	char key[16], val[16];

	for (uint64_t n = 0; n < a->iters; n++) {
		uint64_t r = ts_rand(&rng);
		int k = (int)(r % TSH_KEYS), op = (int)((r >> 8) % 100);
		uint32_t v = (uint32_t)(r >> 32);

		snprintf(key, sizeof(key), "s%02d", k);
		snprintf(val, sizeof(val), "%08x", v);
		if (op < 40) {
			cr_assert_eq(mantis_db_put(a->db, key, strlen(key), val, 8, 0, &seq),
			             MANTIS_OK);
			a->log[a->nlog++] = (struct tsh_write){seq, k, 0, v};
		} else if (op < 55) {
			cr_assert_eq(mantis_db_delete(a->db, key, strlen(key), &seq), MANTIS_OK);
			a->log[a->nlog++] = (struct tsh_write){seq, k, 1, 0};
		} else if (op < 65) {
			/* A batch of two keys: both take the batch's seq. */
			struct tdb_batch b = {0};
			char key2[16];
			int k2 = (k + 1 + (int)((r >> 20) % (TSH_KEYS - 1))) % TSH_KEYS;

			snprintf(key2, sizeof(key2), "s%02d", k2);
			tdb_batch_put(&b, key, val);
			tdb_batch_del(&b, key2);
			cr_assert_eq(mantis_db_write(a->db, b.buf, b.len, 0, &seq), MANTIS_OK);
			a->log[a->nlog++] = (struct tsh_write){seq, k, 0, v};
			a->log[a->nlog++] = (struct tsh_write){seq, k2, 1, 0};
			tdb_batch_free(&b);
		} else if (op < 95) {
			const char *got;
			int rc = tdb_get(a->db, 0, key, &got);

			cr_assert(rc == MANTIS_OK || rc == MANTIS_NOTFOUND);
			if (rc == MANTIS_OK)
				cr_assert_eq(strlen(got), 8);
		} else if (op < 99) {
			uint64_t it;

			cr_assert_eq(mantis_snapshot_open(a->db, &snap, NULL), MANTIS_OK);
			cr_assert_eq(mantis_iter_open(a->db, snap, "s", 1, &it), MANTIS_OK);
			(void)tdb_iter_all(it);
			cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
			cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
		} else {
			cr_assert_eq(mantis_db_sweep(a->db, NULL), MANTIS_OK);
		}
	}
	return NULL;
}

/* Every key ends as its write with the highest seq left it, and the stats
 * agree with a scan. */
Test(db_stress, shared_keys_end_as_the_last_write, .timeout = 300)
{
	struct tsh_arg args[TS_THREADS];
	struct tsh_write last[TSH_KEYS];
	uint64_t db = tdb_open(), live = 0, bytes = 0, it;
	mantis_db_stats_t st;
	char key[16], val[16];

	memset(args, 0, sizeof(args));
	memset(last, 0, sizeof(last));
	for (int t = 0; t < TS_THREADS; t++) {
		args[t].db = db;
		args[t].id = t;
		args[t].iters = test_scaled(40000);
		args[t].log = calloc(args[t].iters * 2, sizeof(struct tsh_write));
	}
	ts_run(tsh_thread, args, sizeof(args[0]), TS_THREADS);
	for (int t = 0; t < TS_THREADS; t++) {
		for (size_t i = 0; i < args[t].nlog; i++) {
			struct tsh_write *w = &args[t].log[i];

			cr_assert_neq(w->seq, last[w->key].seq, "two writes of a key share a seq");
			if (w->seq > last[w->key].seq)
				last[w->key] = *w;
		}
		free(args[t].log);
	}
	for (int k = 0; k < TSH_KEYS; k++) {
		snprintf(key, sizeof(key), "s%02d", k);
		snprintf(val, sizeof(val), "%08x", last[k].val);
		if (last[k].seq == 0 || last[k].del) {
			tdb_expect(db, 0, key, NULL);
		} else {
			tdb_expect(db, 0, key, val);
			live++;
			bytes += 3 + 8;
		}
	}
	cr_assert_eq(mantis_iter_open(db, 0, NULL, 0, &it), MANTIS_OK);
	{
		const char *all = tdb_iter_all(it);
		uint64_t n = 0;

		for (const char *c = all; *c; c++)
			n += *c == ';';
		cr_assert_eq(n, live);
	}
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(mantis_db_sweep(db, NULL), MANTIS_OK);
	st = tdb_stats(db);
	cr_assert_eq(st.entries, live);
	cr_assert_eq(st.versions, live);
	cr_assert_eq(st.bytes, bytes);
	tdb_check(db);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* ------------------------------------------------------------ batch atomicity */

#define TA_ACCTS 10
#define TA_TOTAL 1000

struct ta_arg {
	uint64_t db;
	int id;
	uint64_t iters;
	int *stop;
	uint64_t views;
};

static void *ta_writer(void *p)
{
	struct ta_arg *a = p;
	uint64_t rng = 77 + (uint64_t)a->id;
	struct tdb_batch b = {0};
	char key[16], val[16];

	for (uint64_t n = 0; n < a->iters; n++) {
		int left = TA_TOTAL;

		b.len = 0;
		for (int i = 0; i < TA_ACCTS; i++) {
			int v = i == TA_ACCTS - 1 ? left
			                          : (int)(ts_rand(&rng) % (uint64_t)(left + 1));

			left -= v;
			snprintf(key, sizeof(key), "acct%d", i);
			snprintf(val, sizeof(val), "%d", v);
			tdb_batch_put(&b, key, val);
		}
		/* A key the batch deletes and one it creates, to move nodes. */
		snprintf(key, sizeof(key), "tmp%llu", (unsigned long long)(n % 3));
		tdb_batch_put(&b, key, "x");
		snprintf(key, sizeof(key), "tmp%llu", (unsigned long long)((n + 1) % 3));
		tdb_batch_del(&b, key);
		cr_assert_eq(mantis_db_write(a->db, b.buf, b.len, 0, NULL), MANTIS_OK);
	}
	tdb_batch_free(&b);
	ck_pr_inc_int(a->stop);
	return NULL;
}

static int ta_sum_text(const char *all)
{
	int sum = 0, n = 0;
	const char *c = all;

	while ((c = strstr(c, "acct")) != NULL) {
		const char *eq = strchr(c, '=');

		sum += atoi(eq + 1);
		n++;
		c = eq;
	}
	cr_assert_eq(n, TA_ACCTS, "all accounts in one view: %s", all);
	return sum;
}

static void *ta_reader(void *p)
{
	struct ta_arg *a = p;
	uint64_t rng = 5 + (uint64_t)a->id;
	char key[16];

	while (ck_pr_load_int(a->stop) < 2) {
		int mode = (int)(ts_rand(&rng) % 4), sum = 0;

		if (mode == 0) {
			uint64_t snap;

			cr_assert_eq(mantis_snapshot_open(a->db, &snap, NULL), MANTIS_OK);
			for (int i = 0; i < TA_ACCTS; i++) {
				const char *got;

				snprintf(key, sizeof(key), "acct%d", i);
				cr_assert_eq(tdb_get(a->db, snap, key, &got), MANTIS_OK);
				sum += atoi(got);
			}
			cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
		} else if (mode == 1) {
			unsigned char kb[TA_ACCTS * 12], out[TA_ACCTS * 12];
			size_t off = 0, olen;

			for (int i = 0; i < TA_ACCTS; i++) {
				snprintf(key, sizeof(key), "acct%d", i);
				tdb_le32(kb + off, (uint32_t)strlen(key));
				memcpy(kb + off + 4, key, strlen(key));
				off += 4 + strlen(key);
			}
			cr_assert_eq(mantis_db_multiget(a->db, 0, kb, off, TA_ACCTS, out,
			                                sizeof(out), &olen),
			             MANTIS_OK);
			off = 0;
			for (int i = 0; i < TA_ACCTS; i++) {
				uint32_t vl = ts_le32(out + off);
				char v[16];

				cr_assert_neq(vl, MANTIS_ABSENT);
				memcpy(v, out + off + 4, vl);
				v[vl] = '\0';
				sum += atoi(v);
				off += 4 + vl;
			}
		} else {
			uint64_t it;

			cr_assert_eq(mantis_iter_open(a->db, 0, "acct", 4, &it), MANTIS_OK);
			if (mode == 2) {
				sum = ta_sum_text(tdb_iter_all(it));
			} else {
				unsigned char buf[40]; /* small: several chunks */
				char all[512] = "";
				size_t len;
				uint32_t count;

				while (mantis_iter_next_chunk(it, buf, sizeof(buf), 0, &len,
				                              &count) == MANTIS_OK) {
					size_t off = 0;

					for (uint32_t c = 0; c < count; c++) {
						uint32_t kl = ts_le32(buf + off),
						         vl = ts_le32(buf + off + 4);

						strncat(all, (char *)buf + off + 8, kl);
						strcat(all, "=");
						strncat(all, (char *)buf + off + 8 + kl, vl);
						strcat(all, ";");
						off += 8 + kl + vl;
					}
				}
				sum = ta_sum_text(all);
			}
			cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
		}
		cr_assert_eq(sum, TA_TOTAL, "a view saw part of a batch (mode %d)", mode);
		a->views++;
	}
	return NULL;
}

static void *ta_role(void *p)
{
	struct ta_arg *a = p;

	return a->id < 2 ? ta_writer(p) : ta_reader(p);
}

Test(db_stress, readers_never_see_part_of_a_batch, .timeout = 300)
{
	struct ta_arg args[4];
	struct tdb_batch b = {0};
	uint64_t db = tdb_open();
	int stop = 0;
	char key[16];

	for (int i = 0; i < TA_ACCTS; i++) {
		snprintf(key, sizeof(key), "acct%d", i);
		tdb_batch_put(&b, key, "100");
	}
	cr_assert_eq(mantis_db_write(db, b.buf, b.len, 0, NULL), MANTIS_OK);
	tdb_batch_free(&b);
	memset(args, 0, sizeof(args));
	for (int t = 0; t < 4; t++) {
		args[t].db = db;
		args[t].id = t;
		args[t].iters = test_scaled(20000);
		args[t].stop = &stop;
	}
	ts_run(ta_role, args, sizeof(args[0]), 4);
	cr_assert_gt(args[2].views + args[3].views, 0);
	tdb_check(db);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* ------------------------------------------------------------ latest reads */

struct tl_arg {
	uint64_t db;
	int id;
	uint64_t iters;
	int *stop;
};

static void *tl_role(void *p)
{
	struct tl_arg *a = p;
	char val[32];

	if (a->id == 0) {
		/* Overwrites the key all the time. */
		for (uint64_t n = 0; n < a->iters; n++) {
			snprintf(val, sizeof(val), "v%llu", (unsigned long long)n);
			tdb_put(a->db, "hot", val);
			if (n % 64 == 0)
				tdb_put(a->db, "other", val);
		}
		ck_pr_store_int(a->stop, 1);
	} else if (a->id == 1) {
		/* Moves the prune bound around with snapshots and sweeps. */
		uint64_t snap[3] = {0, 0, 0}, n = 0;

		while (!ck_pr_load_int(a->stop)) {
			int i = (int)(n++ % 3);

			if (snap[i] != 0)
				cr_assert_eq(mantis_snapshot_close(snap[i]), MANTIS_OK);
			cr_assert_eq(mantis_snapshot_open(a->db, &snap[i], NULL), MANTIS_OK);
			if (n % 16 == 0)
				cr_assert_eq(mantis_db_sweep(a->db, NULL), MANTIS_OK);
		}
		for (int i = 0; i < 3; i++)
			if (snap[i] != 0)
				cr_assert_eq(mantis_snapshot_close(snap[i]), MANTIS_OK);
	} else {
		/* The key always has a value: a read may never miss it. */
		while (!ck_pr_load_int(a->stop)) {
			uint64_t s;
			const char *got;

			cr_assert_eq(tdb_get(a->db, 0, "hot", &got), MANTIS_OK,
			             "latest read missed");
			cr_assert_eq(got[0], 'v');
			cr_assert_eq(mantis_db_key_seq(a->db, "hot", 3, &s), MANTIS_OK);
			cr_assert_neq(s, 0);
		}
	}
	return NULL;
}

Test(db_stress, latest_reads_never_miss_a_live_key, .timeout = 300)
{
	struct tl_arg args[4];
	uint64_t db = tdb_open();
	int stop = 0;

	tdb_put(db, "hot", "v");
	for (int t = 0; t < 4; t++)
		args[t] = (struct tl_arg){db, t, test_scaled(100000), &stop};
	ts_run(tl_role, args, sizeof(args[0]), 4);
	tdb_check(db);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* ------------------------------------------------------------ transactions */

struct tx_arg {
	uint64_t db;
	uint64_t iters;
	uint64_t conflicts;
};

static void *tx_thread(void *p)
{
	struct tx_arg *a = p;
	struct tdb_batch b = {0};
	char val[32];

	for (uint64_t n = 0; n < a->iters; n++) {
		for (;;) {
			uint64_t snap, sseq;
			const char *got;
			long v;
			int rc;

			cr_assert_eq(mantis_snapshot_open(a->db, &snap, &sseq), MANTIS_OK);
			cr_assert_eq(tdb_get(a->db, snap, "counter", &got), MANTIS_OK);
			v = atol(got);
			cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
			snprintf(val, sizeof(val), "%ld", v + 1);
			b.len = 0;
			tdb_batch_check(&b, "counter");
			tdb_batch_put(&b, "counter", val);
			rc = mantis_db_write(a->db, b.buf, b.len, sseq, NULL);
			if (rc == MANTIS_OK)
				break;
			cr_assert_eq(rc, MANTIS_CONFLICT);
			a->conflicts++;
		}
	}
	tdb_batch_free(&b);
	return NULL;
}

Test(db_stress, optimistic_transactions_lose_no_increment, .timeout = 300)
{
	struct tx_arg args[TS_THREADS];
	uint64_t db = tdb_open(), total = 0;
	char want[32];

	tdb_put(db, "counter", "0");
	for (int t = 0; t < TS_THREADS; t++) {
		args[t] = (struct tx_arg){db, test_scaled(3000), 0};
		total += args[t].iters;
	}
	ts_run(tx_thread, args, sizeof(args[0]), TS_THREADS);
	snprintf(want, sizeof(want), "%llu", (unsigned long long)total);
	tdb_expect(db, 0, "counter", want);
	tdb_check(db);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* ------------------------------------------------------------ iterator under churn */

#define TI_KEYS 300

struct ti_arg {
	uint64_t db;
	int id;
	int *stop;
};

/* Deletes, overwrites, expires, restores and sweeps the keys. */
static void *ti_churn(void *p)
{
	struct ti_arg *a = p;
	uint64_t rng = 99 + (uint64_t)a->id, n = 0;
	char key[32], orig[32];

	while (ck_pr_load_int(a->stop) == 0) {
		uint64_t r = ts_rand(&rng);
		int i = (int)(r % TI_KEYS);

		tdb_key(key, sizeof(key), "i", (uint64_t)i);
		switch ((r >> 20) % 5) {
		case 0:
			tdb_del(a->db, key);
			break;
		case 1:
			tdb_put(a->db, key, "churned-value-of-another-length");
			break;
		case 2:
			cr_assert_eq(mantis_db_put(a->db, key, strlen(key), "ttl", 3, 1, NULL),
			             MANTIS_OK);
			mt_clock_advance_ms(2);
			break;
		case 3:
			snprintf(orig, sizeof(orig), "orig-%d", i);
			tdb_put(a->db, key, orig);
			break;
		default:
			if (n % 16 == 0)
				cr_assert_eq(mantis_db_sweep(a->db, NULL), MANTIS_OK);
		}
		n++;
	}
	return NULL;
}

/* An iterator opened before the churn must return the original state
 * exactly, and each entry's bytes must stay put until its next call. */
Test(db_stress, iterator_sees_its_snapshot_under_churn, .timeout = 300)
{
	struct ti_arg args[2];
	pthread_t churn[2];
	uint64_t db = tdb_open(), rounds = test_scaled(8);
	char key[32], val[32];
	const void *k, *v;
	size_t kl, vl;

	for (uint64_t round = 0; round < rounds; round++) {
		uint64_t it;
		int stop = 0;

		for (int i = 0; i < TI_KEYS; i++) {
			tdb_key(key, sizeof(key), "i", (uint64_t)i);
			snprintf(val, sizeof(val), "orig-%d", i);
			tdb_put(db, key, val);
		}
		cr_assert_eq(mantis_iter_open(db, 0, "i", 1, &it), MANTIS_OK);
		for (int t = 0; t < 2; t++) {
			args[t] = (struct ti_arg){db, t, &stop};
			cr_assert_eq(pthread_create(&churn[t], NULL, ti_churn, &args[t]), 0);
		}
		for (int i = 0; i < TI_KEYS; i++) {
			tdb_key(key, sizeof(key), "i", (uint64_t)i);
			snprintf(val, sizeof(val), "orig-%d", i);
			cr_assert_eq(mantis_iter_next(it, &k, &kl, &v, &vl), MANTIS_OK);
			cr_assert_eq(kl, strlen(key));
			cr_assert_eq(memcmp(k, key, kl), 0);
			cr_assert_eq(vl, strlen(val));
			for (int y = 0; y < 3; y++) {
				sched_yield();
				cr_assert_eq(memcmp(k, key, kl), 0, "key bytes changed");
				cr_assert_eq(memcmp(v, val, vl), 0, "value bytes changed");
			}
		}
		cr_assert_eq(mantis_iter_next(it, &k, &kl, &v, &vl), MANTIS_DONE);
		cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
		ck_pr_store_int(&stop, 1);
		for (int t = 0; t < 2; t++)
			cr_assert_eq(pthread_join(churn[t], NULL), 0);
	}
	tdb_check(db);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* ------------------------------------------------------------ close in flight */

struct tc_arg {
	uint64_t db;
	int id;
	uint64_t *ops;
	uint64_t closed_seen;
};

static void *tc_thread(void *p)
{
	struct tc_arg *a = p;
	uint64_t rng = 3 + (uint64_t)a->id, streak = 0;
	char key[32];

	/* Runs until every kind of call has failed with CLOSED in a row. */
	while (streak < 64) {
		uint64_t r = ts_rand(&rng), snap, it, seq;
		int rc;
		const char *got;

		tdb_key(key, sizeof(key), "c", r % 512);
		switch ((r >> 16) % 6) {
		case 0:
			rc = mantis_db_put(a->db, key, strlen(key), "value", 5, 0, &seq);
			break;
		case 1:
			rc = tdb_get(a->db, 0, key, &got);
			break;
		case 2:
			rc = mantis_db_delete(a->db, key, strlen(key), NULL);
			break;
		case 3:
			rc = mantis_snapshot_open(a->db, &snap, NULL);
			if (rc == MANTIS_OK) {
				(void)tdb_get(a->db, snap, key, &got);
				cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
			}
			break;
		case 4:
			rc = mantis_iter_open(a->db, 0, "c", 1, &it);
			if (rc == MANTIS_OK) {
				/* The iterator outlives the db's handle. */
				for (int i = 0; i < 8 && mantis_iter_next(it, NULL, NULL, NULL,
				                                          NULL) == MANTIS_OK;
				     i++)
					;
				cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
			}
			break;
		default:
			rc = (r >> 40) % 16 == 0 ? mantis_db_sweep(a->db, NULL)
			                         : mantis_db_key_seq(a->db, key, strlen(key), &seq);
			break;
		}
		cr_assert(rc == MANTIS_OK || rc == MANTIS_NOTFOUND || rc == MANTIS_CLOSED,
		          "unexpected %s", mantis_strerror(rc));
		if (rc == MANTIS_CLOSED) {
			streak++;
			a->closed_seen++;
		} else {
			cr_assert_eq(streak, 0, "a call succeeded after CLOSED");
			ck_pr_inc_64(a->ops);
		}
	}
	return NULL;
}

Test(db_stress, close_while_calls_are_in_flight, .timeout = 300)
{
	uint64_t mem0 = (mt_epoch_barrier(), mt_sl_mem_bytes());
	for (int round = 0; round < 4; round++) {
		struct tc_arg args[TS_THREADS];
		pthread_t t[TS_THREADS];
		uint64_t db = tdb_open(), ops = 0, want = test_scaled(4000) * (uint64_t)(round + 1);

		for (int i = 0; i < TS_THREADS; i++) {
			args[i] = (struct tc_arg){db, i + round * 10, &ops, 0};
			cr_assert_eq(pthread_create(&t[i], NULL, tc_thread, &args[i]), 0);
		}
		while (ck_pr_load_64(&ops) < want)
			sched_yield();
		cr_assert_eq(mantis_db_close(db), MANTIS_OK);
		for (int i = 0; i < TS_THREADS; i++)
			cr_assert_eq(pthread_join(t[i], NULL), 0);
		cr_assert_eq(mantis_db_close(db), MANTIS_CLOSED);
	}
	mt_epoch_barrier();
	cr_assert_eq(mt_sl_mem_bytes(), mem0, "every db freed");
}

/* ------------------------------------------------------------ short-lived threads */

struct tt_arg {
	uint64_t db;
	int id;
};

static void *tt_thread(void *p)
{
	struct tt_arg *a = p;
	char key[32];
	uint64_t it;

	tdb_key(key, sizeof(key), "x", (uint64_t)a->id);
	tdb_put(a->db, key, "v");
	for (int i = 0; i < 20; i++)
		tdb_put(a->db, "shared", key); /* versions to free at exit */
	tdb_expect(a->db, 0, key, "v");
	cr_assert_eq(mantis_iter_open(a->db, 0, "x", 1, &it), MANTIS_OK);
	cr_assert_eq(mantis_iter_next(it, NULL, NULL, NULL, NULL), MANTIS_OK);
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	tdb_del(a->db, key);
	return NULL;
}

static unsigned tt_records(void)
{
	ck_stack_entry_t *cursor;
	unsigned n = 0;

	CK_STACK_FOREACH(&mt_epoch_global.records, cursor)
	n++;
	return n;
}

Test(db_stress, short_lived_threads_recycle_their_state, .timeout = 300)
{
	uint64_t db = tdb_open(), waves = test_scaled(200), base;
	unsigned rec0;

	tdb_put(db, "shared", "init");
	base = (mt_epoch_barrier(), mt_sl_mem_bytes());
	rec0 = tt_records();
	for (uint64_t w = 0; w < waves; w++) {
		struct tt_arg args[TS_THREADS];

		for (int i = 0; i < TS_THREADS; i++)
			args[i] = (struct tt_arg){db, (int)(w * TS_THREADS) + i};
		ts_run(tt_thread, args, sizeof(args[0]), TS_THREADS);
		cr_assert_leq(tt_records(), rec0 + TS_THREADS,
		              "epoch records grow with threads that left (wave %llu)",
		              (unsigned long long)w);
	}
	cr_assert_eq(tdb_stats(db).entries, 1);
	tdb_put(db, "shared", "init"); /* same size as at the start */
	/* Deletes that met another thread's parked iterator left tombstones. */
	cr_assert_eq(mantis_db_sweep(db, NULL), MANTIS_OK);
	cr_assert_eq(tdb_stats(db).versions, 1);
	mt_epoch_barrier();
	cr_assert_eq(mt_sl_mem_bytes(), base, "exited threads' deferred frees ran (%llu vs %llu)",
	             (unsigned long long)mt_sl_mem_bytes(), (unsigned long long)base);
	tdb_check(db);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* ------------------------------------------------------------ point index */

struct tpi_arg {
	uint64_t db;
	int id;
	uint64_t n;
	uint64_t *lo, *hi; /* keys [lo, hi) are present */
	int *stop;
};

static void *tpi_role(void *p)
{
	struct tpi_arg *a = p;
	char key[32], val[32];

	if (a->id == 0) {
		/* Grows the db (the index resizes up), then shrinks it (and
		 * the index down), several times. */
		for (int round = 0; round < 3; round++) {
			for (uint64_t i = ck_pr_load_64(a->hi); i < a->n * (uint64_t)(round + 1);
			     i++) {
				tdb_key(key, sizeof(key), "p", i);
				snprintf(val, sizeof(val), "v%llu", (unsigned long long)i);
				tdb_put(a->db, key, val);
				ck_pr_store_64(a->hi, i + 1);
			}
			while (ck_pr_load_64(a->lo) + a->n / 4 < ck_pr_load_64(a->hi)) {
				uint64_t i = ck_pr_load_64(a->lo);

				ck_pr_store_64(a->lo, i + 1); /* readers stop expecting it first */
				tdb_key(key, sizeof(key), "p", i);
				tdb_del(a->db, key);
			}
			cr_assert_eq(mantis_db_sweep(a->db, NULL), MANTIS_OK);
		}
		ck_pr_store_int(a->stop, 1);
	} else {
		uint64_t rng = 17 + (uint64_t)a->id;

		while (!ck_pr_load_int(a->stop)) {
			uint64_t lo = ck_pr_load_64(a->lo), hi = ck_pr_load_64(a->hi), i;
			const char *got;

			if (hi == lo)
				continue;
			i = lo + ts_rand(&rng) % (hi - lo);
			tdb_key(key, sizeof(key), "p", i);
			snprintf(val, sizeof(val), "v%llu", (unsigned long long)i);
			/* Deleted meanwhile is possible only if lo moved past i. */
			if (tdb_get(a->db, 0, key, &got) == MANTIS_OK)
				cr_assert_str_eq(got, val);
			else
				cr_assert_gt(ck_pr_load_64(a->lo), i,
				             "a present key was not found");
		}
	}
	return NULL;
}

/* Readers never miss a present key while the point index grows, shrinks
 * and evicts underneath them. */
Test(db_stress, point_index_resizes_under_readers, .timeout = 300)
{
	struct tpi_arg args[3];
	uint64_t db = tdb_open(), lo = 0, hi = 0;
	int stop = 0;

	for (int t = 0; t < 3; t++)
		args[t] = (struct tpi_arg){db, t, test_scaled(30000), &lo, &hi, &stop};
	ts_run(tpi_role, args, sizeof(args[0]), 3);
	cr_assert_eq(tdb_stats(db).entries, hi - lo);
	tdb_check(db);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* ------------------------------------------------------------ many threads at once */

#define TM_THREADS 72 /* more than the 63 stripes threads can own */

struct tm_arg {
	uint64_t db;
	int id;
	pthread_barrier_t *all_in, *all_done;
};

static void *tm_thread(void *p)
{
	struct tm_arg *a = p;
	char key[32];

	tdb_key(key, sizeof(key), "m", (uint64_t)a->id);
	pthread_barrier_wait(a->all_in); /* every thread alive at once */
	for (int i = 0; i < 50; i++)
		tdb_put(a->db, key, i % 2 ? "odd" : "even");
	tdb_expect(a->db, 0, key, "odd");
	pthread_barrier_wait(a->all_done);
	return NULL;
}

/* Counters stay exact when threads outnumber the owned stripes (the rest
 * share one with atomic adds). */
Test(db_stress, counters_exact_with_more_threads_than_stripes, .timeout = 300)
{
	struct tm_arg args[TM_THREADS];
	pthread_t t[TM_THREADS];
	pthread_barrier_t in, done;
	uint64_t db = tdb_open();
	mantis_db_stats_t st;

	pthread_barrier_init(&in, NULL, TM_THREADS);
	pthread_barrier_init(&done, NULL, TM_THREADS);
	for (int i = 0; i < TM_THREADS; i++) {
		args[i] = (struct tm_arg){db, i, &in, &done};
		cr_assert_eq(pthread_create(&t[i], NULL, tm_thread, &args[i]), 0);
	}
	for (int i = 0; i < TM_THREADS; i++)
		cr_assert_eq(pthread_join(t[i], NULL), 0);
	pthread_barrier_destroy(&in);
	pthread_barrier_destroy(&done);
	st = tdb_stats(db);
	cr_assert_eq(st.writes, 50u * TM_THREADS);
	cr_assert_eq(st.reads, TM_THREADS);
	cr_assert_eq(st.entries, TM_THREADS);
	cr_assert_eq(mantis_db_sweep(db, NULL), MANTIS_OK);
	cr_assert_eq(tdb_stats(db).versions, TM_THREADS);
	cr_assert_eq(tdb_stats(db).bytes, TM_THREADS * (9u + 3u));
	tdb_check(db);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}
