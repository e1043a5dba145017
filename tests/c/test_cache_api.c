/*
 * test_cache_api.c - the cache's API contract (bindings/mantis.h): basic
 * operations, cost semantics, versions, admitted_out, stats, clear, bad
 * input, handles, and allocation failure.
 */
#include "mantis.h"
#include "mt_alloc.h"
#include "mt_cache.h"
#include "mt_handle.h"
#include "test_cache_util.h"

#include <criterion/criterion.h>
#include <stdlib.h>

Test(cache_api, put_get_delete)
{
	uint64_t h = tc_open(1 << 20), ver = 0;
	char buf[64];

	cr_assert_eq(tc_get(h, "a", buf, sizeof(buf), NULL), MANTIS_NOTFOUND);
	cr_assert_eq(tc_put(h, "a", "alpha", 0, 0, 7), 1);
	cr_assert_eq(tc_get(h, "a", buf, sizeof(buf), &ver), MANTIS_OK);
	cr_assert_str_eq(buf, "alpha");
	cr_assert_eq(ver, 7);
	/* Replace with a newer version. */
	cr_assert_eq(tc_put(h, "a", "beta", 0, 0, 8), 1);
	cr_assert_eq(tc_get(h, "a", buf, sizeof(buf), &ver), MANTIS_OK);
	cr_assert_str_eq(buf, "beta");
	cr_assert_eq(ver, 8);
	cr_assert_eq(mantis_cache_delete(h, "a", 1, UINT64_MAX), MANTIS_OK);
	cr_assert_eq(tc_get(h, "a", buf, sizeof(buf), NULL), MANTIS_NOTFOUND);
	/* Deleting an absent key is not an error. */
	cr_assert_eq(mantis_cache_delete(h, "a", 1, UINT64_MAX), MANTIS_OK);
	cr_assert_eq(mantis_cache_delete(h, "zz", 2, 0), MANTIS_OK);
	tc_close(h);
}

Test(cache_api, binary_keys_and_empty_values)
{
	uint64_t h = tc_open(1 << 20);
	const unsigned char k1[3] = {'a', 0, 'b'}, k2[3] = {'a', 0, 'c'}, k3[1] = {0};
	unsigned char buf[8];
	size_t vlen = 99;

	cr_assert_eq(mantis_cache_put(h, k1, 3, "x", 1, 0, 0, 0, NULL), MANTIS_OK);
	cr_assert_eq(mantis_cache_put(h, k2, 3, "yy", 2, 0, 0, 0, NULL), MANTIS_OK);
	cr_assert_eq(mantis_cache_put(h, k3, 1, NULL, 0, 0, 0, 0, NULL), MANTIS_OK);
	cr_assert_eq(mantis_cache_get(h, k1, 3, buf, sizeof(buf), &vlen, NULL), MANTIS_OK);
	cr_assert_eq(vlen, 1);
	cr_assert_eq(buf[0], 'x');
	cr_assert_eq(mantis_cache_get(h, k2, 3, buf, sizeof(buf), &vlen, NULL), MANTIS_OK);
	cr_assert_eq(vlen, 2);
	cr_assert_eq(memcmp(buf, "yy", 2), 0);
	/* A prefix of a key is another key. */
	cr_assert_eq(mantis_cache_get(h, k1, 2, buf, sizeof(buf), &vlen, NULL), MANTIS_NOTFOUND);
	/* Empty value, NULL buffer with cap 0. */
	cr_assert_eq(mantis_cache_get(h, k3, 1, NULL, 0, &vlen, NULL), MANTIS_OK);
	cr_assert_eq(vlen, 0);
	tc_close(h);
}

Test(cache_api, buffer_too_small_counts_as_hit)
{
	uint64_t h = tc_open(1 << 20), ver = 12345;
	char buf[4] = {'q', 'q', 'q', 'q'};
	size_t vlen = 0;

	cr_assert_eq(tc_put(h, "k", "0123456789", 0, 0, 3), 1);
	cr_assert_eq(mantis_cache_get(h, "k", 1, buf, 4, &vlen, &ver), MANTIS_EBUFSIZE);
	cr_assert_eq(vlen, 10);
	cr_assert_eq(ver, 12345, "nothing but the length is written");
	cr_assert_eq(buf[0], 'q');
	cr_assert_eq(mantis_cache_get(h, "k", 1, NULL, 0, &vlen, NULL), MANTIS_EBUFSIZE);
	cr_assert_eq(vlen, 10);
	cr_assert_eq(tc_stats(h).hits, 2);
	cr_assert_eq(tc_stats(h).misses, 0);
	tc_close(h);
}

