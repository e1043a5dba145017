/*
 * test_db_api.c - the storage engine's public functions one by one: handles,
 * bad input, point reads and writes, key order, snapshots, stats, key_seq,
 * multiget and TTL. Batches and iterators are in test_db_batch.c and
 * test_db_iter.c; memory, allocation failure and threads in test_db_mem.c
 * and test_db_stress.c.
 */
#include "mantis.h"
#include "mt_db.h"
#include "test_db_util.h"
#include "test_util.h"

#include <criterion/criterion.h>

/* ------------------------------------------------------------ handles */

Test(db_api, open_close_and_bad_options)
{
	mantis_db_options_t opts = {0};
	uint64_t db = 0, db2 = 0;

	cr_assert_eq(mantis_db_open(NULL, NULL), MANTIS_EINVAL);
	opts.reserved = 1;
	cr_assert_eq(mantis_db_open(&opts, &db), MANTIS_EINVAL);
	cr_assert_eq(db, 0, "nothing written on error");
	opts.reserved = 0;
	cr_assert_eq(mantis_db_open(&opts, &db), MANTIS_OK);
	cr_assert_eq(mantis_db_open(NULL, &db2), MANTIS_OK);
	cr_assert_neq(db, db2);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
	cr_assert_eq(mantis_db_close(db), MANTIS_CLOSED, "double close");
	cr_assert_eq(mantis_db_close(db2), MANTIS_OK);
}

Test(db_api, stale_forged_and_wrong_kind_handles)
{
	uint64_t db = tdb_open(), snap, it, s;
	size_t vlen;
	char buf[8];

	cr_assert_eq(mantis_db_put(0, "k", 1, "v", 1, 0, NULL), MANTIS_EBADHANDLE);
	cr_assert_eq(mantis_db_put(0xdeadbeef12345ull, "k", 1, "v", 1, 0, NULL), MANTIS_EBADHANDLE);
	/* A future generation of a real slot is forged, not stale. */
	cr_assert_eq(mantis_db_put(db + (1ull << 40), "k", 1, "v", 1, 0, NULL), MANTIS_EBADHANDLE);
	cr_assert_eq(mantis_snapshot_open(db, &snap, NULL), MANTIS_OK);
	cr_assert_eq(mantis_iter_open(db, 0, NULL, 0, &it), MANTIS_OK);
	/* Handles of another kind. */
	cr_assert_eq(mantis_db_put(snap, "k", 1, "v", 1, 0, NULL), MANTIS_EBADHANDLE);
	cr_assert_eq(mantis_db_get(it, 0, "k", 1, buf, sizeof(buf), &vlen, NULL),
	             MANTIS_EBADHANDLE);
	cr_assert_eq(mantis_db_get(db, it, "k", 1, buf, sizeof(buf), &vlen, NULL),
	             MANTIS_EBADHANDLE, "iterator as snapshot");
	cr_assert_eq(mantis_db_get(db, db, "k", 1, buf, sizeof(buf), &vlen, NULL),
	             MANTIS_EBADHANDLE, "db as snapshot");
	cr_assert_eq(mantis_db_close(snap), MANTIS_EBADHANDLE);
	cr_assert_eq(mantis_snapshot_close(db), MANTIS_EBADHANDLE);
	cr_assert_eq(mantis_iter_close(snap), MANTIS_EBADHANDLE);
	cr_assert_eq(mantis_snapshot_open(it, &s, NULL), MANTIS_EBADHANDLE);
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_CLOSED);
	cr_assert_eq(mantis_iter_close(it), MANTIS_CLOSED);
	cr_assert_eq(mantis_db_get(db, snap, "k", 1, buf, sizeof(buf), &vlen, NULL), MANTIS_CLOSED,
	             "closed snapshot");
	cr_assert_eq(mantis_iter_next(it, NULL, NULL, NULL, NULL), MANTIS_CLOSED);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

