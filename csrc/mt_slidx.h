/*
 * mt_slidx.h - the skiplist's point index: a hash table from key to node,
 * so that point reads and overwrites find their node in about two memory
 * accesses instead of a skiplist search. The design and its invariants are
 * argued at the top of mt_slidx.c. Module prefix mt_slx_.
 *
 * Every function must be called inside an epoch section of the calling
 * thread; node pointers returned are valid until it ends.
 */
#ifndef MT_SLIDX_H
#define MT_SLIDX_H

#include "mt_epoch.h"

#include <stddef.h>
#include <stdint.h>

struct mt_sl;
struct mt_sl_node;

#define MT_SLX_WAYS 8 /* slots per bucket: one cache line */

struct mt_slx_table {
	ck_epoch_entry_t epoch; /* its deferred free after a resize */
	uint64_t mask;          /* buckets - 1 */
	uint64_t slots;         /* buckets * MT_SLX_WAYS */
	char pad[64 - sizeof(ck_epoch_entry_t) - 2 * sizeof(uint64_t)];
	/* Buckets of MT_SLX_WAYS slots, each 0 or tag << 48 | node. */
	uint64_t slot[];
};

/* The hash of a key (also picks its bucket and tag). */
uint64_t mt_slx_hash(const void *key, size_t klen);

/* Allocates sl's first (small) table. MANTIS_OK or MANTIS_ENOMEM. */
int mt_slx_init(struct mt_sl *sl);
/* Frees the table (single-threaded, at the list's destruction). */
void mt_slx_destroy(struct mt_sl *sl);

/* The indexed node of key, or NULL (not indexed: search the list). Reader. */
struct mt_sl_node *mt_slx_lookup(const struct mt_sl *sl, const void *key, size_t klen, uint64_t h);

/* For callers that look many keys up (a multiget), the loads of a coming
 * lookup of hash h, started early: mt_slx_prefetch starts both bucket
 * lines; mt_slx_peek (once they arrived) returns the node of the first slot
 * whose tag matches, or NULL, for the caller to prefetch: a hint, never
 * compared (mt_slx_lookup decides). Readers; nothing is written. */
void mt_slx_prefetch(const struct mt_sl *sl, uint64_t h);
struct mt_sl_node *mt_slx_peek(const struct mt_sl *sl, uint64_t h);

/* Indexes n (a node found in or linked into the list, whose hash is h),
 * unless it is removed or already indexed, into a free slot of one of its
 * two buckets, or, if both are full and MT_SLX_EVICT is set (writers), in
 * place of another node. MT_SLX_CLAIMED: the caller already set n's
 * INDEXED (a new node, before it was linked); it is cleared if n gets no
 * slot. Never blocks; gives up on any race. */
#define MT_SLX_EVICT   1
#define MT_SLX_CLAIMED 2
void mt_slx_install(struct mt_sl *sl, struct mt_sl_node *n, uint64_t h, int flags);

/* Takes n out of the index so that it can be removed. Returns 1 if n is no
 * longer indexed, 0 if its slot could not be found (an install or a resize
 * is in flight): the caller then gives up removing it for now. */
int mt_slx_unindex(struct mt_sl *sl, struct mt_sl_node *n);

/* Grows or shrinks the table for about entries keys if it is out of range,
 * then re-indexes every node of the list (one thread at a time; others
 * skip). r is the calling thread's record (the old table is retired
 * through it). */
void mt_slx_resize(struct mt_sl *sl, ck_epoch_record_t *r, uint64_t entries);

/* The table's size in slots (for tests and stats). */
uint64_t mt_slx_slots(const struct mt_sl *sl);

#endif /* MT_SLIDX_H */
