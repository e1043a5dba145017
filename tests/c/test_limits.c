/*
 * test_limits.c - the size limits at their boundaries, through every path a
 * value of the largest size takes: a batch record, a point put and get, the
 * multiget result, an iterator chunk and the cache.
 *
 * MANTIS_VALUE_MAX is 512 MiB, so each test holds one source buffer and one
 * output buffer of that size (plus the library's copy) and fills them with
 * memset and sparse markers rather than byte loops, to stay quick under the
 * sanitizers; under valgrind and TSan (minutes) they skip themselves. The markers (one every 4 KiB,
 * differing from page to page) catch a copy at a wrong offset or of a wrong length that a uniform
 * fill would not.
 */
#include "mantis.h"
#include "test_db_util.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TL_STRIDE 4096u

/* Fills p[0..n) with a fill byte and a page-dependent marker per page. */
static void tl_fill(unsigned char *p, size_t n, unsigned char seed)
{
	memset(p, 0xa5, n);
	for (size_t i = 0; i < n; i += TL_STRIDE)
		p[i] = (unsigned char)(seed + i / TL_STRIDE);
	if (n > 0)
		p[n - 1] = (unsigned char)(seed ^ 0x5a);
}

/* A batch of one PUT record: the largest key and a value of vlen bytes,
 * built in place (the value is not copied into the batch a second time). */
static unsigned char *tl_batch(size_t vlen, size_t *len_out)
{
	size_t len = MANTIS_BATCH_HDR + MANTIS_KEY_MAX + vlen;
	unsigned char *b = malloc(len);

	cr_assert_not_null(b);
	b[0] = MANTIS_OP_PUT;
	tdb_le32(b + 1, MANTIS_KEY_MAX);
	tdb_le32(b + 5, (uint32_t)vlen);
	tdb_le64(b + 9, 0);
	memset(b + MANTIS_BATCH_HDR, 'k', MANTIS_KEY_MAX);
	tl_fill(b + MANTIS_BATCH_HDR + MANTIS_KEY_MAX, vlen, 7);
	*len_out = len;
	return b;
}

Test(limits, constants)
{
	cr_assert_geq(MANTIS_VALUE_MAX, 512u << 20, "values up to at least 512 MiB");
	cr_assert_geq((uint64_t)MANTIS_BATCH_MAX,
	              (uint64_t)MANTIS_BATCH_HDR + MANTIS_KEY_MAX + MANTIS_VALUE_MAX);
	cr_assert_lt((uint64_t)MANTIS_VALUE_MAX, (uint64_t)MANTIS_ABSENT);
}

