/*
 * mt_cache.c - the concurrent bounded cache (mantis_cache_*): sharded map,
 * lock-free reads, per-shard writers, O(1) eviction, TTL by timer wheel.
 *
 * Past 800 lines because the shard lock, the table, retirement and the
 * put/delete/expire paths share one critical-section discipline that is
 * easier to check in one place; the policy (mt_cache_policy.c), the wheel
 * (mt_timerwheel.c) and the coherence protocol (mt_coherent.c) live apart.
 *
 * Design. A cache is 2^k shards (k <= 6), chosen by the top bits of a 64-bit
 * key hash. Each shard owns, under one lock held by writers only:
 *  - an open-addressing table (linear probing) of 64-bit slot words:
 *    0 empty, 1 tombstone, else tag << 48 | entry pointer, where the 16-bit
 *    tag is hash bits 42..57, so a probe rarely dereferences a wrong entry;
 *  - the eviction policy (mt_cache_policy.c: adaptive S3-FIFO) over its
 *    entries, with capacity / shards of the cost budget;
 *  - a hierarchical timer wheel of the entries with a TTL (mt_timerwheel.c);
 *  - its write-side counters (inserts, evictions, expirations, rejections,
 *    entries, cost), stored atomically so that stats can read them.
 * Shards have at least MT_CACHE_SHARD_MIN cost units, so that small caches
 * are few shards and each policy sees enough entries; at most 64. A put
 * whose cost exceeds its shard's capacity is declined (an older version of
 * the key is removed: the new value supersedes it).
 *
 * Shard locks spin briefly, then sleep on a futex (see mt_cache_lock). A put allocates its entry
 * before locking (the only failure, ENOMEM, then changes nothing),
 * prefetches the lock and the key's slot, and fills small entries under
 * the lock so that their stores drain while the table and ghost are probed.
 *
 * Entries are immutable once published (see mt_cache.h) except the policy's
 * access count. A put builds a new entry, then under the shard lock evicts
 * what must go and publishes the entry with one atomic store of its slot
 * word; a replacement stores the new entry over the old one in the same slot.
 *
 * Reads (get) take no lock: inside an epoch section they load the shard's
 * table pointer, probe, compare the key, copy the value out and record the
 * hit in the entry's count byte (a store only when the count changes).
 * Hits and misses are counted in a stripe owned by the calling thread (one
 * of 64 claimed per thread, released at thread exit; threads beyond 64 share
 * one atomic stripe), so a hit writes no shared cache line. The handle is
 * looked up with mt_handle_peek (no reference count traffic) for the same
 * reason; mantis_cache_close's destroy waits for a grace period instead.
 *
 * Invariants (shard lock held):
 *  (T1) every resident entry is in the policy, its cost in the policy's
 *       sums, and in one slot (e->slot) of the current table or, while a
 *       rebuild migrates, of the previous one (M1, M2 at
 *       mt_cache_in_table);
 *  (T2) the current table's occupied slots <= live (the policy's entry
 *       count) + tombs <= 3/4 of its slots after any put's rebuild check,
 *       so probes always meet an empty slot and stop;
 *  (T3) the resident cost of a shard never exceeds its capacity, so the
 *       cache's resident cost never exceeds its capacity: the slack is 0
 *       cost units (memory of retired entries awaiting their grace period
 *       is not resident and is bounded by mt_epoch's polling);
 *  (T4) an entry has a timer in its shard's wheel iff expire_ns != 0.
 *
 * Concurrency argument. Writers of one shard are serialised by its lock;
 * writers of different shards share nothing but the (read-only) cache
 * header. A reader sees either a slot word published by a release store
 * after the entry was fully written (ck_pr_fence_store before the store;
 * loads on x86-64 are ordered, and ck_pr_fence_load documents the pairing),
 * or a tombstone/empty word. A reader may find an entry that a concurrent
 * writer is replacing or removing: the get linearises before that write.
 * Table rebuilds are incremental (the argument is above mt_cache_in_table):
 * a new table, allocated before the lock, is published with one pointer
 * store and linked to the old one, whose entries each write of the shard
 * copies a bounded step at a time; readers probe both until the copy ends.
 * clear swaps in empty tables allocated beforehand.
 *
 * Bounded critical sections (issue 11: the progress rule). No shard lock is
 * held across work that grows with the shard's size or with other threads'
 * work: a rebuild migrates MT_CACHE_MIGRATE_STEP slots per write, the
 * ghost grows by MT_CPOL_GHOST_STEP buckets per insert, the wheel fires at
 * most MT_CACHE_EXPIRE_BUDGET timers per put or get, clear swaps pointers
 * and detaches queues, and allocation, copies of large values, epoch polls
 * and frees happen outside the lock. What remains proportional is the
 * caller's own request: make_room evicts as many entries as the new
 * entry's cost displaces (a put of default cost evicts at most
 * cost / MANTIS_CACHE_ENTRY_OVERHEAD entries, each examined a bounded
 * number of times: see mt_cpol_evict), and mantis_cache_expire, an
 * explicit full sweep, fires every due timer.
 *
 * Sections are opened without a ck_epoch_section_t: they never overlap
 * within a thread except by nesting, which the record's active count
 * covers, and that saves ck_epoch's per-section reference counting on
 * every call.
 *
 * Reclamation argument. Removed entries and replaced tables are retired
 * with mt_epoch_call and freed only after every section that could have
 * loaded them ended. They are collected under the shard lock and handed to
 * mt_epoch_call after the unlock, behind a store-load fence (see
 * mt_cache_retire_flush): the epoch poll that mt_epoch_call runs now and
 * then, and the frees it may trigger, never hold a shard lock. Readers only dereference entries and
 * tables inside a section. The cache object itself is freed by mantis_cache_close after
 * ck_epoch_synchronize_wait: every get/put that peeked the handle did so
 * inside a section begun before it re-checked that the handle was open,
 * and close marks the handle CLOSED before waiting, so no section that can
 * reach the cache survives the wait. Resident entries are then freed
 * directly.
 *
 * TTL: expire_ns is absolute (CLOCK_MONOTONIC). A get treats an entry with
 * expire_ns <= now as a miss and, with a trylock, reclaims it. Wheels are
 * advanced by every put on their shard, by every put on a round-robin
 * neighbour shard (trylock, only when its next timer is due), and by
 * mantis_cache_expire, so entries nobody touches are reclaimed too.
 */
#include "mt_cache.h"

#include "mantis.h"
#include "mt_alloc.h"
#include "mt_args.h"
#include "mt_cache_policy.h"
#include "mt_epoch.h"
#include "mt_handle.h"
#include "mt_pr.h"

#include <assert.h>
#include <pthread.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MT_CACHE_SHARD_MIN     (1ull << 16) /* cost units per shard, at least */
#define MT_CACHE_SHARDS_MAX    64u
#define MT_CACHE_TSLOTS        64u /* exclusive stat stripes; one more shared */
#define MT_CACHE_TICK_SHIFT    20  /* timer wheel tick: 2^20 ns */
#define MT_CACHE_TABLE_MIN     16u
#define MT_CACHE_EXPIRE_BUDGET 64u /* timers one put or get may fire (see mt_cache_advance) */
#define MT_CACHE_MIGRATE_STEP  64u /* old slots one write migrates (see mt_cache_migrate) */
#define MT_CACHE_SHRINK_MAX    8u  /* a rebuild shrinks a table by at most this factor */
#define MT_CACHE_TABLE_TRIES   3   /* put's relocks for a table allocated outside the lock */

#define MT_CACHE_EMPTY    0ull
#define MT_CACHE_TOMB     1ull
#define MT_CACHE_PTR_MASK ((1ull << 48) - 1)

struct mt_cache_table {
	ck_epoch_entry_t epoch;      /* for retirement */
	struct mt_cache_table *prev; /* the table migrating into this one, or NULL (atomic) */
	uint64_t mask;               /* slots - 1 */
	uint64_t slots[];
};

/* A shard. A put writes three of its cache lines: the lock's (with the
 * table pointer, tombstone and probe counts) and the policy's two hot
 * lines; TTL and rare counters live apart. */
struct mt_cache_shard {
	uint32_t lock;                /* mt_cache_lock: 0 free, 1 held, 2 contended */
	struct mt_cache_table *table; /* published with ck_pr_store_ptr */
	uint64_t tombs;               /* tombstone slots of table (lock; atomic stores) */
	uint64_t moved;               /* next slot of table->prev to migrate (lock) */
	uint64_t probes;              /* slots examined by writers' lookups (lock) */
	uint64_t rebuilds, forced;    /* migrations begun; finished at once (atomic; tests) */
	struct mt_cpol pol;           /* live slots = mt_cpol_entries(&pol) */
	/* Rare counters: written under the lock with atomic stores. */
	uint64_t expirations, rejections;
	uint64_t capacity;   /* read-only */
	uint64_t timers;     /* entries in the wheel (atomic copy) */
	uint64_t timer_next; /* the wheel's next due tick (atomic copy) */
	struct mt_tw wheel;
} __attribute__((aligned(64)));

