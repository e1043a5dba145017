/*
 * mt_slidx.c - the key nodes' point index: key -> node, in a hash table of
 * 8-way buckets (one cache line each). (Written for the skiplist the tree
 * replaced; the tree's get still costs more misses:
 * docs/performance/storage.md.) A skiplist search over a million keys
 * visits about ten nodes at random addresses; a point read through the
 * index touches one bucket and the node. Ordered access (iterators, seeks)
 * still walks the list: the index is only a shortcut, never the truth.
 *
 * SLOTS
 *
 * A slot is 0 or tag << 48 | node address (user addresses fit in 48 bits);
 * the tag is the top 16 bits of the key's hash, so a lookup compares tags
 * in the bucket's line and dereferences only matching nodes, whose full key
 * it then compares. A key may live in either of two buckets chosen by its
 * hash (two choices keep overflow rare at 3/4 load); a lookup reads the
 * first, then the second. A lookup that misses (key absent, or not indexed)
 * falls back to a tree get, which indexes the node into a free slot.
 * Only writers evict from full buckets, so readers never thrash the index
 * (and never write to it once their keys are in).
 *
 * THE INVARIANT (memory safety)
 *
 *   X1 A slot holds node n only while n's state has INDEXED set, and
 *      INDEXED and REMOVED are never both set.
 *
 * Installing sets INDEXED (a CAS that fails if REMOVED or INDEXED is set)
 * before the CAS that stores n in a slot; every way a slot stops holding n
 * (eviction by another install, unindexing before removal, a resize's
 * sweep, an install undoing itself) is a CAS on the slot, and only the one
 * that succeeds clears n's INDEXED afterwards. Removal (mt_sl_remove)
 * commits REMOVED with a CAS that requires INDEXED clear, after unindexing
 * the node. So a reader that loads n from a slot, inside its section, loads
 * it while n is not removed, hence not retired: n is freed only after that
 * section ends (the epoch argument of mt_skiplist.c). And since an
 * unremoved node is the only unmarked node of its key (I1), the index
 * never points a key at a stale node.
 *
 * RESIZING
 *
 * The table grows when the keys exceed 3/4 of its slots, and shrinks when
 * they fall under 1/8, to twice the keys (at least MT_SLX_MIN_SLOTS). One
 * thread at a time (a try-lock flag) swaps in a new empty table with a
 * locked exchange, sweeps the old one (each slot CASed to 0, its node's
 * INDEXED cleared), retires it through the epoch (readers may still read
 * it), and re-indexes every node of the tree by walking it in key order. An
 * install that raced with the swap stored into the old table: it re-reads
 * the table pointer after its slot CAS (both sides are locked instructions
 * followed by a load, so one of them sees the other) and undoes itself if
 * the table changed; the sweep and the undo CAS the same slot, so exactly
 * one clears INDEXED. Unindexing looks in the current table only; a node
 * caught in a resize is not found there, and its removal is retried later
 * (removal is always optional).
 *
 * Nothing here blocks: every CAS that fails makes the caller give up (the
 * index is a cache) or retry on its own progress.
 */
#include "mt_slidx.h"

#include "mantis.h"
#include "mt_alloc.h"
#include "mt_pr.h"
#include "mt_skiplist.h"

#include <assert.h>
#include <string.h>

#define MT_SLX_MIN_SLOTS 512u
#define MT_SLX_PTR       ((1ull << 48) - 1)

uint64_t mt_slx_hash(const void *key, size_t klen)
{
	const unsigned char *p = key;
	uint64_t h = 0x9E3779B97F4A7C15ull ^ (klen * 0xff51afd7ed558ccdull);

	for (; klen >= 8; klen -= 8, p += 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
		h ^= h >> 29;
	}
	if (klen > 0) {
		uint64_t w = 0;

		memcpy(&w, p, klen);
		h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
	}
	h ^= h >> 32;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 29;
	return h;
}

static size_t mt_slx_table_size(uint64_t slots)
{
	return sizeof(struct mt_slx_table) + slots * sizeof(uint64_t);
}

static struct mt_slx_table *mt_slx_table_new(uint64_t slots)
{
	size_t size = mt_slx_table_size(slots);
	struct mt_slx_table *t = mt_malloc_aligned(size, CK_MD_CACHELINE);

	if (t == NULL)
		return NULL;
	memset(t, 0, size);
	t->slots = slots;
	t->mask = slots / MT_SLX_WAYS - 1;
	mt_sl_mem_add((int64_t)size);
	return t;
}

static void mt_slx_table_free(struct mt_slx_table *t)
{
	mt_sl_mem_add(-(int64_t)mt_slx_table_size(t->slots));
	mt_free(t);
}

