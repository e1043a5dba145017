/*
 * sim_policies.c - the candidate policies the cache's policy was chosen
 * against, as plain single-threaded simulators (cost 1 per page, cold
 * cache, every reference counted). Written from the papers' descriptions:
 *
 *  - ARC: Megiddo and Modha, FAST 03 (T1, T2, ghosts B1, B2, target p).
 *    The benchmark checks it against the README's ARC column.
 *  - SIEVE: Zhang et al., NSDI 24 (FIFO, visited bit, a hand that moves
 *    from the tail towards the head).
 *  - S3-FIFO: Yang et al., SOSP 23 (small FIFO S of 10%, main M, ghost G
 *    as large as M in entries; an S entry with freq > 1 moves to M; M
 *    reinserts entries with a non-zero 2-bit count, decrementing it).
 *  - W-TinyLFU: Einziger et al., as Caffeine implements it (1% LRU window,
 *    SLRU main with 80% protected, a 4-bit count-min sketch halved every 10
 *    x capacity increments, admission by comparing the window's candidate
 *    with main's victim, and Caffeine's hill climber adapting the window).
 *    Deterministic: no random admission of warm candidates.
 */
#include "sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- ARC */

enum { SIM_T1, SIM_T2, SIM_B1, SIM_B2 };

struct sim_arc {
	struct sim_map map;
	struct sim_link *links;
	uint64_t *page;
	uint8_t *where;
	int32_t *free_nodes;
	size_t nfree, used, c;
	struct sim_list l[4];
	double p;
};

static void sim_arc_move(struct sim_arc *a, int32_t x, int to)
{
	sim_list_del(&a->l[a->where[x]], a->links, x);
	a->where[x] = (uint8_t)to;
	sim_list_push(&a->l[to], a->links, x);
}

static void sim_arc_forget(struct sim_arc *a, int list)
{
	int32_t y = a->l[list].tail;

	sim_list_del(&a->l[list], a->links, y);
	sim_map_del(&a->map, a->page[y]);
	a->free_nodes[a->nfree++] = y;
}

/* REPLACE(x, p) of the paper: demote T1's or T2's LRU page to its ghost. */
static void sim_arc_replace(struct sim_arc *a, int in_b2)
{
	double t1 = (double)a->l[SIM_T1].n;

	if (a->l[SIM_T1].n > 0 && (t1 > a->p || (in_b2 && t1 == a->p)))
		sim_arc_move(a, a->l[SIM_T1].tail, SIM_B1);
	else
		sim_arc_move(a, a->l[SIM_T2].tail, SIM_B2);
}

uint64_t sim_arc(const uint64_t *refs, size_t n, size_t capacity)
{
	struct sim_arc a;
	size_t nodes = 2 * capacity + 1;
	uint64_t hits = 0;

	memset(&a, 0, sizeof(a));
	a.c = capacity;
	a.links = malloc(nodes * sizeof(*a.links));
	a.page = malloc(nodes * sizeof(*a.page));
	a.where = malloc(nodes);
	a.free_nodes = malloc(nodes * sizeof(*a.free_nodes));
	if (a.links == NULL || a.page == NULL || a.where == NULL || a.free_nodes == NULL ||
	    sim_map_init(&a.map, nodes) != 0) {
		free(a.links);
		free(a.page);
		free(a.where);
		free(a.free_nodes);
		return UINT64_MAX;
	}
	for (int i = 0; i < 4; i++)
		sim_list_init(&a.l[i]);
	for (size_t i = 0; i < n; i++) {
		int32_t x = sim_map_get(&a.map, refs[i]);
		double c = (double)capacity;

		if (x >= 0 && (a.where[x] == SIM_T1 || a.where[x] == SIM_T2)) {
			hits++;
			sim_arc_move(&a, x, SIM_T2);
			continue;
		}
		if (x >= 0 && a.where[x] == SIM_B1) {
			double b1 = (double)a.l[SIM_B1].n, b2 = (double)a.l[SIM_B2].n;

			a.p = fmin(a.p + (b1 >= b2 ? 1.0 : b2 / b1), c);
			sim_arc_replace(&a, 0);
			sim_arc_move(&a, x, SIM_T2);
			continue;
		}
		if (x >= 0 && a.where[x] == SIM_B2) {
			double b1 = (double)a.l[SIM_B1].n, b2 = (double)a.l[SIM_B2].n;

			a.p = fmax(a.p - (b2 >= b1 ? 1.0 : b1 / b2), 0.0);
			sim_arc_replace(&a, 1);
			sim_arc_move(&a, x, SIM_T2);
			continue;
		}
		/* A page in no list. */
		if ((size_t)(a.l[SIM_T1].n + a.l[SIM_B1].n) == capacity) {
			if ((size_t)a.l[SIM_T1].n < capacity) {
				sim_arc_forget(&a, SIM_B1);
				sim_arc_replace(&a, 0);
			} else {
				sim_arc_forget(&a, SIM_T1);
			}
		} else {
			size_t total = (size_t)(a.l[SIM_T1].n + a.l[SIM_B1].n + a.l[SIM_T2].n +
			                        a.l[SIM_B2].n);

			if (total >= capacity) {
				if (total == 2 * capacity)
					sim_arc_forget(&a, SIM_B2);
				sim_arc_replace(&a, 0);
			}
		}
		x = a.nfree > 0 ? a.free_nodes[--a.nfree] : (int32_t)a.used++;
		a.page[x] = refs[i];
		a.where[x] = SIM_T1;
		sim_map_put(&a.map, refs[i], x);
		sim_list_push(&a.l[SIM_T1], a.links, x);
	}
	sim_map_free(&a.map);
	free(a.links);
	free(a.page);
	free(a.where);
	free(a.free_nodes);
	return hits;
}

