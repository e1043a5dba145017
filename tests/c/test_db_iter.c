/*
 * test_db_iter.c - iterators: prefixes, seek, the chunk encoding,
 * MANTIS_EBUFSIZE, bad arguments, snapshots, and the lifetime of the
 * pointers mantis_iter_next returns while the key is deleted, overwritten,
 * expired and swept underneath.
 */
#include "mantis.h"
#include "mt_db.h"
#include "test_db_util.h"
#include "test_util.h"

#include <criterion/criterion.h>

static uint64_t tit_fill(void)
{
	uint64_t db = tdb_open();

	tdb_put(db, "apple", "1");
	tdb_put(db, "b", "2");
	tdb_put(db, "ba", "3");
	tdb_put(db, "banana", "4");
	tdb_put(db, "bb", "5");
	tdb_put(db, "c", "6");
	return db;
}

Test(db_iter, prefixes)
{
	uint64_t db = tit_fill(), it;

	cr_assert_eq(mantis_iter_open(db, 0, NULL, 0, &it), MANTIS_OK);
	cr_assert_str_eq(tdb_iter_all(it), "apple=1;b=2;ba=3;banana=4;bb=5;c=6;");
	cr_assert_eq(mantis_iter_next(it, NULL, NULL, NULL, NULL), MANTIS_DONE, "stays done");
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(mantis_iter_open(db, 0, "b", 1, &it), MANTIS_OK);
	cr_assert_str_eq(tdb_iter_all(it), "b=2;ba=3;banana=4;bb=5;");
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(mantis_iter_open(db, 0, "ba", 2, &it), MANTIS_OK);
	cr_assert_str_eq(tdb_iter_all(it), "ba=3;banana=4;");
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(mantis_iter_open(db, 0, "bz", 2, &it), MANTIS_OK);
	cr_assert_str_eq(tdb_iter_all(it), "");
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(mantis_iter_open(db, 0, "0", 1, &it), MANTIS_OK);
	cr_assert_str_eq(tdb_iter_all(it), "");
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	/* An empty prefix with a non-NULL pointer means all keys. */
	cr_assert_eq(mantis_iter_open(db, 0, "zz", 0, &it), MANTIS_OK);
	cr_assert_str_eq(tdb_iter_all(it), "apple=1;b=2;ba=3;banana=4;bb=5;c=6;");
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

Test(db_iter, skips_deleted_and_sees_its_snapshot_only)
{
	uint64_t db = tit_fill(), it;

	tdb_del(db, "ba");
	cr_assert_eq(mantis_iter_open(db, 0, "b", 1, &it), MANTIS_OK);
	/* After the open: invisible to the iterator. */
	tdb_put(db, "bab", "new");
	tdb_del(db, "bb");
	tdb_put(db, "b", "changed");
	cr_assert_str_eq(tdb_iter_all(it), "b=2;banana=4;bb=5;");
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(mantis_iter_open(db, 0, "b", 1, &it), MANTIS_OK);
	cr_assert_str_eq(tdb_iter_all(it), "b=changed;bab=new;banana=4;");
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

Test(db_iter, seek)
{
	uint64_t db = tit_fill(), it;
	const void *k, *v;
	size_t kl, vl;

	cr_assert_eq(mantis_iter_open(db, 0, NULL, 0, &it), MANTIS_OK);
	cr_assert_eq(mantis_iter_seek(it, "bab", 3), MANTIS_OK);
	cr_assert_eq(mantis_iter_next(it, &k, &kl, &v, &vl), MANTIS_OK, "returns the sought key");
	cr_assert_eq(kl, 6);
	cr_assert_eq(memcmp(k, "banana", 6), 0);
	cr_assert_str_eq(tdb_iter_all(it), "bb=5;c=6;");
	/* Seek works again after the end, and backwards. */
	cr_assert_eq(mantis_iter_seek(it, "b", 1), MANTIS_OK);
	cr_assert_str_eq(tdb_iter_all(it), "b=2;ba=3;banana=4;bb=5;c=6;");
	cr_assert_eq(mantis_iter_seek(it, "d", 1), MANTIS_DONE);
	cr_assert_eq(mantis_iter_next(it, &k, &kl, &v, &vl), MANTIS_DONE);
	cr_assert_eq(mantis_iter_seek(it, "\0", 1), MANTIS_OK);
	cr_assert_eq(mantis_iter_next(it, &k, &kl, NULL, NULL), MANTIS_OK);
	cr_assert_eq(memcmp(k, "apple", 5), 0);
	/* Two seeks in a row: the second wins. */
	cr_assert_eq(mantis_iter_seek(it, "c", 1), MANTIS_OK);
	cr_assert_eq(mantis_iter_seek(it, "bb", 2), MANTIS_OK);
	cr_assert_str_eq(tdb_iter_all(it), "bb=5;c=6;");
	/* Bad keys. */
	cr_assert_eq(mantis_iter_seek(it, NULL, 1), MANTIS_EINVAL);
	cr_assert_eq(mantis_iter_seek(it, "a", 0), MANTIS_EKEY);
	{
		static char big[MANTIS_KEY_MAX + 1];

		cr_assert_eq(mantis_iter_seek(it, big, sizeof(big)), MANTIS_ETOOLARGE);
	}
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(mantis_iter_seek(it, "a", 1), MANTIS_CLOSED);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

Test(db_iter, seek_with_a_prefix)
{
	uint64_t db = tit_fill(), it;

	cr_assert_eq(mantis_iter_open(db, 0, "b", 1, &it), MANTIS_OK);
	cr_assert_eq(mantis_iter_seek(it, "a", 1), MANTIS_OK, "below the prefix: its start");
	cr_assert_str_eq(tdb_iter_all(it), "b=2;ba=3;banana=4;bb=5;");
	cr_assert_eq(mantis_iter_seek(it, "bab", 3), MANTIS_OK);
	cr_assert_str_eq(tdb_iter_all(it), "banana=4;bb=5;");
	cr_assert_eq(mantis_iter_seek(it, "bc", 2), MANTIS_DONE, "past the prefix's keys");
	cr_assert_eq(mantis_iter_seek(it, "c", 1), MANTIS_DONE);
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

Test(db_iter, open_bad_arguments)
{
	uint64_t db = tdb_open(), it = 5;
	static char big[MANTIS_KEY_MAX + 1];

	cr_assert_eq(mantis_iter_open(db, 0, NULL, 0, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_iter_open(db, 0, NULL, 3, &it), MANTIS_EINVAL);
	cr_assert_eq(mantis_iter_open(db, 0, big, sizeof(big), &it), MANTIS_ETOOLARGE);
	cr_assert_eq(mantis_iter_open(db, 0, big, MANTIS_KEY_MAX, &it), MANTIS_OK);
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(mantis_iter_close(it), MANTIS_CLOSED);
	cr_assert_eq(mantis_iter_open(db, 12345, NULL, 0, &it), MANTIS_EBADHANDLE);
	cr_assert_eq(mantis_iter_next(0, NULL, NULL, NULL, NULL), MANTIS_EBADHANDLE);
	cr_assert_eq(tdb_stats(db).snapshots, 0);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* Decodes a chunk into "k=v;" text appended to out. */
static void tit_decode(const unsigned char *buf, size_t len, uint32_t count, char *out)
{
	size_t off = 0;

	for (uint32_t i = 0; i < count; i++) {
		uint32_t kl, vl;

		cr_assert_leq(off + 8, len);
		kl = (uint32_t)buf[off] | (uint32_t)buf[off + 1] << 8 |
		     (uint32_t)buf[off + 2] << 16 | (uint32_t)buf[off + 3] << 24;
		vl = (uint32_t)buf[off + 4] | (uint32_t)buf[off + 5] << 8 |
		     (uint32_t)buf[off + 6] << 16 | (uint32_t)buf[off + 7] << 24;
		cr_assert_leq(off + 8 + kl + vl, len);
		strncat(out, (const char *)buf + off + 8, kl);
		strcat(out, "=");
		strncat(out, (const char *)buf + off + 8 + kl, vl);
		strcat(out, ";");
		off += 8 + kl + vl;
	}
	cr_assert_eq(off, len, "chunk length is the sum of its records");
}

Test(db_iter, chunks)
{
	uint64_t db = tit_fill(), it;
	unsigned char buf[64];
	char all[256] = "";
	size_t len = 77;
	uint32_t count = 77;

	cr_assert_eq(mantis_iter_open(db, 0, NULL, 0, &it), MANTIS_OK);
	/* Bad arguments. */
	cr_assert_eq(mantis_iter_next_chunk(it, NULL, 10, 0, &len, &count), MANTIS_EINVAL);
	cr_assert_eq(mantis_iter_next_chunk(it, buf, sizeof(buf), 0, NULL, &count), MANTIS_EINVAL);
	cr_assert_eq(mantis_iter_next_chunk(it, buf, sizeof(buf), 0, &len, NULL), MANTIS_EINVAL);
	/* Not even "apple=1" (8+5+1) fits in 13 bytes: the size it needs. */
	cr_assert_eq(mantis_iter_next_chunk(it, buf, 13, 0, &len, &count), MANTIS_EBUFSIZE);
	cr_assert_eq(len, 14);
	cr_assert_eq(mantis_iter_next_chunk(it, NULL, 0, 0, &len, &count), MANTIS_EBUFSIZE);
	cr_assert_eq(len, 14);
	/* Exactly one fits; then a limit of two entries; then the rest. */
	cr_assert_eq(mantis_iter_next_chunk(it, buf, 14, 0, &len, &count), MANTIS_OK);
	cr_assert_eq(count, 1);
	tit_decode(buf, len, count, all);
	cr_assert_eq(mantis_iter_next_chunk(it, buf, sizeof(buf), 2, &len, &count), MANTIS_OK);
	cr_assert_eq(count, 2);
	tit_decode(buf, len, count, all);
	cr_assert_eq(mantis_iter_next_chunk(it, buf, sizeof(buf), 0, &len, &count), MANTIS_OK);
	cr_assert_eq(count, 3);
	tit_decode(buf, len, count, all);
	cr_assert_str_eq(all, "apple=1;b=2;ba=3;banana=4;bb=5;c=6;");
	len = count = 99;
	cr_assert_eq(mantis_iter_next_chunk(it, buf, sizeof(buf), 0, &len, &count), MANTIS_DONE);
	cr_assert_eq(len, 0);
	cr_assert_eq(count, 0);
	cr_assert_eq(mantis_iter_next_chunk(it, buf, sizeof(buf), 0, &len, &count), MANTIS_DONE);
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

Test(db_iter, chunks_and_next_interleave)
{
	uint64_t db = tit_fill(), it;
	unsigned char buf[64];
	char all[256] = "";
	size_t len;
	uint32_t count;
	const void *k, *v;
	size_t kl, vl;

	cr_assert_eq(mantis_iter_open(db, 0, "b", 1, &it), MANTIS_OK);
	cr_assert_eq(mantis_iter_next(it, &k, &kl, &v, &vl), MANTIS_OK);
	cr_assert_eq(memcmp(k, "b", 1), 0);
	cr_assert_eq(mantis_iter_next_chunk(it, buf, sizeof(buf), 1, &len, &count), MANTIS_OK);
	tit_decode(buf, len, count, all);
	cr_assert_str_eq(all, "ba=3;");
	cr_assert_eq(mantis_iter_next(it, &k, &kl, &v, &vl), MANTIS_OK);
	cr_assert_eq(kl, 6);
	cr_assert_eq(memcmp(k, "banana", 6), 0);
	cr_assert_eq(mantis_iter_seek(it, "bb", 2), MANTIS_OK);
	all[0] = '\0';
	cr_assert_eq(mantis_iter_next_chunk(it, buf, sizeof(buf), 0, &len, &count), MANTIS_OK);
	tit_decode(buf, len, count, all);
	cr_assert_str_eq(all, "bb=5;");
	cr_assert_eq(mantis_iter_next(it, &k, &kl, &v, &vl), MANTIS_DONE);
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* The pointers mantis_iter_next returns stay valid (and unchanged) until
 * the next call, whatever happens to the key meanwhile: delete, overwrite,
 * expiry and sweeps (ASan/valgrind would see a use after free). */
Test(db_iter, returned_pointers_survive_until_the_next_call)
{
	uint64_t db = tdb_open(), it, reclaimed;
	const void *k, *v;
	size_t kl, vl;
	char val[64];

	for (int i = 0; i < 4; i++) {
		char key[16];

		snprintf(key, sizeof(key), "k%d", i);
		snprintf(val, sizeof(val), "value-%d-original", i);
		cr_assert_eq(mantis_db_put(db, key, 2, val, strlen(val), i == 2 ? 120000 : 0, NULL),
		             MANTIS_OK);
	}
	cr_assert_eq(mantis_iter_open(db, 0, NULL, 0, &it), MANTIS_OK);
	for (int i = 0; i < 4; i++) {
		char key[16];

		cr_assert_eq(mantis_iter_next(it, &k, &kl, &v, &vl), MANTIS_OK);
		snprintf(key, sizeof(key), "k%d", i);
		snprintf(val, sizeof(val), "value-%d-original", i);
		/* Everything happens to it now. */
		for (int j = 0; j < 50; j++)
			tdb_put(db, key, "overwritten-value-that-is-longer");
		tdb_del(db, key);
		mt_clock_advance_ms(50000);
		cr_assert_eq(mantis_db_sweep(db, &reclaimed), MANTIS_OK);
		cr_assert_eq(kl, 2);
		cr_assert_eq(memcmp(k, key, 2), 0);
		cr_assert_eq(vl, strlen(val));
		cr_assert_eq(memcmp(v, val, vl), 0, "entry %d", i);
	}
	cr_assert_eq(mantis_iter_next(it, &k, &kl, &v, &vl), MANTIS_DONE);
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	/* Everything is gone now that the iterator is. */
	cr_assert_eq(mantis_db_sweep(db, &reclaimed), MANTIS_OK);
	cr_assert_eq(tdb_stats(db).versions, 0);
	cr_assert_eq(tdb_stats(db).entries, 0);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* Iterators opened at a snapshot handle, and many entries through small
 * chunks compared with iter_next. */
Test(db_iter, chunks_match_next_over_many_keys)
{
	uint64_t n = test_scaled(5000), db = tdb_open(), snap, a, b;
	unsigned char buf[256];
	char key[32], val[32];
	uint64_t seen = 0;

	for (uint64_t i = 0; i < n; i++) {
		tdb_key(key, sizeof(key), i % 3 == 0 ? "p" : "q", i);
		snprintf(val, sizeof(val), "v%llu", (unsigned long long)i);
		tdb_put(db, key, val);
	}
	cr_assert_eq(mantis_snapshot_open(db, &snap, NULL), MANTIS_OK);
	for (uint64_t i = 0; i < n; i += 2) {
		tdb_key(key, sizeof(key), i % 3 == 0 ? "p" : "q", i);
		tdb_del(db, key);
	}
	cr_assert_eq(mantis_iter_open(db, snap, "p", 1, &a), MANTIS_OK);
	cr_assert_eq(mantis_iter_open(db, snap, "p", 1, &b), MANTIS_OK);
	for (;;) {
		size_t len, off = 0;
		uint32_t count;
		int rc = mantis_iter_next_chunk(a, buf, sizeof(buf), 0, &len, &count);

		if (rc == MANTIS_DONE)
			break;
		cr_assert_eq(rc, MANTIS_OK);
		for (uint32_t i = 0; i < count; i++) {
			const void *k, *v;
			size_t kl, vl;
			uint32_t ckl = buf[off] | buf[off + 1] << 8, cvl = buf[off + 4];

			cr_assert_eq(mantis_iter_next(b, &k, &kl, &v, &vl), MANTIS_OK);
			cr_assert_eq(ckl, kl);
			cr_assert_eq(cvl, vl);
			cr_assert_eq(memcmp(buf + off + 8, k, kl), 0);
			cr_assert_eq(memcmp(buf + off + 8 + kl, v, vl), 0);
			off += 8 + kl + vl;
			seen++;
		}
	}
	cr_assert_eq(mantis_iter_next(b, NULL, NULL, NULL, NULL), MANTIS_DONE);
	cr_assert_eq(seen, (n + 2) / 3);
	cr_assert_eq(tdb_stats(db).snapshots, 3);
	cr_assert_eq(mantis_iter_close(a), MANTIS_OK);
	cr_assert_eq(mantis_iter_close(b), MANTIS_OK);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}