static void mt_slx_table_free_cb(ck_epoch_entry_t *e)
{
	mt_epoch_reclaim_acquire();
	mt_slx_table_free(
	        (struct mt_slx_table *)((char *)e - offsetof(struct mt_slx_table, epoch)));
}

int mt_slx_init(struct mt_sl *sl)
{
	sl->idx = mt_slx_table_new(MT_SLX_MIN_SLOTS);
	sl->idx_busy = 0;
	return sl->idx != NULL ? MANTIS_OK : MANTIS_ENOMEM;
}

void mt_slx_destroy(struct mt_sl *sl)
{
	if (sl->idx != NULL)
		mt_slx_table_free(sl->idx);
	sl->idx = NULL;
}

uint64_t mt_slx_slots(const struct mt_sl *sl)
{
	const struct mt_slx_table *t = ck_pr_load_ptr(&sl->idx);

	return t != NULL ? t->slots : 0;
}

/* The key's two buckets (choice 0 or 1), from independent hash bits. */
static inline uint64_t *mt_slx_bucket(struct mt_slx_table *t, uint64_t h, int choice)
{
	return &t->slot[((choice ? h >> 20 : h) & t->mask) * MT_SLX_WAYS];
}

static inline uint64_t mt_slx_tag(uint64_t h)
{
	return h & ~MT_SLX_PTR;
}

struct mt_sl_node *mt_slx_lookup(const struct mt_sl *sl, const void *key, size_t klen, uint64_t h)
{
	struct mt_slx_table *t = ck_pr_load_ptr(&sl->idx);
	uint64_t tag = mt_slx_tag(h);

	/* Both lines at once: an absent key reads both. */
	__builtin_prefetch(mt_slx_bucket(t, h, 1));
	for (int c = 0; c < 2; c++) {
		uint64_t *b = mt_slx_bucket(t, h, c);

		for (unsigned w = 0; w < MT_SLX_WAYS; w++) {
			uint64_t v = ck_pr_load_64(&b[w]);
			struct mt_sl_node *n = (struct mt_sl_node *)(uintptr_t)(v & MT_SLX_PTR);

			/* n is not removed when loaded (X1): safe in this
			 * section. */
			if (n != NULL && (v & ~MT_SLX_PTR) == tag && n->klen == klen &&
			    mt_sl_cmp(mt_sl_node_key(n), klen, key, klen) == 0)
				return n;
		}
	}
	return NULL;
}

void mt_slx_prefetch(const struct mt_sl *sl, uint64_t h)
{
	struct mt_slx_table *t = ck_pr_load_ptr(&sl->idx);

	__builtin_prefetch(mt_slx_bucket(t, h, 0));
	__builtin_prefetch(mt_slx_bucket(t, h, 1));
}

struct mt_sl_node *mt_slx_peek(const struct mt_sl *sl, uint64_t h)
{
	struct mt_slx_table *t = ck_pr_load_ptr(&sl->idx);
	uint64_t tag = mt_slx_tag(h);

	for (int c = 0; c < 2; c++) {
		const uint64_t *b = mt_slx_bucket(t, h, c);

		for (unsigned w = 0; w < MT_SLX_WAYS; w++) {
			uint64_t v = ck_pr_load_64(&b[w]);

			/* Not dereferenced here; a caller that does so in its
			 * section reads a node not retired when loaded (X1). */
			if (v != 0 && (v & ~MT_SLX_PTR) == tag)
				return (struct mt_sl_node *)(uintptr_t)(v & MT_SLX_PTR);
		}
	}
	return NULL;
}

static void mt_slx_clear_indexed(struct mt_sl_node *n)
{
	/* Full barrier: the slot's change is visible before the bit goes. */
	ck_pr_and_32(&n->state, ~MT_SL_INDEXED);
}

static __thread unsigned mt_slx_rotor;

