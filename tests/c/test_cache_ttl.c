/*
 * test_cache_ttl.c - per-entry TTL: expired entries are never returned, and
 * they are reclaimed proactively (by the timer wheels, by later puts on any
 * shard, by mantis_cache_expire), so that they do not hold capacity. Also
 * the timer wheel (mt_timerwheel.c) on its own.
 *
 * The tests move the cache's clock with mt_cache_test_advance_clock instead
 * of sleeping (the shift is process-wide and only moves forward).
 */
#include "mantis.h"
#include "mt_cache.h"
#include "mt_timerwheel.h"
#include "test_cache_util.h"

#include <criterion/criterion.h>
#include <stdlib.h>

#define MS 1000000ull

Test(cache_ttl, expired_entry_is_a_miss)
{
	uint64_t h = tc_open(1 << 16);
	char buf[16];
	mantis_cache_stats_t s;

	/* TTLs and clock steps are large against the test's own run time,
	 * which valgrind stretches. */
	cr_assert_eq(tc_put(h, "k", "v", 0, 1000 * 1000, 0), 1);
	cr_assert_eq(tc_put(h, "forever", "v", 0, 0, 0), 1);
	cr_assert_eq(tc_get(h, "k", buf, sizeof(buf), NULL), MANTIS_OK);
	mt_cache_test_advance_clock(990 * 1000 * MS);
	cr_assert_eq(tc_get(h, "k", buf, sizeof(buf), NULL), MANTIS_OK);
	mt_cache_test_advance_clock(20 * 1000 * MS);
	cr_assert_eq(tc_get(h, "k", buf, sizeof(buf), NULL), MANTIS_NOTFOUND);
	/* The reader that found it expired reclaimed it. */
	s = tc_stats(h);
	cr_assert_eq(s.expirations, 1);
	cr_assert_eq(s.entries, 1);
	cr_assert_eq(s.cost, 7 + 1 + MANTIS_CACHE_ENTRY_OVERHEAD);
	cr_assert_eq(s.misses, 1);
	cr_assert_eq(tc_get(h, "forever", buf, sizeof(buf), NULL), MANTIS_OK);
	tc_close(h);
}

Test(cache_ttl, replacing_sets_a_new_ttl)
{
	uint64_t h = tc_open(1 << 16);
	char buf[16];

	tc_put(h, "a", "1", 0, 60000, 0);
	tc_put(h, "a", "2", 0, 0, 0); /* no expiry any more */
	tc_put(h, "b", "1", 0, 0, 0);
	tc_put(h, "b", "2", 0, 60000, 0); /* now expires */
	mt_cache_test_advance_clock(120000 * MS);
	cr_assert_eq(tc_get(h, "a", buf, sizeof(buf), NULL), MANTIS_OK);
	cr_assert_str_eq(buf, "2");
	cr_assert_eq(tc_get(h, "b", buf, sizeof(buf), NULL), MANTIS_NOTFOUND);
	tc_close(h);
}

Test(cache_ttl, huge_ttl_never_expires)
{
	uint64_t h = tc_open(1 << 16), ex = 9;
	char buf[16];

	tc_put(h, "k", "v", 0, UINT64_MAX, 0);
	tc_put(h, "j", "v", 0, UINT64_MAX / 1000000, 0);
	mt_cache_test_advance_clock(400ull * 24 * 3600 * 1000 * MS); /* 400 days */
	cr_assert_eq(mantis_cache_expire(h, &ex), MANTIS_OK);
	cr_assert_eq(ex, 0);
	cr_assert_eq(tc_get(h, "k", buf, sizeof(buf), NULL), MANTIS_OK);
	cr_assert_eq(tc_get(h, "j", buf, sizeof(buf), NULL), MANTIS_OK);
	tc_close(h);
}

/* TTLs for the expiry test: none for every tenth key, else 1 to 3 s or 60
 * to 62 s. */
static uint64_t tc_ttl_of(uint64_t i)
{
	if (i % 10 == 0)
		return 0;
	return (i % 2 ? 1000 : 60000) + i % 2000;
}

/* Entries nobody reads again are reclaimed by mantis_cache_expire. */
Test(cache_ttl, expire_reclaims_untouched_entries)
{
	uint64_t h = tc_open(1 << 24), ex = 0; /* 64 shards */
	uint64_t n = test_scaled(20000);
	mantis_cache_stats_t s;

	cr_assert_eq(mt_cache_test_shards(h), 64);
	for (uint64_t i = 0; i < n; i++) {
		unsigned char k[8];

		tc_key8(k, i);
		cr_assert_eq(mantis_cache_put(h, k, 8, "v", 1, 1, tc_ttl_of(i), 0, NULL),
		             MANTIS_OK);
	}
	cr_assert_eq(mantis_cache_expire(h, &ex), MANTIS_OK);
	cr_assert_eq(ex, 0, "nothing is due yet");
	mt_cache_test_advance_clock(30000 * MS);
	cr_assert_eq(mantis_cache_expire(h, &ex), MANTIS_OK);
	s = tc_stats(h);
	cr_assert_eq(s.expirations, ex);
	/* Exactly the short ones (the test's own run time is far below the
	 * gap between the two groups). */
	uint64_t want = 0;
	for (uint64_t i = 0; i < n; i++)
		if (tc_ttl_of(i) != 0 && tc_ttl_of(i) < 30000)
			want++;
	cr_assert_eq(ex, want);
	mt_cache_test_advance_clock(100000 * MS);
	cr_assert_eq(mantis_cache_expire(h, &ex), MANTIS_OK);
	s = tc_stats(h);
	cr_assert_eq(s.entries, (n + 9) / 10);
	cr_assert_eq(s.cost, (n + 9) / 10);
	cr_assert_eq(s.expirations, n - (n + 9) / 10);
	for (uint64_t i = 0; i < n; i++) {
		unsigned char k[8], v;
		size_t vlen;

		tc_key8(k, i);
		cr_assert_eq(mantis_cache_get(h, k, 8, &v, 1, &vlen, NULL),
		             i % 10 == 0 ? MANTIS_OK : MANTIS_NOTFOUND);
	}
	tc_close(h);
}