struct mt_cache_stripe {
	uint64_t hits, misses;
} __attribute__((aligned(64)));

struct mt_cache {
	uint64_t capacity;
	uint32_t nshards;
	uint32_t shard_shift; /* shard = hash >> shard_shift (nshards > 1) */
	uint32_t ttl_used;    /* set once a put carried a TTL */
	struct mt_cache_shard *shards;
	uint64_t *coherent; /* mt_coherent.c's state, allocated on first use */
	struct mt_cache_stripe stripes[MT_CACHE_TSLOTS + 1];
};

/* ------------------------------------------------------------------ shard locks */

/*
 * A spin-then-sleep lock (0 free, 1 held, 2 held with sleepers). Critical
 * sections are short (a probe, a few list and slot updates), so a waiter
 * first spins a little: a futex round trip costs far more than most
 * sections. But with more threads than cores the holder may be descheduled
 * for a whole time slice, and a spinning or yielding waiter would then burn
 * the CPU that the holder needs; so after MT_CACHE_SPINS it marks the lock
 * contended and sleeps on it in the kernel, and the unlock of a contended
 * lock wakes one sleeper (the progress rule: no spinning or yielding on
 * another thread's unbounded wait).
 */
#define MT_CACHE_SPINS 128

static void mt_cache_futex(uint32_t *l, int op, uint32_t val)
{
	(void)syscall(SYS_futex, l, op, val, NULL, NULL, 0);
}

static void mt_cache_lock_slow(uint32_t *l)
{
	for (unsigned spins = 0; spins < MT_CACHE_SPINS; spins++) {
		ck_pr_stall();
		/* Acquire (seq_cst CAS), as in mt_cache_lock. */
		if (ck_pr_load_32(l) == 0 && ck_pr_cas_32(l, 0, 1))
			return;
	}
	/* Sleep until the lock is ours. Taking it with 2 (not 1) is
	 * conservative: we cannot know whether other sleepers remain, so our
	 * unlock will wake one. Acquire: the exchange is a full barrier. */
	while (ck_pr_fas_32(l, 2) != 0)
		mt_cache_futex(l, FUTEX_WAIT_PRIVATE, 2);
}

static inline void mt_cache_lock(uint32_t *l)
{
	/* Acquire: the CAS is a full barrier on x86-64 (seq_cst elsewhere),
	 * so the critical section's accesses cannot move before it. */
	if (!ck_pr_cas_32(l, 0, 1))
		mt_cache_lock_slow(l);
}

static inline int mt_cache_trylock(uint32_t *l)
{
	return ck_pr_load_32(l) == 0 && ck_pr_cas_32(l, 0, 1);
}

static inline void mt_cache_unlock(uint32_t *l)
{
	/* Release (full-barrier exchange): every access of the critical
	 * section before the store that frees the lock; a 2 means someone
	 * sleeps (or is about to: its FUTEX_WAIT then sees 0 and returns). */
	if (ck_pr_fas_32(l, 0) == 2)
		mt_cache_futex(l, FUTEX_WAKE_PRIVATE, 1);
}

/* ------------------------------------------------------------------ hashing */

static inline uint64_t mt_cache_fold(uint64_t a, uint64_t b)
{
	__uint128_t m = (__uint128_t)a * b;

	return (uint64_t)m ^ (uint64_t)(m >> 64);
}

static inline uint64_t mt_cache_read64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* A 64-bit hash of key: 16 bytes per 128-bit multiply, then a final fold
 * so that every output bit depends on every input bit. */
static inline uint64_t mt_cache_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ ((uint64_t)len * 0xa0761d6478bd642full);
	uint64_t a, b;

	while (len > 16) {
		h = mt_cache_fold(mt_cache_read64(p) ^ 0xe7037ed1a0b428dbull ^ h,
		                  mt_cache_read64(p + 8) ^ 0x8ebc6af09c88c6e3ull);
		p += 16;
		len -= 16;
	}
	if (len >= 8) {
		a = mt_cache_read64(p);
		b = mt_cache_read64(p + len - 8);
	} else if (len >= 4) {
		uint32_t x, y;

		memcpy(&x, p, 4);
		memcpy(&y, p + len - 4, 4);
		a = x;
		b = y;
	} else {
		a = len > 0 ? ((uint64_t)p[0] << 16 | (uint64_t)p[len >> 1] << 8 | p[len - 1]) : 0;
		b = 0;
	}
	h = mt_cache_fold(a ^ 0xe7037ed1a0b428dbull ^ h, b ^ 0x589965cc75374cc3ull);
	return mt_cache_fold(h ^ 0x1d8e4e27c47d124full, 0x8ebc6af09c88c6e3ull ^ (h >> 29));
}

uint64_t mt_cache_key_hash(const void *key, size_t klen)
{
	return mt_cache_hash(key, klen);
}

uint64_t *mt_cache_coherent_state(struct mt_cache *c, size_t words)
{
	uint64_t *s = ck_pr_load_ptr(&c->coherent), *fresh;

	if (s != NULL)
		return s;
	fresh = mt_calloc(words, sizeof(uint64_t));
	if (fresh == NULL)
		return NULL;
	/* Release (CAS): the zeroed array before its pointer. The loser of a
	 * race frees its own copy and takes the winner's. */
	if (ck_pr_cas_ptr_value(&c->coherent, NULL, fresh, &s))
		return fresh;
	mt_free(fresh);
	return s;
}

static inline uint64_t mt_cache_tag(uint64_t hash)
{
	return (hash >> 42) & 0xffffull;
}

static inline struct mt_cache_shard *mt_cache_shard_of(struct mt_cache *c, uint64_t hash)
{
	return c->nshards == 1 ? &c->shards[0] : &c->shards[hash >> c->shard_shift];
}

/* ------------------------------------------------------------------ clock */

static uint64_t mt_cache_clock_skew;

void mt_cache_test_advance_clock(uint64_t ns)
{
	ck_pr_add_64(&mt_cache_clock_skew, ns);
}

static uint64_t mt_cache_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec +
	       ck_pr_load_64(&mt_cache_clock_skew);
}

static inline uint64_t mt_cache_tick(uint64_t ns)
{
	return ns >> MT_CACHE_TICK_SHIFT;
}

/* ------------------------------------------------------------------ stat stripes */

static uint64_t mt_cache_tslot_map; /* bit i: stripe i is claimed by a thread */
static __thread int mt_cache_tslot = -1;
static pthread_once_t mt_cache_tslot_once = PTHREAD_ONCE_INIT;
static pthread_key_t mt_cache_tslot_key;
static int mt_cache_tslot_key_ok;

static void mt_cache_tslot_exit(void *arg)
{
	unsigned slot = (unsigned)((uintptr_t)arg - 1);

	mt_cache_tslot = -1;
	/* Release: the exiting thread's stripe stores happen before the next
	 * owner's claim (a CAS on the same word). */
	ck_pr_and_64(&mt_cache_tslot_map, ~(1ull << slot));
}

static void mt_cache_tslot_setup(void)
{
	mt_cache_tslot_key_ok = pthread_key_create(&mt_cache_tslot_key, mt_cache_tslot_exit) == 0;
}

static int mt_cache_tslot_claim(void)
{
	uint64_t m;

	pthread_once(&mt_cache_tslot_once, mt_cache_tslot_setup);
	if (!mt_cache_tslot_key_ok)
		return mt_cache_tslot = (int)MT_CACHE_TSLOTS;
	m = ck_pr_load_64(&mt_cache_tslot_map);
	while (m != ~0ull) {
		unsigned slot = (unsigned)__builtin_ctzll(~m);

		/* Acquire: see the previous owner's stores to this stripe. */
		if (ck_pr_cas_64_value(&mt_cache_tslot_map, m, m | (1ull << slot), &m)) {
			if (pthread_setspecific(mt_cache_tslot_key,
			                        (void *)(uintptr_t)(slot + 1)) != 0) {
				ck_pr_and_64(&mt_cache_tslot_map, ~(1ull << slot));
				break;
			}
			return mt_cache_tslot = (int)slot;
		}
	}
	return mt_cache_tslot = (int)MT_CACHE_TSLOTS;
}

/* Adds one to a counter of the calling thread's stripe. */
static inline void mt_cache_count(struct mt_cache *c, int misses)
{
	int slot = mt_cache_tslot;
	struct mt_cache_stripe *st;
	uint64_t *ctr;

	if (slot < 0)
		slot = mt_cache_tslot_claim();
	st = &c->stripes[slot];
	ctr = misses ? &st->misses : &st->hits;
	if (slot < (int)MT_CACHE_TSLOTS)
		/* The thread owns this stripe: no RMW needed. */
		ck_pr_store_64(ctr, ck_pr_load_64(ctr) + 1);
	else
		ck_pr_inc_64(ctr);
}