/* ---------------------------------------------------------------- SIEVE */

uint64_t sim_sieve(const uint64_t *refs, size_t n, size_t capacity)
{
	struct sim_map map;
	struct sim_link *links = malloc(capacity * sizeof(*links));
	uint64_t *page = malloc(capacity * sizeof(*page)), hits = 0;
	uint8_t *visited = calloc(capacity, 1);
	struct sim_list q;
	int32_t hand = -1;
	size_t used = 0;

	if (links == NULL || page == NULL || visited == NULL || sim_map_init(&map, capacity) != 0) {
		free(links);
		free(page);
		free(visited);
		return UINT64_MAX;
	}
	sim_list_init(&q);
	for (size_t i = 0; i < n; i++) {
		int32_t x = sim_map_get(&map, refs[i]);

		if (x >= 0) {
			hits++;
			visited[x] = 1;
			continue;
		}
		if (used < capacity) {
			x = (int32_t)used++;
		} else {
			/* The hand moves towards the head, clearing visited bits,
			 * wrapping to the tail; it stops at the first unvisited. */
			int32_t h = hand >= 0 ? hand : q.tail;

			while (visited[h]) {
				visited[h] = 0;
				h = links[h].prev >= 0 ? links[h].prev : q.tail;
			}
			hand = links[h].prev;
			x = h;
			sim_list_del(&q, links, x);
			sim_map_del(&map, page[x]);
		}
		page[x] = refs[i];
		visited[x] = 0;
		sim_map_put(&map, refs[i], x);
		sim_list_push(&q, links, x);
	}
	sim_map_free(&map);
	free(links);
	free(page);
	free(visited);
	return hits;
}

/* ---------------------------------------------------------------- S3-FIFO */

enum { SIM_S, SIM_M, SIM_G };

uint64_t sim_s3fifo(const uint64_t *refs, size_t n, size_t capacity)
{
	size_t nodes = 2 * capacity + 2, nfree = 0, used = 0;
	size_t s_cap = capacity / 10 > 0 ? capacity / 10 : 1;
	size_t g_cap = capacity > s_cap ? capacity - s_cap : 1;
	struct sim_map map;
	struct sim_link *links = malloc(nodes * sizeof(*links));
	uint64_t *page = malloc(nodes * sizeof(*page)), hits = 0;
	uint8_t *freq = calloc(nodes, 1), *where = calloc(nodes, 1);
	int32_t *free_nodes = malloc(nodes * sizeof(*free_nodes));
	struct sim_list l[3];

	if (links == NULL || page == NULL || freq == NULL || where == NULL || free_nodes == NULL ||
	    sim_map_init(&map, nodes) != 0) {
		free(links);
		free(page);
		free(freq);
		free(where);
		free(free_nodes);
		return UINT64_MAX;
	}
	for (int i = 0; i < 3; i++)
		sim_list_init(&l[i]);
	for (size_t i = 0; i < n; i++) {
		int32_t x = sim_map_get(&map, refs[i]);
		int ghost = 0;

		if (x >= 0 && where[x] != SIM_G) {
			hits++;
			if (freq[x] < 3)
				freq[x]++;
			continue;
		}
		if (x >= 0) {
			sim_list_del(&l[SIM_G], links, x);
			ghost = 1;
		}
		while ((size_t)(l[SIM_S].n + l[SIM_M].n) >= capacity) {
			if ((size_t)l[SIM_S].n >= s_cap || l[SIM_M].n == 0) {
				int32_t t = l[SIM_S].tail;

				sim_list_del(&l[SIM_S], links, t);
				if (freq[t] > 1) {
					where[t] = SIM_M;
					freq[t] = 0;
					sim_list_push(&l[SIM_M], links, t);
					continue;
				}
				where[t] = SIM_G;
				sim_list_push(&l[SIM_G], links, t);
				if ((size_t)l[SIM_G].n > g_cap) {
					int32_t g = l[SIM_G].tail;

					sim_list_del(&l[SIM_G], links, g);
					sim_map_del(&map, page[g]);
					free_nodes[nfree++] = g;
				}
			} else {
				int32_t t = l[SIM_M].tail;

				sim_list_del(&l[SIM_M], links, t);
				if (freq[t] > 0) {
					freq[t]--;
					sim_list_push(&l[SIM_M], links, t);
				} else {
					sim_map_del(&map, page[t]);
					free_nodes[nfree++] = t;
				}
			}
		}
		if (!ghost) {
			x = nfree > 0 ? free_nodes[--nfree] : (int32_t)used++;
			page[x] = refs[i];
			sim_map_put(&map, refs[i], x);
		}
		freq[x] = 0;
		where[x] = ghost ? SIM_M : SIM_S;
		sim_list_push(&l[where[x]], links, x);
	}
	sim_map_free(&map);
	free(links);
	free(page);
	free(freq);
	free(where);
	free(free_nodes);
	return hits;
}

