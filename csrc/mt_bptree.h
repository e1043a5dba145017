/*
 * mt_bptree.h - an ordered index of byte-string keys: a B+tree with
 * optimistic lock coupling (Leis et al., "The ART of Practical
 * Synchronization", DaMoN 2016). Module prefix mt_bpt_.
 *
 * The tree maps each key to one item, an opaque pointer the caller owns.
 * It does not copy keys: the caller's key function gives an item's key, and
 * leaves keep, beside each item pointer, eight bytes of its key (taken after
 * the bytes every key of the leaf shares), so that a search compares integers
 * and touches an item only to confirm an equal prefix. Inner nodes hold
 * copies of their separator keys.
 *
 * Readers (get, scan) never write shared memory and never take a lock; they
 * restart when a node they read changed. Writers lock one leaf (two nodes
 * for a split) for a bounded critical section holding no allocation, no
 * search and no system call; a thread that meets a locked node spins
 * briefly, then sleeps on a futex until it is unlocked. The design and its
 * invariants are argued at the top of mt_bptree.c.
 *
 * Item lifetime: an item's key bytes must not change while it is in the
 * tree, and its memory must stay valid until every thread that may have
 * read the tree while it was there has finished the call: callers that free
 * items concurrently with other calls run every call inside an epoch
 * section (mt_epoch_begin) and free removed items through mt_epoch_call.
 * The tree's own nodes are never freed before mt_bpt_destroy (leaves are
 * not merged), so it needs no reclamation of its own, and they are carved
 * from an arena of large chunks (huge pages with MT_BPT_HUGE).
 */
#ifndef MT_BPTREE_H
#define MT_BPTREE_H

#include <stddef.h>
#include <stdint.h>

/* The key of item: its bytes (*klen of them, 1..65535). Called on items
 * read from the tree, possibly concurrently with their removal. */
typedef const unsigned char *(*mt_bpt_key_fn)(const void *item, size_t *klen);

struct mt_bpt {
	void *root;        /* a node (mt_bptree.c); replaced when the root splits */
	mt_bpt_key_fn key; /* immutable */
	uint64_t mem;      /* bytes of arena chunks and separators allocated (atomic) */
	void *chunk;       /* the arena chunk nodes are carved from, newest first */
	void *spare[2];    /* unused new nodes (inner, leaf) writers handed back */
	unsigned flags;    /* MT_BPT_HUGE */
};

/* Nodes are carved from arena chunks that grow from 64 KiB to 2 MiB; with
 * MT_BPT_HUGE, 2 MiB chunks are 2 MiB-aligned and advised MADV_HUGEPAGE
 * (transparent huge pages in madvise mode: one TLB entry per 2 MiB of
 * nodes). */
#define MT_BPT_HUGE 1u

/* Initialises an empty tree. MANTIS_OK or MANTIS_ENOMEM. */
int mt_bpt_init(struct mt_bpt *t, mt_bpt_key_fn key, unsigned flags);

/* Frees every node; the items are the caller's. Single-threaded. */
void mt_bpt_destroy(struct mt_bpt *t);

/* The item whose key is key, or NULL. Reader. */
void *mt_bpt_get(const struct mt_bpt *t, const void *key, size_t klen);

/* Inserts item under key (item's own key, non-NULL item) unless the key is
 * present. Returns MANTIS_OK with *existing NULL if inserted, MANTIS_OK with
 * *existing the present item if not (nothing changed), or MANTIS_ENOMEM (a
 * split could not allocate; nothing changed). Writer. */
int mt_bpt_insert(struct mt_bpt *t, const void *key, size_t klen, void *item, void **existing);

/* If key maps to old, makes it map to item (same key) instead. Returns 1 if
 * replaced, 0 if key is absent or maps to another item. Writer. */
int mt_bpt_replace(struct mt_bpt *t, const void *key, size_t klen, const void *old, void *item);

/* Removes key if it maps to item (item NULL: whatever it maps to). Returns
 * the removed item, or NULL if nothing was removed. Writer. */
void *mt_bpt_remove(struct mt_bpt *t, const void *key, size_t klen, const void *item);

/* Fills out[] with up to max items in key order, starting at the first key
 * >= key (after != 0: > key; key NULL with klen 0: the first item) and
 * ending before end (NULL: no end). Returns how many were written. Every
 * item present throughout the call in that range, up to the max-th, is
 * returned exactly once; items inserted or removed during the call may or
 * may not be. Reader. To continue, call again with the last item's key and
 * after = 1. */
size_t mt_bpt_scan(const struct mt_bpt *t, const void *key, size_t klen, int after, const void *end,
                   size_t elen, void **out, size_t max);

/* Checks every invariant of the tree (quiescent: no call in flight): key
 * order inside nodes and across fences, prefixes, the shared-byte counts,
 * equal leaf depth, the leaf chain, no lock held, unused slots cleared.
 * Returns the number of items, or -1 with a description written to err. */
long mt_bpt_check(const struct mt_bpt *t, char *err, size_t errlen);

/* Bytes of nodes and separator copies the tree holds. */
uint64_t mt_bpt_mem_bytes(const struct mt_bpt *t);

/* The ordering of keys: memcmp, and on a tie the shorter first. Eight bytes
 * at a time, byte-swapped so that an integer comparison is a bytewise one. */
static inline int mt_bpt_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	const unsigned char *x = a, *y = b;
	size_t n = alen < blen ? alen : blen;

	for (; n >= 8; n -= 8, x += 8, y += 8) {
		uint64_t u, v;

		__builtin_memcpy(&u, x, 8);
		__builtin_memcpy(&v, y, 8);
		if (u != v) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			u = __builtin_bswap64(u);
			v = __builtin_bswap64(v);
#endif
			return u < v ? -1 : 1;
		}
	}
	for (; n > 0; n--, x++, y++)
		if (*x != *y)
			return *x < *y ? -1 : 1;
	return (alen > blen) - (alen < blen);
}

#endif /* MT_BPTREE_H */
