/*
 * test_cache_trace.c - replays the glimpse trace (testdata/gli.trace, see
 * testdata/README.md for its source) through the cache, cost 1 per page,
 * single-threaded: get, and put on a miss. The replay is deterministic (the
 * policy has no randomness and the hash no seed), so the hit counts are
 * exact; they were recorded from this implementation and are checked here
 * as a regression guard, together with an LRU computed by this test, which
 * the policy must beat on this looping trace.
 */
#include "mantis.h"
#include "test_cache_util.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef MT_TESTDATA
#define MT_TESTDATA "testdata"
#endif

static uint64_t *tt_load(size_t *n)
{
	FILE *f = fopen(MT_TESTDATA "/gli.trace", "r");
	uint64_t *refs = NULL, page;
	size_t cap = 0;

	cr_assert_not_null(f, "cannot open %s", MT_TESTDATA "/gli.trace");
	*n = 0;
	while (fscanf(f, "%lu", &page) == 1) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 8192;
			refs = realloc(refs, cap * sizeof(*refs));
			cr_assert_not_null(refs);
		}
		refs[(*n)++] = page;
	}
	fclose(f);
	return refs;
}

static uint64_t tt_replay(const uint64_t *refs, size_t n, uint64_t capacity)
{
	uint64_t h = tc_open(capacity), hits = 0;
	mantis_cache_stats_t s;

	for (size_t i = 0; i < n; i++) {
		if (tc_get8(h, refs[i], NULL) == MANTIS_OK)
			hits++;
		else
			cr_assert_eq(tc_put8(h, refs[i], refs[i], 0), 1);
	}
	s = tc_stats(h);
	cr_assert_eq(s.hits, hits);
	cr_assert_eq(s.misses, n - hits);
	cr_assert_leq(s.cost, capacity);
	tc_close(h);
	return hits;
}

/* A plain LRU (list scan, fine for this size) for comparison. */
static uint64_t tt_lru(const uint64_t *refs, size_t n, uint64_t capacity)
{
	uint64_t *stack = calloc(capacity, sizeof(*stack)), hits = 0;
	size_t used = 0;

	cr_assert_not_null(stack);
	for (size_t i = 0; i < n; i++) {
		size_t j;

		for (j = 0; j < used && stack[j] != refs[i]; j++)
			;
		if (j < used)
			hits++;
		else if (used < capacity)
			j = used++;
		else
			j = used - 1;
		memmove(stack + 1, stack, j * sizeof(*stack));
		stack[0] = refs[i];
	}
	free(stack);
	return hits;
}

Test(cache_trace, gli_hit_ratios)
{
	/* capacity, exact hits of this policy */
	static const uint64_t want[][2] = {
	        {250, 75}, {500, 1060}, {1000, 2201}, {1500, 2802}, {2000, 3453},
	};
	size_t n;
	uint64_t *refs = tt_load(&n);

	cr_assert_eq(n, 6015, "gli.trace has 6015 references");
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		uint64_t hits = tt_replay(refs, n, want[i][0]);
		uint64_t again = tt_replay(refs, n, want[i][0]);
		uint64_t lru = tt_lru(refs, n, want[i][0]);

		cr_log_info("gli capacity %lu: ours %lu hits (%.2f%%), LRU %lu (%.2f%%)",
		            (unsigned long)want[i][0], (unsigned long)hits, 100.0 * hits / n,
		            (unsigned long)lru, 100.0 * lru / n);
		cr_assert_eq(hits, again, "the replay is deterministic");
		cr_assert_eq(hits, want[i][1], "capacity %lu: %lu hits, recorded %lu",
		             (unsigned long)want[i][0], (unsigned long)hits,
		             (unsigned long)want[i][1]);
		cr_assert_geq(hits, lru);
	}
	free(refs);
}
