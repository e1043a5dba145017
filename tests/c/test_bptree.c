/*
 * test_bptree.c - the ordered index (mt_bptree): every operation against a
 * sorted model, keys that share long prefixes, allocation failure during
 * splits, and 8 and 32 threads (more than the cores) inserting, removing,
 * replacing and scanning at once, with the invariant checker run after
 * every test.
 */
#include "mantis.h"
#include "mt_alloc.h"
#include "mt_bptree.h"
#include "mt_pr.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct tb_item {
	uint16_t len;
	unsigned char key[126];
};

static const unsigned char *tb_key(const void *item, size_t *klen)
{
	const struct tb_item *it = item;

	*klen = it->len;
	return it->key;
}

static uint64_t tb_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* Key i of a family: a shared prefix of plen bytes, then i big-endian (so
 * key order is i order), then a length that varies with i (binary bytes,
 * zeros included). */
static void tb_make(struct tb_item *it, uint64_t i, unsigned plen)
{
	memset(it->key, 'p', plen);
	for (int b = 0; b < 8; b++)
		it->key[plen + b] = (unsigned char)(i >> (56 - 8 * b));
	it->len = (uint16_t)(plen + 8 + i % 5);
	for (unsigned b = plen + 8; b < it->len; b++)
		it->key[b] = (unsigned char)(i * 7 + b);
}

static void tb_check(const struct mt_bpt *t, long want)
{
	char err[256] = "";
	long n = mt_bpt_check(t, err, sizeof(err));

	cr_assert_geq(n, 0, "invariant: %s", err);
	if (want >= 0)
		cr_assert_eq(n, want, "items %ld, want %ld", n, want);
}

