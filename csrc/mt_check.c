/*
 * mt_check.c - the storage invariant checker (see mt_check.h).
 *
 * It reads the structures the way a reader does (inside an epoch section,
 * through the same links), on a db no other thread uses, so every
 * invariant that holds "when quiescent" must hold exactly:
 *
 *  - I1 (mt_skiplist.c): the tree's nodes, walked in key order, are in
 *    strictly ascending key order; none is REMOVED (a removal takes its
 *    node out before it returns) or still INSERTING; no pins remain; and
 *    the tree's own invariants hold (mt_bpt_check).
 *  - I4/I5 and P1/P2: a live node's head is unsealed and untagged; its
 *    chain is non-empty, strictly descending in seq, every seq at or below
 *    published; every committed version has been counted (DONE).
 *  - X1 (mt_slidx.c): every index slot holds a live node with INDEXED set,
 *    found again by a lookup of its key; every INDEXED node sits in exactly
 *    one slot.
 *  - Counters: entries = live nodes whose newest committed version is a
 *    put; versions and bytes = every version reachable (aborted included).
 *  - The ready ring (mt_db.c, READY RING): published == next_seq, and the
 *    slot of each of the last MT_DB_RING seqs holds that seq (ready; never
 *    left KILLED).
 *
 * It is compiled into every build: a few hundred instructions of code that
 * only tests call, so that the release test run checks too.
 */
#include "mt_check.h"

#include "mantis.h"
#include "mt_alloc.h"
#include "mt_db.h"
#include "mt_handle.h"
#include "mt_slidx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MT_CHECK_NODE_MASK ((1ull << 48) - 1)

struct mt_check {
	char *msg;
	size_t cap;
	int bad;
};

static void mt_check_fail(struct mt_check *c, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void mt_check_fail(struct mt_check *c, const char *fmt, ...)
{
	va_list ap;

	if (c->bad++)
		return; /* keep the first */
	va_start(ap, fmt);
	if (c->cap > 0)
		vsnprintf(c->msg, c->cap, fmt, ap);
	va_end(ap);
}

static int mt_check_ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return (x > y) - (x < y);
}

static int mt_check_is_live(const uintptr_t *live, size_t n, const struct mt_sl_node *p)
{
	uintptr_t a = (uintptr_t)p;

	return n > 0 && bsearch(&a, live, n, sizeof(uintptr_t), mt_check_ptr_cmp) != NULL;
}

/* Level 0: order, node states, chains, counters. Returns the live nodes'
 * addresses, sorted (NULL with *n 0 if none; c->bad on ENOMEM). */
static uintptr_t *mt_check_level0(struct mt_check *c, struct mt_db *db, size_t *n_out)
{
	struct mt_sl_node *prev = NULL, *cur;
	uintptr_t *live = NULL;
	uint64_t published = ck_pr_load_64(&db->published), versions = 0, bytes = 0, entries = 0;
	uint64_t sv = 0, sb = 0, se = 0;
	size_t n = 0, cap = 0;

	struct mt_sl_cur sc;

	for (cur = mt_sl_cur_seek(&sc, &db->sl, NULL, 0); cur != NULL;
	     cur = mt_sl_cur_next(&sc, &db->sl, cur)) {
		uint32_t st = ck_pr_load_32(&cur->state);
		uintptr_t hraw = (uintptr_t)ck_pr_load_ptr(&cur->head);
		struct mt_sl_ver *v;
		uint64_t last = UINT64_MAX;
		int newest = 1;

		if (st & (MT_SL_REMOVED | MT_SL_INSERTING | MT_SL_PRUNING))
			mt_check_fail(c, "a live node has state %#x", st);
		if (st >> MT_SL_PIN_SHIFT)
			mt_check_fail(c, "a live node holds %u pins", st >> MT_SL_PIN_SHIFT);
		if (cur->klen == 0)
			mt_check_fail(c, "a node has key length 0");
		if (prev != NULL && mt_sl_cmp(mt_sl_node_key(prev), prev->klen, mt_sl_node_key(cur),
		                              cur->klen) >= 0)
			mt_check_fail(c, "key order: out of order at key %.*s", (int)cur->klen,
			              (const char *)mt_sl_node_key(cur));
		prev = cur;
		if (hraw & 1u)
			mt_check_fail(c, "a live node's head is sealed");
		v = (struct mt_sl_ver *)(hraw & ~(uintptr_t)1);
		if (v == NULL)
			mt_check_fail(c, "a live node has no version (I5)");
		for (; v != NULL; v = mt_sl_ver_next(v)) {
			uint64_t sf = mt_sl_ver_seqf(v), sq = sf & MT_SL_SEQ_MASK;

			if ((uintptr_t)ck_pr_load_ptr(&v->next) & 1u)
				mt_check_fail(c, "a live chain holds a carrier tag");
			if (sq == 0 || sq > published || sq >= last)
				mt_check_fail(c,
				              "chain of %.*s: seq %llu after %llu (published %llu)",
				              (int)cur->klen, (const char *)mt_sl_node_key(cur),
				              (unsigned long long)sq, (unsigned long long)last,
				              (unsigned long long)published);
			last = sq;
			if (!(sf & MT_SL_V_ABORTED)) {
				if (!(sf & MT_SL_V_DONE))
					mt_check_fail(c, "a committed version is not DONE");
				if (newest && !(sf & MT_SL_V_TOMB))
					entries++;
				newest = 0;
			}
			versions++;
			bytes += cur->klen + v->vlen;
		}
		if (n == cap) {
			uintptr_t *g = mt_malloc((cap ? 2 * cap : 64) * sizeof(uintptr_t));

			if (g == NULL) {
				mt_check_fail(c, "out of memory");
				mt_free(live);
				return NULL;
			}
			if (n > 0)
				memcpy(g, live, n * sizeof(uintptr_t));
			mt_free(live);
			live = g;
			cap = cap ? 2 * cap : 64;
		}
		live[n++] = (uintptr_t)cur;
	}
	for (unsigned i = 0; i < MT_SL_STRIPES; i++) {
		sv += ck_pr_load_64(&db->stripe[i].versions);
		sb += ck_pr_load_64(&db->stripe[i].bytes);
		se += ck_pr_load_64(&db->stripe[i].entries);
	}
	if (sv != versions || sb != bytes || se != entries)
		mt_check_fail(c,
		              "counters: versions %llu (reachable %llu), bytes %llu (%llu), "
		              "entries %llu (%llu)",
		              (unsigned long long)sv, (unsigned long long)versions,
		              (unsigned long long)sb, (unsigned long long)bytes,
		              (unsigned long long)se, (unsigned long long)entries);
	if (n > 1)
		qsort(live, n, sizeof(uintptr_t), mt_check_ptr_cmp);
	*n_out = n;
	return live;
}