/* A counter written only by the lock holder. */
static inline void mt_cache_bump(uint64_t *ctr, uint64_t by)
{
	ck_pr_store_64(ctr, ck_pr_load_64(ctr) + by);
}

/* ------------------------------------------------------------------ tables */

static struct mt_cache_table *mt_cache_table_new(uint64_t nslots)
{
	struct mt_cache_table *t;

	assert((nslots & (nslots - 1)) == 0);
	t = mt_calloc(1, sizeof(*t) + nslots * sizeof(uint64_t));
	if (t == NULL)
		return NULL;
	t->mask = nslots - 1;
	mt_calloc_prefault(t->slots, nslots * sizeof(uint64_t)); /* faults outside the lock */
	return t;
}

static void mt_cache_table_free_cb(ck_epoch_entry_t *ep)
{
	mt_epoch_reclaim_acquire();
	mt_free((char *)ep - offsetof(struct mt_cache_table, epoch));
}

static void mt_cache_entry_free_cb(ck_epoch_entry_t *ep)
{
	mt_epoch_reclaim_acquire();
	mt_free(MT_CACHE_ENTRY_OF(ep, epoch));
}

static inline int mt_cache_key_eq(const struct mt_cache_entry *e, uint64_t hash, const void *key,
                                  size_t klen)
{
	if (e->hash != hash || e->klen != klen)
		return 0;
	/* Short keys without a call: two overlapping 8-byte loads. */
	if (klen >= 8 && klen <= 16) {
		const unsigned char *k = key;

		return mt_cache_read64(e->data) == mt_cache_read64(k) &&
		       mt_cache_read64(e->data + klen - 8) == mt_cache_read64(k + klen - 8);
	}
	return memcmp(e->data, key, klen) == 0;
}

/* Lock-free lookup (readers, inside a section; also used by writers). */
static struct mt_cache_entry *mt_cache_table_get(const struct mt_cache_table *t, uint64_t hash,
                                                 const void *key, size_t klen)
{
	uint64_t tag = mt_cache_tag(hash);

	for (uint64_t i = hash & t->mask;; i = (i + 1) & t->mask) {
		uint64_t w = ck_pr_load_64(&t->slots[i]);
		struct mt_cache_entry *e;

		if (w == MT_CACHE_EMPTY)
			return NULL;
		if ((w >> 48) != tag || w == MT_CACHE_TOMB)
			continue;
		/* Pairs with the fence before the slot's publication: the
		 * entry's fields are read after its slot word. */
		ck_pr_fence_load();
		e = (struct mt_cache_entry *)(uintptr_t)(w & MT_CACHE_PTR_MASK);
		if (mt_cache_key_eq(e, hash, key, klen))
			return e;
	}
}

/* Writer lookup: the entry for key (and its slot in *at), or NULL with *at
 * the slot to insert into (the first tombstone on the path, else the empty
 * slot that ended it). */
static struct mt_cache_entry *mt_cache_table_find(const struct mt_cache_table *t, uint64_t hash,
                                                  const void *key, size_t klen, uint64_t *at,
                                                  uint64_t *probes)
{
	uint64_t tag = mt_cache_tag(hash);
	uint64_t tomb = UINT64_MAX;

	for (uint64_t i = hash & t->mask;; i = (i + 1) & t->mask) {
		uint64_t w = t->slots[i]; /* only the lock holder writes slots */
		struct mt_cache_entry *e;

		(*probes)++;

		if (w == MT_CACHE_EMPTY) {
			*at = tomb != UINT64_MAX ? tomb : i;
			return NULL;
		}
		if (w == MT_CACHE_TOMB) {
			if (tomb == UINT64_MAX)
				tomb = i;
			continue;
		}
		if ((w >> 48) != tag)
			continue;
		e = (struct mt_cache_entry *)(uintptr_t)(w & MT_CACHE_PTR_MASK);
		if (mt_cache_key_eq(e, hash, key, klen)) {
			*at = i;
			return e;
		}
	}
}

static inline uint64_t mt_cache_slot_word(const struct mt_cache_entry *e)
{
	return mt_cache_tag(e->hash) << 48 | (uint64_t)(uintptr_t)e;
}

static inline void mt_cache_slot_publish(struct mt_cache_table *t, uint64_t i,
                                         struct mt_cache_entry *e)
{
	assert(((uint64_t)(uintptr_t)e & ~MT_CACHE_PTR_MASK) == 0);
	e->slot = i;
	/* Release: the entry's bytes before the word that makes it visible. */
	ck_pr_fence_store();
	ck_pr_store_64(&t->slots[i], mt_cache_slot_word(e));
}

/* Retirement outside the lock. Removed entries and replaced tables are
 * collected during a critical section and handed to mt_epoch_call only after
 * the lock is released: mt_epoch_call polls the epoch every few calls and
 * may then run callbacks that free any number of entries (values of up to
 * MANTIS_VALUE_MAX bytes), work that must not hold a shard lock. The chain
 * reuses the epoch entry's own link and callback fields, which are free
 * until mt_epoch_call. */
struct mt_cache_retired {
	ck_epoch_entry_t *head;
};

static inline void mt_cache_retire(struct mt_cache_retired *rt, ck_epoch_entry_t *ep,
                                   ck_epoch_cb_t *cb)
{
	ep->function = cb;
	ep->stack_entry.next = rt->head != NULL ? &rt->head->stack_entry : NULL;
	rt->head = ep;
}

static void mt_cache_retire_flush(ck_epoch_record_t *r, struct mt_cache_retired *rt)
{
	ck_epoch_entry_t *ep = rt->head;

	if (ep == NULL)
		return;
	/* Store-load: the stores that unlinked these entries and tables (slot
	 * words, table pointer) are ordered before ck_epoch_call's load of the
	 * global epoch, so a reader whose section begins in a later epoch
	 * cannot still find them (issue 8, defect 6: on arm64 the unlocking
	 * release store alone does not order a later load). */
	ck_pr_fence_store_load();
	while (ep != NULL) {
		ck_stack_entry_t *next = ep->stack_entry.next;

		mt_epoch_call(r, ep, ep->function);
		ep = next != NULL
		             ? (ck_epoch_entry_t *)(void *)((char *)next -
		                                            offsetof(ck_epoch_entry_t, stack_entry))
		             : NULL;
	}
	rt->head = NULL;
}

/* Table rebuilds are incremental (issue 11: no shard lock held across work
 * that grows with the shard). A rebuild links the current table as the new
 * one's prev, publishes the new one, and from then on every write of the
 * shard migrates MT_CACHE_MIGRATE_STEP slots of prev (in index order,
 * sh->moved is the cursor) before its own work; when the cursor passes the
 * end, prev is unlinked and retired. The new table is allocated before the
 * lock is taken (a put predicts the rebuild from atomic counters, and if
 * the prediction missed it relocks with a table it allocated unlocked), so
 * a lock holder neither allocates nor copies more than a step.
 *
 * Migration copies: an entry's word is stored into the new table and left
 * in prev, so prev only ever changes by what the entry's own writes do
 * (the mirror invariant M below); a table a reader loaded as current and
 * that became a prev meanwhile thus keeps every key's state as of some
 * moment of that reader's section, as before for a table replaced
 * wholesale. While prev is linked (lock held):
 *  (M1) every resident entry e is in exactly one of: the table at e->slot
 *       (then table->slots[e->slot] names e), or prev at e->slot with
 *       e->slot >= moved (not yet migrated);
 *  (M2) a live word of prev below moved names an entry resident in the
 *       table, or one replaced or removed since whose slot in prev was
 *       updated with it (replaced: the new word; removed: a tombstone): a
 *       write of a migrated entry writes both tables, the table first.
 * Readers load table, then table->prev, probe the table, then prev: an
 * entry not yet copied when the table was probed is still in prev, in the
 * same or a later state (M2), so a resident key is never missed; a table
 * whose prev was NULL when loaded holds every entry (the store that unlinks
 * prev is a release after the last copy).
 *
 * Bound: a rebuild sizes the new table n >= 2 (live + 1) and
 * n >= prev slots / MT_CACHE_SHRINK_MAX. Only an insert of a new key into
 * an empty slot raises live + tombs (evictions and deletes turn live slots
 * into tombstones or shrink live), and every put migrates a step first, so
 * before the next rebuild is due (3/4 of n) at least n/4 puts migrate
 * 64 n/4 = 16 n >= 2 * 8 n >= 2 * prev slots: the migration always ends
 * first. Should it not (a bug), the rebuild finishes it at once and counts
 * it in sh->forced, which the tests require to stay 0. */

static inline int mt_cache_in_table(const struct mt_cache_table *t, const struct mt_cache_entry *e)
{
	return e->slot <= t->mask && t->slots[e->slot] == mt_cache_slot_word(e);
}