/* ---------------------------------------------------------------- W-TinyLFU */

struct sim_sketch {
	uint64_t *table; /* 16 four-bit counters a word */
	uint64_t mask;
	size_t additions, sample;
};

static int sim_sketch_init(struct sim_sketch *s, size_t capacity)
{
	size_t words = 16;

	while (words < capacity)
		words *= 2;
	s->table = calloc(words, sizeof(uint64_t));
	s->mask = words - 1;
	s->additions = 0;
	s->sample = 10 * (capacity > 0 ? capacity : 1);
	return s->table != NULL ? 0 : -1;
}

static inline uint64_t sim_mix(uint64_t x)
{
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ull;
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ull;
	x ^= x >> 32;
	return x;
}

/* The i-th counter of key: word index and bit shift. */
static inline void sim_sketch_at(const struct sim_sketch *s, uint64_t key, int i, uint64_t *w,
                                 unsigned *shift)
{
	uint64_t h = sim_mix(key + 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1));

	*w = h & s->mask;
	*shift = (unsigned)((h >> 48) & 15) * 4;
}

static unsigned sim_sketch_get(const struct sim_sketch *s, uint64_t key)
{
	unsigned m = 15;

	for (int i = 0; i < 4; i++) {
		uint64_t w;
		unsigned shift, c;

		sim_sketch_at(s, key, i, &w, &shift);
		c = (unsigned)(s->table[w] >> shift) & 15;
		if (c < m)
			m = c;
	}
	return m;
}

static void sim_sketch_add(struct sim_sketch *s, uint64_t key)
{
	int added = 0;

	for (int i = 0; i < 4; i++) {
		uint64_t w;
		unsigned shift;

		sim_sketch_at(s, key, i, &w, &shift);
		if (((s->table[w] >> shift) & 15) < 15) {
			s->table[w] += 1ull << shift;
			added = 1;
		}
	}
	if (added && ++s->additions >= s->sample) {
		/* Aging: halve every counter. */
		for (uint64_t i = 0; i <= s->mask; i++)
			s->table[i] = (s->table[i] >> 1) & 0x7777777777777777ull;
		s->additions /= 2;
	}
}

enum { SIM_WIN, SIM_PROB, SIM_PROT };

struct sim_wt {
	size_t c;
	struct sim_map map;
	struct sim_link *links;
	uint64_t *page;
	uint8_t *where;
	int32_t *free_nodes;
	size_t nfree, used;
	struct sim_list l[3];
	struct sim_sketch sketch;
	double window; /* target window size, adapted */
};

static void sim_wt_kill(struct sim_wt *w, int32_t x)
{
	sim_list_del(&w->l[w->where[x]], w->links, x);
	sim_map_del(&w->map, w->page[x]);
	w->free_nodes[w->nfree++] = x;
}

static void sim_wt_move(struct sim_wt *w, int32_t x, int to)
{
	sim_list_del(&w->l[w->where[x]], w->links, x);
	w->where[x] = (uint8_t)to;
	sim_list_push(&w->l[to], w->links, x);
}

/* Restores the sizes after an insertion or a window change: the window's
 * overflow becomes candidates at probation's head; each candidate duels
 * probation's victim by sketch frequency while the cache is over. */