/* Random inserts, lookups, removals and scans against a presence array. */
static void tb_model_run(unsigned plen, uint64_t nkeys, uint64_t ops)
{
	struct mt_bpt t;
	struct tb_item *items = calloc(nkeys, sizeof(*items));
	char *in = calloc(nkeys, 1);
	void **out = calloc(nkeys + 1, sizeof(void *));
	uint64_t rng = 42 + plen, present = 0;

	cr_assert(items && in && out);
	for (uint64_t i = 0; i < nkeys; i++)
		tb_make(&items[i], i, plen);
	cr_assert_eq(mt_bpt_init(&t, tb_key, 0), MANTIS_OK);
	for (uint64_t op = 0; op < ops; op++) {
		uint64_t i = tb_rand(&rng) % nkeys;
		struct tb_item *it = &items[i];
		void *ex;

		switch (tb_rand(&rng) % 4) {
		case 0:
		case 1:
			cr_assert_eq(mt_bpt_insert(&t, it->key, it->len, it, &ex), MANTIS_OK);
			cr_assert_eq(ex, in[i] ? (void *)it : NULL);
			present += !in[i];
			in[i] = 1;
			break;
		case 2:
			cr_assert_eq(mt_bpt_remove(&t, it->key, it->len, NULL),
			             in[i] ? (void *)it : NULL);
			present -= in[i];
			in[i] = 0;
			break;
		default:
			cr_assert_eq(mt_bpt_get(&t, it->key, it->len), in[i] ? (void *)it : NULL);
			break;
		}
	}
	tb_check(&t, (long)present);
	/* A full scan returns exactly the present keys, in order. */
	cr_assert_eq(mt_bpt_scan(&t, NULL, 0, 0, NULL, 0, out, nkeys + 1), present);
	for (uint64_t i = 0, j = 0; i < nkeys; i++)
		if (in[i])
			cr_assert_eq(out[j++], &items[i]);
	/* Scans from every present key and from keys between them, in
	 * chunks of 7, agree with the model. */
	for (uint64_t k = 0; k < nkeys; k += 1 + nkeys / 97) {
		struct tb_item probe = items[k];
		uint64_t first = k, got;

		if (k % 2 == 1)
			probe.len = (uint16_t)(plen + 8); /* below items[k] if longer */
		for (int after = 0; after <= 1; after++) {
			uint64_t want =
			        first + (after && mt_bpt_cmp(probe.key, probe.len, items[k].key,
			                                     items[k].len) == 0);
			got = mt_bpt_scan(&t, probe.key, probe.len, after, NULL, 0, out, 7);
			for (uint64_t j = 0; j < got; j++) {
				while (want < nkeys && !in[want])
					want++;
				cr_assert_lt(want, nkeys);
				cr_assert_eq(out[j], &items[want], "scan from %llu",
				             (unsigned long long)k);
				want++;
			}
			while (want < nkeys && !in[want])
				want++;
			cr_assert(got == 7 || want == nkeys);
		}
	}
	/* Replace swaps the item of a present key only. */
	for (uint64_t i = 0; i < nkeys; i++) {
		struct tb_item copy = items[i];

		if (!in[i]) {
			cr_assert_eq(mt_bpt_replace(&t, copy.key, copy.len, &items[i], &copy), 0);
			continue;
		}
		cr_assert_eq(mt_bpt_replace(&t, copy.key, copy.len, &copy, &items[i]), 0);
		cr_assert_eq(mt_bpt_replace(&t, copy.key, copy.len, &items[i], &copy), 1);
		cr_assert_eq(mt_bpt_get(&t, copy.key, copy.len), &copy);
		cr_assert_eq(mt_bpt_replace(&t, copy.key, copy.len, &copy, &items[i]), 1);
	}
	tb_check(&t, (long)present);
	/* Bounded scans: [items[a], end) with end a key, a key between two
	 * (shorter), a prefix of the shared bytes or past them, agree with the
	 * model. */
	for (uint64_t a = 0; a < nkeys; a += 1 + nkeys / 61) {
		uint64_t b = a + tb_rand(&rng) % 200;
		struct tb_item end;
		size_t got;
		uint64_t want = a, last;

		if (b >= nkeys)
			b = nkeys - 1;
		end = items[b];
		last = b; /* keys < end: indexes < b */
		switch (a % 4) {
		case 1:
			end.len = (uint16_t)(plen + 8); /* <= items[b]: still > items[b-1] */
			break;
		case 2:
			end.len = (uint16_t)(plen > 0 ? plen - 1 : 0); /* below every key */
			last = a;
			break;
		case 3:
			memset(end.key, 0xff, sizeof(end.key)); /* above every key */
			end.len = (uint16_t)(plen + 9);
			last = nkeys;
			break;
		default:
			break;
		}
		if (end.len == 0)
			continue;
		got = mt_bpt_scan(&t, items[a].key, items[a].len, 0, end.key, end.len, out,
		                  nkeys + 1);
		for (uint64_t j = 0; j < got; j++) {
			while (want < last && !in[want])
				want++;
			cr_assert_lt(want, last, "bounded scan past its end (from %llu)",
			             (unsigned long long)a);
			cr_assert_eq(out[j], &items[want]);
			want++;
		}
		while (want < last && !in[want])
			want++;
		cr_assert_eq(want, last, "bounded scan stopped early (from %llu)",
		             (unsigned long long)a);
	}
	/* Remove everything: the skeleton stays, empty and valid. */
	for (uint64_t i = 0; i < nkeys; i++)
		cr_assert_eq(mt_bpt_remove(&t, items[i].key, items[i].len, &items[i]),
		             in[i] ? (void *)&items[i] : NULL);
	tb_check(&t, 0);
	cr_assert_eq(mt_bpt_scan(&t, NULL, 0, 0, NULL, 0, out, 1), 0);
	mt_bpt_destroy(&t);
	free(out);
	free(in);
	free(items);
}

Test(bptree, model_short_keys)
{
	tb_model_run(0, test_scaled(20000), test_scaled(200000));
}

Test(bptree, model_long_shared_prefixes)
{
	/* 100 shared bytes: every node's skip must carry past them. */
	tb_model_run(100, test_scaled(20000), test_scaled(200000));
}

Test(bptree, sequential_and_reverse_loads)
{
	uint64_t n = test_scaled(50000);
	struct tb_item *items = calloc(n, sizeof(*items));
	struct mt_bpt t;
	void *ex;

	cr_assert_not_null(items);
	for (int dir = 0; dir < 2; dir++) {
		cr_assert_eq(mt_bpt_init(&t, tb_key, 0), MANTIS_OK);
		for (uint64_t k = 0; k < n; k++) {
			uint64_t i = dir ? n - 1 - k : k;

			tb_make(&items[i], i, 8);
			cr_assert_eq(mt_bpt_insert(&t, items[i].key, items[i].len, &items[i], &ex),
			             MANTIS_OK);
			cr_assert_null(ex);
		}
		tb_check(&t, (long)n);
		for (uint64_t i = 0; i < n; i++)
			cr_assert_eq(mt_bpt_get(&t, items[i].key, items[i].len), &items[i]);
		cr_assert_gt(mt_bpt_mem_bytes(&t), 0);
		mt_bpt_destroy(&t);
	}
	free(items);
}

