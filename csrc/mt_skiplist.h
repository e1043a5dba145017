/*
 * mt_skiplist.h - the ordered structure of the storage engine: key nodes,
 * each holding a chain of versions newest first, ordered by the OLC B+tree
 * of mt_bptree.h (the module keeps its historical name and prefix: its
 * towers are gone, the chains, pruning and pins are what it holds).
 *
 * This module knows nothing of sequence publication, snapshots or stats: the
 * MVCC layer (mt_db.c) decides which sequence numbers are visible and gives
 * the prune bound; the skiplist keeps the structure consistent under any
 * interleaving and frees memory through the library's epoch domain. The
 * design, its invariants and the reclamation argument are in the comment at
 * the top of mt_skiplist.c.
 *
 * Every function that takes a node or version pointer, or returns one, must
 * be called inside an epoch section of the calling thread (mt_epoch_begin),
 * and the pointers are valid until that section ends, unless the node is
 * pinned (mt_sl_pin), which keeps it and the version an iterator returned
 * alive across sections.
 */
#ifndef MT_SKIPLIST_H
#define MT_SKIPLIST_H

#include "mt_bptree.h"
#include "mt_epoch.h"
#include "mt_pr.h"

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ versions */

/* seqf: the sequence number in the low 56 bits, flags in the top byte. */
#define MT_SL_SEQ_MASK  ((1ull << 56) - 1)
#define MT_SL_V_TOMB    (1ull << 63) /* a delete; no value */
#define MT_SL_V_ABORTED (1ull << 62) /* its batch failed: never visible */
#define MT_SL_V_TTL     (1ull << 61) /* data starts with a u64 expiry (ms) */
#define MT_SL_V_DONE    (1ull << 60) /* its writer has counted it: prunable */
#define MT_SL_SEQ_LIMIT MT_SL_SEQ_MASK

struct mt_sl_ver {
	/* The next older version, or NULL. Once the version is the head of a
	 * removed node, the node's carrier's address with bit 0 set (readers
	 * treat a tagged pointer as NULL). */
	struct mt_sl_ver *next;
	uint64_t seqf;        /* seq | flags; ABORTED, DONE set later */
	uint32_t vlen;        /* value bytes */
	unsigned char data[]; /* [u64 expiry if TTL] vlen value bytes */
};

/* Bytes allocated for a version: 20 + 8 (TTL) + vlen. No epoch entry:
 * unlinked versions are freed through carriers (mt_skiplist.c). */
#define MT_SL_VER_HDR offsetof(struct mt_sl_ver, data)

static inline uint64_t mt_sl_ver_seqf(const struct mt_sl_ver *v)
{
	return ck_pr_load_64(&v->seqf);
}

static inline uint64_t mt_sl_ver_expiry(const struct mt_sl_ver *v)
{
	uint64_t e;

	__builtin_memcpy(&e, v->data, sizeof(e));
	return e;
}

static inline const unsigned char *mt_sl_ver_value(const struct mt_sl_ver *v)
{
	return v->data + ((mt_sl_ver_seqf(v) & MT_SL_V_TTL) ? sizeof(uint64_t) : 0);
}

/* The next older version of v, NULL at the end of the chain. */
static inline struct mt_sl_ver *mt_sl_ver_next(const struct mt_sl_ver *v)
{
	struct mt_sl_ver *n = ck_pr_load_ptr(&v->next);

	return ((uintptr_t)n & 1u) ? NULL : n;
}

/* Is v, a committed put, expired at now_ms? */
static inline int mt_sl_ver_expired(const struct mt_sl_ver *v, uint64_t now_ms)
{
	return (mt_sl_ver_seqf(v) & MT_SL_V_TTL) && mt_sl_ver_expiry(v) <= now_ms;
}

/* Allocates an unlinked version with sequence 0 (set seqf before linking).
 * value is copied; expiry_ms 0 means no TTL. Returns NULL on ENOMEM. The
 * caller owns it until mt_sl_link_at succeeds, and frees it with
 * mt_sl_ver_free_unlinked otherwise. */
struct mt_sl_ver *mt_sl_ver_new(const void *value, size_t vlen, uint64_t expiry_ms, int tomb);
void mt_sl_ver_free_unlinked(struct mt_sl_ver *v);

/* ------------------------------------------------------------ nodes */