/* Without any call to expire and without reading them again: puts on
 * other keys advance every shard's wheel in turn. */
Test(cache_ttl, puts_reclaim_other_shards)
{
	uint64_t h = tc_open(1 << 24);
	uint64_t n = test_scaled(5000);
	mantis_cache_stats_t s;

	for (uint64_t i = 0; i < n; i++) {
		unsigned char k[8];

		tc_key8(k, i);
		cr_assert_eq(mantis_cache_put(h, k, 8, "v", 1, 1, 50, 0, NULL), MANTIS_OK);
	}
	mt_cache_test_advance_clock(60 * MS);
	/* 2 x 64 puts of one key: each also sweeps one neighbour shard. */
	for (int i = 0; i < 128; i++)
		cr_assert_eq(tc_put(h, "other", "v", 1, 0, (uint64_t)i), 1);
	s = tc_stats(h);
	cr_assert_eq(s.expirations, n);
	cr_assert_eq(s.entries, 1);
	cr_assert_eq(s.cost, 1);
	tc_close(h);
}

/* Expired entries do not hold capacity: new entries need no eviction. */
Test(cache_ttl, expired_entries_free_capacity)
{
	uint64_t h = tc_open(1000);
	mantis_cache_stats_t s;

	for (uint64_t i = 0; i < 1000; i++) {
		unsigned char k[8];

		tc_key8(k, i);
		cr_assert_eq(mantis_cache_put(h, k, 8, "v", 1, 1, 600000, 0, NULL), MANTIS_OK);
	}
	cr_assert_eq(tc_stats(h).cost, 1000);
	mt_cache_test_advance_clock(601000 * MS);
	for (uint64_t i = 1000; i < 2000; i++)
		cr_assert_eq(tc_put8(h, i, i, 0), 1);
	s = tc_stats(h);
	cr_assert_eq(s.evictions, 0);
	cr_assert_eq(s.expirations, 1000);
	cr_assert_eq(s.entries, 1000);
	for (uint64_t i = 1000; i < 2000; i++)
		cr_assert_eq(tc_get8(h, i, NULL), MANTIS_OK);
	tc_close(h);
}

/* A put over an expired entry treats the key as absent, whatever the
 * expired entry's version. */
Test(cache_ttl, expired_version_does_not_block)
{
	uint64_t h = tc_open(1 << 16), ver = 0;
	char buf[16];

	cr_assert_eq(tc_put(h, "k", "new", 0, 60000, 100), 1);
	mt_cache_test_advance_clock(61000 * MS);
	cr_assert_eq(tc_put(h, "k", "old", 0, 0, 50), 1);
	cr_assert_eq(tc_get(h, "k", buf, sizeof(buf), &ver), MANTIS_OK);
	cr_assert_eq(ver, 50);
	cr_assert_eq(tc_stats(h).expirations, 1);
	tc_close(h);
}

/* ---------------------------------------------------------------- the wheel */

struct tw_timer {
	struct mt_tw_node node;
	uint64_t due;
	uint64_t fired_at; /* 0: not fired */
	int deleted;
};

struct tw_ctx {
	uint64_t prev; /* the previous advance's target */
	uint64_t now;  /* this advance's target */
	uint64_t fired;
};

static void tw_fire(struct mt_tw_node *n, void *arg)
{
	struct tw_timer *t = (struct tw_timer *)(void *)n;
	struct tw_ctx *c = arg;

	cr_assert_eq(t->fired_at, 0, "fired twice");
	cr_assert_not(t->deleted, "a deleted timer fired");
	cr_assert_leq(t->due, c->now, "early");
	cr_assert_gt(t->due, c->prev, "late: due at an earlier advance");
	t->fired_at = c->now;
	c->fired++;
}

/* Random timers over a range of 2^40 ticks, advanced in random steps from
 * one tick to 2^36: each fires exactly once, at the first advance whose
 * target reaches its due tick. */
