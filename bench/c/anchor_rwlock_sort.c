/*
 * anchor_rwlock_sort.c - the "before" cache (see anchor_rwlock_sort.h).
 *
 * Open addressing with linear probing and backward-shift deletion; every
 * access holds the rwlock, so the table needs no other synchronisation. The
 * access clock is one shared atomic counter, incremented by every get, as a
 * recency stamp needs. Eviction copies (last, slot) for every entry, sorts
 * them with qsort and removes the oldest.
 */
#include "anchor_rwlock_sort.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct anchor_rs_entry {
	uint8_t key[16];
	uint32_t klen; /* 0: empty slot */
	uint32_t vlen;
	uint64_t last; /* access stamp (atomic: readers write it) */
	uint64_t hash;
	unsigned char *value;
};

struct anchor_rs {
	pthread_rwlock_t lock;
	uint64_t clock;
	struct anchor_rs_entry *slots;
	size_t mask, n, capacity;
	struct anchor_rs_order {
		uint64_t last;
		size_t slot;
	} * order; /* eviction scratch */
};

static uint64_t anchor_rs_hash(const void *key, size_t klen)
{
	const unsigned char *p = key;
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < klen; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h ^ (h >> 29);
}

struct anchor_rs *anchor_rs_open(size_t capacity)
{
	struct anchor_rs *c = calloc(1, sizeof(*c));
	size_t n = 16;

	if (c == NULL)
		return NULL;
	while (n < 2 * capacity)
		n *= 2;
	c->slots = calloc(n, sizeof(*c->slots));
	c->order = malloc(capacity * sizeof(*c->order));
	if (c->slots == NULL || c->order == NULL || pthread_rwlock_init(&c->lock, NULL) != 0) {
		free(c->slots);
		free(c->order);
		free(c);
		return NULL;
	}
	c->mask = n - 1;
	c->capacity = capacity;
	return c;
}

void anchor_rs_close(struct anchor_rs *c)
{
	for (size_t i = 0; i <= c->mask; i++)
		free(c->slots[i].value);
	pthread_rwlock_destroy(&c->lock);
	free(c->slots);
	free(c->order);
	free(c);
}

static size_t anchor_rs_find(const struct anchor_rs *c, uint64_t h, const void *key, size_t klen)
{
	size_t i = h & c->mask;

	while (c->slots[i].klen != 0) {
		if (c->slots[i].hash == h && c->slots[i].klen == klen &&
		    memcmp(c->slots[i].key, key, klen) == 0)
			return i;
		i = (i + 1) & c->mask;
	}
	return i; /* the empty slot ending the run */
}

int anchor_rs_get(struct anchor_rs *c, const void *key, size_t klen, void *buf, size_t cap,
                  size_t *vlen)
{
	uint64_t h = anchor_rs_hash(key, klen);
	int rc = -1;
	size_t i;

	pthread_rwlock_rdlock(&c->lock);
	i = anchor_rs_find(c, h, key, klen);
	if (c->slots[i].klen != 0) {
		struct anchor_rs_entry *e = &c->slots[i];

		__atomic_store_n(&e->last, __atomic_add_fetch(&c->clock, 1, __ATOMIC_RELAXED),
		                 __ATOMIC_RELAXED);
		*vlen = e->vlen;
		rc = e->vlen <= cap ? 0 : -2;
		if (rc == 0)
			memcpy(buf, e->value, e->vlen);
	}
	pthread_rwlock_unlock(&c->lock);
	return rc;
}

static int anchor_rs_cmp(const void *a, const void *b)
{
	const struct anchor_rs_order *x = a, *y = b;

	return x->last < y->last ? -1 : x->last > y->last;
}

/* Removes slot i, shifting the rest of its run back. Write lock held. */
static void anchor_rs_remove(struct anchor_rs *c, size_t i)
{
	size_t j;

	free(c->slots[i].value);
	for (j = (i + 1) & c->mask; c->slots[j].klen != 0; j = (j + 1) & c->mask) {
		size_t home = c->slots[j].hash & c->mask;
		int between = i <= j ? (home > i && home <= j) : (home > i || home <= j);

		if (!between) {
			c->slots[i] = c->slots[j];
			i = j;
		}
	}
	memset(&c->slots[i], 0, sizeof(c->slots[i]));
	c->n--;
}

/* The seed design's eviction: sort every entry by last access. */
static void anchor_rs_evict(struct anchor_rs *c)
{
	size_t k = 0;

	for (size_t i = 0; i <= c->mask; i++)
		if (c->slots[i].klen != 0)
			c->order[k++] = (struct anchor_rs_order){c->slots[i].last, i};
	qsort(c->order, k, sizeof(*c->order), anchor_rs_cmp);
	anchor_rs_remove(c, c->order[0].slot);
}

int anchor_rs_put(struct anchor_rs *c, const void *key, size_t klen, const void *value, size_t vlen)
{
	uint64_t h = anchor_rs_hash(key, klen);
	unsigned char *v = malloc(vlen > 0 ? vlen : 1);
	size_t i;

	if (v == NULL || klen == 0 || klen > 16) {
		free(v);
		return -1;
	}
	memcpy(v, value, vlen);
	pthread_rwlock_wrlock(&c->lock);
	i = anchor_rs_find(c, h, key, klen);
	if (c->slots[i].klen == 0) {
		if (c->n == c->capacity) {
			anchor_rs_evict(c);
			i = anchor_rs_find(c, h, key, klen);
		}
		memcpy(c->slots[i].key, key, klen);
		c->slots[i].klen = (uint32_t)klen;
		c->slots[i].hash = h;
		c->n++;
	} else {
		free(c->slots[i].value);
	}
	c->slots[i].value = v;
	c->slots[i].vlen = (uint32_t)vlen;
	c->slots[i].last = __atomic_add_fetch(&c->clock, 1, __ATOMIC_RELAXED);
	pthread_rwlock_unlock(&c->lock);
	return 0;
}