/* node state word */
#define MT_SL_INSERTING 1u        /* its index slot not installed yet: not removable */
#define MT_SL_PRUNING   2u        /* a pruner owns the chain's old end */
#define MT_SL_REMOVED   4u        /* being or been removed; PRUNING stays set */
#define MT_SL_INDEXED   (1u << 8) /* a slot of the point index holds it */
#define MT_SL_PIN_SHIFT 9         /* iterators parked on the node (23 bits) */
#define MT_SL_PIN_ONE   (1u << MT_SL_PIN_SHIFT)
#define MT_SL_PIN_MAX   (0x7fffffu)

struct mt_sl_node {
	struct mt_sl_ver *head; /* newest version; bit 0: SEALED */
	uint32_t state;         /* see above */
	uint16_t klen;          /* 1..MANTIS_KEY_MAX */
	uint16_t reserved;
	/* klen key bytes follow */
};

static inline const unsigned char *mt_sl_node_key(const struct mt_sl_node *n)
{
	return (const unsigned char *)(n + 1);
}

/* The node's newest version (never NULL for a linked node). */
static inline struct mt_sl_ver *mt_sl_node_head(const struct mt_sl_node *n)
{
	return (struct mt_sl_ver *)((uintptr_t)ck_pr_load_ptr(&n->head) & ~(uintptr_t)1);
}

/* The ordering of keys: the index's (mt_bpt_cmp: memcmp, the shorter first
 * on a tie), so that the nodes and the tree that orders them never disagree. */
static inline int mt_sl_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	return mt_bpt_cmp(a, alen, b, blen);
}

/* ------------------------------------------------------------ the list */

struct mt_sl {
	struct mt_bpt tree;       /* key -> node, every node not yet removed */
	uint64_t tree_acct;       /* the tree's bytes counted in mt_sl_tree_bytes */
	uint32_t idx_busy;        /* a resize of the point index runs */
	struct mt_slx_table *idx; /* the point index (mt_slidx.c) */
};

/* Initialises an empty list. Returns MANTIS_OK or MANTIS_ENOMEM. */
int mt_sl_init(struct mt_sl *sl);

/* Frees every node and version still in the list. Single-threaded: no
 * other thread may use the list any more (deferred frees already handed
 * to the epoch run later and do not touch the list). */
void mt_sl_destroy(struct mt_sl *sl);

/* The first node, in key order, whose key is >= key (key NULL: the first
 * node), or NULL. The node may be logically removed a moment later; its
 * chain then reads as dead. Reader: takes no lock, writes nothing. */
struct mt_sl_node *mt_sl_seek(const struct mt_sl *sl, const void *key, size_t klen);

/* The node with exactly this key, or NULL: through the point index, else
 * a search (which then indexes the node). h is the key's mt_slx_hash (a
 * caller that prefetched for it already has it). Reader: takes no lock;
 * its only writes are the index's non-blocking CASes. */
struct mt_sl_node *mt_sl_find(struct mt_sl *sl, const void *key, size_t klen, uint64_t h);

/* The node after n in key order, or NULL. n must be one the caller reached
 * in this section, or a node it has pinned (its key bytes are valid).
 * Reader: one tree scan; walks use a cursor instead. */
struct mt_sl_node *mt_sl_succ(const struct mt_sl *sl, const struct mt_sl_node *n);

/* A walk in key order that reads the tree in chunks (growing from the
 * first fill's size, 4 unless mt_sl_cur_start says otherwise, to
 * MT_SL_CUR_MAX nodes per scan), optionally bounded above: a node of a
 * chunk may be removed after the scan (its chain then reads as dead), as a
 * node met by any search may be. Nodes stay valid until the caller's
 * section ends.
 *
 * Lookahead: while the range goes on, the cursor keeps at least
 * MT_SL_CUR_AHEAD nodes after the current one in b[] (it reads the next
 * chunk when fewer are left, moving the rest to the front), so a walker
 * can prefetch b[i + k] for k < MT_SL_CUR_AHEAD without waiting at chunk
 * boundaries. A fill that returns fewer nodes than it asked for reached the
 * end of the range (ended): the cursor then returns NULL after its last
 * node without another tree scan (a key inserted meanwhile may or may not
 * be returned, as for any scan). */
#define MT_SL_CUR_MAX   512
#define MT_SL_CUR_AHEAD 16
struct mt_sl_cur {
	const struct mt_sl *sl;
	const void *end; /* exclusive upper bound (caller's bytes), NULL: none */
	size_t elen;
	uint32_t i, n, want;
	int ended; /* nothing follows b[n - 1] in the range */
	struct mt_sl_node *b[MT_SL_CUR_MAX];
};

/* Starts c on sl, empty: keys below end only (NULL: no bound; end's bytes
 * must outlive the walk), the first fill reading want nodes (1..MAX). */