Test(limits, largest_value_every_db_path)
{
	if (test_huge_values_too_slow())
		cr_skip_test("512 MiB values under valgrind or TSan");
	uint64_t db = tdb_open(), it = 0;
	size_t blen, vlen = 0, olen = 0, cap = MANTIS_VALUE_MAX + 8 + MANTIS_KEY_MAX;
	unsigned char *b = tl_batch(MANTIS_VALUE_MAX, &blen);
	const unsigned char *key = b + MANTIS_BATCH_HDR, *val = key + MANTIS_KEY_MAX;
	unsigned char *out = malloc(cap), small[16], kb[4 + MANTIS_KEY_MAX];
	uint32_t count = 0;

	cr_assert_not_null(out);
	cr_assert_leq(blen, (size_t)MANTIS_BATCH_MAX);
	/* A batch with one record of the largest key and value applies. */
	cr_assert_eq(mantis_db_write(db, b, blen, 0, NULL), MANTIS_OK);

	/* get: a short buffer learns the size, then the whole value. */
	cr_assert_eq(mantis_db_get(db, 0, key, MANTIS_KEY_MAX, small, sizeof(small), &vlen, NULL),
	             MANTIS_EBUFSIZE);
	cr_assert_eq(vlen, MANTIS_VALUE_MAX);
	cr_assert_eq(mantis_db_get(db, 0, key, MANTIS_KEY_MAX, out, cap, &vlen, NULL), MANTIS_OK);
	cr_assert_eq(vlen, MANTIS_VALUE_MAX);
	cr_assert_eq(memcmp(out, val, vlen), 0, "get returns the value");

	/* multiget: u32 length then the bytes. */
	tdb_le32(kb, MANTIS_KEY_MAX);
	memcpy(kb + 4, key, MANTIS_KEY_MAX);
	cr_assert_eq(mantis_db_multiget(db, 0, kb, sizeof(kb), 1, NULL, 0, &olen), MANTIS_EBUFSIZE);
	cr_assert_eq(olen, 4 + (size_t)MANTIS_VALUE_MAX);
	cr_assert_eq(mantis_db_multiget(db, 0, kb, sizeof(kb), 1, out, cap, &olen), MANTIS_OK);
	cr_assert_eq(olen, 4 + (size_t)MANTIS_VALUE_MAX);
	cr_assert_eq(out[0] | out[1] << 8 | out[2] << 16 | (uint32_t)out[3] << 24,
	             MANTIS_VALUE_MAX);
	cr_assert_eq(memcmp(out + 4, val, MANTIS_VALUE_MAX), 0, "multiget returns the value");

	/* An iterator chunk: too small, then exactly the entry's size. */
	cr_assert_eq(mantis_iter_open(db, 0, NULL, 0, &it), MANTIS_OK);
	cr_assert_eq(mantis_iter_next_chunk(it, small, sizeof(small), 0, &olen, &count),
	             MANTIS_EBUFSIZE);
	cr_assert_eq(olen, 8 + (size_t)MANTIS_KEY_MAX + MANTIS_VALUE_MAX);
	cr_assert_eq(mantis_iter_next_chunk(it, out, olen, 0, &olen, &count), MANTIS_OK);
	cr_assert_eq(count, 1);
	cr_assert_eq(memcmp(out + 8, key, MANTIS_KEY_MAX), 0);
	cr_assert_eq(memcmp(out + 8 + MANTIS_KEY_MAX, val, MANTIS_VALUE_MAX), 0,
	             "the chunk holds the value");
	cr_assert_eq(mantis_iter_next_chunk(it, out, cap, 0, &olen, &count), MANTIS_DONE);
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);

	/* put: one byte over the limit is refused (db_api/largest_value puts
	 * and gets the largest value through the point calls). */
	cr_assert_eq(mantis_db_put(db, "q", 1, b, (size_t)MANTIS_VALUE_MAX + 1, 0, NULL),
	             MANTIS_ETOOLARGE);
	tdb_expect(db, 0, "q", NULL);
	cr_assert_eq(tdb_stats(db).bytes, (uint64_t)MANTIS_VALUE_MAX + MANTIS_KEY_MAX);

	/* A record one byte over the value limit, its bytes present, fails the
	 * whole batch; so does a batch one byte over the batch limit. */
	b[0] = MANTIS_OP_PUT;
	tdb_le32(b + 1, 1);
	tdb_le32(b + 5, (uint32_t)MANTIS_VALUE_MAX + 1);
	cr_assert_eq(mantis_db_write(db, b, MANTIS_BATCH_HDR + 1 + (size_t)MANTIS_VALUE_MAX + 1, 0,
	                             NULL),
	             MANTIS_ETOOLARGE);
	cr_assert_eq(mantis_db_write(db, b, (size_t)MANTIS_BATCH_MAX + 1, 0, NULL),
	             MANTIS_ETOOLARGE);
	cr_assert_eq(tdb_stats(db).entries, 1, "nothing of the refused batches applied");

	free(b);
	free(out);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

Test(limits, largest_value_in_cache)
{
	if (test_huge_values_too_slow())
		cr_skip_test("512 MiB values under valgrind or TSan");
	mantis_cache_options_t o = {.capacity = 2 * (uint64_t)MANTIS_VALUE_MAX};
	uint64_t c = 0;
	size_t vlen = 0;
	unsigned char *v = malloc((size_t)MANTIS_VALUE_MAX + 1), *out = malloc(MANTIS_VALUE_MAX);
	unsigned char small[16];
	int admitted = 0;

	cr_assert_not_null(v);
	cr_assert_not_null(out);
	tl_fill(v, MANTIS_VALUE_MAX, 3);
	cr_assert_eq(mantis_cache_open(&o, &c), MANTIS_OK);
	cr_assert_eq(mantis_cache_put(c, "k", 1, v, (size_t)MANTIS_VALUE_MAX + 1, 0, 0, 1, NULL),
	             MANTIS_ETOOLARGE);
	cr_assert_eq(mantis_cache_put(c, "k", 1, v, MANTIS_VALUE_MAX, 0, 0, 1, &admitted),
	             MANTIS_OK);
	if (admitted) {
		cr_assert_eq(mantis_cache_get(c, "k", 1, small, sizeof(small), &vlen, NULL),
		             MANTIS_EBUFSIZE);
		cr_assert_eq(vlen, MANTIS_VALUE_MAX);
		cr_assert_eq(mantis_cache_get(c, "k", 1, out, MANTIS_VALUE_MAX, &vlen, NULL),
		             MANTIS_OK);
		cr_assert_eq(vlen, MANTIS_VALUE_MAX);
		cr_assert_eq(memcmp(out, v, vlen), 0);
	}
	cr_assert_eq(mantis_cache_close(c), MANTIS_OK);
	free(v);
	free(out);
}
