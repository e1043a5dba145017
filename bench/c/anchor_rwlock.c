/*
 * anchor_rwlock.c - the benchmark's "before" anchor (impl "rwlock"): the seed
 * design, a chained hash table behind one global pthread_rwlock. Readers
 * share the lock; every write takes it exclusively. The table doubles when
 * it holds as many entries as buckets (under the write lock). Unordered: no
 * prefix scans.
 */
#include "bench_store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct rw_node {
	struct rw_node *next;
	uint64_t hash;
	uint32_t klen;
	uint32_t vlen;
	unsigned char data[]; /* key then value */
};

struct rw_table {
	pthread_rwlock_t lock;
	struct rw_node **buckets;
	size_t mask;
	size_t count;
};

static void *rw_open(size_t nkeys)
{
	struct rw_table *t = calloc(1, sizeof(*t));
	size_t n = 1024;

	(void)nkeys; /* grows like the seed did: from small */
	if (t == NULL)
		return NULL;
	t->buckets = calloc(n, sizeof(*t->buckets));
	if (t->buckets == NULL) {
		free(t);
		return NULL;
	}
	t->mask = n - 1;
	pthread_rwlock_init(&t->lock, NULL);
	return t;
}

static void rw_close(void *s)
{
	struct rw_table *t = s;

	for (size_t i = 0; i <= t->mask; i++) {
		struct rw_node *n = t->buckets[i];

		while (n != NULL) {
			struct rw_node *next = n->next;

			free(n);
			n = next;
		}
	}
	pthread_rwlock_destroy(&t->lock);
	free(t->buckets);
	free(t);
}

static struct rw_node **rw_slot(struct rw_table *t, uint64_t h, const void *k, size_t klen)
{
	struct rw_node **p = &t->buckets[h & t->mask];

	for (; *p != NULL; p = &(*p)->next)
		if ((*p)->hash == h && (*p)->klen == klen && memcmp((*p)->data, k, klen) == 0)
			break;
	return p;
}

/* Doubles the table (write lock held). */
static void rw_grow(struct rw_table *t)
{
	size_t n = (t->mask + 1) * 2;
	struct rw_node **b = calloc(n, sizeof(*b));

	if (b == NULL)
		return; /* keep the longer chains */
	for (size_t i = 0; i <= t->mask; i++) {
		struct rw_node *x = t->buckets[i];

		while (x != NULL) {
			struct rw_node *next = x->next;

			x->next = b[x->hash & (n - 1)];
			b[x->hash & (n - 1)] = x;
			x = next;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->mask = n - 1;
}

static int rw_put(void *s, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct rw_table *t = s;
	uint64_t h = bench_store_hash(k, klen);
	struct rw_node *n = malloc(sizeof(*n) + klen + vlen), **p;

	if (n == NULL)
		return -1;
	n->hash = h;
	n->klen = (uint32_t)klen;
	n->vlen = (uint32_t)vlen;
	memcpy(n->data, k, klen);
	memcpy(n->data + klen, v, vlen);
	pthread_rwlock_wrlock(&t->lock);
	p = rw_slot(t, h, k, klen);
	if (*p != NULL) {
		struct rw_node *old = *p;

		n->next = old->next;
		*p = n;
		pthread_rwlock_unlock(&t->lock);
		free(old);
		return 0;
	}
	n->next = NULL;
	*p = n;
	if (++t->count > t->mask + 1)
		rw_grow(t);
	pthread_rwlock_unlock(&t->lock);
	return 0;
}

static int rw_get(void *s, const void *k, size_t klen, void *buf, size_t cap, size_t *vlen)
{
	struct rw_table *t = s;
	uint64_t h = bench_store_hash(k, klen);
	struct rw_node *n;
	int rc = 1;

	pthread_rwlock_rdlock(&t->lock);
	n = *rw_slot(t, h, k, klen);
	if (n != NULL) {
		*vlen = n->vlen;
		rc = n->vlen <= cap ? 0 : -1;
		if (rc == 0)
			memcpy(buf, n->data + n->klen, n->vlen);
	}
	pthread_rwlock_unlock(&t->lock);
	return rc;
}

static int rw_del(void *s, const void *k, size_t klen)
{
	struct rw_table *t = s;
	uint64_t h = bench_store_hash(k, klen);
	struct rw_node **p, *n;

	pthread_rwlock_wrlock(&t->lock);
	p = rw_slot(t, h, k, klen);
	n = *p;
	if (n != NULL) {
		*p = n->next;
		t->count--;
	}
	pthread_rwlock_unlock(&t->lock);
	free(n);
	return 0;
}

static void rw_thread_nop(void)
{
}

const struct bench_store_ops bench_store_rwlock = {
        .name = "rwlock",
        .open = rw_open,
        .close = rw_close,
        .put = rw_put,
        .get = rw_get,
        .del = rw_del,
        .scan = NULL,
        .thread_enter = rw_thread_nop,
        .thread_exit = rw_thread_nop,
};