/* The tree's own invariants (mt_bptree.c, B1-B5), and that it holds
 * exactly the live nodes. */
static void mt_check_tree(struct mt_check *c, struct mt_db *db, size_t n)
{
	char err[160];
	long items = mt_bpt_check(&db->sl.tree, err, sizeof(err));

	if (items < 0)
		mt_check_fail(c, "tree: %s", err);
	else if ((size_t)items != n)
		mt_check_fail(c, "the tree holds %ld nodes, the walk met %zu", items, n);
}

/* The point index against the list (X1). */
static void mt_check_index(struct mt_check *c, struct mt_db *db, const uintptr_t *live, size_t n)
{
	struct mt_slx_table *t = ck_pr_load_ptr(&db->sl.idx);
	size_t indexed = 0, slots = 0;

	for (size_t i = 0; i < n; i++)
		indexed += (ck_pr_load_32(&((struct mt_sl_node *)live[i])->state) &
		            MT_SL_INDEXED) != 0;
	for (uint64_t i = 0; i < t->slots; i++) {
		uint64_t w = ck_pr_load_64(&t->slot[i]);
		struct mt_sl_node *p = (struct mt_sl_node *)(uintptr_t)(w & MT_CHECK_NODE_MASK);

		if (w == 0)
			continue;
		slots++;
		if (!mt_check_is_live(live, n, p)) {
			mt_check_fail(c, "an index slot holds a node not in the list");
			continue;
		}
		if (!(ck_pr_load_32(&p->state) & MT_SL_INDEXED))
			mt_check_fail(c, "an index slot holds a node without INDEXED");
		if (mt_slx_lookup(&db->sl, mt_sl_node_key(p), p->klen,
		                  mt_slx_hash(mt_sl_node_key(p), p->klen)) != p)
			mt_check_fail(c, "an indexed node is not found by its key");
	}
	if (slots != indexed)
		mt_check_fail(c, "%zu index slots for %zu INDEXED nodes", slots, indexed);
}

int mt_check_db(uint64_t dbh, char *msg, size_t cap)
{
	struct mt_check c = {msg, cap, 0};
	uintptr_t *live;
	ck_epoch_record_t *r;
	struct mt_db *db;
	size_t n = 0;
	int rc;

	if (cap > 0)
		msg[0] = '\0';
	rc = mt_handle_enter(dbh, MT_HANDLE_DB, &r, (void **)&db);
	if (rc != MANTIS_OK)
		return rc;
	if (ck_pr_load_64(&db->published) != ck_pr_load_64(&db->next_seq))
		mt_check_fail(&c, "published %llu behind next_seq %llu",
		              (unsigned long long)ck_pr_load_64(&db->published),
		              (unsigned long long)ck_pr_load_64(&db->next_seq));
	for (uint64_t q = ck_pr_load_64(&db->next_seq), k = 0; q > 0 && k < MT_DB_RING; q--, k++) {
		uint64_t w = ck_pr_load_64(&db->ready[q & (MT_DB_RING - 1)]);

		if (w != q) {
			mt_check_fail(&c, "ready ring: seq %llu's slot holds %#llx",
			              (unsigned long long)q, (unsigned long long)w);
			break;
		}
	}
	live = mt_check_level0(&c, db, &n);
	if (!c.bad) {
		mt_check_tree(&c, db, n);
		mt_check_index(&c, db, live, n);
	}
	mt_handle_leave(r);
	mt_free(live);
	return c.bad ? MANTIS_EINVAL : MANTIS_OK;
}