/* Writer: the slot of t holding exactly word, or UINT64_MAX. */
static uint64_t mt_cache_table_slot_of(const struct mt_cache_table *t, uint64_t hash, uint64_t word)
{
	for (uint64_t i = hash & t->mask;; i = (i + 1) & t->mask) {
		uint64_t w = t->slots[i];

		if (w == word)
			return i;
		if (w == MT_CACHE_EMPTY)
			return UINT64_MAX;
	}
}

/* Writer lookup in the shard: the entry for key (in the table or prev), or
 * NULL; *at is the insert slot of the current table (see
 * mt_cache_table_find), meaningful only for a NULL result. */
static struct mt_cache_entry *mt_cache_find(struct mt_cache_shard *sh, uint64_t hash,
                                            const void *key, size_t klen, uint64_t *at)
{
	struct mt_cache_table *t = sh->table;
	struct mt_cache_entry *e = mt_cache_table_find(t, hash, key, klen, at, &sh->probes);
	uint64_t pat;

	if (e != NULL || t->prev == NULL)
		return e;
	return mt_cache_table_find(t->prev, hash, key, klen, &pat, &sh->probes);
}

static inline void mt_cache_set_tombs(struct mt_cache_shard *sh, uint64_t tombs)
{
	ck_pr_store_64(&sh->tombs, tombs); /* read unlocked by mt_cache_table_due */
}

/* Stores word w (an entry already published once, or a tombstone) over
 * resident e's slot(s): the table's, then, if e was migrated, prev's (M2). */
static void mt_cache_slot_rewrite(struct mt_cache_shard *sh, const struct mt_cache_entry *e,
                                  uint64_t w)
{
	struct mt_cache_table *t = sh->table, *p = t->prev;
	uint64_t old = mt_cache_slot_word(e);

	if (!mt_cache_in_table(t, e)) {
		assert(p != NULL && e->slot >= sh->moved && p->slots[e->slot] == old);
		ck_pr_store_64(&p->slots[e->slot], w);
		return;
	}
	ck_pr_store_64(&t->slots[e->slot], w);
	if (p != NULL) {
		uint64_t j = mt_cache_table_slot_of(p, e->hash, old);

		if (j != UINT64_MAX)
			ck_pr_store_64(&p->slots[j], w);
	}
}

/* Migrates up to `budget` slots of the shard's prev table (lock held), and
 * retires prev once every slot has been copied. */
static void mt_cache_migrate(struct mt_cache_shard *sh, struct mt_cache_retired *rt,
                             uint64_t budget)
{
	struct mt_cache_table *t = sh->table, *p = t->prev;

	if (p == NULL)
		return;
	for (; budget > 0 && sh->moved <= p->mask; budget--, sh->moved++) {
		uint64_t w = p->slots[sh->moved], j;
		struct mt_cache_entry *e;

		if (w == MT_CACHE_EMPTY || w == MT_CACHE_TOMB)
			continue;
		e = (struct mt_cache_entry *)(uintptr_t)(w & MT_CACHE_PTR_MASK);
		for (j = e->hash & t->mask; t->slots[j] > MT_CACHE_TOMB; j = (j + 1) & t->mask)
			;
		if (t->slots[j] == MT_CACHE_TOMB)
			mt_cache_set_tombs(sh, sh->tombs - 1);
		e->slot = j; /* writers' field: readers never look at it */
		/* Release: the entry's bytes (published once already, under
		 * this lock) before the word in the new table. */
		ck_pr_fence_store();
		ck_pr_store_64(&t->slots[j], w);
	}
	if (sh->moved > p->mask) {
		/* Release: every copy before the store that lets readers skip
		 * prev (they load table->prev before probing the table). */
		ck_pr_fence_store();
		ck_pr_store_ptr(&t->prev, NULL);
		mt_cache_retire(rt, &p->epoch, mt_cache_table_free_cb);
	}
}

/* The size of a rebuilt table: at most half full, and a shrink of at most
 * MT_CACHE_SHRINK_MAX (the migration bound above). */
static uint64_t mt_cache_table_want(uint64_t live, uint64_t slots)
{
	uint64_t n = MT_CACHE_TABLE_MIN;

	while (n < 2 * (live + 1) || n < slots / MT_CACHE_SHRINK_MAX)
		n *= 2;
	return n;
}

/* Unlocked prediction for a put: the size of the table its insert would
 * need (0: none). Reads only atomic fields. */
static uint64_t mt_cache_table_due(struct mt_cache_shard *sh)
{
	const struct mt_cache_table *t = ck_pr_load_ptr(&sh->table);
	uint64_t live = ck_pr_load_64(&sh->pol.s_n) + ck_pr_load_64(&sh->pol.m_n);
	uint64_t tombs = ck_pr_load_64(&sh->tombs);

	if ((live + tombs + 1) * 4 <= (t->mask + 1) * 3)
		return 0;
	return mt_cache_table_want(live + 1, t->mask + 1);
}

#define MT_CACHE_TABLE_NEEDED 2 /* mt_cache_table_reserve: allocate *want slots, relock */

/* Makes room for one more key in the shard's table (lock held; the caller
 * migrated its step before its lookup): starts a rebuild before an insert would pass 3/4, with
 * *spare (a zeroed table allocated outside the lock, taken on use) if it has a fitting size.
 * Returns 1 if it started a rebuild, 0 if there was room, or MT_CACHE_TABLE_NEEDED with *want the
 * size to allocate (nothing changed). */
static int mt_cache_table_reserve(struct mt_cache_shard *sh, struct mt_cache_retired *rt,
                                  struct mt_cache_table **spare, uint64_t *want)
{
	struct mt_cache_table *old = sh->table, *t;
	uint64_t live = mt_cpol_entries(&sh->pol), n;

	if ((live + sh->tombs + 1) * 4 <= (old->mask + 1) * 3)
		return 0;
	n = mt_cache_table_want(live, old->mask + 1);
	t = *spare;
	if (t == NULL || t->mask + 1 < n || t->mask + 1 > 4 * n) {
		*want = n;
		return MT_CACHE_TABLE_NEEDED;
	}
	if (old->prev != NULL) {
		/* Unreachable by the bound above; finish rather than chain. */
		mt_cache_migrate(sh, rt, UINT64_MAX);
		ck_pr_store_64(&sh->forced, sh->forced + 1);
	}
	*spare = NULL;
	t->prev = old; /* not yet published: a plain store */
	sh->moved = 0;
	/* Release: the new table (zeroed, prev set) before the pointer. */
	ck_pr_fence_store();
	ck_pr_store_ptr(&sh->table, t);
	mt_cache_set_tombs(sh, 0);
	ck_pr_store_64(&sh->rebuilds, sh->rebuilds + 1);
	mt_cache_migrate(sh, rt, MT_CACHE_MIGRATE_STEP);
	return 1;
}

/* ------------------------------------------------------------------ shard ops (lock held) */

struct mt_cache_fire {
	struct mt_cache_shard *sh;
	struct mt_cache_retired *rt;
	uint64_t now_ns;
	struct mt_tw_node *early; /* fired before expire_ns (same tick): re-arm */
	uint64_t expired;
};

/* Publishes the wheel's timer count for the neighbours' sweeps (a store
 * only when it changed: the line stays shared otherwise). */
static void mt_cache_sync_counts(struct mt_cache_shard *sh)
{
	if (ck_pr_load_64(&sh->timers) != sh->wheel.count)
		ck_pr_store_64(&sh->timers, sh->wheel.count);
}

/* Removes resident e from the table (tombstone) and hands it to the epoch.
 * The policy and the wheel have already let go of it. */
static void mt_cache_drop(struct mt_cache_shard *sh, struct mt_cache_retired *rt,
                          struct mt_cache_entry *e)
{
	if (mt_cache_in_table(sh->table, e))
		mt_cache_set_tombs(sh, sh->tombs + 1);
	mt_cache_slot_rewrite(sh, e, MT_CACHE_TOMB);
	mt_cache_retire(rt, &e->epoch, mt_cache_entry_free_cb);
}

/* Removes resident e for good (delete, expiry): wheel, policy, table. */
static void mt_cache_remove(struct mt_cache_shard *sh, struct mt_cache_retired *rt,
                            struct mt_cache_entry *e)
{
	if (e->expire_ns != 0)
		mt_tw_del(&sh->wheel, &e->timer);
	mt_cpol_remove(&sh->pol, e);
	mt_cache_drop(sh, rt, e);
}

static void mt_cache_fire(struct mt_tw_node *n, void *arg)
{
	struct mt_cache_fire *f = arg;
	struct mt_cache_entry *e = MT_CACHE_ENTRY_OF(n, timer);

	if (e->expire_ns > f->now_ns) {
		/* Due this tick but not yet expired: re-armed after the advance. */
		n->next = f->early;
		f->early = n;
		return;
	}
	mt_cpol_remove(&f->sh->pol, e);
	mt_cache_drop(f->sh, f->rt, e);
	f->expired++;
}