void mt_sl_cur_start(struct mt_sl_cur *c, const struct mt_sl *sl, const void *end, size_t elen,
                     uint32_t want);
/* The first node >= key (key NULL: the first node), or NULL; starts c
 * unbounded with a first fill of 4. */
struct mt_sl_node *mt_sl_cur_seek(struct mt_sl_cur *c, const struct mt_sl *sl, const void *key,
                                  size_t klen);
/* The same on a cursor started by mt_sl_cur_start (its bound and size). */
struct mt_sl_node *mt_sl_cur_first(struct mt_sl_cur *c, const void *key, size_t klen);
/* The slow path of mt_sl_cur_next. */
struct mt_sl_node *mt_sl_cur_next_slow(struct mt_sl_cur *c, const struct mt_sl *sl,
                                       const struct mt_sl_node *n);
/* Reads the next chunk behind b[n - 1] (cursor-internal: called when
 * fewer than MT_SL_CUR_AHEAD nodes are left ahead). */
void mt_sl_cur_more(struct mt_sl_cur *c);

/* The node after n (the node c returned last, or any node reached in this
 * section or pinned: then c restarts after n's key), or NULL. Inline: a
 * walk's step is an index increment, with a tree scan per chunk. */
static inline struct mt_sl_node *mt_sl_cur_next(struct mt_sl_cur *c, const struct mt_sl *sl,
                                                const struct mt_sl_node *n)
{
	if (c->sl == sl && c->i + 1 < c->n && c->b[c->i] == n) {
		c->i++;
		if (c->n - c->i <= MT_SL_CUR_AHEAD && !c->ended)
			mt_sl_cur_more(c);
		return c->b[c->i];
	}
	return mt_sl_cur_next_slow(c, sl, n);
}

/*
 * Writing a version takes three steps, so that the slow part (finding the
 * key, allocating its node) happens before the writer takes its sequence
 * number and everything between taking it and publishing it is short:
 *
 *   mt_sl_locate     finds key's node (point index or tree get) or, for
 *                    a new key, allocates its node with v as first
 *                    version. MANTIS_ENOMEM possible; nothing is visible.
 *   mt_sl_link_at    (after v's seq is set) links v into the node's chain
 *                    at the place its seq orders it, or inserts the new
 *                    node into the tree (linking into the node another
 *                    writer inserted first, or replacing a removed one).
 *                    May return MANTIS_ENOMEM if a tree split or a node
 *                    for a key removed meanwhile cannot be allocated
 *                    (then v is not linked). On success *node_out is the
 *                    node, and *shadowed is 1 if v was linked below a
 *                    version with a higher seq that is not ABORTED.
 *   mt_sl_link_finish makes a new node removable and indexes it; call it
 *                    for every position whose link_at succeeded, whether
 *                    or not the write commits.
 *   mt_sl_pos_drop   frees an unused new node (locate succeeded, link_at
 *                    was not called or failed).
 *
 * v stays the caller's until link_at succeeds. All in r's section.
 */
struct mt_sl_pos {
	uint64_t hash;
	struct mt_sl_node *node;  /* the key's node */
	struct mt_sl_node *fresh; /* a new node for the key (head: v) */
	int linked;               /* fresh is in the tree */
	int hit;                  /* node came from the point index */
};

int mt_sl_locate(struct mt_sl *sl, ck_epoch_record_t *r, const void *key, size_t klen,
                 struct mt_sl_ver *v, struct mt_sl_pos *pos);
int mt_sl_link_at(struct mt_sl *sl, ck_epoch_record_t *r, const void *key, size_t klen,
                  struct mt_sl_ver *v, struct mt_sl_pos *pos, struct mt_sl_node **node_out,
                  int *shadowed);
void mt_sl_link_finish(struct mt_sl *sl, ck_epoch_record_t *r, const void *key, size_t klen,
                       struct mt_sl_pos *pos);
void mt_sl_pos_drop(struct mt_sl_pos *pos);

/* The newest version of n not aborted and with seq <= seq, or NULL. If a
 * version newer than seq was passed over, *skipped is set to 1. Reader. */
static inline struct mt_sl_ver *mt_sl_ver_at(const struct mt_sl_node *n, uint64_t seq, int *skipped)
{
	struct mt_sl_ver *v = mt_sl_node_head(n);

	/* Acquire on each load: a version's fields were written before the
	 * CAS that linked it (dependent loads, ordered on every target). */
	while (v != NULL) {
		uint64_t sf = mt_sl_ver_seqf(v);

		if ((sf & MT_SL_SEQ_MASK) <= seq) {
			if (!(sf & MT_SL_V_ABORTED))
				return v;
		} else {
			*skipped = 1;
		}
		v = mt_sl_ver_next(v);
	}
	return NULL;
}

