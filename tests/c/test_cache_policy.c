/*
 * test_cache_policy.c - the eviction policy (mt_cache_policy.c) on its own,
 * white-box: FIFO order, the second pass through S, promotion, the ghost's
 * readmission to M, M's reinsertion, the adaptation of S's target, costs;
 * and through the API: scan resistance and frequency awareness.
 */
#include "mantis.h"
#include "mt_cache.h"
#include "mt_alloc.h"
#include "mt_cache_policy.h"
#include "test_cache_util.h"

#include <criterion/criterion.h>
#include <stdlib.h>

/* Distinct hashes whose ghost fingerprints (bits 10..41) differ. */
static uint64_t tp_hash(uint64_t i)
{
	return (i + 1) * 0x9e3779b97f4a7c15ull;
}

static struct mt_cache_entry *tp_entry(uint64_t i, uint64_t cost)
{
	struct mt_cache_entry *e = calloc(1, sizeof(*e));

	cr_assert_not_null(e);
	e->hash = tp_hash(i);
	e->cost = cost;
	e->version = i; /* the test's own id */
	return e;
}

/* Inserts a new key the way the cache does: classify, make room, insert.
 * Victims are freed; returns how many were evicted. */
static int tp_add(struct mt_cpol *p, struct mt_cache_entry *e)
{
	uint32_t buckets = mt_cpol_ghost_due(p);
	int q, n = 0;

	if (buckets != 0) {
		uint64_t *g = mt_cpol_ghost_alloc_buckets(buckets);

		cr_assert_not_null(g);
		if (!mt_cpol_ghost_offer(p, g, buckets))
			mt_free(g);
	}
	q = mt_cpol_classify(p, e->hash);

	while (mt_cpol_cost(p) + e->cost > p->capacity) {
		struct mt_cache_entry *v = mt_cpol_evict(p);

		cr_assert_not_null(v);
		free(v);
		n++;
	}
	mt_cpol_insert(p, e, q);
	mt_free(mt_cpol_garbage(p));
	return n;
}

static void tp_free_all(struct mt_cpol *p)
{
	struct mt_cache_entry *e;

	while ((e = mt_cpol_pop(p)) != NULL)
		free(e);
	mt_cpol_destroy(p);
}

Test(cache_policy, new_keys_leave_in_fifo_order)
{
	struct mt_cpol p;
	struct mt_cache_entry *e;

	cr_assert_eq(mt_cpol_init(&p, 10), MANTIS_OK);
	for (uint64_t i = 0; i < 10; i++) {
		e = tp_entry(i, 1);
		cr_assert_eq(mt_cpol_classify(&p, e->hash), MT_CPOL_S);
		mt_cpol_insert(&p, e, MT_CPOL_S);
	}
	cr_assert_eq(mt_cpol_entries(&p), 10);
	cr_assert_eq(mt_cpol_cost(&p), 10);
	for (uint64_t i = 0; i < 10; i++) {
		e = mt_cpol_evict(&p);
		cr_assert_eq(e->version, i);
		free(e);
	}
	cr_assert_null(mt_cpol_evict(&p));
	cr_assert_eq(mt_cpol_cost(&p), 0);
	tp_free_all(&p);
}

Test(cache_policy, second_pass_then_promotion)
{
	struct mt_cpol p;
	struct mt_cache_entry *a = tp_entry(0, 1), *b = tp_entry(1, 1), *c = tp_entry(2, 1), *e;

	cr_assert_eq(mt_cpol_init(&p, 3), MANTIS_OK);
	tp_add(&p, a);
	tp_add(&p, b);
	tp_add(&p, c);
	mt_cpol_hit(a);
	/* a has one hit: it goes round S again and b leaves instead. */
	e = mt_cpol_evict(&p);
	cr_assert_eq(e, b);
	free(e);
	cr_assert_eq(a->queue, MT_CPOL_S);
	cr_assert_eq(a->pass, 1);
	cr_assert_eq(a->freq, 0);
	/* Hit again during the second pass: promoted when it reaches the tail. */
	mt_cpol_hit(a);
	e = mt_cpol_evict(&p);
	cr_assert_eq(e, c);
	free(e);
	e = mt_cpol_evict(&p); /* a is promoted to M; M's tail a has count 0 */
	cr_assert_eq(e, a);
	free(e);
	tp_free_all(&p);
}