Test(bptree, allocation_failure_in_a_split_changes_nothing)
{
	uint64_t n = 3000, failures = 0;
	struct tb_item *items = calloc(n, sizeof(*items));
	struct mt_bpt t;
	void *ex;

	cr_assert_not_null(items);
	cr_assert_eq(mt_bpt_init(&t, tb_key, 0), MANTIS_OK);
	for (uint64_t i = 0; i < n; i++) {
		int rc;

		tb_make(&items[i], i * 2654435761u % n, 0);
		for (uint64_t k = 1;; k++) {
			mt_alloc_fail_after(k);
			rc = mt_bpt_insert(&t, items[i].key, items[i].len, &items[i], &ex);
			mt_alloc_fail_after(0);
			if (rc == MANTIS_OK)
				break;
			cr_assert_eq(rc, MANTIS_ENOMEM);
			cr_assert_null(mt_bpt_get(&t, items[i].key, items[i].len));
			failures++;
		}
		cr_assert_null(ex);
	}
	cr_assert_gt(failures, 0); /* splits did meet failures */
	tb_check(&t, (long)n);
	mt_bpt_destroy(&t);
	free(items);
}

/* ------------------------------------------------------------ threads */

struct tb_shared {
	struct mt_bpt t;
	struct tb_item *items; /* per thread: [id * per, (id + 1) * per) */
	struct tb_item *stable;
	uint64_t nstable, per, ops;
	int threads;
	char *in;
	uint64_t bad;
	pthread_barrier_t go;
};

struct tb_arg {
	struct tb_shared *s;
	int id;
};

/* Each thread owns a key range (inserted, removed, replaced, read and
 * checked against its own model) and scans the whole tree, checking order
 * and that every stable key (present throughout) comes back exactly once. */
static void *tb_worker(void *arg)
{
	struct tb_arg *a = arg;
	struct tb_shared *s = a->s;
	uint64_t rng = 7 + (uint64_t)a->id, lo = (uint64_t)a->id * s->per;
	void *out[64];
	void *ex;

	pthread_barrier_wait(&s->go);
	for (uint64_t op = 0; op < s->ops; op++) {
		uint64_t i = lo + tb_rand(&rng) % s->per;
		struct tb_item *it = &s->items[i];
		uint64_t r = tb_rand(&rng) % 16;

		if (r < 6) {
			if (mt_bpt_insert(&s->t, it->key, it->len, it, &ex) != MANTIS_OK ||
			    ex != (s->in[i] ? (void *)it : NULL))
				ck_pr_inc_64(&s->bad);
			s->in[i] = 1;
		} else if (r < 10) {
			if (mt_bpt_remove(&s->t, it->key, it->len, it) !=
			    (s->in[i] ? (void *)it : NULL))
				ck_pr_inc_64(&s->bad);
			s->in[i] = 0;
		} else if (r < 15) {
			if (mt_bpt_get(&s->t, it->key, it->len) != (s->in[i] ? (void *)it : NULL))
				ck_pr_inc_64(&s->bad);
		} else {
			/* A scan over a stretch of the stable keys and others. */
			uint64_t st = tb_rand(&rng) % s->nstable, next = st;
			const struct tb_item *prev = NULL;
			size_t got = mt_bpt_scan(&s->t, s->stable[st].key, s->stable[st].len, 0,
			                         NULL, 0, out, 64);

			for (size_t j = 0; j < got; j++) {
				const struct tb_item *x = out[j];

				if (prev != NULL &&
				    mt_bpt_cmp(prev->key, prev->len, x->key, x->len) >= 0)
					ck_pr_inc_64(&s->bad);
				if (x >= s->stable && x < s->stable + s->nstable) {
					/* No stable key skipped between two returned. */
					if ((uint64_t)(x - s->stable) != next)
						ck_pr_inc_64(&s->bad);
					next++;
				}
				prev = x;
			}
		}
	}
	return NULL;
}

