/*
 * test_db_batch.c - mantis_db_write: encoding, atomicity, last write wins,
 * malformed buffers (nothing applied), limits and CHECK conflicts.
 */
#include "mantis.h"
#include "mt_db.h"
#include "test_db_util.h"
#include "test_util.h"

#include <criterion/criterion.h>

Test(db_batch, applies_puts_and_deletes_under_one_seq)
{
	struct tdb_batch b = {0};
	uint64_t db = tdb_open(), seq = 0, ks;

	tdb_put(db, "gone", "x");
	tdb_batch_put(&b, "a", "1");
	tdb_batch_put(&b, "b", "2");
	tdb_batch_del(&b, "gone");
	tdb_batch_rec(&b, MANTIS_OP_PUT, "n\0l", 3, "v\0v", 3, 0);
	cr_assert_eq(mantis_db_write(db, b.buf, b.len, 0, &seq), MANTIS_OK);
	cr_assert_eq(seq, 2);
	tdb_expect(db, 0, "a", "1");
	tdb_expect(db, 0, "b", "2");
	tdb_expect(db, 0, "gone", NULL);
	cr_assert_eq(mantis_db_key_seq(db, "a", 1, &ks), MANTIS_OK);
	cr_assert_eq(ks, seq);
	cr_assert_eq(mantis_db_key_seq(db, "b", 1, &ks), MANTIS_OK);
	cr_assert_eq(ks, seq);
	{
		char buf[8];
		size_t vlen;

		cr_assert_eq(mantis_db_get(db, 0, "n\0l", 3, buf, sizeof(buf), &vlen, NULL),
		             MANTIS_OK);
		cr_assert_eq(vlen, 3);
		cr_assert_eq(memcmp(buf, "v\0v", 3), 0);
	}
	mantis_db_stats_t st = tdb_stats(db);
	cr_assert_eq(st.writes, 4);
	cr_assert_eq(st.deletes, 1);
	cr_assert_eq(st.entries, 3);
	cr_assert_eq(st.seq, 2);
	tdb_batch_free(&b);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

Test(db_batch, last_write_of_a_key_wins)
{
	struct tdb_batch b = {0};
	uint64_t db = tdb_open();

	tdb_put(db, "d", "old");
	tdb_batch_put(&b, "k", "first");
	tdb_batch_put(&b, "z", "1");
	tdb_batch_put(&b, "k", "second");
	tdb_batch_del(&b, "z");
	tdb_batch_del(&b, "d");
	tdb_batch_put(&b, "d", "new");
	tdb_batch_put(&b, "k", "third");
	cr_assert_eq(mantis_db_write(db, b.buf, b.len, 0, NULL), MANTIS_OK);
	tdb_expect(db, 0, "k", "third");
	tdb_expect(db, 0, "z", NULL);
	tdb_expect(db, 0, "d", "new");
	mantis_db_stats_t st = tdb_stats(db);
	cr_assert_eq(st.entries, 2);
	cr_assert_eq(st.versions, 2, "one version per key: k, d (z's tombstone pruned)");
	tdb_batch_free(&b);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

Test(db_batch, empty_batches_and_limits)
{
	uint64_t db = tdb_open(), s1 = 0, s2 = 0;
	unsigned char one = MANTIS_OP_PUT;

	cr_assert_eq(mantis_db_write(db, NULL, 0, 0, &s1), MANTIS_OK);
	cr_assert_eq(s1, 1, "an empty batch still takes a sequence number");
	cr_assert_eq(mantis_db_write(db, &one, 0, 0, &s2), MANTIS_OK);
	cr_assert_eq(s2, 2);
	cr_assert_eq(mantis_db_write(db, NULL, 5, 0, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_db_write(db, &one, (size_t)MANTIS_BATCH_MAX + 1, 0, NULL),
	             MANTIS_ETOOLARGE, "checked before the buffer is read");
	cr_assert_eq(tdb_stats(db).seq, 2);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* Each malformed batch starts with a valid record: nothing may apply. */
Test(db_batch, malformed_batches_apply_nothing)
{
	static char bigkey[MANTIS_KEY_MAX + 1];
	uint64_t db = tdb_open(), seq0;
	struct tdb_batch b = {0};
	unsigned char hdr[MANTIS_BATCH_HDR];
	struct {
		const char *what;
		int want;
	} cases[] = {
	        {"truncated header", MANTIS_EINVAL},
	        {"unknown op", MANTIS_EINVAL},
	        {"key past the end", MANTIS_EINVAL},
	        {"value past the end", MANTIS_EINVAL},
	        {"delete with value", MANTIS_EINVAL},
	        {"check with ttl", MANTIS_EINVAL},
	        {"empty key", MANTIS_EKEY},
	        {"oversized key", MANTIS_ETOOLARGE},
	        {"oversized value", MANTIS_ETOOLARGE},
	        {"op zero", MANTIS_EINVAL},
	};

	memset(bigkey, 'k', sizeof(bigkey));
	tdb_put(db, "a", "orig");
	seq0 = tdb_stats(db).seq;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		if (c == 8 && test_huge_values_too_slow())
			continue; /* 512 MiB of value: test_limits.c covers it */
		b.len = 0;
		tdb_batch_put(&b, "a", "changed");
		tdb_batch_put(&b, "new", "x");
		memset(hdr, 0, sizeof(hdr));
		switch (c) {
		case 0:
			hdr[0] = MANTIS_OP_PUT;
			tdb_batch_raw(&b, hdr, MANTIS_BATCH_HDR - 1);
			break;
		case 1:
			tdb_batch_rec(&b, 9, "q", 1, NULL, 0, 0);
			break;
		case 2:
			hdr[0] = MANTIS_OP_PUT;
			tdb_le32(hdr + 1, 10);
			tdb_batch_raw(&b, hdr, sizeof(hdr));
			tdb_batch_raw(&b, "abc", 3);
			break;
		case 3:
			hdr[0] = MANTIS_OP_PUT;
			tdb_le32(hdr + 1, 1);
			tdb_le32(hdr + 5, 0xffffffffu);
			tdb_batch_raw(&b, hdr, sizeof(hdr));
			tdb_batch_raw(&b, "abc", 3);
			break;
		case 4:
			tdb_batch_rec(&b, MANTIS_OP_DELETE, "q", 1, "v", 1, 0);
			break;
		case 5:
			tdb_batch_rec(&b, MANTIS_OP_CHECK, "q", 1, NULL, 0, 5);
			break;
		case 6:
			tdb_batch_rec(&b, MANTIS_OP_PUT, "", 0, "v", 1, 0);
			break;
		case 7:
			tdb_batch_rec(&b, MANTIS_OP_PUT, bigkey, sizeof(bigkey), "v", 1, 0);
			break;
		case 8: {
			/* A header claiming a huge value with the bytes present
			 * would need MANTIS_VALUE_MAX; claim it and supply them. */
			size_t n = (size_t)MANTIS_VALUE_MAX + 1;
			unsigned char *v = calloc(1, n);

			tdb_batch_rec(&b, MANTIS_OP_PUT, "q", 1, v, (uint32_t)n, 0);
			free(v);
			break;
		}
		case 9:
			tdb_batch_rec(&b, 0, "q", 1, NULL, 0, 0);
			break;
		}
		cr_assert_eq(mantis_db_write(db, b.buf, b.len, 0, NULL), cases[c].want, "%s",
		             cases[c].what);
		tdb_expect(db, 0, "a", "orig");
		tdb_expect(db, 0, "new", NULL);
		cr_assert_eq(tdb_stats(db).seq, seq0, "%s: no sequence number taken",
		             cases[c].what);
	}
	cr_assert_eq(tdb_stats(db).entries, 1);
	tdb_batch_free(&b);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

Test(db_batch, check_conflicts_apply_nothing)
{
	struct tdb_batch b = {0};
	uint64_t db = tdb_open(), snap, sseq, seq;

	tdb_put(db, "x", "1");
	tdb_put(db, "y", "1");
	cr_assert_eq(mantis_snapshot_open(db, &snap, &sseq), MANTIS_OK);
	tdb_put(db, "y", "2"); /* a concurrent transaction changed y */
	/* Read set {x}, write {z}: no conflict. */
	tdb_batch_check(&b, "x");
	tdb_batch_put(&b, "z", "1");
	cr_assert_eq(mantis_db_write(db, b.buf, b.len, sseq, &seq), MANTIS_OK);
	tdb_expect(db, 0, "z", "1");
	/* Read set {y}: y changed after sseq. */
	b.len = 0;
	tdb_batch_check(&b, "y");
	tdb_batch_put(&b, "w", "1");
	tdb_batch_del(&b, "x");
	cr_assert_eq(mantis_db_write(db, b.buf, b.len, sseq, &seq), MANTIS_CONFLICT);
	tdb_expect(db, 0, "w", NULL);
	tdb_expect(db, 0, "x", "1");
	/* Written keys are checked too: z was written after sseq. */
	b.len = 0;
	tdb_batch_put(&b, "z", "2");
	cr_assert_eq(mantis_db_write(db, b.buf, b.len, sseq, &seq), MANTIS_CONFLICT);
	tdb_expect(db, 0, "z", "1");
	/* Checked against a later seq, the same batches apply. */
	cr_assert_eq(mantis_db_write(db, b.buf, b.len, tdb_stats(db).seq, &seq), MANTIS_OK);
	tdb_expect(db, 0, "z", "2");
	/* A check of a key never written passes. */
	b.len = 0;
	tdb_batch_check(&b, "never");
	cr_assert_eq(mantis_db_write(db, b.buf, b.len, sseq, &seq), MANTIS_OK);
	mantis_db_stats_t st = tdb_stats(db);
	cr_assert_eq(st.entries, 3, "x, y, z");
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	cr_assert_eq(mantis_db_sweep(db, NULL), MANTIS_OK);
	cr_assert_eq(tdb_stats(db).versions, 3, "aborted versions reclaimed");
	tdb_batch_free(&b);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* A delete whose history is reclaimed (no snapshot held it) must still
 * conflict with a check older than the delete. */
Test(db_batch, check_sees_reclaimed_history)
{
	struct tdb_batch b = {0};
	uint64_t db = tdb_open(), s1, seq;

	cr_assert_eq(mantis_db_put(db, "k", 1, "v", 1, 0, &s1), MANTIS_OK);
	tdb_del(db, "k");
	cr_assert_eq(mantis_db_sweep(db, NULL), MANTIS_OK);
	cr_assert_eq(tdb_stats(db).versions, 0, "history gone");
	tdb_batch_check(&b, "k");
	cr_assert_eq(mantis_db_write(db, b.buf, b.len, s1, &seq), MANTIS_CONFLICT);
	cr_assert_eq(mantis_db_write(db, b.buf, b.len, tdb_stats(db).seq, &seq), MANTIS_OK);
	tdb_batch_free(&b);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

Test(db_batch, ttl_records_expire)
{
	struct tdb_batch b = {0};
	uint64_t db = tdb_open();

	tdb_batch_rec(&b, MANTIS_OP_PUT, "t", 1, "v", 1, 60000);
	tdb_batch_put(&b, "p", "v");
	cr_assert_eq(mantis_db_write(db, b.buf, b.len, 0, NULL), MANTIS_OK);
	tdb_expect(db, 0, "t", "v");
	mt_clock_advance_ms(100000);
	tdb_expect(db, 0, "t", NULL);
	tdb_expect(db, 0, "p", "v");
	tdb_batch_free(&b);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* Big batches of many keys, with a snapshot checking atomicity. */
Test(db_batch, large_batches)
{
	uint64_t n = test_scaled(5000), db = tdb_open(), snap, it;
	struct tdb_batch b = {0};
	char key[32];
	const void *k, *v;
	size_t kl, vl, count = 0;

	for (uint64_t i = 0; i < n; i++) {
		tdb_key(key, sizeof(key), "k", (i * 7919) % n);
		tdb_batch_rec(&b, MANTIS_OP_PUT, key, (uint32_t)strlen(key), "A", 1, 0);
	}
	cr_assert_eq(mantis_db_write(db, b.buf, b.len, 0, NULL), MANTIS_OK);
	cr_assert_eq(mantis_snapshot_open(db, &snap, NULL), MANTIS_OK);
	b.len = 0;
	for (uint64_t i = 0; i < n; i++) {
		tdb_key(key, sizeof(key), "k", i);
		tdb_batch_rec(&b, MANTIS_OP_PUT, key, (uint32_t)strlen(key), "B", 1, 0);
	}
	cr_assert_eq(mantis_db_write(db, b.buf, b.len, 0, NULL), MANTIS_OK);
	cr_assert_eq(mantis_iter_open(db, snap, NULL, 0, &it), MANTIS_OK);
	while (mantis_iter_next(it, &k, &kl, &v, &vl) == MANTIS_OK) {
		cr_assert_eq(vl, 1);
		cr_assert_eq(*(const char *)v, 'A');
		count++;
	}
	cr_assert_eq(count, n);
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	cr_assert_eq(tdb_stats(db).entries, n);
	tdb_batch_free(&b);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}