/* Advances the shard's wheel toward now_ns, reclaiming expired entries,
 * firing at most about `max` timers (see mt_tw_advance_max): a put, a get's
 * reap or a neighbour's sweep passes MT_CACHE_EXPIRE_BUDGET, so that the
 * time it holds the shard lock does not grow with the number of entries that
 * expired at once; the rest waits for the next call (an expired entry is a
 * miss for readers whether or not it was reclaimed yet, and
 * mantis_cache_expire reclaims everything). */
static uint64_t mt_cache_advance(struct mt_cache_shard *sh, struct mt_cache_retired *rt,
                                 uint64_t now_ns, uint64_t max)
{
	struct mt_cache_fire f = {
	        .sh = sh, .rt = rt, .now_ns = now_ns, .early = NULL, .expired = 0};

	if (sh->wheel.count == 0) {
		sh->wheel.now = mt_cache_tick(now_ns) > sh->wheel.now ? mt_cache_tick(now_ns)
		                                                      : sh->wheel.now;
		return 0;
	}
	mt_tw_advance_max(&sh->wheel, mt_cache_tick(now_ns), max, mt_cache_fire, &f);
	while (f.early != NULL) {
		struct mt_tw_node *n = f.early;

		f.early = n->next;
		mt_tw_add(&sh->wheel, n, mt_cache_tick(MT_CACHE_ENTRY_OF(n, timer)->expire_ns));
	}
	if (f.expired > 0)
		mt_cache_bump(&sh->expirations, f.expired);
	ck_pr_store_64(&sh->timer_next, mt_tw_next(&sh->wheel));
	mt_cache_sync_counts(sh);
	return f.expired;
}

/* Evicts until `need` more cost units fit. Returns 1 if it evicted `keep`
 * (the resident entry a replacement is about to take over; NULL for none):
 * it then stops, and the caller inserts as for a new key. */
static int mt_cache_make_room(struct mt_cache_shard *sh, struct mt_cache_retired *rt, uint64_t need,
                              const struct mt_cache_entry *keep)
{
	while (mt_cpol_cost(&sh->pol) + need > sh->capacity) {
		struct mt_cache_entry *v = mt_cpol_evict(&sh->pol);

		assert(v != NULL);
		if (v == NULL)
			break;
		if (v->expire_ns != 0)
			mt_tw_del(&sh->wheel, &v->timer);
		mt_cache_drop(sh, rt, v);
		if (v == keep)
			return 1;
	}
	return 0;
}

static inline int mt_cache_expired(const struct mt_cache_entry *e, uint64_t now_ns)
{
	return e->expire_ns != 0 && e->expire_ns <= now_ns;
}

/* ------------------------------------------------------------------ open / close */

static void mt_cache_free(struct mt_cache *c)
{
	for (uint32_t i = 0; i < c->nshards; i++) {
		struct mt_cache_shard *sh = &c->shards[i];
		struct mt_cache_entry *e;

		if (sh->table == NULL)
			continue; /* a failed open stops here */
		while ((e = mt_cpol_pop(&sh->pol)) != NULL)
			mt_free(e);
		mt_cpol_destroy(&sh->pol);
		mt_free(sh->table->prev);
		mt_free(sh->table);
	}
	mt_free(c->shards);
	mt_free(c->coherent);
	mt_free(c);
}

/* The handle's destroy: runs when the handle is closed. Gets and puts peek
 * the handle without a reference, so wait for every section that may have
 * reached the cache (see the reclamation argument at the top). */
static void mt_cache_destroy(void *obj)
{
	ck_epoch_synchronize_wait(&mt_epoch_global, NULL, NULL);
	mt_epoch_reclaim_acquire();
	mt_cache_free(obj);
}

int mantis_cache_open(const mantis_cache_options_t *opts, uint64_t *cache_out)
{
	struct mt_cache *c;
	uint32_t n = 1;
	uint64_t now;
	int rc;

	if (opts == NULL || cache_out == NULL || opts->capacity == 0 || opts->reserved != 0)
		return MANTIS_EINVAL;
	if (mt_epoch_record() == NULL)
		return MANTIS_ENOMEM;
	while (n < MT_CACHE_SHARDS_MAX && opts->capacity / (2 * (uint64_t)n) >= MT_CACHE_SHARD_MIN)
		n *= 2;
	c = mt_malloc_aligned(sizeof(*c), 64);
	if (c == NULL)
		return MANTIS_ENOMEM;
	memset(c, 0, sizeof(*c));
	c->capacity = opts->capacity;
	c->nshards = n;
	c->shard_shift = 64 - (uint32_t)__builtin_ctz(n);
	c->shards = mt_malloc_aligned(sizeof(*c->shards) * n, 64);
	if (c->shards == NULL) {
		mt_free(c);
		return MANTIS_ENOMEM;
	}
	memset(c->shards, 0, sizeof(*c->shards) * n);
	now = mt_cache_tick(mt_cache_now_ns());
	for (uint32_t i = 0; i < n; i++) {
		struct mt_cache_shard *sh = &c->shards[i];

		/* Shards split the capacity exactly: the first ones take the
		 * remainder. */
		sh->capacity = opts->capacity / n + (i < opts->capacity % n ? 1 : 0);
		sh->timer_next = UINT64_MAX;
		mt_tw_init(&sh->wheel, now);
		if (mt_cpol_init(&sh->pol, sh->capacity) != MANTIS_OK) {
			mt_cpol_destroy(&sh->pol);
			mt_cache_free(c);
			return MANTIS_ENOMEM;
		}
		sh->table = mt_cache_table_new(MT_CACHE_TABLE_MIN);
		if (sh->table == NULL) {
			mt_cpol_destroy(&sh->pol);
			mt_free(sh->table);
			sh->table = NULL;
			mt_cache_free(c);
			return MANTIS_ENOMEM;
		}
	}
	rc = mt_handle_alloc(MT_HANDLE_CACHE, c, mt_cache_destroy, cache_out);
	if (rc != MANTIS_OK)
		mt_cache_free(c);
	return rc;
}

int mantis_cache_close(uint64_t cache)
{
	return mt_handle_close(cache, MT_HANDLE_CACHE);
}

/* ------------------------------------------------------------------ get */

/* Reclaims e, found expired by a reader, if the shard is free right now. */
static void mt_cache_reap(struct mt_cache_shard *sh, ck_epoch_record_t *r, struct mt_cache_entry *e,
                          uint64_t now_ns)
{
	struct mt_cache_retired rt = {NULL};
	uint64_t at;

	if (!mt_cache_trylock(&sh->lock))
		return;
	/* Still resident (not replaced or removed meanwhile)? */
	if (mt_cache_find(sh, e->hash, e->data, e->klen, &at) == e) {
		mt_cache_remove(sh, &rt, e);
		mt_cache_bump(&sh->expirations, 1);
		mt_cache_advance(sh, &rt, now_ns, MT_CACHE_EXPIRE_BUDGET);
		mt_cache_sync_counts(sh);
	}
	mt_cache_unlock(&sh->lock);
	mt_cache_retire_flush(r, &rt);
}

void mt_cache_prefetch_in(struct mt_cache *c, uint64_t hash, int stage)
{
	struct mt_cache_shard *sh = mt_cache_shard_of(c, hash);
	const struct mt_cache_table *t = ck_pr_load_ptr(&sh->table);
	uint64_t w;

	if (stage == 0) {
		__builtin_prefetch(&t->slots[hash & t->mask]);
		return;
	}
	w = ck_pr_load_64(&t->slots[hash & t->mask]);
	if (w != MT_CACHE_TOMB && (w >> 48) == mt_cache_tag(hash))
		__builtin_prefetch((const void *)(uintptr_t)(w & MT_CACHE_PTR_MASK));
}

int mt_cache_get_in(struct mt_cache *c, ck_epoch_record_t *r, uint64_t hash, const void *key,
                    size_t klen, void *buf, size_t cap, size_t *vlen_out, uint64_t *version_out,
                    int count)
{
	struct mt_cache_shard *sh = mt_cache_shard_of(c, hash);
	struct mt_cache_table *t = ck_pr_load_ptr(&sh->table);
	struct mt_cache_table *p = ck_pr_load_ptr(&t->prev);
	struct mt_cache_entry *e;

	/* Acquire: prev is loaded before the table is probed (see the
	 * migration argument above mt_cache_in_table): NULL means every
	 * entry was copied before that load. */
	ck_pr_fence_load();
	e = mt_cache_table_get(t, hash, key, klen);
	if (e == NULL && p != NULL)
		e = mt_cache_table_get(p, hash, key, klen);

	if (e != NULL && e->expire_ns != 0) {
		uint64_t now = mt_cache_now_ns();

		if (mt_cache_expired(e, now)) {
			mt_cache_reap(sh, r, e, now);
			e = NULL;
		}
	}
	if (e == NULL) {
		if (count)
			mt_cache_count(c, 1);
		return MANTIS_NOTFOUND;
	}
	if (count)
		mt_cache_count(c, 0);
	mt_cpol_hit(e);
	*vlen_out = e->vlen;
	if (e->vlen > cap)
		return MANTIS_EBUFSIZE;
	if (e->vlen > 0)
		memcpy(buf, e->data + e->klen, e->vlen);
	if (version_out != NULL)
		*version_out = e->version;
	return MANTIS_OK;
}