/* What a prune did, for the caller's counters. */
struct mt_sl_prune_stats {
	uint64_t versions; /* versions unlinked and handed to the epoch */
	uint64_t bytes;    /* their key + value bytes */
	int64_t entries;   /* change of "keys whose newest version is a value" */
	uint64_t nodes;    /* nodes removed */
};

/* What a prune may assume about readers. */
struct mt_sl_bound {
	/* <= every seq a reader, registered or not, may read at now or later
	 * (the oldest live snapshot, or the published seq if none). */
	uint64_t min_seq;
	uint64_t now_ms; /* versions expiring at or before it are dead */
	/* Sweeps only (0 and no snaps otherwise): a published seq read at
	 * least one grace period ago, so every reader running now reads at or
	 * above it; and every view registered then, as nsnaps pairs (lo,
	 * greatest hi so far) sorted by lo (mt_snapshot_seqs). */
	uint64_t aged;
	const uint64_t *snaps;
	size_t nsnaps;
};

/*
 * Prunes n's chain (non-blocking: gives up if another pruner owns it).
 * Every version older than the newest committed one at or below
 * b->min_seq is unlinked, aborted versions at or below a published seq too,
 * versions between snapshots that nobody reads (with b->aged), and if the
 * newest committed version is a tombstone or expired at b->now_ms and
 * nothing newer exists, the node itself is removed; before the removal can
 * be observed, *removed_seq (shared, atomic) is raised to at least that
 * version's seq, so that conflict checks see that a history was dropped.
 * Adds what it did to *st. Writer; inside r's section.
 */
void mt_sl_prune(struct mt_sl *sl, ck_epoch_record_t *r, struct mt_sl_node *n,
                 const struct mt_sl_bound *b, uint64_t *removed_seq, struct mt_sl_prune_stats *st);

/* Walks every node in key order, calling fn(n, arg) on every node that is
 * not removed (for sweeps). Writer; inside r's section. */
void mt_sl_walk(struct mt_sl *sl, ck_epoch_record_t *r, void (*fn)(struct mt_sl_node *n, void *arg),
                void *arg);

/* Pins n for an iterator so that it is not removed (nor its chain's
 * version visible at any live snapshot freed) until mt_sl_unpin, outside
 * any section. Returns 0 if n is being removed (then it reads as dead). */
int mt_sl_pin(struct mt_sl_node *n);
void mt_sl_unpin(struct mt_sl_node *n);

/* The calling thread's stripe (0..MT_SL_STRIPES-1) for striped counters:
 * each live thread owns one (1..63) until it exits; beyond 63 live threads,
 * the rest share stripe 0. mt_sl_stripe_tls: stripe + 1 if owned, -1 if
 * shared, 0 before the first call. */
#define MT_SL_STRIPES 64
extern __thread int mt_sl_stripe_tls;
unsigned mt_sl_stripe_slow(void);

static inline unsigned mt_sl_thread_stripe(void)
{
	int t = mt_sl_stripe_tls;

	if (t > 0)
		return (unsigned)t - 1;
	return t < 0 ? 0u : mt_sl_stripe_slow();
}

/* Adds d (two's complement for a subtraction) to *p, a counter of the
 * calling thread's stripe: a load and a store when the thread owns the
 * stripe (no other thread writes it: no locked instruction), an atomic
 * add when it shares stripe 0. */
static inline void mt_sl_stripe_add(uint64_t *p, uint64_t d)
{
	if (mt_sl_stripe_tls > 0)
		ck_pr_store_64(p, ck_pr_load_64(p) + d);
	else
		ck_pr_add_64(p, d);
}

/* Bytes of node, version and index memory allocated by this module and not
 * yet freed, in every list of the process (an allocation counter for tests
 * and benchmarks: exact when no thread is inside the library). */
uint64_t mt_sl_mem_bytes(void);
/* Adds d to that counter (the index's tables count too). */
void mt_sl_mem_add(int64_t d);
/* Bytes of tree nodes and separators (mt_bptree.c) held by every list of
 * the process, counted apart: the tree frees nothing before its list is
 * destroyed (emptied leaves stay), so deletes do not return them. */
uint64_t mt_sl_tree_bytes(void);

#endif /* MT_SKIPLIST_H */
