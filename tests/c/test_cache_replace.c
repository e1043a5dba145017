/*
 * test_cache_replace.c - a replacing put never evicts the entry it publishes
 * (issue 11, defect 4): the room a costlier replacement needs is made before
 * the new entry is linked, and its timer is armed before anything can evict
 * it.
 */
#include "mantis.h"
#include "test_cache_util.h"

#include <criterion/criterion.h>

/* The sequence: capacity 65,536 (one shard); Y costs 40,000, W
 * 30,000 (Y leaves S for the ghost), Y again at 10,000 (a ghost hit puts it
 * in M), then W is replaced at 55,537: the replacement needs one more cost
 * unit than the shard has free, and W, at S's tail, is the policy's next
 * victim. */
static void replace_needs_room(uint64_t ttl_ms)
{
	uint64_t h = tc_open(65536);
	mantis_cache_stats_t s;
	char buf[64];

	cr_assert_eq(tc_put(h, "Y", "y1", 40000, ttl_ms, 1), 1);
	cr_assert_eq(tc_put(h, "W", "w1", 30000, ttl_ms, 2), 1);
	cr_assert_eq(tc_put(h, "Y", "y2", 10000, ttl_ms, 3), 1);
	cr_assert_eq(tc_put(h, "W", "w2", 55537, ttl_ms, 4), 1, "the replacement is admitted");
	cr_assert_eq(tc_get(h, "W", buf, sizeof(buf), NULL), MANTIS_OK,
	             "an admitted replacement is resident");
	cr_assert_str_eq(buf, "w2");
	s = tc_stats(h);
	cr_assert_leq(s.cost, 65536);
	cr_assert_eq(tc_get(h, "Y", buf, sizeof(buf), NULL), MANTIS_NOTFOUND,
	             "Y made room for the replacement");
	cr_assert_eq(s.entries, 1);
	cr_assert_eq(s.cost, 55537);
	/* The entry stays consistent for later calls (timer, queue, slot). */
	cr_assert_eq(mantis_cache_expire(h, NULL), MANTIS_OK);
	cr_assert_eq(mantis_cache_delete(h, "W", 1, UINT64_MAX), MANTIS_OK);
	cr_assert_eq(tc_stats(h).entries, 0);
	cr_assert_eq(tc_stats(h).cost, 0);
	tc_close(h);
}

Test(cache_replace, costlier_replacement_stays_resident)
{
	replace_needs_room(0);
}

Test(cache_replace, costlier_replacement_with_ttl_stays_resident)
{
	replace_needs_room(60000);
}

/* A replacement that costs more than everything else can give back: the
 * other entries all go, the replacement stays. */
Test(cache_replace, replacement_takes_the_whole_shard)
{
	uint64_t h = tc_open(65536);
	char buf[64], k[16];

	for (int i = 0; i < 16; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		cr_assert_eq(tc_put(h, k, "v", 4000, i % 2 ? 60000 : 0, 1), 1);
	}
	cr_assert_eq(tc_put(h, "k3", "big", 65536, 60000, 2), 1);
	cr_assert_eq(tc_get(h, "k3", buf, sizeof(buf), NULL), MANTIS_OK);
	cr_assert_str_eq(buf, "big");
	cr_assert_eq(tc_stats(h).entries, 1);
	cr_assert_eq(tc_stats(h).cost, 65536);
	tc_close(h);
}