int mantis_cache_get(uint64_t cache, const void *key, size_t klen, void *buf, size_t cap,
                     size_t *vlen_out, uint64_t *version_out)
{
	ck_epoch_record_t *r;
	struct mt_cache *c;
	int rc;

	if (vlen_out == NULL || (buf == NULL && cap > 0))
		return MANTIS_EINVAL;
	rc = mt_args_check_key(key, klen);
	if (rc != MANTIS_OK)
		return rc;
	rc = mt_handle_enter(cache, MT_HANDLE_CACHE, &r, (void **)&c);
	if (rc != MANTIS_OK)
		return rc;
	rc = mt_cache_get_in(c, r, mt_cache_hash(key, klen), key, klen, buf, cap, vlen_out,
	                     version_out, 1);
	mt_handle_leave(r);
	return rc;
}

/* ------------------------------------------------------------------ put */

static __thread uint32_t mt_cache_sweep_next; /* round-robin neighbour, per thread */

/* Proactive expiry: advance one other shard's wheel if a timer is due there
 * and nobody holds its lock. */
static void mt_cache_sweep_one(struct mt_cache *c, ck_epoch_record_t *r, uint64_t now_ns)
{
	struct mt_cache_shard *sh = &c->shards[mt_cache_sweep_next++ & (c->nshards - 1)];

	if (ck_pr_load_64(&sh->timers) == 0 ||
	    ck_pr_load_64(&sh->timer_next) > mt_cache_tick(now_ns))
		return;
	struct mt_cache_retired rt = {NULL};

	if (!mt_cache_trylock(&sh->lock))
		return;
	mt_cache_advance(sh, &rt, now_ns, MT_CACHE_EXPIRE_BUDGET);
	mt_cache_unlock(&sh->lock);
	mt_cache_retire_flush(r, &rt);
}

/* A put whose cost exceeds its shard's capacity: declined, and an older
 * version of the key goes (the new value supersedes it). */
static void mt_cache_decline(struct mt_cache_shard *sh, ck_epoch_record_t *r, uint64_t hash,
                             const void *key, size_t klen, uint64_t version)
{
	struct mt_cache_retired rt = {NULL};
	struct mt_cache_entry *old;
	uint64_t at;

	mt_cache_lock(&sh->lock);
	old = mt_cache_find(sh, hash, key, klen, &at);
	if (old != NULL && old->version <= version)
		mt_cache_remove(sh, &rt, old);
	mt_cache_bump(&sh->rejections, 1);
	mt_cache_sync_counts(sh);
	mt_cache_unlock(&sh->lock);
	mt_cache_retire_flush(r, &rt);
}

/* Initialises a new, unpublished entry. */
static void mt_cache_entry_fill(struct mt_cache_entry *e, uint64_t hash, const void *key,
                                size_t klen, const void *value, size_t vlen, uint64_t cost,
                                uint64_t ttl_ms, uint64_t version, uint64_t now_ns)
{
	e->hash = hash;
	e->version = version;
	e->expire_ns = 0;
	if (ttl_ms != 0) {
		uint64_t max_ms = (UINT64_MAX - 1 - now_ns) / 1000000ull;

		e->expire_ns = ttl_ms > max_ms ? UINT64_MAX - 1 : now_ns + ttl_ms * 1000000ull;
	}
	e->cost = cost;
	e->slot = UINT64_MAX;
	e->klen = (uint32_t)klen;
	e->vlen = (uint32_t)vlen;
	e->freq = 0;
	e->queue = 0;
	e->pass = 0;
	e->pad_ = 0;
	e->timer.next = e->timer.prev = NULL;
	memcpy(e->data, key, klen);
	if (vlen > 0)
		memcpy(e->data + klen, value, vlen);
}

int mt_cache_put_in(struct mt_cache *c, ck_epoch_record_t *r, uint64_t hash, const void *key,
                    size_t klen, const void *value, size_t vlen, uint64_t cost, uint64_t ttl_ms,
                    uint64_t version, const struct mt_cache_guard *guard, int *admitted_out)
{
	struct mt_cache_retired rt = {NULL};
	struct mt_cache_table *spare = NULL, *unused = NULL;
	uint64_t *ghost = NULL, *garbage = NULL;
	uint64_t now_ns = 0, at, want;
	uint32_t ghost_buckets;
	struct mt_cache_shard *sh;
	struct mt_cache_entry *e, *old;
	int ttl_active, fill_late, rc, tries = 0;

	if (cost == 0)
		cost = (uint64_t)klen + vlen + MANTIS_CACHE_ENTRY_OVERHEAD;
	if (cost > c->capacity)
		return MANTIS_ETOOLARGE;
	sh = mt_cache_shard_of(c, hash);
	if (ttl_ms != 0 && ck_pr_load_32(&c->ttl_used) == 0)
		ck_pr_store_32(&c->ttl_used, 1);
	ttl_active = ck_pr_load_32(&c->ttl_used) != 0;
	if (ttl_active)
		now_ns = mt_cache_now_ns();
	if (cost > sh->capacity) {
		/* Declined: an older version still goes (a guarded put of an
		 * older version has nothing newer to protect: it only removes
		 * what a writer's invalidation would remove too). */
		mt_cache_decline(sh, r, hash, key, klen, version);
		if (admitted_out != NULL)
			*admitted_out = 0;
		return MANTIS_OK;
	}

	/* Start the cache misses of the locked part now: the shard's lock and
	 * the key's home slot (a table retired meanwhile is still readable:
	 * we are inside a section). */
	__builtin_prefetch(&sh->lock, 1);
	{
		const struct mt_cache_table *t = ck_pr_load_ptr(&sh->table);

		__builtin_prefetch(&t->slots[hash & t->mask]);
	}

	/* Allocate before taking the lock: allocation is the only way to
	 * fail, and then nothing has changed. Small entries are filled under
	 * the lock, so that their stores to fresh lines drain while the table
	 * and the ghost are probed instead of stalling the lock's atomic
	 * (which waits for the store buffer); big ones before it, so that the
	 * lock is never held over a long copy. A table rebuild that this
	 * insert would start gets its table here too (see
	 * mt_cache_table_reserve). */
	e = mt_malloc(sizeof(*e) + klen + vlen);
	if (e == NULL)
		return MANTIS_ENOMEM;
	want = mt_cache_table_due(sh);
	if (want != 0) {
		spare = mt_cache_table_new(want);
		if (spare == NULL) {
			mt_free(e);
			return MANTIS_ENOMEM;
		}
	}
	/* The ghost's growth, likewise (advisory: NULL just defers it). */
	ghost_buckets = mt_cpol_ghost_due(&sh->pol);
	if (ghost_buckets != 0)
		ghost = mt_cpol_ghost_alloc_buckets(ghost_buckets);
	fill_late = klen + vlen <= 512;
	if (!fill_late)
		mt_cache_entry_fill(e, hash, key, klen, value, vlen, cost, ttl_ms, version, now_ns);
relock:
	mt_cache_lock(&sh->lock);
	if (guard != NULL && ck_pr_load_64(guard->word) != guard->want) {
		/* The guard's word moved: a writer of this key's stripe began
		 * since the caller stamped its value. The load is ordered after
		 * the lock's acquisition, and that writer's invalidation takes
		 * this lock after its increment: either we see the increment
		 * here, or our publication precedes its invalidation. */
		mt_cache_bump(&sh->rejections, 1);
		mt_cache_unlock(&sh->lock);
		mt_cache_retire_flush(r, &rt);
		mt_free(e);
		mt_free(spare);
		mt_free(ghost);
		if (admitted_out != NULL)
			*admitted_out = 0;
		return MANTIS_OK;
	}
	if (fill_late)
		mt_cache_entry_fill(e, hash, key, klen, value, vlen, cost, ttl_ms, version, now_ns);
	mt_cpol_prefetch(&sh->pol, hash);
	if (ttl_active && sh->wheel.count > 0)
		mt_cache_advance(sh, &rt, now_ns, MT_CACHE_EXPIRE_BUDGET);
	mt_cache_migrate(sh, &rt, MT_CACHE_MIGRATE_STEP);
	old = mt_cache_find(sh, hash, key, klen, &at);
	if (old != NULL && mt_cache_expired(old, now_ns)) {
		/* Logically absent: reclaim it, then insert as a new key. */
		mt_cache_remove(sh, &rt, old);
		mt_cache_bump(&sh->expirations, 1);
		old = mt_cache_find(sh, hash, key, klen, &at);
	}
	if (old != NULL && old->version > version) {
		mt_cache_bump(&sh->rejections, 1);
		mt_cache_unlock(&sh->lock);
		mt_cache_retire_flush(r, &rt);
		mt_free(e);
		mt_free(spare);
		mt_free(ghost);
		if (admitted_out != NULL)
			*admitted_out = 0;
		return MANTIS_OK;
	}
	/* Room is made before the new entry is linked anywhere, and its timer
	 * is armed before it is published, so no eviction of this put can
	 * pick the entry it publishes (a costlier replacement used to make
	 * room after linking, and could evict itself). The table is reserved
	 * first, so that an allocation failure changes nothing. */
	if (old == NULL || cost > old->cost) {
		rc = mt_cache_table_reserve(sh, &rt, &spare, &want);
		if (rc == MT_CACHE_TABLE_NEEDED) {
			/* The prediction missed (the shard changed since): allocate
			 * unlocked and start over, with room to spare after the
			 * first miss so that another change cannot void it too;
			 * the last try allocates under the lock rather than loop
			 * (the unused table is freed after the unlock). */
			int last = ++tries >= MT_CACHE_TABLE_TRIES;

			if (!last) {
				mt_cache_unlock(&sh->lock);
				mt_cache_retire_flush(r, &rt);
				mt_free(spare);
			} else {
				unused = spare;
			}
			spare = mt_cache_table_new(tries > 1 ? 2 * want : want);
			if (spare == NULL) {
				if (last)
					mt_cache_unlock(&sh->lock);
				mt_cache_retire_flush(r, &rt);
				mt_free(unused);
				mt_free(ghost);
				mt_free(e);
				return MANTIS_ENOMEM;
			}
			if (!last)
				goto relock;
			rc = mt_cache_table_reserve(sh, &rt, &spare, &want);
			assert(rc != MT_CACHE_TABLE_NEEDED);
		}
		if (rc == 1) /* a rebuild began: the insert slot moved */
			old = mt_cache_find(sh, hash, key, klen, &at);
	}
	if (old != NULL && cost > old->cost && mt_cache_make_room(sh, &rt, cost - old->cost, old)) {
		/* The room needed took the old version itself: insert anew (its
		 * tombstone is on the key's path, so no slot is added). */
		old = mt_cache_find(sh, hash, key, klen, &at);
		assert(old == NULL);
	}
	if (old != NULL) {
		/* Replace in place: same slot, same queue position. */
		if (old->expire_ns != 0)
			mt_tw_del(&sh->wheel, &old->timer);
		mt_cpol_replace(&sh->pol, old, e);
		if (e->expire_ns != 0)
			mt_tw_add(&sh->wheel, &e->timer, mt_cache_tick(e->expire_ns));
		e->slot = old->slot;
		/* Release: the entry's bytes before the word(s) naming it. */
		ck_pr_fence_store();
		mt_cache_slot_rewrite(sh, old, mt_cache_slot_word(e));
		mt_cache_retire(&rt, &old->epoch, mt_cache_entry_free_cb);
	} else {
		int q;

		if (ghost != NULL && mt_cpol_ghost_offer(&sh->pol, ghost, ghost_buckets))
			ghost = NULL;
		q = mt_cpol_classify(&sh->pol, hash);
		(void)mt_cache_make_room(sh, &rt, cost, NULL);
		mt_cpol_insert(&sh->pol, e, q);
		garbage = mt_cpol_garbage(&sh->pol);
		if (e->expire_ns != 0)
			mt_tw_add(&sh->wheel, &e->timer, mt_cache_tick(e->expire_ns));
		if (sh->table->slots[at] == MT_CACHE_TOMB)
			mt_cache_set_tombs(sh, sh->tombs - 1);
		mt_cache_slot_publish(sh->table, at, e);
	}
	if (e->expire_ns != 0)
		ck_pr_store_64(&sh->timer_next, mt_tw_next(&sh->wheel));
	mt_cache_sync_counts(sh);
	mt_cache_unlock(&sh->lock);
	mt_cache_retire_flush(r, &rt);
	mt_free(spare); /* a prediction that the insert did not need */
	mt_free(unused);
	mt_free(ghost);
	mt_free(garbage);
	if (ttl_active && c->nshards > 1)
		mt_cache_sweep_one(c, r, now_ns);
	if (admitted_out != NULL)
		*admitted_out = 1;
	return MANTIS_OK;
}