Test(db_api, every_call_after_close_is_closed)
{
	uint64_t db = tdb_open(), seq, snap, it;
	mantis_db_stats_t st;
	size_t vlen, olen;
	char buf[16];
	unsigned char keys[5] = {1, 0, 0, 0, 'k'};

	tdb_put(db, "k", "v");
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
	cr_assert_eq(mantis_db_put(db, "k", 1, "v", 1, 0, NULL), MANTIS_CLOSED);
	cr_assert_eq(mantis_db_delete(db, "k", 1, NULL), MANTIS_CLOSED);
	cr_assert_eq(mantis_db_get(db, 0, "k", 1, buf, sizeof(buf), &vlen, NULL), MANTIS_CLOSED);
	cr_assert_eq(mantis_db_key_seq(db, "k", 1, &seq), MANTIS_CLOSED);
	cr_assert_eq(mantis_db_write(db, NULL, 0, 0, &seq), MANTIS_CLOSED);
	cr_assert_eq(mantis_db_multiget(db, 0, keys, sizeof(keys), 1, buf, sizeof(buf), &olen),
	             MANTIS_CLOSED);
	cr_assert_eq(mantis_db_sweep(db, NULL), MANTIS_CLOSED);
	cr_assert_eq(mantis_db_stats(db, &st), MANTIS_CLOSED);
	cr_assert_eq(mantis_snapshot_open(db, &snap, NULL), MANTIS_CLOSED);
	cr_assert_eq(mantis_iter_open(db, 0, NULL, 0, &it), MANTIS_CLOSED);
}