static void sim_wt_balance(struct sim_wt *w)
{
	size_t win = (size_t)w->window, main_cap = w->c - win;
	size_t prot_cap = (size_t)(0.8 * (double)main_cap);
	struct sim_list *W = &w->l[SIM_WIN], *P = &w->l[SIM_PROB], *R = &w->l[SIM_PROT];
	int32_t cand = -1;
	size_t ncand = 0;

	while ((size_t)W->n < win && (size_t)(P->n + R->n) > main_cap)
		sim_wt_move(w, P->n > 0 ? P->tail : R->tail, SIM_WIN);
	while ((size_t)W->n > win) {
		int32_t y = W->tail;

		sim_wt_move(w, y, SIM_PROB);
		if (cand < 0)
			cand = y;
		ncand++;
	}
	while ((size_t)(W->n + P->n + R->n) > w->c) {
		int32_t victim = P->tail, next;

		if (ncand == 0) {
			sim_wt_kill(w, P->n > 0 ? P->tail : R->n > 0 ? R->tail : W->tail);
			continue;
		}
		next = w->links[cand].prev; /* the next candidate, towards the head */
		if (victim == cand || sim_sketch_get(&w->sketch, w->page[cand]) <=
		                              sim_sketch_get(&w->sketch, w->page[victim]))
			sim_wt_kill(w, cand);
		else
			sim_wt_kill(w, victim);
		cand = next;
		ncand--;
	}
	while ((size_t)R->n > prot_cap)
		sim_wt_move(w, R->tail, SIM_PROB);
}

uint64_t sim_wtinylfu(const uint64_t *refs, size_t n, size_t capacity)
{
	struct sim_wt w;
	size_t nodes = capacity + 2, sample = 10 * capacity, in_sample = 0, hits_sample = 0;
	double prev_rate = 0, step = -0.0625 * (double)capacity;
	uint64_t hits = 0;

	memset(&w, 0, sizeof(w));
	w.c = capacity;
	w.links = malloc(nodes * sizeof(*w.links));
	w.page = malloc(nodes * sizeof(*w.page));
	w.where = malloc(nodes);
	w.free_nodes = malloc(nodes * sizeof(*w.free_nodes));
	if (capacity < 2 || w.links == NULL || w.page == NULL || w.where == NULL ||
	    w.free_nodes == NULL || sim_map_init(&w.map, nodes) != 0 ||
	    sim_sketch_init(&w.sketch, capacity) != 0) {
		free(w.links);
		free(w.page);
		free(w.where);
		free(w.free_nodes);
		return UINT64_MAX;
	}
	for (int i = 0; i < 3; i++)
		sim_list_init(&w.l[i]);
	w.window = fmax(1.0, 0.01 * (double)capacity);
	for (size_t i = 0; i < n; i++) {
		int32_t x = sim_map_get(&w.map, refs[i]);

		sim_sketch_add(&w.sketch, refs[i]);
		in_sample++;
		if (x >= 0) {
			hits++;
			hits_sample++;
			if (w.where[x] == SIM_PROB) {
				size_t prot_cap = (size_t)(0.8 * (double)(w.c - (size_t)w.window));

				sim_wt_move(&w, x, SIM_PROT);
				while ((size_t)w.l[SIM_PROT].n > prot_cap)
					sim_wt_move(&w, w.l[SIM_PROT].tail, SIM_PROB);
			} else {
				sim_wt_move(&w, x, w.where[x]);
			}
		} else {
			x = w.nfree > 0 ? w.free_nodes[--w.nfree] : (int32_t)w.used++;
			w.page[x] = refs[i];
			w.where[x] = SIM_WIN;
			sim_map_put(&w.map, refs[i], x);
			sim_list_push(&w.l[SIM_WIN], w.links, x);
			sim_wt_balance(&w);
		}
		if (in_sample >= sample) {
			/* Hill climbing: keep the direction while the hit rate
			 * improves; restart the step on a big change, else decay. */
			double rate = (double)hits_sample / (double)in_sample;
			double delta = rate - prev_rate;
			double amount = delta >= 0 ? step : -step;

			step = fabs(delta) >= 0.05
			               ? 0.0625 * (double)capacity * (amount >= 0 ? 1 : -1)
			               : 0.98 * amount;
			prev_rate = rate;
			w.window = fmin(fmax(w.window + amount, 1.0), (double)capacity - 1);
			in_sample = hits_sample = 0;
			sim_wt_balance(&w);
		}
	}
	sim_map_free(&w.map);
	free(w.sketch.table);
	free(w.links);
	free(w.page);
	free(w.where);
	free(w.free_nodes);
	return hits;
}