Test(cache_policy, three_hits_promote_at_once)
{
	struct mt_cpol p;
	struct mt_cache_entry *a = tp_entry(0, 1), *b = tp_entry(1, 1), *e;

	cr_assert_eq(mt_cpol_init(&p, 2), MANTIS_OK);
	tp_add(&p, a);
	tp_add(&p, b);
	for (int i = 0; i < 5; i++)
		mt_cpol_hit(a);
	cr_assert_eq(a->freq, MT_CPOL_FREQ_MAX, "the count saturates");
	/* Adding c: a is promoted (no second pass), b goes. */
	e = tp_entry(2, 1);
	cr_assert_eq(tp_add(&p, e), 1);
	cr_assert_eq(a->queue, MT_CPOL_M);
	cr_assert_eq(a->pass, 0);
	cr_assert_eq(p.m_n, 1);
	cr_assert_eq(p.s_n, 1);
	tp_free_all(&p);
}

Test(cache_policy, ghost_readmits_to_main_once)
{
	struct mt_cpol p;
	struct mt_cache_entry *e;

	cr_assert_eq(mt_cpol_init(&p, 100), MANTIS_OK);
	for (uint64_t i = 0; i < 100; i++)
		tp_add(&p, tp_entry(i, 1));
	/* Key 0 leaves S unused: recorded in the ghost. */
	e = mt_cpol_evict(&p);
	cr_assert_eq(e->version, 0);
	free(e);
	cr_assert_eq(mt_cpol_classify(&p, tp_hash(0)), MT_CPOL_M);
	/* The record is consumed. */
	cr_assert_eq(mt_cpol_classify(&p, tp_hash(0)), MT_CPOL_S);
	/* A key never seen goes to S. */
	cr_assert_eq(mt_cpol_classify(&p, tp_hash(5000)), MT_CPOL_S);
	tp_free_all(&p);
}

Test(cache_policy, ghost_records_expire)
{
	struct mt_cpol p;

	cr_assert_eq(mt_cpol_init(&p, 100), MANTIS_OK);
	for (uint64_t i = 0; i < 100; i++)
		tp_add(&p, tp_entry(i, 1));
	/* Key 0 leaves; then 200 more keys pass through: more than 1.1 x 100
	 * departures, so key 0's record is too old to count. */
	for (uint64_t i = 100; i < 300; i++)
		tp_add(&p, tp_entry(i, 1));
	cr_assert_eq(mt_cpol_classify(&p, tp_hash(0)), MT_CPOL_S);
	/* A recent one still counts. */
	cr_assert_eq(mt_cpol_classify(&p, tp_hash(150)), MT_CPOL_M);
	tp_free_all(&p);
}

Test(cache_policy, main_reinserts_by_count)
{
	struct mt_cpol p;
	struct mt_cache_entry *m[4], *e;

	cr_assert_eq(mt_cpol_init(&p, 8), MANTIS_OK);
	/* Keys 0..3 leave S unused (keys 8..11 push them out), then come
	 * back through the ghost into M, pushing out 4..7. */
	for (uint64_t i = 0; i < 12; i++)
		tp_add(&p, tp_entry(i, 1));
	for (uint64_t i = 0; i < 4; i++) {
		m[i] = tp_entry(i, 1);
		cr_assert_eq(tp_add(&p, m[i]), 1);
		cr_assert_eq(m[i]->queue, MT_CPOL_M);
	}
	/* m0 hit twice, m1 once. S (at least its 1% target) goes first, in
	 * FIFO order; then M: m2, m3, then m1 (its count ran out first), m0. */
	mt_cpol_hit(m[0]);
	mt_cpol_hit(m[0]);
	mt_cpol_hit(m[1]);
	for (uint64_t i = 8; i < 12; i++) {
		e = mt_cpol_evict(&p);
		cr_assert_eq(e->version, i);
		free(e);
	}
	e = mt_cpol_evict(&p);
	cr_assert_eq(e, m[2]);
	free(e);
	e = mt_cpol_evict(&p);
	cr_assert_eq(e, m[3]);
	free(e);
	e = mt_cpol_evict(&p);
	cr_assert_eq(e, m[1]);
	free(e);
	e = mt_cpol_evict(&p);
	cr_assert_eq(e, m[0]);
	free(e);
	cr_assert_null(mt_cpol_evict(&p));
	tp_free_all(&p);
}