void mt_slx_install(struct mt_sl *sl, struct mt_sl_node *n, uint64_t h, int flags)
{
	struct mt_slx_table *t = ck_pr_load_ptr(&sl->idx);
	uint64_t *b = NULL, want = mt_slx_tag(h) | (uint64_t)(uintptr_t)n, old = 0;
	unsigned w, pick = MT_SLX_WAYS;
	uint32_t s;

	assert(((uintptr_t)n & ~MT_SLX_PTR) == 0);
	/* A free slot in either bucket; if none, only evicting callers go on
	 * (before claiming the node, so that a full bucket costs no write). */
	for (int c = 0; c < 2 && pick == MT_SLX_WAYS; c++) {
		b = mt_slx_bucket(t, h, c);
		for (w = 0; w < MT_SLX_WAYS; w++) {
			if (ck_pr_load_64(&b[w]) == 0) {
				pick = w;
				break;
			}
		}
	}
	if (pick == MT_SLX_WAYS) {
		if (!(flags & MT_SLX_EVICT)) {
			if (flags & MT_SLX_CLAIMED)
				mt_slx_clear_indexed(n);
			return;
		}
		b = mt_slx_bucket(t, h, (int)(mt_slx_rotor & 1));
		pick = mt_slx_rotor++ / 2 % MT_SLX_WAYS;
		old = ck_pr_load_64(&b[pick]);
	}
	while (!(flags & MT_SLX_CLAIMED)) {
		s = ck_pr_load_32(&n->state);
		if (s & (MT_SL_REMOVED | MT_SL_INDEXED))
			return;
		/* Claim the node's one index reference (X1); fails if a
		 * removal committed or another install claimed it. */
		if (ck_pr_cas_32(&n->state, s, s | MT_SL_INDEXED))
			break;
	}
	/* Store n; fails if the slot changed since we read it. */
	if (!ck_pr_cas_64(&b[pick], old, want)) {
		mt_slx_clear_indexed(n);
		return;
	}
	if (old != 0)
		mt_slx_clear_indexed((struct mt_sl_node *)(uintptr_t)(old & MT_SLX_PTR));
	/* The CAS above (locked) precedes this load: if a resize swapped the
	 * table meanwhile, its sweep may have passed this slot: undo. */
	if (ck_pr_load_ptr(&sl->idx) != t && ck_pr_cas_64(&b[pick], want, 0))
		mt_slx_clear_indexed(n);
}

int mt_slx_unindex(struct mt_sl *sl, struct mt_sl_node *n)
{
	struct mt_slx_table *t;
	uint64_t h, want, *b;

	if (!(ck_pr_load_32(&n->state) & MT_SL_INDEXED))
		return 1;
	h = mt_slx_hash(mt_sl_node_key(n), n->klen);
	want = mt_slx_tag(h) | (uint64_t)(uintptr_t)n;
	t = ck_pr_load_ptr(&sl->idx);
	for (int c = 0; c < 2; c++) {
		b = mt_slx_bucket(t, h, c);
		for (unsigned w = 0; w < MT_SLX_WAYS; w++) {
			/* Only the CAS that takes n out clears its bit (X1). */
			if (ck_pr_load_64(&b[w]) == want && ck_pr_cas_64(&b[w], want, 0)) {
				mt_slx_clear_indexed(n);
				return 1;
			}
		}
	}
	/* Not there: someone else may have just taken it out. */
	return !(ck_pr_load_32(&n->state) & MT_SL_INDEXED);
}

static uint64_t mt_slx_pow2(uint64_t x)
{
	uint64_t p = MT_SLX_MIN_SLOTS;

	while (p < x)
		p <<= 1;
	return p;
}

void mt_slx_resize(struct mt_sl *sl, ck_epoch_record_t *r, uint64_t entries)
{
	struct mt_slx_table *t = ck_pr_load_ptr(&sl->idx), *nt, *old;
	struct mt_sl_cur c;
	uint64_t want;

	if (entries * 4 > t->slots * 3)
		want = mt_slx_pow2(2 * entries);
	else if (t->slots > MT_SLX_MIN_SLOTS && entries * 8 < t->slots)
		want = mt_slx_pow2(2 * entries);
	else
		return;
	if (want == t->slots || !ck_pr_cas_32(&sl->idx_busy, 0, 1))
		return; /* another thread is resizing */
	nt = mt_slx_table_new(want);
	if (nt == NULL) {
		ck_pr_store_32(&sl->idx_busy, 0);
		return; /* keep the old one: lookups only miss more */
	}
	/* Full barrier: installs from here on see nt (or undo themselves). */
	old = ck_pr_fas_ptr(&sl->idx, nt);
	for (uint64_t i = 0; i < old->slots; i++) {
		uint64_t v;

		while ((v = ck_pr_load_64(&old->slot[i])) != 0) {
			/* Only the CAS that empties the slot clears (X1). */
			if (ck_pr_cas_64(&old->slot[i], v, 0)) {
				mt_slx_clear_indexed(
				        (struct mt_sl_node *)(uintptr_t)(v & MT_SLX_PTR));
				break;
			}
		}
	}
	/* Readers may still be looking at it: free after a grace period. */
	mt_epoch_call(r, &old->epoch, mt_slx_table_free_cb);
	for (struct mt_sl_node *n = mt_sl_cur_seek(&c, sl, NULL, 0); n != NULL;
	     n = mt_sl_cur_next(&c, sl, n))
		mt_slx_install(sl, n, mt_slx_hash(mt_sl_node_key(n), n->klen), 0);
	ck_pr_store_32(&sl->idx_busy, 0);
}
