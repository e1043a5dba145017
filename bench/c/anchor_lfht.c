/*
 * anchor_lfht.c - the lock-free anchor (impl "cds_lfht"): liburcu's
 * resizable RCU hash table (Debian's liburcu-dev, default "memb" flavor),
 * for point operations only (it is unordered), sized for the benchmark's
 * key count up front (its best case) and auto-resizing. Nodes hold key and value in
 * one allocation; replaced and deleted nodes are freed by call_rcu after a
 * grace period; readers copy the value inside rcu_read_lock.
 */
#include "bench_store.h"

#include <stdlib.h>
#include <string.h>
#include <urcu.h>
#include <urcu/rculfhash.h>

struct lf_node {
	struct cds_lfht_node node;
	struct rcu_head rcu;
	uint32_t klen;
	uint32_t vlen;
	unsigned char data[]; /* key then value */
};

struct lf_key {
	const void *k;
	size_t klen;
};

static void *lf_open(size_t nkeys)
{
	unsigned long init = 1024;

	/* Sized for the keys up front (its best case), and resizable. */
	while (init < nkeys)
		init <<= 1;
	return cds_lfht_new(init, 1024, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
}

static void lf_free_rcu(struct rcu_head *h)
{
	free(caa_container_of(h, struct lf_node, rcu));
}

static void lf_close(void *s)
{
	struct cds_lfht *ht = s;
	struct cds_lfht_iter it;
	struct cds_lfht_node *n;

	rcu_register_thread();
	rcu_read_lock();
	cds_lfht_for_each(ht, &it, n)
	{
		if (cds_lfht_del(ht, n) == 0)
			call_rcu(&caa_container_of(n, struct lf_node, node)->rcu, lf_free_rcu);
	}
	rcu_read_unlock();
	rcu_barrier(); /* every pending free done */
	cds_lfht_destroy(ht, NULL);
	rcu_unregister_thread();
}

static int lf_match(struct cds_lfht_node *node, const void *key)
{
	const struct lf_node *n = caa_container_of(node, struct lf_node, node);
	const struct lf_key *k = key;

	return n->klen == k->klen && memcmp(n->data, k->k, k->klen) == 0;
}

static int lf_put(void *s, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct cds_lfht *ht = s;
	struct lf_node *n = malloc(sizeof(*n) + klen + vlen);
	struct lf_key key = {k, klen};
	struct cds_lfht_node *old;

	if (n == NULL)
		return -1;
	cds_lfht_node_init(&n->node);
	n->klen = (uint32_t)klen;
	n->vlen = (uint32_t)vlen;
	memcpy(n->data, k, klen);
	memcpy(n->data + klen, v, vlen);
	rcu_read_lock();
	old = cds_lfht_add_replace(ht, bench_store_hash(k, klen), lf_match, &key, &n->node);
	rcu_read_unlock();
	if (old != NULL)
		call_rcu(&caa_container_of(old, struct lf_node, node)->rcu, lf_free_rcu);
	return 0;
}

static int lf_get(void *s, const void *k, size_t klen, void *buf, size_t cap, size_t *vlen)
{
	struct cds_lfht *ht = s;
	struct lf_key key = {k, klen};
	struct cds_lfht_iter it;
	struct cds_lfht_node *node;
	int rc = 1;

	rcu_read_lock();
	cds_lfht_lookup(ht, bench_store_hash(k, klen), lf_match, &key, &it);
	node = cds_lfht_iter_get_node(&it);
	if (node != NULL) {
		struct lf_node *n = caa_container_of(node, struct lf_node, node);

		*vlen = n->vlen;
		rc = n->vlen <= cap ? 0 : -1;
		if (rc == 0)
			memcpy(buf, n->data + n->klen, n->vlen);
	}
	rcu_read_unlock();
	return rc;
}

static int lf_del(void *s, const void *k, size_t klen)
{
	struct cds_lfht *ht = s;
	struct lf_key key = {k, klen};
	struct cds_lfht_iter it;
	struct cds_lfht_node *node;

	rcu_read_lock();
	cds_lfht_lookup(ht, bench_store_hash(k, klen), lf_match, &key, &it);
	node = cds_lfht_iter_get_node(&it);
	if (node != NULL && cds_lfht_del(ht, node) == 0)
		call_rcu(&caa_container_of(node, struct lf_node, node)->rcu, lf_free_rcu);
	rcu_read_unlock();
	return 0;
}

static void lf_thread_enter(void)
{
	rcu_register_thread();
}

static void lf_thread_exit(void)
{
	rcu_unregister_thread();
}

const struct bench_store_ops bench_store_lfht = {
        .name = "cds_lfht",
        .open = lf_open,
        .close = lf_close,
        .put = lf_put,
        .get = lf_get,
        .del = lf_del,
        .scan = NULL,
        .thread_enter = lf_thread_enter,
        .thread_exit = lf_thread_exit,
};
