/*
 * sim_lru.c - the reference LRU simulator and the simulators' page map.
 *
 * LRU: a hit moves the page to the head of a list; a miss on a full cache
 * evicts the tail. Cold cache, every reference counted. The benchmark
 * checks it against the README's LRU column to the second decimal.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

static inline uint64_t sim_hash(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

int sim_map_init(struct sim_map *m, size_t n)
{
	size_t cap = 16;

	while (cap < 2 * n + 2)
		cap *= 2;
	m->keys = malloc(cap * sizeof(*m->keys));
	m->vals = malloc(cap * sizeof(*m->vals));
	if (m->keys == NULL || m->vals == NULL) {
		free(m->keys);
		free(m->vals);
		return -1;
	}
	memset(m->keys, 0xff, cap * sizeof(*m->keys)); /* SIM_MAP_EMPTY */
	m->mask = cap - 1;
	return 0;
}

void sim_map_free(struct sim_map *m)
{
	free(m->keys);
	free(m->vals);
}

int32_t sim_map_get(const struct sim_map *m, uint64_t key)
{
	for (uint64_t i = sim_hash(key) & m->mask;; i = (i + 1) & m->mask) {
		if (m->keys[i] == key)
			return m->vals[i];
		if (m->keys[i] == SIM_MAP_EMPTY)
			return -1;
	}
}

void sim_map_put(struct sim_map *m, uint64_t key, int32_t val)
{
	for (uint64_t i = sim_hash(key) & m->mask;; i = (i + 1) & m->mask) {
		if (m->keys[i] == key || m->keys[i] == SIM_MAP_EMPTY) {
			m->keys[i] = key;
			m->vals[i] = val;
			return;
		}
	}
}

void sim_map_del(struct sim_map *m, uint64_t key)
{
	uint64_t i = sim_hash(key) & m->mask, j;

	while (m->keys[i] != key) {
		if (m->keys[i] == SIM_MAP_EMPTY)
			return;
		i = (i + 1) & m->mask;
	}
	/* Backward shift: pull later keys of the run into the hole when their
	 * home slot does not lie cyclically in (i, j]. */
	for (j = (i + 1) & m->mask; m->keys[j] != SIM_MAP_EMPTY; j = (j + 1) & m->mask) {
		uint64_t home = sim_hash(m->keys[j]) & m->mask;
		int between = i <= j ? (home > i && home <= j) : (home > i || home <= j);

		if (!between) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			i = j;
		}
	}
	m->keys[i] = SIM_MAP_EMPTY;
}

uint64_t sim_lru(const uint64_t *refs, size_t n, size_t capacity)
{
	struct sim_map map;
	struct sim_link *links = malloc(capacity * sizeof(*links));
	uint64_t *page = malloc(capacity * sizeof(*page)), hits = 0;
	struct sim_list lru;
	size_t used = 0;

	if (links == NULL || page == NULL || sim_map_init(&map, capacity) != 0) {
		free(links);
		free(page);
		return UINT64_MAX;
	}
	sim_list_init(&lru);
	for (size_t i = 0; i < n; i++) {
		int32_t x = sim_map_get(&map, refs[i]);

		if (x >= 0) {
			hits++;
			sim_list_del(&lru, links, x);
			sim_list_push(&lru, links, x);
			continue;
		}
		if (used < capacity) {
			x = (int32_t)used++;
		} else {
			x = lru.tail;
			sim_list_del(&lru, links, x);
			sim_map_del(&map, page[x]);
		}
		page[x] = refs[i];
		sim_map_put(&map, refs[i], x);
		sim_list_push(&lru, links, x);
	}
	sim_map_free(&map);
	free(links);
	free(page);
	return hits;
}