int mantis_cache_put(uint64_t cache, const void *key, size_t klen, const void *value, size_t vlen,
                     uint64_t cost, uint64_t ttl_ms, uint64_t version, int *admitted_out)
{
	ck_epoch_record_t *r;
	struct mt_cache *c;
	int rc;

	/* A bad pointer (EINVAL) wins over a bad key or value length. */
	if (key == NULL || (value == NULL && vlen > 0))
		return MANTIS_EINVAL;
	rc = mt_args_check_klen(klen);
	if (rc != MANTIS_OK)
		return rc;
	if (vlen > MANTIS_VALUE_MAX)
		return MANTIS_ETOOLARGE;
	rc = mt_handle_enter(cache, MT_HANDLE_CACHE, &r, (void **)&c);
	if (rc != MANTIS_OK)
		return rc;
	rc = mt_cache_put_in(c, r, mt_cache_hash(key, klen), key, klen, value, vlen, cost, ttl_ms,
	                     version, NULL, admitted_out);
	mt_handle_leave(r);
	return rc;
}

/* ------------------------------------------------------------------ delete, clear, expire */

int mt_cache_delete_in(struct mt_cache *c, ck_epoch_record_t *r, uint64_t hash, const void *key,
                       size_t klen, uint64_t version)
{
	struct mt_cache_shard *sh = mt_cache_shard_of(c, hash);
	struct mt_cache_retired rt = {NULL};
	struct mt_cache_entry *e;
	uint64_t at;
	int removed = 0;

	mt_cache_lock(&sh->lock);
	mt_cache_migrate(sh, &rt, MT_CACHE_MIGRATE_STEP);
	e = mt_cache_find(sh, hash, key, klen, &at);
	if (e != NULL && e->version <= version) {
		removed = 1;
		mt_cache_remove(sh, &rt, e);
		mt_cache_sync_counts(sh);
	}
	mt_cache_unlock(&sh->lock);
	mt_cache_retire_flush(r, &rt);
	return removed;
}

int mantis_cache_delete(uint64_t cache, const void *key, size_t klen, uint64_t version)
{
	ck_epoch_record_t *r;
	struct mt_cache *c;
	int rc;

	rc = mt_args_check_key(key, klen);
	if (rc != MANTIS_OK)
		return rc;
	rc = mt_handle_enter(cache, MT_HANDLE_CACHE, &r, (void **)&c);
	if (rc != MANTIS_OK)
		return rc;
	(void)mt_cache_delete_in(c, r, mt_cache_hash(key, klen), key, klen, version);
	mt_handle_leave(r);
	return MANTIS_OK;
}

/* Clear holds each shard's lock for O(1) work: it swaps in an empty table
 * and ghost allocated beforehand, and detaches the queues; the entries and
 * the old tables are retired after the unlock. Readers that loaded the old
 * table may still find its entries: they linearise before the clear. All
 * allocations come first, so ENOMEM leaves the cache as it was. */
int mantis_cache_clear(uint64_t cache)
{
	ck_epoch_record_t *r;
	struct mt_cache *c;
	struct mt_cache_table *fresh[MT_CACHE_SHARDS_MAX] = {NULL};
	uint64_t *ghosts[MT_CACHE_SHARDS_MAX] = {NULL};
	int rc;

	rc = mt_handle_enter(cache, MT_HANDLE_CACHE, &r, (void **)&c);
	if (rc != MANTIS_OK)
		return rc;
	for (uint32_t i = 0; i < c->nshards; i++) {
		fresh[i] = mt_cache_table_new(MT_CACHE_TABLE_MIN);
		ghosts[i] = mt_cpol_ghost_new();
		if (fresh[i] == NULL || ghosts[i] == NULL) {
			for (uint32_t j = 0; j <= i; j++) {
				mt_free(fresh[j]);
				mt_free(ghosts[j]);
			}
			mt_handle_leave(r);
			return MANTIS_ENOMEM;
		}
	}
	for (uint32_t i = 0; i < c->nshards; i++) {
		struct mt_cache_shard *sh = &c->shards[i];
		struct mt_cache_retired rt = {NULL};
		struct mt_cache_table *old;
		struct mt_clist gone, *n;
		uint64_t *old_ghost, *moving_ghost;
		uint64_t now = mt_cache_tick(mt_cache_now_ns());

		mt_clist_init(&gone);
		mt_cache_lock(&sh->lock);
		old = sh->table;
		/* Release: the zeroed table before the pointer to it. */
		ck_pr_fence_store();
		ck_pr_store_ptr(&sh->table, fresh[i]);
		mt_cache_set_tombs(sh, 0);
		sh->moved = 0;
		old_ghost = mt_cpol_clear(&sh->pol, &gone, ghosts[i]);
		moving_ghost = mt_cpol_garbage(&sh->pol);
		mt_tw_reset(&sh->wheel, now > sh->wheel.now ? now : sh->wheel.now);
		ck_pr_store_64(&sh->timer_next, UINT64_MAX);
		mt_cache_sync_counts(sh);
		mt_cache_unlock(&sh->lock);
		/* Unlinked from the shard: only this thread reaches these now
		 * (and readers, inside sections, until the grace period). */
		if (old->prev != NULL)
			mt_cache_retire(&rt, &old->prev->epoch, mt_cache_table_free_cb);
		mt_cache_retire(&rt, &old->epoch, mt_cache_table_free_cb);
		for (n = gone.next; n != &gone;) {
			struct mt_cache_entry *e = MT_CACHE_ENTRY_OF(n, q);

			n = n->next; /* before retirement reuses the link */
			mt_cache_retire(&rt, &e->epoch, mt_cache_entry_free_cb);
		}
		mt_cache_retire_flush(r, &rt);
		mt_free(old_ghost);
		mt_free(moving_ghost);
	}
	mt_handle_leave(r);
	return MANTIS_OK;
}