Test(cache_api, default_and_explicit_cost)
{
	uint64_t h = tc_open(1 << 20);
	mantis_cache_stats_t s;

	tc_put(h, "key", "value", 0, 0, 0);
	s = tc_stats(h);
	cr_assert_eq(s.cost, 3 + 5 + MANTIS_CACHE_ENTRY_OVERHEAD);
	cr_assert_eq(s.entries, 1);
	tc_put(h, "k2", "v", 1000, 0, 0);
	cr_assert_eq(tc_stats(h).cost, 3 + 5 + MANTIS_CACHE_ENTRY_OVERHEAD + 1000);
	/* A replacement re-costs the entry. */
	tc_put(h, "k2", "v", 10, 0, 0);
	s = tc_stats(h);
	cr_assert_eq(s.cost, 3 + 5 + MANTIS_CACHE_ENTRY_OVERHEAD + 10);
	cr_assert_eq(s.entries, 2);
	cr_assert_eq(s.capacity, 1 << 20);
	tc_close(h);
}

Test(cache_api, cost_larger_than_capacity)
{
	uint64_t h = tc_open(100);
	int admitted = 7;

	cr_assert_eq(mantis_cache_put(h, "k", 1, "v", 1, 101, 0, 0, &admitted), MANTIS_ETOOLARGE);
	cr_assert_eq(admitted, 7, "not written on error");
	/* Default cost 1 + 37 + 64 = 102 > 100. */
	cr_assert_eq(mantis_cache_put(h, "k", 1, "0123456789012345678901234567890123456", 37, 0, 0,
	                              0, NULL),
	             MANTIS_ETOOLARGE);
	/* Exactly the capacity fits. */
	cr_assert_eq(tc_put(h, "k", "v", 100, 0, 0), 1);
	cr_assert_eq(tc_stats(h).cost, 100);
	tc_close(h);
}

Test(cache_api, cost_larger_than_a_shard_is_declined)
{
	/* 2^20 units make 16 shards of 2^16. */
	uint64_t h = tc_open(1 << 20);
	char buf[16];
	mantis_cache_stats_t s;

	cr_assert_eq(mt_cache_test_shards(h), 16);
	cr_assert_eq(tc_put(h, "big", "old", 10, 0, 1), 1);
	cr_assert_eq(tc_put(h, "big", "new", (1 << 16) + 1, 0, 2), 0);
	/* The older version went: the newer value superseded it. */
	cr_assert_eq(tc_get(h, "big", buf, sizeof(buf), NULL), MANTIS_NOTFOUND);
	s = tc_stats(h);
	cr_assert_eq(s.rejections, 1);
	cr_assert_eq(s.entries, 0);
	cr_assert_eq(s.cost, 0);
	/* A shard's capacity fits. */
	cr_assert_eq(tc_put(h, "big", "new", 1 << 16, 0, 3), 1);
	tc_close(h);
}

Test(cache_api, versions_never_go_back)
{
	uint64_t h = tc_open(1 << 20), ver = 0;
	char buf[16];

	cr_assert_eq(tc_put(h, "k", "v5", 0, 0, 5), 1);
	cr_assert_eq(tc_put(h, "k", "v3", 0, 0, 3), 0);
	cr_assert_eq(tc_get(h, "k", buf, sizeof(buf), &ver), MANTIS_OK);
	cr_assert_str_eq(buf, "v5");
	cr_assert_eq(ver, 5);
	cr_assert_eq(tc_stats(h).rejections, 1);
	/* An equal version replaces. */
	cr_assert_eq(tc_put(h, "k", "v5b", 0, 0, 5), 1);
	cr_assert_eq(tc_get(h, "k", buf, sizeof(buf), NULL), MANTIS_OK);
	cr_assert_str_eq(buf, "v5b");
	/* Version 0 is the oldest. */
	cr_assert_eq(tc_put(h, "k", "v0", 0, 0, 0), 0);
	/* Delete with a bound below the resident version keeps it. */
	cr_assert_eq(mantis_cache_delete(h, "k", 1, 4), MANTIS_OK);
	cr_assert_eq(tc_get(h, "k", buf, sizeof(buf), NULL), MANTIS_OK);
	cr_assert_eq(mantis_cache_delete(h, "k", 1, 5), MANTIS_OK);
	cr_assert_eq(tc_get(h, "k", buf, sizeof(buf), NULL), MANTIS_NOTFOUND);
	/* Once absent, any version may fill it. */
	cr_assert_eq(tc_put(h, "k", "v1", 0, 0, 1), 1);
	cr_assert_eq(tc_put(h, "k", "max", 0, 0, UINT64_MAX), 1);
	cr_assert_eq(tc_put(h, "k", "v2", 0, 0, UINT64_MAX - 1), 0);
	cr_assert_eq(mantis_cache_delete(h, "k", 1, UINT64_MAX), MANTIS_OK);
	cr_assert_eq(tc_stats(h).entries, 0);
	tc_close(h);
}