Test(cache_policy, target_adapts_by_marginal_utility)
{
	struct mt_cpol p;
	uint64_t t0;
	struct mt_cache_entry *e;

	cr_assert_eq(mt_cpol_init(&p, 1000), MANTIS_OK);
	cr_assert_eq(p.s_target, 10, "starts at 1%%");
	for (uint64_t i = 0; i < 1000; i++)
		tp_add(&p, tp_entry(i, 1));
	/* Key 0 just left S: a recent GS hit (age 1 <= 50) grows S by one
	 * average entry (cost 1). */
	tp_add(&p, tp_entry(1000, 1));
	t0 = p.s_target;
	e = tp_entry(0, 1);
	cr_assert_eq(tp_add(&p, e), 1);
	cr_assert_eq(e->queue, MT_CPOL_M);
	cr_assert_eq(p.s_target, t0 + 1);
	/* Now get something evicted from M and hit its ghost at once. */
	t0 = p.s_target;
	for (;;) {
		struct mt_cache_entry *v = mt_cpol_evict(&p);

		cr_assert_not_null(v);
		if (v->queue == MT_CPOL_M) {
			uint64_t id = v->version;

			free(v);
			e = tp_entry(id, 1);
			tp_add(&p, e);
			cr_assert_eq(e->queue, MT_CPOL_S, "GM hits enter S");
			break;
		}
		free(v);
	}
	cr_assert_eq(p.s_target, t0 - 1);
	/* Bounded below by 1% and above by 90%. */
	cr_assert_eq(p.s_min, 10);
	cr_assert_eq(p.s_max, 900);
	cr_assert_geq(p.s_target, p.s_min);
	tp_free_all(&p);
}

Test(cache_policy, costs_and_replacement)
{
	struct mt_cpol p;
	struct mt_cache_entry *a = tp_entry(0, 40), *b = tp_entry(1, 30), *c, *a2;

	cr_assert_eq(mt_cpol_init(&p, 100), MANTIS_OK);
	tp_add(&p, a);
	tp_add(&p, b);
	cr_assert_eq(mt_cpol_cost(&p), 70);
	/* c (cost 50) needs a to go (FIFO). */
	c = tp_entry(2, 50);
	cr_assert_eq(tp_add(&p, c), 1);
	cr_assert_eq(mt_cpol_cost(&p), 80);
	/* b replaced by a bigger b2: same queue, one more access. */
	a2 = tp_entry(1, 45);
	mt_cpol_hit(b);
	mt_cpol_replace(&p, b, a2);
	free(b);
	cr_assert_eq(a2->queue, MT_CPOL_S);
	cr_assert_eq(a2->freq, 2);
	cr_assert_eq(mt_cpol_cost(&p), 95);
	cr_assert_eq(mt_cpol_entries(&p), 2);
	mt_cpol_remove(&p, c);
	free(c);
	cr_assert_eq(mt_cpol_cost(&p), 45);
	tp_free_all(&p);
}

/* ---------------------------------------------------------------- through the API */

/* Replays get, then put on a miss (cost 1): returns 1 on a hit. */
static int tp_access(uint64_t h, uint64_t key)
{
	if (tc_get8(h, key, NULL) == MANTIS_OK)
		return 1;
	cr_assert_eq(tc_put8(h, key, key, 0), 1);
	return 0;
}

/* A hot set used a few times survives a scan of 20 times the capacity;
 * LRU would keep none of it. */
Test(cache_policy, scan_resistance)
{
	uint64_t h = tc_open(1000), rng = 7, hits = 0;

	for (int round = 0; round < 10; round++)
		for (uint64_t i = 0; i < 300; i++)
			tp_access(h, i);
	for (uint64_t i = 0; i < 20000; i++) {
		tp_access(h, 1000000 + i);
		/* The hot set keeps being used now and then during the scan. */
		if (i % 50 == 0) {
			rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			tp_access(h, (rng >> 33) % 300);
		}
	}
	for (uint64_t i = 0; i < 300; i++)
		hits += (uint64_t)tp_access(h, i);
	cr_assert_geq(hits, 290, "hot keys kept after the scan: %lu of 300", (unsigned long)hits);
	tc_close(h);
}

/* Frequently used keys stay while many keys are used once or twice. */
Test(cache_policy, frequency_beats_recency)
{
	uint64_t h = tc_open(500), rng = 99, hot_hits = 0, hot_refs = 0;

	uint64_t n = test_scaled(200000) < 40000 ? 40000 : test_scaled(200000);

	for (uint64_t i = 0; i < n; i++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		if ((rng >> 60) < 4) {
			int hit = tp_access(h, (rng >> 20) % 100);

			/* Counted after a warm-up. */
			if (i >= n / 5) {
				hot_hits += (uint64_t)hit;
				hot_refs++;
			}
		} else {
			/* A cold key, sometimes used twice in a row. */
			uint64_t k = 1000 + i;

			tp_access(h, k);
			if ((rng >> 59) & 1)
				tp_access(h, k);
		}
	}
	cr_assert_geq(hot_hits * 100, hot_refs * 95, "hot hit ratio %lu/%lu",
	              (unsigned long)hot_hits, (unsigned long)hot_refs);
	tc_close(h);
}
