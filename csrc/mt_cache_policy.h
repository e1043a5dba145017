/*
 * mt_cache_policy.h - the cache's eviction policy: S3-FIFO with an adaptive
 * small queue (prefix mt_cpol_). The design, the measurements that chose it
 * and its invariants are argued at the top of mt_cache_policy.c and in
 * docs/architecture/cache.md.
 *
 * One policy instance per cache shard. Everything except mt_cpol_hit runs
 * under the shard's lock. mt_cpol_hit is the read path: it may run in any
 * thread at any time, concurrently with the writer, and only stores into the
 * entry's own freq byte, and only when the value changes.
 */
#ifndef MT_CACHE_POLICY_H
#define MT_CACHE_POLICY_H

#include "mt_cache.h"
#include "mt_pr.h"

#include <stdint.h>

enum {
	MT_CPOL_S = 1, /* small FIFO: new keys, filtered by their hits */
	MT_CPOL_M = 2, /* main FIFO with reinsertion (CLOCK with 2-bit counts) */
};

#define MT_CPOL_FREQ_MAX 3u /* an entry's access count saturates here */
#define MT_CPOL_PROMOTE  3u /* hits in one pass through S that promote at once */

/* Non-resident history: fingerprints of keys evicted from S (GS) and from M
 * (GM), each with the departure count of its queue at eviction, in buckets of
 * eight 64-bit slots: fp << 32 | kind << 31 | seq (31 bits); 0 is empty. */
struct mt_cpol_ghost {
	uint64_t *slots;
	uint32_t mask; /* buckets - 1 */
};

/* Laid out so that an insert writes two cache lines of it: the first holds
 * the queues and their sums, the second the adaptation and the counters.
 * The sums and counters that stats read without the lock (s_cost, m_cost,
 * s_n, m_n, inserted, evicted) are written with atomic stores. */
struct mt_cpol {
	/* line 1 */
	struct mt_clist s, m; /* queues: head = newest, tail = next examined */
	uint64_t s_cost, m_cost;
	uint64_t s_n, m_n; /* entries in each queue */
	/* line 2 */
	uint64_t s_target; /* S's share of the capacity, adapted */
	uint32_t ev_s;     /* departures from S (promoted or evicted), mod 2^31 */
	uint32_t ev_m;     /* evictions from M, mod 2^31 */
	uint64_t examined; /* queue tails examined by mt_cpol_evict, in all */
	uint64_t inserted; /* entries linked by insert or replace, in all */
	uint64_t evicted;  /* victims returned by mt_cpol_evict, in all */
	struct mt_cpol_ghost ghost;
	struct mt_cpol_ghost ghost_old; /* moving into ghost after a growth; slots NULL if none */
	uint32_t ghost_moved;           /* next bucket of ghost_old to move */
	uint64_t *garbage;              /* a ghost table to free after the unlock, or NULL */
	/* read-only after init */
	uint64_t capacity; /* cost units */
	uint64_t s_min, s_max;
} __attribute__((aligned(64)));

/* Single-writer counters: the lock holder stores, stats load. */
static inline void mt_cpol_set(uint64_t *f, uint64_t v)
{
	ck_pr_store_64(f, v);
}

/* Initialises an empty policy for capacity cost units. Returns MANTIS_OK or
 * MANTIS_ENOMEM. */
int mt_cpol_init(struct mt_cpol *p, uint64_t capacity);

/* Frees the policy's own memory (not the entries, which the caller owns). */
void mt_cpol_destroy(struct mt_cpol *p);

/* Records a hit on e: the read path. Writes only when the count changes, so
 * that hot entries cost readers no store at all. */
static inline void mt_cpol_hit(struct mt_cache_entry *e)
{
	uint8_t f = ck_pr_load_8(&e->freq);

	if (f < MT_CPOL_FREQ_MAX)
		ck_pr_store_8(&e->freq, (uint8_t)(f + 1));
}

/* Ghost growth without allocating under the shard lock (see the top of
 * mt_cache_policy.c). mt_cpol_ghost_due may be called without the lock: the
 * buckets a growth needs now, else 0. The caller allocates them unlocked
 * (mt_cpol_ghost_alloc_buckets; NULL is fine: the ghost is advisory) and,
 * under the lock, offers them before the insert: 1 if the policy took the
 * table (it owns it from then on), 0 if not (the caller frees it after the
 * unlock). After every insert, clear or offer, the caller takes
 * mt_cpol_garbage (a table whose records moved, or NULL) and frees it
 * after the unlock. */
uint32_t mt_cpol_ghost_due(const struct mt_cpol *p);
uint64_t *mt_cpol_ghost_alloc_buckets(uint32_t buckets);
int mt_cpol_ghost_offer(struct mt_cpol *p, uint64_t *slots, uint32_t buckets);
uint64_t *mt_cpol_garbage(struct mt_cpol *p);

/* Starts loading what an insert of hash will touch: its ghost bucket and
 * the entries at the queues' tails (the next victims). */
void mt_cpol_prefetch(const struct mt_cpol *p, uint64_t hash);

/* The queue a new key enters (MT_CPOL_S or MT_CPOL_M): consumes the key's
 * ghost record if any and adapts S's target. Call once per new key, before
 * making room for it. */
int mt_cpol_classify(struct mt_cpol *p, uint64_t hash);

/* Links a new entry at the head of queue (from mt_cpol_classify). The caller
 * has made room: resident cost + e->cost <= capacity. */
void mt_cpol_insert(struct mt_cpol *p, struct mt_cache_entry *e, int queue);

/* e takes old's place: same queue and position, old's count plus this
 * access. old is unlinked. If e costs more, the caller makes room first,
 * while old is still linked (the eviction may pick old itself). */
void mt_cpol_replace(struct mt_cpol *p, struct mt_cache_entry *old, struct mt_cache_entry *e);

/* Picks, unlinks and returns the next victim, recording it in the ghost;
 * NULL if the policy holds nothing. Amortized O(1): every entry examined
 * and not evicted had a hit (or a first S pass) paid for earlier. */
struct mt_cache_entry *mt_cpol_evict(struct mt_cpol *p);

/* Unlinks e for a reason other than eviction (delete, expiry): no ghost. */
void mt_cpol_remove(struct mt_cpol *p, struct mt_cache_entry *e);

/* Unlinks and returns any entry (for clear and destroy), NULL when empty. */
struct mt_cache_entry *mt_cpol_pop(struct mt_cpol *p);

/* A zeroed ghost of the initial size for mt_cpol_clear (NULL: no memory),
 * allocated before the shard lock is taken. */
uint64_t *mt_cpol_ghost_new(void);

/* Empties the policy in O(1) (clear): moves every entry onto the list gone
 * (initialised by the caller, which owns the entries from then on), zeroes
 * the sums, forgets the ghost history by installing ghost (from
 * mt_cpol_ghost_new; owned by the policy from then on). Returns the old
 * ghost's slots, which the caller frees after releasing the lock. */
uint64_t *mt_cpol_clear(struct mt_cpol *p, struct mt_clist *gone, uint64_t *ghost);

/* Resident cost and entries. */
static inline uint64_t mt_cpol_cost(const struct mt_cpol *p)
{
	return p->s_cost + p->m_cost;
}

static inline uint64_t mt_cpol_entries(const struct mt_cpol *p)
{
	return p->s_n + p->m_n;
}

#endif /* MT_CACHE_POLICY_H */
