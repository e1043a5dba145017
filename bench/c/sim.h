/*
 * sim.h - single-threaded cache-policy simulators for the benchmark (bench
 * only, never linked into the library). They replay an array of page
 * numbers with cost 1 per page and return the hit count.
 *
 * sim_lru.c holds the reference LRU, which must reproduce the LRU column of
 * ../shared/traces/README.md to the second decimal: that proves the trace
 * reader. sim_policies.c holds the other candidates the policy was chosen
 * against (ARC, SIEVE, S3-FIFO, W-TinyLFU); they justify the choice and are
 * never reported as "ours": those figures come from replaying through the
 * real cache (mantis_cache_*).
 *
 * Shared here: a map from page to node index (open addressing, linear
 * probing, backward-shift deletion) and array-based doubly linked lists.
 */
#ifndef SIM_H
#define SIM_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- map */

struct sim_map {
	uint64_t *keys; /* SIM_MAP_EMPTY or a page */
	int32_t *vals;
	uint64_t mask;
};

#define SIM_MAP_EMPTY UINT64_MAX

/* A map for up to n keys (half load at most). Returns 0 or -1. */
int sim_map_init(struct sim_map *m, size_t n);
void sim_map_free(struct sim_map *m);
/* The node of key, or -1. */
int32_t sim_map_get(const struct sim_map *m, uint64_t key);
void sim_map_put(struct sim_map *m, uint64_t key, int32_t val);
void sim_map_del(struct sim_map *m, uint64_t key);

/* ---------------------------------------------------------------- lists */

struct sim_link {
	int32_t prev, next;
};

struct sim_list {
	int32_t head, tail; /* head: most recent; -1 when empty */
	int64_t n;
};

static inline void sim_list_init(struct sim_list *l)
{
	l->head = l->tail = -1;
	l->n = 0;
}

static inline void sim_list_push(struct sim_list *l, struct sim_link *k, int32_t x)
{
	k[x].prev = -1;
	k[x].next = l->head;
	if (l->head >= 0)
		k[l->head].prev = x;
	else
		l->tail = x;
	l->head = x;
	l->n++;
}

static inline void sim_list_del(struct sim_list *l, struct sim_link *k, int32_t x)
{
	if (k[x].prev >= 0)
		k[k[x].prev].next = k[x].next;
	else
		l->head = k[x].next;
	if (k[x].next >= 0)
		k[k[x].next].prev = k[x].prev;
	else
		l->tail = k[x].prev;
	l->n--;
}

/* ---------------------------------------------------------------- simulators */

/* Each returns the number of hits replaying refs[0..n) through a cache of
 * capacity pages, or UINT64_MAX if it ran out of memory. */
uint64_t sim_lru(const uint64_t *refs, size_t n, size_t capacity);
/* ARC as specified by Megiddo and Modha (FAST 03). */
uint64_t sim_arc(const uint64_t *refs, size_t n, size_t capacity);
/* SIEVE (Zhang et al., NSDI 24). */
uint64_t sim_sieve(const uint64_t *refs, size_t n, size_t capacity);
/* S3-FIFO (Yang et al., SOSP 23): 10% small FIFO, ghost, main with 2-bit
 * reinsertion. */
uint64_t sim_s3fifo(const uint64_t *refs, size_t n, size_t capacity);
/* W-TinyLFU as in Caffeine: 1% LRU window, SLRU main (80% protected),
 * 4-bit count-min sketch with aging, hill-climbing window. */
uint64_t sim_wtinylfu(const uint64_t *refs, size_t n, size_t capacity);

#endif /* SIM_H */