int mantis_cache_expire(uint64_t cache, uint64_t *expired_out)
{
	ck_epoch_record_t *r;
	struct mt_cache *c;
	uint64_t total = 0;
	int rc;

	rc = mt_handle_enter(cache, MT_HANDLE_CACHE, &r, (void **)&c);
	if (rc != MANTIS_OK)
		return rc;
	for (uint32_t i = 0; i < c->nshards; i++) {
		struct mt_cache_shard *sh = &c->shards[i];
		struct mt_cache_retired rt = {NULL};

		mt_cache_lock(&sh->lock);
		total += mt_cache_advance(sh, &rt, mt_cache_now_ns(), UINT64_MAX);
		mt_cache_unlock(&sh->lock);
		mt_cache_retire_flush(r, &rt);
	}
	mt_handle_leave(r);
	if (expired_out != NULL)
		*expired_out = total;
	return MANTIS_OK;
}

/* ------------------------------------------------------------------ stats */

int mantis_cache_stats(uint64_t cache, mantis_cache_stats_t *out)
{
	ck_epoch_record_t *r;
	mantis_cache_stats_t s;
	struct mt_cache *c;
	int rc;

	if (out == NULL)
		return MANTIS_EINVAL;
	rc = mt_handle_enter(cache, MT_HANDLE_CACHE, &r, (void **)&c);
	if (rc != MANTIS_OK)
		return rc;
	memset(&s, 0, sizeof(s));
	for (unsigned i = 0; i <= MT_CACHE_TSLOTS; i++) {
		s.hits += ck_pr_load_64(&c->stripes[i].hits);
		s.misses += ck_pr_load_64(&c->stripes[i].misses);
	}
	for (uint32_t i = 0; i < c->nshards; i++) {
		struct mt_cache_shard *sh = &c->shards[i];

		s.inserts += ck_pr_load_64(&sh->pol.inserted);
		s.evictions += ck_pr_load_64(&sh->pol.evicted);
		s.expirations += ck_pr_load_64(&sh->expirations);
		s.rejections += ck_pr_load_64(&sh->rejections);
		s.entries += ck_pr_load_64(&sh->pol.s_n) + ck_pr_load_64(&sh->pol.m_n);
		s.cost += ck_pr_load_64(&sh->pol.s_cost) + ck_pr_load_64(&sh->pol.m_cost);
	}
	s.capacity = c->capacity;
	mt_handle_leave(r);
	*out = s;
	return MANTIS_OK;
}

int mt_cache_test_counters(uint64_t cache, struct mt_cache_test_counters *out)
{
	ck_epoch_record_t *r;
	struct mt_cache *c;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = mt_handle_enter(cache, MT_HANDLE_CACHE, &r, (void **)&c);
	if (rc != MANTIS_OK)
		return rc;
	for (uint32_t i = 0; i < c->nshards; i++) {
		struct mt_cache_shard *sh = &c->shards[i];
		struct mt_cache_table *t;

		mt_cache_lock(&sh->lock);
		t = ck_pr_load_ptr(&sh->table);
		out->probes += sh->probes;
		out->examined += sh->pol.examined;
		out->rebuilds += ck_pr_load_64(&sh->rebuilds);
		out->forced += ck_pr_load_64(&sh->forced);
		out->migrating += ck_pr_load_ptr(&t->prev) != NULL;
		mt_cache_unlock(&sh->lock);
	}
	mt_handle_leave(r);
	return MANTIS_OK;
}

uint32_t mt_cache_test_shards(uint64_t cache)
{
	ck_epoch_record_t *r;
	struct mt_cache *c;
	uint32_t n;

	if (mt_handle_enter(cache, MT_HANDLE_CACHE, &r, (void **)&c) != MANTIS_OK)
		return 0;
	n = c->nshards;
	mt_handle_leave(r);
	return n;
}

/* The shard's invariants (T1, T2, T3, M1, M2), checked under its lock:
 * every queued entry is where its slot says, every live word of the table
 * names a queued entry, the counts and sums agree. O(shard): tests only. */
static int mt_cache_check_shard(struct mt_cache_shard *sh, char *msg, size_t cap)
{
	struct mt_cache_table *t = sh->table, *p = t->prev;
	uint64_t live_t = 0, tombs_t = 0, in_prev = 0, n = 0, cost = 0;
	struct mt_clist *qs[2] = {&sh->pol.s, &sh->pol.m};

	for (int k = 0; k < 2; k++) {
		for (struct mt_clist *q = qs[k]->next; q != qs[k]; q = q->next) {
			const struct mt_cache_entry *e = MT_CACHE_ENTRY_OF(q, q);

			n++;
			cost += e->cost;
			if (mt_cache_in_table(t, e))
				continue;
			if (p == NULL || e->slot > p->mask || e->slot < sh->moved ||
			    p->slots[e->slot] != mt_cache_slot_word(e)) {
				snprintf(msg, cap,
				         "a queued entry is in no table at its slot (T1, M1)");
				return MANTIS_EINVAL;
			}
			in_prev++;
		}
	}
	for (uint64_t i = 0; i <= t->mask; i++) {
		uint64_t w = t->slots[i];

		if (w == MT_CACHE_TOMB)
			tombs_t++;
		else if (w != MT_CACHE_EMPTY) {
			const struct mt_cache_entry *e =
			        (const struct mt_cache_entry *)(uintptr_t)(w & MT_CACHE_PTR_MASK);

			live_t++;
			if (e->slot != i) {
				snprintf(msg, cap,
				         "a table word names an entry with another slot (T1)");
				return MANTIS_EINVAL;
			}
		}
	}
	if (p != NULL) {
		for (uint64_t i = 0; i < sh->moved && i <= p->mask; i++) {
			uint64_t w = p->slots[i];
			const struct mt_cache_entry *e;

			if (w == MT_CACHE_EMPTY || w == MT_CACHE_TOMB)
				continue;
			e = (const struct mt_cache_entry *)(uintptr_t)(w & MT_CACHE_PTR_MASK);
			if (!mt_cache_in_table(t, e)) {
				snprintf(msg, cap,
				         "a migrated word of prev is not in the table (M2)");
				return MANTIS_EINVAL;
			}
		}
	}
	if (n != mt_cpol_entries(&sh->pol) || cost != mt_cpol_cost(&sh->pol) ||
	    live_t + in_prev != n || tombs_t != sh->tombs) {
		snprintf(msg, cap,
		         "counts: %llu queued (policy %llu), %llu in the table + %llu in prev, "
		         "%llu tombstones (counted %llu) (T1, T2)",
		         (unsigned long long)n, (unsigned long long)mt_cpol_entries(&sh->pol),
		         (unsigned long long)live_t, (unsigned long long)in_prev,
		         (unsigned long long)tombs_t, (unsigned long long)sh->tombs);
		return MANTIS_EINVAL;
	}
	if (cost > sh->capacity || (live_t + tombs_t) * 4 > (t->mask + 1) * 3 + 4) {
		snprintf(msg, cap, "over capacity or load (T2, T3)");
		return MANTIS_EINVAL;
	}
	return MANTIS_OK;
}

int mt_cache_test_check(uint64_t cache, char *msg, size_t cap)
{
	ck_epoch_record_t *r;
	struct mt_cache *c;
	int rc;

	rc = mt_handle_enter(cache, MT_HANDLE_CACHE, &r, (void **)&c);
	if (rc != MANTIS_OK)
		return rc;
	for (uint32_t i = 0; i < c->nshards && rc == MANTIS_OK; i++) {
		mt_cache_lock(&c->shards[i].lock);
		rc = mt_cache_check_shard(&c->shards[i], msg, cap);
		mt_cache_unlock(&c->shards[i].lock);
	}
	mt_handle_leave(r);
	return rc;
}