/* The Go engine's cache-aside protocol: fill with the storage sequence
 * number, then undo the fill if the storage moved on meanwhile. */
Test(cache_api, cache_aside_protocol)
{
	uint64_t h = tc_open(1 << 20), ver = 0;
	char buf[16];

	/* Reader: miss, reads storage at seq 10 (value "old"). */
	/* Writer: commits seq 11 ("new") and puts it (cache-through). */
	cr_assert_eq(tc_put(h, "k", "new", 0, 0, 11), 1);
	/* Reader's late fill with seq 10 is refused. */
	cr_assert_eq(tc_put(h, "k", "old", 0, 0, 10), 0);
	/* Reader re-checks storage, sees 11 != 10 and deletes its fill's
	 * version: the newer entry stays. */
	cr_assert_eq(mantis_cache_delete(h, "k", 1, 10), MANTIS_OK);
	cr_assert_eq(tc_get(h, "k", buf, sizeof(buf), &ver), MANTIS_OK);
	cr_assert_str_eq(buf, "new");
	cr_assert_eq(ver, 11);
	/* A writer's delete at seq 12 removes it; a stale fill at 10 then
	 * lands, and the filler's re-check removes exactly that. */
	cr_assert_eq(mantis_cache_delete(h, "k", 1, 12), MANTIS_OK);
	cr_assert_eq(tc_put(h, "k", "old", 0, 0, 10), 1);
	cr_assert_eq(mantis_cache_delete(h, "k", 1, 10), MANTIS_OK);
	cr_assert_eq(tc_get(h, "k", buf, sizeof(buf), NULL), MANTIS_NOTFOUND);
	tc_close(h);
}

Test(cache_api, stats_are_exact_when_quiescent)
{
	uint64_t h = tc_open(10);
	mantis_cache_stats_t s;
	char buf[16];

	for (int i = 0; i < 10; i++) {
		char k[16];

		snprintf(k, sizeof(k), "k%d", i);
		cr_assert_eq(tc_put(h, k, "v", 1, 0, 0), 1);
	}
	cr_assert_eq(tc_get(h, "k1", buf, sizeof(buf), NULL), MANTIS_OK);
	cr_assert_eq(tc_get(h, "k2", buf, sizeof(buf), NULL), MANTIS_OK);
	cr_assert_eq(tc_get(h, "nope", buf, sizeof(buf), NULL), MANTIS_NOTFOUND);
	/* Five more keys evict five. */
	for (int i = 10; i < 15; i++) {
		char k[16];

		snprintf(k, sizeof(k), "k%d", i);
		cr_assert_eq(tc_put(h, k, "v", 1, 0, 0), 1);
	}
	tc_put(h, "k14", "v", 1, 0, 0); /* replacement: an insert, no eviction */
	tc_put(h, "k14", "w", 1, 0, 0);
	s = tc_stats(h);
	cr_assert_eq(s.hits, 2);
	cr_assert_eq(s.misses, 1);
	cr_assert_eq(s.inserts, 17);
	cr_assert_eq(s.evictions, 5);
	cr_assert_eq(s.expirations, 0);
	cr_assert_eq(s.rejections, 0);
	cr_assert_eq(s.entries, 10);
	cr_assert_eq(s.cost, 10);
	cr_assert_eq(s.capacity, 10);
	tc_close(h);
}

