/*
 * mt_cache.h - the cache's entry, shared by its modules (mt_cache.c: map,
 * shards, API; mt_cache_policy.c: eviction policy; mt_timerwheel.c: TTL).
 *
 * An entry is immutable once published, except for `freq`, the policy's
 * access counter, which readers bump with single atomic byte stores. Queue
 * links, queue tags and the timer node belong to the shard's writers (under
 * the shard lock). The queue link shares its bytes with the epoch entry:
 * an entry is retired only after it left its queue, and no writer touches
 * the links of a retired entry.
 */
#ifndef MT_CACHE_H
#define MT_CACHE_H

#include "mt_epoch.h"
#include "mt_timerwheel.h"

#include <stddef.h>
#include <stdint.h>

/* A circular doubly linked list node; a list is a sentinel node. */
struct mt_clist {
	struct mt_clist *prev, *next;
};

static inline void mt_clist_init(struct mt_clist *h)
{
	h->prev = h;
	h->next = h;
}

static inline int mt_clist_empty(const struct mt_clist *h)
{
	return h->next == h;
}

/* Inserts n right after h (at the head of the queue h). */
static inline void mt_clist_push(struct mt_clist *h, struct mt_clist *n)
{
	n->next = h->next;
	n->prev = h;
	h->next->prev = n;
	h->next = n;
}

static inline void mt_clist_del(struct mt_clist *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
}

/* n takes old's place in its list. */
static inline void mt_clist_replace(struct mt_clist *old, struct mt_clist *n)
{
	n->next = old->next;
	n->prev = old->prev;
	n->prev->next = n;
	n->next->prev = n;
}

struct mt_cache_entry {
	union {
		struct mt_clist q;      /* S or M queue link (shard lock) */
		ck_epoch_entry_t epoch; /* once retired */
	};
	struct mt_tw_node timer; /* in the shard's wheel iff expire_ns != 0 */
	uint64_t hash;
	uint64_t version;
	uint64_t expire_ns; /* 0: never */
	uint64_t cost;
	uint64_t slot; /* index in the shard table that holds it (shard lock) */
	uint32_t klen;
	uint32_t vlen;
	uint8_t freq;  /* accesses, saturating (atomic: readers and writers) */
	uint8_t queue; /* MT_CPOL_S or MT_CPOL_M (shard lock) */
	uint8_t pass;  /* second pass through S (shard lock) */
	uint8_t pad_;
	unsigned char data[]; /* klen key bytes, then vlen value bytes */
};

#define MT_CACHE_ENTRY_OF(ptr, member)                                                             \
	((struct mt_cache_entry *)(void *)((char *)(ptr)-offsetof(struct mt_cache_entry, member)))

/* ---- Entry points for the modules built on the cache (mt_coherent.c).
 * Each runs inside the caller's epoch section r, opened by
 * mt_handle_enter on the cache's handle, and takes the key's hash from
 * mt_cache_key_hash; arguments are checked by the caller. Same results as
 * the public functions they underlie. */
struct mt_cache;

/* A guarded put's condition, checked under the shard lock in the same
 * critical section as the entry's publication: *word == want. */
struct mt_cache_guard {
	const uint64_t *word;
	uint64_t want;
};

uint64_t mt_cache_key_hash(const void *key, size_t klen);

/* mantis_cache_get; count 0 leaves the hit and miss counters alone (a
 * lookup that is not a read of its own: a batch that may fall back). */
int mt_cache_get_in(struct mt_cache *c, ck_epoch_record_t *r, uint64_t hash, const void *key,
                    size_t klen, void *buf, size_t cap, size_t *vlen_out, uint64_t *version_out,
                    int count);

/* Starts loading what a lookup of hash touches, for batches that overlap
 * their cache misses: stage 0 the key's home slot, stage 1 (after stage 0
 * had time) the entry that slot names if its tag matches. */
void mt_cache_prefetch_in(struct mt_cache *c, uint64_t hash, int stage);

/* mantis_cache_put; with a guard (NULL: none) that fails, nothing changes
 * and *admitted_out is 0 (counted as a rejection). */
int mt_cache_put_in(struct mt_cache *c, ck_epoch_record_t *r, uint64_t hash, const void *key,
                    size_t klen, const void *value, size_t vlen, uint64_t cost, uint64_t ttl_ms,
                    uint64_t version, const struct mt_cache_guard *guard, int *admitted_out);

/* mantis_cache_delete; returns 1 if it removed an entry, else 0. */
int mt_cache_delete_in(struct mt_cache *c, ck_epoch_record_t *r, uint64_t hash, const void *key,
                       size_t klen, uint64_t version);

/* The coherence layer's state of cache c: `words` zeroed 64-bit words,
 * allocated on the first call (every call must pass the same count) and
 * freed with the cache. NULL if the allocation failed. */
uint64_t *mt_cache_coherent_state(struct mt_cache *c, size_t words);

/* Test hook: shifts the cache's clock forward by ns (process-wide), so that
 * TTL tests need not sleep. */
void mt_cache_test_advance_clock(uint64_t ns);

/* Test and benchmark hook: counters summed over shards (each read under its
 * shard's lock). probes and examined: the work writers did so far, table
 * slots probed by their lookups and entries examined by evictions (kept or
 * evicted): divided by the puts, they show the O(1) per operation
 * independently of memory latency. rebuilds: table rebuilds begun; forced:
 * rebuilds that had to finish a pending migration at once (0 unless the
 * bound in mt_cache.c is wrong); migrating: shards migrating now. */
struct mt_cache_test_counters {
	uint64_t probes, examined;
	uint64_t rebuilds, forced, migrating;
};

/* Fills *out for an open cache. Returns a MANTIS_* code. */
int mt_cache_test_counters(uint64_t cache, struct mt_cache_test_counters *out);

/* Test hook: checks every shard's invariants (the table, its migration,
 * the counts; see mt_cache.c) under its lock. MANTIS_OK, or MANTIS_EINVAL
 * with what broke in msg. O(entries): tests only. */
int mt_cache_test_check(uint64_t cache, char *msg, size_t cap);

/* Test hook: the number of shards of an open cache (0 on a bad handle). */
uint32_t mt_cache_test_shards(uint64_t cache);

#endif /* MT_CACHE_H */