Test(cache_ttl, timer_wheel_fires_each_timer_once_on_time)
{
	uint64_t n = test_scaled(20000);
	struct tw_timer *t = calloc(n, sizeof(*t));
	struct mt_tw *w = malloc(sizeof(*w));
	struct tw_ctx c = {.prev = 1000, .now = 1000, .fired = 0};
	uint64_t rng = 42, prev = 1000, deleted = 0;

	cr_assert_not_null(t);
	cr_assert_not_null(w);
	mt_tw_init(w, 1000);
	for (uint64_t i = 0; i < n; i++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		/* Mostly near, some far, some very far. */
		uint64_t span = (rng >> 60) < 10   ? 5000
		                : (rng >> 60) < 14 ? 1ull << 24
		                                   : 1ull << 40;
		t[i].due = 1001 + (rng >> 8) % span;
		mt_tw_add(w, &t[i].node, t[i].due);
	}
	cr_assert_eq(w->count, n);
	while (c.fired + deleted < n) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t step = 1 + (rng >> 20) % ((rng >> 62) == 0 ? (1ull << 36) : 3000);
		c.prev = prev;
		c.now = prev + step;
		mt_tw_advance(w, c.now, tw_fire, &c);
		cr_assert_eq(w->now, c.now);
		/* Delete a few pending timers now and then. */
		if ((rng >> 10) % 5 == 0) {
			uint64_t j = (rng >> 30) % n;

			if (t[j].fired_at == 0 && !t[j].deleted) {
				mt_tw_del(w, &t[j].node);
				t[j].deleted = 1;
				deleted++;
			}
		}
		prev = c.now;
	}
	cr_assert_eq(w->count, 0);
	cr_assert_eq(mt_tw_next(w), UINT64_MAX);
	for (uint64_t i = 0; i < n; i++) {
		if (t[i].deleted)
			continue;
		cr_assert_neq(t[i].fired_at, 0, "timer %lu never fired", (unsigned long)i);
	}
	free(t);
	free(w);
}

/* A timer is never late: after advancing to exactly its due tick it has
 * fired, for due ticks at every level boundary. */
Test(cache_ttl, timer_wheel_exact_boundaries)
{
	struct mt_tw *w = malloc(sizeof(*w));
	struct tw_timer t;
	struct tw_ctx c = {.now = 0, .fired = 0};

	cr_assert_not_null(w);
	for (unsigned shift = 0; shift < 47; shift++) {
		for (int delta = -1; delta <= 1; delta++) {
			uint64_t start = 12345, due = start + (1ull << shift) + (uint64_t)delta;

			if (due <= start)
				continue;
			memset(&t, 0, sizeof(t));
			t.due = due;
			mt_tw_init(w, start);
			mt_tw_add(w, &t.node, due);
			c.prev = start;
			c.now = due - 1;
			mt_tw_advance(w, c.now, tw_fire, &c);
			cr_assert_eq(t.fired_at, 0, "early at shift %u", shift);
			c.prev = due - 1;
			c.now = due;
			mt_tw_advance(w, c.now, tw_fire, &c);
			cr_assert_eq(t.fired_at, due, "late at shift %u delta %d", shift, delta);
		}
	}
	/* A due tick in the past fires at the next advance. */
	mt_tw_init(w, 100);
	memset(&t, 0, sizeof(t));
	t.due = 101; /* clamped to the next tick */
	mt_tw_add(w, &t.node, 5);
	c.prev = 100;
	c.now = 101;
	mt_tw_advance(w, 101, tw_fire, &c);
	cr_assert_eq(t.fired_at, 101);
	free(w);
}

/* A put holds its shard's lock for a bounded expiry work, whatever the
 * number of entries that expired at once: it reclaims about
 * MT_CACHE_EXPIRE_BUDGET (64) of them, later calls the rest, and
 * mantis_cache_expire everything (issue 11, item 2). */
Test(cache_ttl, a_put_reclaims_a_bounded_number)
{
	uint64_t h = tc_open(1 << 20); /* 8 shards: keys spread over them */
	mantis_cache_stats_t s;
	uint64_t expired = 0;

	for (uint64_t i = 0; i < 4000; i++)
		cr_assert_eq(tc_put8(h, i, i, 1), 1);
	for (uint64_t i = 0; i < 4000; i++) {
		unsigned char k[8];

		/* Each a different tick, and far enough that none expires
		 * while a slow (sanitizer) build is still putting. */
		tc_key8(k, i);
		cr_assert_eq(mantis_cache_put(h, k, 8, &i, 8, 1, 600000 + i, 2, NULL), MANTIS_OK);
	}
	cr_assert_eq(tc_stats(h).expirations, 0);
	mt_cache_test_advance_clock(700000 * MS);
	cr_assert_eq(tc_put8(h, 1u << 20, 0, 1), 1);
	s = tc_stats(h);
	/* The put's own shard and one neighbour, each about one budget. */
	cr_assert_leq(s.expirations, 2 * (64 + 8), "one put reclaimed %llu",
	              (unsigned long long)s.expirations);
	cr_assert_gt(s.expirations, 0);
	cr_assert_eq(mantis_cache_expire(h, &expired), MANTIS_OK);
	s = tc_stats(h);
	cr_assert_eq(s.expirations, 4000);
	cr_assert_eq(s.entries, 1);
	tc_close(h);
}