Test(cache_api, clear_removes_everything)
{
	uint64_t h = tc_open(1 << 22);
	char buf[16];
	mantis_cache_stats_t s;

	for (uint64_t i = 0; i < 5000; i++)
		cr_assert_eq(tc_put8(h, i, i, 0), 1);
	cr_assert_eq(mantis_cache_clear(h), MANTIS_OK);
	s = tc_stats(h);
	cr_assert_eq(s.entries, 0);
	cr_assert_eq(s.cost, 0);
	for (uint64_t i = 0; i < 5000; i += 97)
		cr_assert_eq(tc_get8(h, i, NULL), MANTIS_NOTFOUND);
	/* Usable afterwards, and clear of an empty cache is fine. */
	cr_assert_eq(tc_put(h, "k", "v", 0, 0, 0), 1);
	cr_assert_eq(tc_get(h, "k", buf, sizeof(buf), NULL), MANTIS_OK);
	cr_assert_eq(mantis_cache_clear(h), MANTIS_OK);
	cr_assert_eq(mantis_cache_clear(h), MANTIS_OK);
	cr_assert_eq(tc_stats(h).entries, 0);
	tc_close(h);
}

/* Random keys, values and costs: the resident cost never exceeds the
 * capacity (the documented slack is 0) and the sums stay consistent. */
Test(cache_api, capacity_never_exceeded)
{
	uint64_t caps[] = {1, 7, 1000, 1 << 19, 3u << 20};
	uint64_t rng = 0x1234567;
	uint64_t n = test_scaled(20000);

	for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
		uint64_t h = tc_open(caps[c]);
		uint64_t max_cost = caps[c] < 4096 ? caps[c] : 4096;

		for (uint64_t i = 0; i < n; i++) {
			unsigned char k[12], v[300];
			uint64_t klen, vlen, cost;
			mantis_cache_stats_t s;
			int admitted, rc;

			rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			klen = 1 + (rng >> 33) % sizeof(k);
			vlen = (rng >> 45) % sizeof(v);
			cost = (rng >> 20) % 3 == 0 ? 0 : 1 + (rng >> 24) % max_cost;
			memset(k, (int)(rng >> 50) % 200, klen);
			memset(v, 'v', vlen);
			rc = mantis_cache_put(h, k, klen, v, vlen, cost, 0, i, &admitted);
			if (cost == 0 && klen + vlen + MANTIS_CACHE_ENTRY_OVERHEAD > caps[c]) {
				cr_assert_eq(rc, MANTIS_ETOOLARGE);
				continue;
			}
			cr_assert_eq(rc, MANTIS_OK);
			if ((rng >> 40) % 7 == 0)
				cr_assert_eq(mantis_cache_delete(h, k, klen, UINT64_MAX),
				             MANTIS_OK);
			s = tc_stats(h);
			cr_assert_leq(s.cost, caps[c], "resident %lu > capacity %lu",
			              (unsigned long)s.cost, (unsigned long)caps[c]);
			cr_assert_leq(s.entries, s.cost);
		}
		tc_close(h);
	}
}