static void tb_threads(int threads)
{
	struct tb_shared *s = calloc(1, sizeof(*s));
	pthread_t tid[32];
	struct tb_arg args[32];
	uint64_t total;

	cr_assert_not_null(s);
	s->threads = threads;
	s->per = 2000;
	s->ops = test_scaled(160000 / (uint64_t)threads * 4);
	s->nstable = 5000;
	total = s->per * (uint64_t)threads;
	s->items = calloc(total, sizeof(*s->items));
	s->stable = calloc(s->nstable, sizeof(*s->stable));
	s->in = calloc(total, 1);
	cr_assert(s->items && s->stable && s->in);
	/* Thread keys interleave with the stable keys: same family, odd and
	 * even indexes. */
	for (uint64_t i = 0; i < total; i++)
		tb_make(&s->items[i], (i % s->per * (uint64_t)threads + i / s->per) * 2 + 1, 4);
	for (uint64_t i = 0; i < s->nstable; i++)
		tb_make(&s->stable[i], i * 2 * (total / s->nstable + 1), 4);
	cr_assert_eq(mt_bpt_init(&s->t, tb_key, MT_BPT_HUGE), MANTIS_OK);
	for (uint64_t i = 0; i < s->nstable; i++) {
		void *ex;

		cr_assert_eq(mt_bpt_insert(&s->t, s->stable[i].key, s->stable[i].len, &s->stable[i],
		                           &ex),
		             MANTIS_OK);
	}
	pthread_barrier_init(&s->go, NULL, (unsigned)threads);
	for (int i = 0; i < threads; i++) {
		args[i] = (struct tb_arg){s, i};
		pthread_create(&tid[i], NULL, tb_worker, &args[i]);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	pthread_barrier_destroy(&s->go);
	cr_assert_eq(s->bad, 0, "%llu wrong answers", (unsigned long long)s->bad);
	uint64_t present = s->nstable;

	for (uint64_t i = 0; i < total; i++) {
		present += s->in[i];
		cr_assert_eq(mt_bpt_get(&s->t, s->items[i].key, s->items[i].len),
		             s->in[i] ? (void *)&s->items[i] : NULL);
	}
	tb_check(&s->t, (long)present);
	mt_bpt_destroy(&s->t);
	free(s->in);
	free(s->stable);
	free(s->items);
	free(s);
}

Test(bptree, eight_threads_on_two_cores, .timeout = 120)
{
	tb_threads(8);
}

Test(bptree, thirty_two_threads_on_two_cores, .timeout = 120)
{
	tb_threads(32);
}

/* Threads race to insert the same keys: exactly one wins each. */
struct tb_race {
	struct mt_bpt t;
	struct tb_item *items;
	uint64_t n, wins, bad;
	pthread_barrier_t go;
};

static void *tb_racer(void *arg)
{
	struct tb_race *r = arg;
	void *ex;

	pthread_barrier_wait(&r->go);
	for (uint64_t i = 0; i < r->n; i++) {
		if (mt_bpt_insert(&r->t, r->items[i].key, r->items[i].len, &r->items[i], &ex) !=
		    MANTIS_OK)
			ck_pr_inc_64(&r->bad);
		else if (ex == NULL)
			ck_pr_inc_64(&r->wins);
		else if (ex != &r->items[i])
			ck_pr_inc_64(&r->bad);
	}
	return NULL;
}

Test(bptree, racing_inserts_of_one_key_set, .timeout = 120)
{
	struct tb_race *r = calloc(1, sizeof(*r));
	pthread_t tid[8];

	cr_assert_not_null(r);
	r->n = test_scaled(40000);
	r->items = calloc(r->n, sizeof(*r->items));
	cr_assert_not_null(r->items);
	for (uint64_t i = 0; i < r->n; i++)
		tb_make(&r->items[i], i * 0x9E3779B97F4A7C15ull, 0);
	cr_assert_eq(mt_bpt_init(&r->t, tb_key, 0), MANTIS_OK);
	pthread_barrier_init(&r->go, NULL, 8);
	for (int i = 0; i < 8; i++)
		pthread_create(&tid[i], NULL, tb_racer, r);
	for (int i = 0; i < 8; i++)
		pthread_join(tid[i], NULL);
	pthread_barrier_destroy(&r->go);
	cr_assert_eq(r->bad, 0);
	cr_assert_eq(r->wins, r->n);
	tb_check(&r->t, (long)r->n);
	mt_bpt_destroy(&r->t);
	free(r->items);
	free(r);
}

Test(bptree, checker_finds_a_key_out_of_order)
{
	struct tb_item *items = calloc(1000, sizeof(*items));
	struct mt_bpt t;
	char err[256] = "";
	void *ex;

	cr_assert_not_null(items);
	cr_assert_eq(mt_bpt_init(&t, tb_key, 0), MANTIS_OK);
	for (uint64_t i = 0; i < 1000; i++) {
		tb_make(&items[i], i, 0);
		cr_assert_eq(mt_bpt_insert(&t, items[i].key, items[i].len, &items[i], &ex),
		             MANTIS_OK);
	}
	tb_check(&t, 1000);
	/* Break the contract (a key changed in place): the checker must see
	 * it, whether as disorder or as a stale prefix. */
	items[500].key[7] = 0xff;
	cr_assert_eq(mt_bpt_check(&t, err, sizeof(err)), -1);
	cr_assert_neq(err[0], '\0');
	items[500].key[7] = (unsigned char)500;
	tb_check(&t, 1000);
	mt_bpt_destroy(&t);
	free(items);
}