Test(db_api, snapshot_of_another_db_is_einval)
{
	uint64_t a = tdb_open(), b = tdb_open(), snap, it;
	size_t vlen, olen;
	char buf[16];
	unsigned char keys[5] = {1, 0, 0, 0, 'k'};

	tdb_put(a, "k", "v");
	cr_assert_eq(mantis_snapshot_open(b, &snap, NULL), MANTIS_OK);
	cr_assert_eq(mantis_db_get(a, snap, "k", 1, buf, sizeof(buf), &vlen, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_db_multiget(a, snap, keys, sizeof(keys), 1, buf, sizeof(buf), &olen),
	             MANTIS_EINVAL);
	cr_assert_eq(mantis_iter_open(a, snap, NULL, 0, &it), MANTIS_EINVAL);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	cr_assert_eq(mantis_db_close(a), MANTIS_OK);
	cr_assert_eq(mantis_db_close(b), MANTIS_OK);
}

/* ------------------------------------------------------------ puts and gets */

Test(db_api, put_get_overwrite_delete)
{
	uint64_t db = tdb_open(), s1, s2, s3, rs;
	char buf[16];
	size_t vlen;

	tdb_expect(db, 0, "alpha", NULL);
	cr_assert_eq(mantis_db_put(db, "alpha", 5, "one", 3, 0, &s1), MANTIS_OK);
	tdb_expect(db, 0, "alpha", "one");
	cr_assert_eq(mantis_db_get(db, 0, "alpha", 5, buf, sizeof(buf), &vlen, &rs), MANTIS_OK);
	cr_assert_eq(rs, s1, "seq of the version read");
	cr_assert_eq(mantis_db_put(db, "alpha", 5, "two", 3, 0, &s2), MANTIS_OK);
	cr_assert_gt(s2, s1);
	tdb_expect(db, 0, "alpha", "two");
	cr_assert_eq(mantis_db_delete(db, "alpha", 5, &s3), MANTIS_OK);
	cr_assert_gt(s3, s2);
	tdb_expect(db, 0, "alpha", NULL);
	cr_assert_eq(mantis_db_delete(db, "never", 5, NULL), MANTIS_OK, "deleting absent key");
	tdb_put(db, "alpha", "three");
	tdb_expect(db, 0, "alpha", "three");
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

Test(db_api, bad_keys_and_values)
{
	uint64_t db = tdb_open(), seq = 77;
	static char big[MANTIS_KEY_MAX + 1];
	char buf[16];
	size_t vlen = 99;

	memset(big, 'x', sizeof(big));
	cr_assert_eq(mantis_db_put(db, NULL, 1, "v", 1, 0, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_db_put(db, "k", 0, "v", 1, 0, NULL), MANTIS_EKEY);
	cr_assert_eq(mantis_db_put(db, big, sizeof(big), "v", 1, 0, NULL), MANTIS_ETOOLARGE);
	cr_assert_eq(mantis_db_put(db, big, MANTIS_KEY_MAX, "v", 1, 0, NULL), MANTIS_OK);
	cr_assert_eq(mantis_db_put(db, "k", 1, NULL, 1, 0, NULL), MANTIS_EINVAL);
	/* The length is checked before the value is read. */
	cr_assert_eq(mantis_db_put(db, "k", 1, "v", (size_t)MANTIS_VALUE_MAX + 1, 0, NULL),
	             MANTIS_ETOOLARGE);
	cr_assert_eq(mantis_db_delete(db, NULL, 1, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_db_delete(db, "k", 0, NULL), MANTIS_EKEY);
	cr_assert_eq(mantis_db_delete(db, big, sizeof(big), NULL), MANTIS_ETOOLARGE);
	cr_assert_eq(mantis_db_get(db, 0, NULL, 1, buf, 16, &vlen, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_db_get(db, 0, "k", 0, buf, 16, &vlen, NULL), MANTIS_EKEY);
	cr_assert_eq(mantis_db_get(db, 0, big, sizeof(big), buf, 16, &vlen, NULL),
	             MANTIS_ETOOLARGE);
	cr_assert_eq(mantis_db_get(db, 0, "k", 1, buf, 16, NULL, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_db_get(db, 0, "k", 1, NULL, 16, &vlen, NULL), MANTIS_EINVAL);
	cr_assert_eq(vlen, 99, "nothing written on error");
	cr_assert_eq(mantis_db_key_seq(db, NULL, 1, &seq), MANTIS_EINVAL);
	cr_assert_eq(mantis_db_key_seq(db, "k", 0, &seq), MANTIS_EKEY);
	cr_assert_eq(mantis_db_key_seq(db, big, sizeof(big), &seq), MANTIS_ETOOLARGE);
	cr_assert_eq(mantis_db_key_seq(db, "k", 1, NULL), MANTIS_EINVAL);
	cr_assert_eq(seq, 77);
	cr_assert_eq(mantis_db_stats(db, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_snapshot_open(db, NULL, NULL), MANTIS_EINVAL);
	/* Only the one valid put happened. */
	cr_assert_eq(tdb_stats(db).writes, 1);
	cr_assert_eq(tdb_stats(db).entries, 1);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

Test(db_api, empty_values_and_small_buffers)
{
	uint64_t db = tdb_open();
	char buf[4];
	size_t vlen = 99;

	cr_assert_eq(mantis_db_put(db, "e", 1, NULL, 0, 0, NULL), MANTIS_OK);
	cr_assert_eq(mantis_db_get(db, 0, "e", 1, NULL, 0, &vlen, NULL), MANTIS_OK);
	cr_assert_eq(vlen, 0, "an empty value is a value");
	cr_assert_eq(mantis_db_put(db, "k", 1, "hello", 5, 0, NULL), MANTIS_OK);
	memcpy(buf, "abcd", 4);
	cr_assert_eq(mantis_db_get(db, 0, "k", 1, buf, sizeof(buf), &vlen, NULL), MANTIS_EBUFSIZE);
	cr_assert_eq(vlen, 5);
	cr_assert_eq(memcmp(buf, "abcd", 4), 0, "buffer untouched on EBUFSIZE");
	cr_assert_eq(mantis_db_get(db, 0, "k", 1, NULL, 0, &vlen, NULL), MANTIS_EBUFSIZE);
	cr_assert_eq(vlen, 5);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

Test(db_api, largest_value)
{
	if (test_huge_values_too_slow())
		cr_skip_test("512 MiB values under valgrind or TSan");
	uint64_t db = tdb_open();
	unsigned char *v = malloc(MANTIS_VALUE_MAX), *out = malloc(MANTIS_VALUE_MAX);
	size_t vlen;

	/* A marker per 4 KiB rather than a byte loop: 512 MiB under valgrind. */
	memset(v, 0x5a, MANTIS_VALUE_MAX);
	for (size_t i = 0; i < MANTIS_VALUE_MAX; i += 4096)
		v[i] = (unsigned char)(i / 4096 * 31 + 7);
	cr_assert_eq(mantis_db_put(db, "big", 3, v, MANTIS_VALUE_MAX, 0, NULL), MANTIS_OK);
	cr_assert_eq(mantis_db_get(db, 0, "big", 3, out, MANTIS_VALUE_MAX, &vlen, NULL), MANTIS_OK);
	cr_assert_eq(vlen, MANTIS_VALUE_MAX);
	cr_assert_eq(memcmp(v, out, vlen), 0);
	free(v);
	free(out);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

Test(db_api, keys_with_nul_bytes)
{
	uint64_t db = tdb_open();
	char buf[8];
	size_t vlen;

	cr_assert_eq(mantis_db_put(db, "a\0b", 3, "1", 1, 0, NULL), MANTIS_OK);
	cr_assert_eq(mantis_db_put(db, "a\0c", 3, "2", 1, 0, NULL), MANTIS_OK);
	cr_assert_eq(mantis_db_put(db, "a", 1, "3", 1, 0, NULL), MANTIS_OK);
	cr_assert_eq(mantis_db_put(db, "a\0", 2, "4", 1, 0, NULL), MANTIS_OK);
	cr_assert_eq(mantis_db_put(db, "\0", 1, "5", 1, 0, NULL), MANTIS_OK);
	cr_assert_eq(mantis_db_get(db, 0, "a\0b", 3, buf, sizeof(buf), &vlen, NULL), MANTIS_OK);
	cr_assert_eq(buf[0], '1');
	cr_assert_eq(mantis_db_get(db, 0, "a\0c", 3, buf, sizeof(buf), &vlen, NULL), MANTIS_OK);
	cr_assert_eq(buf[0], '2');
	cr_assert_eq(mantis_db_get(db, 0, "a", 1, buf, sizeof(buf), &vlen, NULL), MANTIS_OK);
	cr_assert_eq(buf[0], '3');
	cr_assert_eq(mantis_db_get(db, 0, "a\0", 2, buf, sizeof(buf), &vlen, NULL), MANTIS_OK);
	cr_assert_eq(buf[0], '4');
	cr_assert_eq(mantis_db_get(db, 0, "\0", 1, buf, sizeof(buf), &vlen, NULL), MANTIS_OK);
	cr_assert_eq(buf[0], '5');
	cr_assert_eq(mantis_db_get(db, 0, "a\0d", 3, buf, sizeof(buf), &vlen, NULL),
	             MANTIS_NOTFOUND);
	cr_assert_eq(tdb_stats(db).entries, 5);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* Keys in random order come back sorted: memcmp, shorter first on a tie. */
Test(db_api, iteration_order_is_bytewise)
{
	static const struct {
		const char *k;
		size_t len;
	} sorted[] = {
	        {"\0", 1},      {"\0\0", 2}, {"A", 1},    {"a", 1},      {"a\0", 2},
	        {"a\0\xff", 3}, {"aa", 2},   {"ab", 2},   {"abc", 3},    {"b", 1},
	        {"\x7f", 1},    {"\x80", 1}, {"\xff", 1}, {"\xff\0", 2}, {"\xff\xff", 2},
	};
	size_t n = sizeof(sorted) / sizeof(sorted[0]);
	uint64_t db = tdb_open(), it;
	size_t order[sizeof(sorted) / sizeof(sorted[0])];
	const void *k, *v;
	size_t kl, vl, i = 0;
	int rc;

	for (i = 0; i < n; i++)
		order[i] = i;
	srand(42);
	for (i = n - 1; i > 0; i--) {
		size_t j = (size_t)rand() % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (i = 0; i < n; i++)
		cr_assert_eq(mantis_db_put(db, sorted[order[i]].k, sorted[order[i]].len, "v", 1, 0,
		                           NULL),
		             MANTIS_OK);
	cr_assert_eq(mantis_iter_open(db, 0, NULL, 0, &it), MANTIS_OK);
	i = 0;
	while ((rc = mantis_iter_next(it, &k, &kl, &v, &vl)) == MANTIS_OK) {
		cr_assert_lt(i, n);
		cr_assert_eq(kl, sorted[i].len, "entry %zu", i);
		cr_assert_eq(memcmp(k, sorted[i].k, kl), 0, "entry %zu", i);
		i++;
	}
	cr_assert_eq(rc, MANTIS_DONE);
	cr_assert_eq(i, n);
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* Many keys in random order, checked against a sorted list. */
Test(db_api, many_keys_sorted_and_found)
{
	uint64_t n = test_scaled(20000), db = tdb_open(), it;
	uint64_t *perm = malloc(n * sizeof(*perm));
	char key[32], val[32];
	const void *k, *v;
	size_t kl, vl;
	uint64_t i;

	for (i = 0; i < n; i++)
		perm[i] = i;
	srand(7);
	for (i = n - 1; i > 0; i--) {
		uint64_t j = (uint64_t)rand() % (i + 1), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	for (i = 0; i < n; i++) {
		tdb_key(key, sizeof(key), "k", perm[i]);
		snprintf(val, sizeof(val), "v%llu", (unsigned long long)perm[i]);
		tdb_put(db, key, val);
	}
	for (i = 0; i < n; i++) {
		tdb_key(key, sizeof(key), "k", i);
		snprintf(val, sizeof(val), "v%llu", (unsigned long long)i);
		tdb_expect(db, 0, key, val);
	}
	cr_assert_eq(mantis_iter_open(db, 0, NULL, 0, &it), MANTIS_OK);
	for (i = 0; i < n; i++) {
		cr_assert_eq(mantis_iter_next(it, &k, &kl, &v, &vl), MANTIS_OK);
		tdb_key(key, sizeof(key), "k", i);
		cr_assert_eq(kl, strlen(key));
		cr_assert_eq(memcmp(k, key, kl), 0);
	}
	cr_assert_eq(mantis_iter_next(it, &k, &kl, &v, &vl), MANTIS_DONE);
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(tdb_stats(db).entries, n);
	free(perm);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* ------------------------------------------------------------ key_seq */

Test(db_api, key_seq_tracks_the_newest_version)
{
	uint64_t db = tdb_open(), s, w1, w2, snap;

	cr_assert_eq(mantis_db_key_seq(db, "k", 1, &s), MANTIS_OK);
	cr_assert_eq(s, 0, "never written");
	cr_assert_eq(mantis_db_put(db, "k", 1, "v", 1, 0, &w1), MANTIS_OK);
	cr_assert_eq(mantis_db_key_seq(db, "k", 1, &s), MANTIS_OK);
	cr_assert_eq(s, w1);
	/* A snapshot keeps the tombstone's history readable. */
	cr_assert_eq(mantis_snapshot_open(db, &snap, NULL), MANTIS_OK);
	cr_assert_eq(mantis_db_delete(db, "k", 1, &w2), MANTIS_OK);
	cr_assert_eq(mantis_db_key_seq(db, "k", 1, &s), MANTIS_OK);
	cr_assert_eq(s, w2, "tombstones count");
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	cr_assert_eq(mantis_db_sweep(db, NULL), MANTIS_OK);
	cr_assert_eq(mantis_db_key_seq(db, "k", 1, &s), MANTIS_OK);
	cr_assert_eq(s, 0, "history reclaimed");
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* ------------------------------------------------------------ snapshots */

Test(db_api, snapshot_isolation_for_point_reads)
{
	uint64_t db = tdb_open(), snap, sseq, w;

	tdb_put(db, "a", "1");
	tdb_put(db, "b", "1");
	cr_assert_eq(mantis_snapshot_open(db, &snap, &sseq), MANTIS_OK);
	cr_assert_eq(sseq, tdb_stats(db).seq);
	tdb_put(db, "a", "2");
	tdb_del(db, "b");
	tdb_put(db, "c", "2");
	cr_assert_eq(mantis_db_put(db, "a", 1, "3", 1, 0, &w), MANTIS_OK);
	cr_assert_gt(w, sseq);
	tdb_expect(db, snap, "a", "1");
	tdb_expect(db, snap, "b", "1");
	tdb_expect(db, snap, "c", NULL);
	tdb_expect(db, 0, "a", "3");
	tdb_expect(db, 0, "b", NULL);
	tdb_expect(db, 0, "c", "2");
	/* A sweep must not take what the snapshot sees. */
	cr_assert_eq(mantis_db_sweep(db, NULL), MANTIS_OK);
	tdb_expect(db, snap, "a", "1");
	tdb_expect(db, snap, "b", "1");
	cr_assert_eq(tdb_stats(db).snapshots, 1);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	cr_assert_eq(tdb_stats(db).snapshots, 0);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

Test(db_api, snapshot_outlives_db_close_through_iterator)
{
	uint64_t db = tdb_open(), snap, it;

	tdb_put(db, "a", "1");
	tdb_put(db, "b", "2");
	cr_assert_eq(mantis_snapshot_open(db, &snap, NULL), MANTIS_OK);
	cr_assert_eq(mantis_iter_open(db, snap, NULL, 0, &it), MANTIS_OK);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK, "the iterator keeps its own");
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
	cr_assert_str_eq(tdb_iter_all(it), "a=1;b=2;");
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
}

Test(db_api, snapshot_close_after_db_close)
{
	uint64_t db = tdb_open(), snap;

	tdb_put(db, "a", "1");
	cr_assert_eq(mantis_snapshot_open(db, &snap, NULL), MANTIS_OK);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_CLOSED);
}

/* ------------------------------------------------------------ stats */

Test(db_api, stats_count_what_happened)
{
	uint64_t db = tdb_open(), snap;
	mantis_db_stats_t st;
	char buf[8];
	size_t vlen;

	st = tdb_stats(db);
	cr_assert_eq(st.entries + st.bytes + st.versions + st.reads + st.writes + st.deletes, 0);
	tdb_put(db, "aa", "111");  /* +1 entry, 5 bytes */
	tdb_put(db, "bb", "2222"); /* +1 entry, 6 bytes */
	tdb_put(db, "aa", "1");    /* overwrite: old version pruned */
	tdb_del(db, "bb");         /* gone */
	tdb_del(db, "zz");         /* a tombstone of nothing: pruned away */
	(void)mantis_db_get(db, 0, "aa", 2, buf, sizeof(buf), &vlen, NULL);
	(void)mantis_db_get(db, 0, "bb", 2, buf, sizeof(buf), &vlen, NULL);
	st = tdb_stats(db);
	cr_assert_eq(st.writes, 3);
	cr_assert_eq(st.deletes, 2);
	cr_assert_eq(st.reads, 2);
	cr_assert_eq(st.entries, 1);
	cr_assert_eq(st.versions, 1, "only aa=1 is held");
	cr_assert_eq(st.bytes, 3);
	cr_assert_eq(st.seq, 5);
	cr_assert_eq(st.snapshots, 0);
	cr_assert_eq(mantis_snapshot_open(db, &snap, NULL), MANTIS_OK);
	tdb_put(db, "aa", "22");
	st = tdb_stats(db);
	cr_assert_eq(st.versions, 2, "the snapshot holds the old version");
	cr_assert_eq(st.bytes, 3 + 4);
	cr_assert_eq(st.entries, 1);
	cr_assert_eq(st.snapshots, 1);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* ------------------------------------------------------------ multiget */

static size_t tmg_keys(unsigned char *out, const char *const *keys, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t l = (uint32_t)strlen(keys[i]);

		tdb_le32(out + o, l);
		memcpy(out + o + 4, keys[i], l);
		o += 4 + l;
	}
	return o;
}

Test(db_api, multiget_encoding_and_snapshot)
{
	static const char *const keys[] = {"a", "missing", "b", "a"};
	uint64_t db = tdb_open(), snap;
	unsigned char kb[64], out[64];
	size_t klen = tmg_keys(kb, keys, 4), olen = 0;

	tdb_put(db, "a", "xy");
	tdb_put(db, "b", "");
	cr_assert_eq(mantis_snapshot_open(db, &snap, NULL), MANTIS_OK);
	tdb_put(db, "a", "changed");
	tdb_del(db, "b");
	cr_assert_eq(mantis_db_multiget(db, snap, kb, klen, 4, out, sizeof(out), &olen), MANTIS_OK);
	cr_assert_eq(olen, 4 + 2 + 4 + 4 + 4 + 2);
	cr_assert_eq(memcmp(out, "\x02\0\0\0xy\xff\xff\xff\xff\0\0\0\0\x02\0\0\0xy", olen), 0);
	cr_assert_eq(mantis_db_multiget(db, 0, kb, klen, 4, out, sizeof(out), &olen), MANTIS_OK);
	cr_assert_eq(olen, 4 + 7 + 4 + 4 + 4 + 7);
	cr_assert_eq(memcmp(out, "\x07\0\0\0changed\xff\xff\xff\xff\xff\xff\xff\xff", 19), 0);
	/* Too small: the size of the whole result. */
	cr_assert_eq(mantis_db_multiget(db, 0, kb, klen, 4, out, 10, &olen), MANTIS_EBUFSIZE);
	cr_assert_eq(olen, 4 + 7 + 4 + 4 + 4 + 7);
	cr_assert_eq(mantis_db_multiget(db, 0, NULL, 0, 0, NULL, 0, &olen), MANTIS_OK);
	cr_assert_eq(olen, 0);
	cr_assert_eq(tdb_stats(db).reads, 12, "3 calls of 4 keys");
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

Test(db_api, multiget_bad_key_lists)
{
	uint64_t db = tdb_open();
	unsigned char kb[16], out[16];
	size_t olen = 123;

	tdb_le32(kb, 1);
	kb[4] = 'a';
	cr_assert_eq(mantis_db_multiget(db, 0, kb, 5, 2, out, sizeof(out), &olen), MANTIS_EINVAL,
	             "fewer records than nkeys");
	cr_assert_eq(mantis_db_multiget(db, 0, kb, 4, 1, out, sizeof(out), &olen), MANTIS_EINVAL,
	             "key past the end");
	cr_assert_eq(mantis_db_multiget(db, 0, kb, 3, 1, out, sizeof(out), &olen), MANTIS_EINVAL,
	             "truncated length");
	kb[5] = 'z';
	cr_assert_eq(mantis_db_multiget(db, 0, kb, 6, 1, out, sizeof(out), &olen), MANTIS_EINVAL,
	             "trailing bytes");
	tdb_le32(kb, 0);
	cr_assert_eq(mantis_db_multiget(db, 0, kb, 4, 1, out, sizeof(out), &olen), MANTIS_EKEY);
	tdb_le32(kb, MANTIS_KEY_MAX + 1);
	{
		unsigned char *big = calloc(1, 4 + MANTIS_KEY_MAX + 1);

		tdb_le32(big, MANTIS_KEY_MAX + 1);
		cr_assert_eq(mantis_db_multiget(db, 0, big, 4 + MANTIS_KEY_MAX + 1, 1, out,
		                                sizeof(out), &olen),
		             MANTIS_ETOOLARGE);
		free(big);
	}
	cr_assert_eq(mantis_db_multiget(db, 0, NULL, 5, 1, out, sizeof(out), &olen), MANTIS_EINVAL);
	cr_assert_eq(mantis_db_multiget(db, 0, kb, 0, 0, NULL, 5, &olen), MANTIS_EINVAL);
	cr_assert_eq(mantis_db_multiget(db, 0, kb, 0, 0, out, 5, NULL), MANTIS_EINVAL);
	cr_assert_eq(olen, 123);
	cr_assert_eq(tdb_stats(db).reads, 0);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* ------------------------------------------------------------ TTL */

Test(db_api, ttl_expiry_hides_and_sweep_reclaims)
{
	uint64_t db = tdb_open(), it, reclaimed = 0, s;
	unsigned char kb[16], out[32];
	size_t olen;
	mantis_db_stats_t st;

	cr_assert_eq(mantis_db_put(db, "t1", 2, "short", 5, 100000, NULL), MANTIS_OK);
	cr_assert_eq(mantis_db_put(db, "t2", 2, "long", 4, 10000000, NULL), MANTIS_OK);
	cr_assert_eq(mantis_db_put(db, "t3", 2, "forever", 7, UINT64_MAX, NULL), MANTIS_OK);
	tdb_put(db, "plain", "p");
	tdb_expect(db, 0, "t1", "short");
	mt_clock_advance_ms(50000);
	tdb_expect(db, 0, "t1", "short");
	mt_clock_advance_ms(60000);
	tdb_expect(db, 0, "t1", NULL);
	tdb_expect(db, 0, "t2", "long");
	tdb_expect(db, 0, "t3", "forever");
	tdb_le32(kb, 2);
	memcpy(kb + 4, "t1", 2);
	cr_assert_eq(mantis_db_multiget(db, 0, kb, 6, 1, out, sizeof(out), &olen), MANTIS_OK);
	cr_assert_eq(memcmp(out, "\xff\xff\xff\xff", 4), 0, "expired is absent");
	cr_assert_eq(mantis_iter_open(db, 0, "t", 1, &it), MANTIS_OK);
	cr_assert_str_eq(tdb_iter_all(it), "t2=long;t3=forever;");
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	mt_clock_advance_ms(20000000);
	tdb_expect(db, 0, "t3", "forever");
	/* t2 expired too, but nothing read it: sweep reclaims it (t1 was
	 * reclaimed lazily by the read that found it expired). */
	st = tdb_stats(db);
	cr_assert_eq(st.versions, 3, "t2, t3, plain");
	cr_assert_eq(mantis_db_sweep(db, &reclaimed), MANTIS_OK);
	cr_assert_eq(reclaimed, 1);
	st = tdb_stats(db);
	cr_assert_eq(st.versions, 2);
	cr_assert_eq(st.entries, 2);
	cr_assert_eq(st.bytes, 2 + 7 + 5 + 1);
	cr_assert_eq(mantis_db_key_seq(db, "t2", 2, &s), MANTIS_OK);
	cr_assert_eq(s, 0);
	/* A key can be written again after it expired. */
	tdb_put(db, "t1", "again");
	tdb_expect(db, 0, "t1", "again");
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

Test(db_api, ttl_expiry_applies_to_snapshots_too)
{
	uint64_t db = tdb_open(), snap;

	tdb_put(db, "k", "old");
	cr_assert_eq(mantis_db_put(db, "k", 1, "new", 3, 1000, NULL), MANTIS_OK);
	cr_assert_eq(mantis_snapshot_open(db, &snap, NULL), MANTIS_OK);
	mt_clock_advance_ms(2000);
	/* The expired newest version hides the old one: it is not a fall-back. */
	tdb_expect(db, snap, "k", NULL);
	tdb_expect(db, 0, "k", NULL);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}