Test(cache_api, bad_arguments)
{
	uint64_t h = tc_open(1 << 20), ver;
	mantis_cache_options_t o = {.capacity = 0};
	unsigned char big[MANTIS_KEY_MAX + 1];
	char buf[8];
	size_t vlen;
	int admitted;

	memset(big, 'k', sizeof(big));
	/* open */
	cr_assert_eq(mantis_cache_open(NULL, &ver), MANTIS_EINVAL);
	cr_assert_eq(mantis_cache_open(&o, &ver), MANTIS_EINVAL);
	o.capacity = 10;
	cr_assert_eq(mantis_cache_open(&o, NULL), MANTIS_EINVAL);
	o.reserved = 1;
	cr_assert_eq(mantis_cache_open(&o, &ver), MANTIS_EINVAL);
	/* get */
	cr_assert_eq(mantis_cache_get(h, NULL, 1, buf, 8, &vlen, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_cache_get(h, "k", 1, buf, 8, NULL, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_cache_get(h, "k", 1, NULL, 8, &vlen, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_cache_get(h, "k", 0, buf, 8, &vlen, NULL), MANTIS_EKEY);
	cr_assert_eq(mantis_cache_get(h, big, sizeof(big), buf, 8, &vlen, NULL), MANTIS_ETOOLARGE);
	/* The largest key is fine. */
	cr_assert_eq(mantis_cache_put(h, big, MANTIS_KEY_MAX, "v", 1, 0, 0, 0, &admitted),
	             MANTIS_OK);
	cr_assert_eq(mantis_cache_get(h, big, MANTIS_KEY_MAX, buf, 8, &vlen, NULL), MANTIS_OK);
	/* put */
	cr_assert_eq(mantis_cache_put(h, NULL, 1, "v", 1, 0, 0, 0, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_cache_put(h, "k", 1, NULL, 1, 0, 0, 0, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_cache_put(h, "k", 0, "v", 1, 0, 0, 0, NULL), MANTIS_EKEY);
	cr_assert_eq(mantis_cache_put(h, big, sizeof(big), "v", 1, 0, 0, 0, NULL),
	             MANTIS_ETOOLARGE);
	cr_assert_eq(mantis_cache_put(h, "k", 1, big, (size_t)MANTIS_VALUE_MAX + 1, 0, 0, 0, NULL),
	             MANTIS_ETOOLARGE);
	/* delete */
	cr_assert_eq(mantis_cache_delete(h, NULL, 1, 0), MANTIS_EINVAL);
	cr_assert_eq(mantis_cache_delete(h, "k", 0, 0), MANTIS_EKEY);
	cr_assert_eq(mantis_cache_delete(h, big, sizeof(big), 0), MANTIS_ETOOLARGE);
	/* stats */
	cr_assert_eq(mantis_cache_stats(h, NULL), MANTIS_EINVAL);
	/* expire with no out-pointer */
	cr_assert_eq(mantis_cache_expire(h, NULL), MANTIS_OK);
	tc_close(h);
}

static void tc_dummy_destroy(void *p)
{
	free(p);
}

Test(cache_api, stale_forged_closed_handles)
{
	uint64_t h = tc_open(100), other, ex;
	mantis_cache_stats_t s;
	char buf[8];
	size_t vlen;
	void *dummy = malloc(8);

	cr_assert_not_null(dummy);
	/* Never issued, forged generation, index 0. */
	uint64_t bad[] = {0, UINT64_MAX, h + (7ull << 32), h & 0xffffffff00000000ull,
	                  (h & 0xffffffff00000000ull) | 0xfffffff0u};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(mantis_cache_get(bad[i], "k", 1, buf, 8, &vlen, NULL),
		             MANTIS_EBADHANDLE);
		cr_assert_eq(mantis_cache_put(bad[i], "k", 1, "v", 1, 0, 0, 0, NULL),
		             MANTIS_EBADHANDLE);
		cr_assert_eq(mantis_cache_delete(bad[i], "k", 1, 0), MANTIS_EBADHANDLE);
		cr_assert_eq(mantis_cache_clear(bad[i]), MANTIS_EBADHANDLE);
		cr_assert_eq(mantis_cache_expire(bad[i], &ex), MANTIS_EBADHANDLE);
		cr_assert_eq(mantis_cache_stats(bad[i], &s), MANTIS_EBADHANDLE);
		cr_assert_eq(mantis_cache_close(bad[i]), MANTIS_EBADHANDLE);
	}
	/* A handle of another kind. */
	cr_assert_eq(mt_handle_alloc(MT_HANDLE_DB, dummy, tc_dummy_destroy, &other), MANTIS_OK);
	cr_assert_eq(mantis_cache_get(other, "k", 1, buf, 8, &vlen, NULL), MANTIS_EBADHANDLE);
	cr_assert_eq(mantis_cache_put(other, "k", 1, "v", 1, 0, 0, 0, NULL), MANTIS_EBADHANDLE);
	cr_assert_eq(mantis_cache_close(other), MANTIS_EBADHANDLE);
	cr_assert_eq(mt_handle_close(other, MT_HANDLE_DB), MANTIS_OK);
	/* Closed, then closed again. */
	tc_put(h, "k", "v", 1, 0, 0);
	cr_assert_eq(mantis_cache_close(h), MANTIS_OK);
	cr_assert_eq(mantis_cache_get(h, "k", 1, buf, 8, &vlen, NULL), MANTIS_CLOSED);
	cr_assert_eq(mantis_cache_put(h, "k", 1, "v", 1, 0, 0, 0, NULL), MANTIS_CLOSED);
	cr_assert_eq(mantis_cache_delete(h, "k", 1, 0), MANTIS_CLOSED);
	cr_assert_eq(mantis_cache_clear(h), MANTIS_CLOSED);
	cr_assert_eq(mantis_cache_expire(h, &ex), MANTIS_CLOSED);
	cr_assert_eq(mantis_cache_stats(h, &s), MANTIS_CLOSED);
	cr_assert_eq(mantis_cache_close(h), MANTIS_CLOSED);
	/* The slot is reused by the next open; the old handle stays closed. */
	other = tc_open(100);
	cr_assert_eq(mantis_cache_get(h, "k", 1, buf, 8, &vlen, NULL), MANTIS_CLOSED);
	cr_assert_eq(mantis_cache_get(other, "k", 1, buf, 8, &vlen, NULL), MANTIS_NOTFOUND);
	tc_close(other);
}

/* Fails the Nth allocation, N = 1, 2, ... until the call succeeds: every
 * failure must return MANTIS_ENOMEM and leave no trace. */
Test(cache_api, open_allocation_failure)
{
	mantis_cache_options_t o = {.capacity = 1 << 22}; /* 64 shards */
	uint64_t h = 0;
	int rc = MANTIS_ENOMEM;
	uint64_t n;

	for (n = 1; n < 1000 && rc != MANTIS_OK; n++) {
		mt_alloc_fail_after(n);
		rc = mantis_cache_open(&o, &h);
		mt_alloc_fail_after(0);
		cr_assert(rc == MANTIS_OK || rc == MANTIS_ENOMEM, "rc %d", rc);
	}
	cr_assert_eq(rc, MANTIS_OK);
	cr_assert_gt(n, 30, "every shard allocates");
	tc_close(h);
}

Test(cache_api, put_allocation_failure)
{
	uint64_t h = tc_open(1 << 16);
	uint64_t most = 0;

	for (uint64_t i = 0; i < 300; i++) {
		mantis_cache_stats_t before = tc_stats(h), after;
		uint64_t v = 0;
		int rc = MANTIS_ENOMEM;
		uint64_t n;

		/* Every third put replaces an existing key. */
		uint64_t key = i % 3 == 2 ? i - 1 : i;
		for (n = 1; rc != MANTIS_OK; n++) {
			unsigned char k[8];
			uint64_t val = 1000 + i;
			int admitted = -1;

			cr_assert_lt(n, 100);
			tc_key8(k, key);
			mt_alloc_fail_after(n);
			rc = mantis_cache_put(h, k, 8, &val, 8, 0, 0, i, &admitted);
			mt_alloc_fail_after(0);
			if (rc == MANTIS_OK)
				break;
			cr_assert_eq(rc, MANTIS_ENOMEM);
			cr_assert_eq(admitted, -1);
			/* Nothing of the failed put is visible. */
			after = tc_stats(h);
			cr_assert_eq(after.entries, before.entries);
			cr_assert_eq(after.cost, before.cost);
			cr_assert_eq(after.inserts, before.inserts);
			if (key == i)
				cr_assert_eq(tc_get8(h, key, NULL), MANTIS_NOTFOUND);
			else if (tc_get8(h, key, &v) == MANTIS_OK)
				cr_assert_eq(v, 1000 + key, "the old value stays");
		}
		if (n > most)
			most = n;
		cr_assert_eq(tc_get8(h, key, &v), MANTIS_OK);
		cr_assert_eq(v, 1000 + i);
	}
	/* Some put needed the entry and a table rebuild: two allocations. */
	cr_assert_geq(most, 3);
	tc_close(h);
}

Test(cache_api, extreme_capacities)
{
	uint64_t h = tc_open(UINT64_MAX);
	char buf[16];

	cr_assert_eq(mt_cache_test_shards(h), 64);
	cr_assert_eq(tc_put(h, "k", "v", UINT64_MAX / 128, 0, 0), 1);
	cr_assert_eq(tc_get(h, "k", buf, sizeof(buf), NULL), MANTIS_OK);
	cr_assert_eq(tc_stats(h).capacity, UINT64_MAX);
	cr_assert_eq(tc_stats(h).cost, UINT64_MAX / 128);
	tc_close(h);
	/* One unit: only cost-1 entries fit, one at a time. */
	h = tc_open(1);
	cr_assert_eq(tc_put(h, "a", "v", 1, 0, 0), 1);
	cr_assert_eq(tc_put(h, "b", "v", 1, 0, 0), 1);
	cr_assert_eq(tc_get(h, "a", buf, sizeof(buf), NULL), MANTIS_NOTFOUND);
	cr_assert_eq(tc_get(h, "b", buf, sizeof(buf), NULL), MANTIS_OK);
	cr_assert_eq(tc_stats(h).evictions, 1);
	tc_close(h);
}
