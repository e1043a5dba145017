/*
 * mt_cache_policy.c - S3-FIFO with an adaptive small queue, a second pass
 * through the small queue, and marginal-utility ghosts.
 *
 * Why this policy. The candidates (LRU, ARC, W-TinyLFU with Caffeine's
 * adaptive window, S3-FIFO, SIEVE) were simulated on the ARC traces (OLTP,
 * P3, P12) at the capacities of ../shared/traces/README.md; the table is in
 * docs/architecture/cache.md. No candidate reached ARC on every row:
 * S3-FIFO with a 10% small queue wins on OLTP but loses on P3; with 1% it
 * is the reverse; W-TinyLFU loses six points on P3 at 131072. The variant
 * here reaches ARC everywhere with the three changes below. Being FIFO
 * based, its read path is one byte store into the entry, only when the
 * count changes, which is what lets reads run without a lock.
 *
 * Structure (cost units throughout; the counts below are entries):
 *  - S, a FIFO for new keys, with a target share s_target of the capacity.
 *  - M, a FIFO with reinsertion: the tail entry with a non-zero count is
 *    moved to the head with its count decremented (CLOCK with 2-bit counts);
 *    one with count 0 is evicted.
 *  - A ghost: fingerprints of keys evicted from S (GS) and M (GM), no
 *    values. A new key with a live GS record enters M directly.
 *
 * Change 1, a second pass through S: an entry reaching S's tail with 1 or 2
 * hits goes round S once more with its count cleared, and is promoted to M
 * if hit again; 3 hits in one pass promote at once; no hit sends it to GS.
 * So M admits keys re-used across two S residencies, not one burst.
 *
 * Change 2, s_target adapts by marginal utility (after ARC's idea, with
 * ages instead of list positions): a GS hit whose key left S at most
 * delta = n/20 departures ago would have been a hit had S been delta
 * larger, so s_target grows by one average entry; a GM hit evicted at most
 * delta evictions ago says the same of M, so s_target shrinks. Hits older
 * than delta say nothing about a small change and are ignored.
 * s_target stays within [1%, 90%] of the capacity and starts at 1%.
 *
 * Change 3, GM hits only steer: such keys enter S like new ones (sending
 * them straight to M, as for GS hits, costs 3 points on P3).
 *
 * Ghost windows: a GS record is live for 1.1 n S departures (about one
 * cache turnover, as S3-FIFO sizes its ghost), a GM record for delta M
 * evictions; n is the resident entry count. Records live in a bucketed
 * table (8 slots of 8 bytes, one cache line); insertion overwrites the same
 * fingerprint, else an empty or expired slot, else the oldest one. It grows
 * with n (about 2.5 to 5 slots per entry); a failed growth just keeps the
 * old table: the ghost is advisory and is never a reason to fail a put.
 * Growth holds the shard lock for bounded work only (issue 11): the cache
 * allocates the doubled table before locking (mt_cpol_ghost_due, then
 * mt_cpol_ghost_offer), and the live records of the old one move
 * MT_CPOL_GHOST_STEP buckets per insert while lookups (classify) consult
 * both; the old table is handed back for freeing after the unlock
 * (mt_cpol_garbage). A doubling is due again only after n grew by about
 * 3.2 old buckets' worth of entries, so the move (one bucket per half an
 * insert) always ends first; were it not over, growth would simply wait.
 *
 * Invariants (shard lock held): every resident entry is in exactly one of
 * S and M and e->queue says which; s_cost, m_cost, s_n, m_n are the sums
 * over each queue; s_min <= s_target <= s_max. e->pass is 1 only in S.
 *
 * Concurrency: readers call mt_cpol_hit (header) without the lock; it
 * stores into e->freq only. The writer's read-modify-write of freq (clear,
 * decrement) can lose a concurrent hit, which only makes the policy slightly
 * less informed; it is never unsafe. All other state is the lock holder's.
 *
 * Termination and cost: an S examination either ends the entry's first
 * pass (at most once per entry), promotes it or evicts it; an M examination
 * either consumes one unit of count, which a hit paid for, or evicts. So
 * eviction is amortized O(1) per operation. But one eviction could still
 * examine a whole queue (every entry hit since its last examination), under
 * the shard lock, so an eviction examines at most MT_CPOL_SCAN_MAX entries
 * (and at most 3 m_n + 8 of M, as concurrent hits could keep refilling
 * counts) and then takes the tail it is at regardless (issue 11: bounded
 * critical sections; the traces' hit ratios did not move, see
 * docs/architecture/cache.md).
 *
 * Reclamation: the policy never frees entries; victims are handed to the
 * caller, which retires them through the epoch.
 */
#include "mt_cache_policy.h"

#include "mantis.h"
#include "mt_alloc.h"

#include <assert.h>
#include <string.h>

#define MT_CPOL_SEQ_MASK   0x7fffffffu
#define MT_CPOL_KIND_M     (1ull << 31)
#define MT_CPOL_BUCKET     8u
#define MT_CPOL_MIN_BUCKET 4u
#define MT_CPOL_GHOST_STEP 2u    /* old ghost buckets one insert moves */
#define MT_CPOL_SCAN_MAX   1024u /* entries one eviction examines, at most */

static uint32_t mt_cpol_fp(uint64_t hash)
{
	/* Bits 10..41 of the hash: the map uses the lowest bits for its index
	 * and the highest for the shard and the slot tag. */
	uint32_t fp = (uint32_t)(hash >> 10);

	return fp != 0 ? fp : 1;
}

static inline uint64_t *mt_cpol_bucket(const struct mt_cpol *p, uint32_t fp)
{
	return &p->ghost.slots[(size_t)(fp & p->ghost.mask) * MT_CPOL_BUCKET];
}

/* Windows in departures/evictions (see the top comment). */
static uint32_t mt_cpol_win_s(const struct mt_cpol *p)
{
	uint64_t n = mt_cpol_entries(p);
	uint64_t w = n + n / 10;

	return w < 1 ? 1 : w > MT_CPOL_SEQ_MASK / 2 ? MT_CPOL_SEQ_MASK / 2 : (uint32_t)w;
}

static uint32_t mt_cpol_win_delta(const struct mt_cpol *p)
{
	uint64_t w = mt_cpol_entries(p) / 20;

	return w < 1 ? 1 : w > MT_CPOL_SEQ_MASK / 2 ? MT_CPOL_SEQ_MASK / 2 : (uint32_t)w;
}

/* A record's age in its queue's departures, and its window. */
static uint32_t mt_cpol_age(const struct mt_cpol *p, uint64_t rec, uint32_t *win)
{
	uint32_t seq = (uint32_t)rec & MT_CPOL_SEQ_MASK;

	if (rec & MT_CPOL_KIND_M) {
		*win = mt_cpol_win_delta(p);
		return (p->ev_m - seq) & MT_CPOL_SEQ_MASK;
	}
	*win = mt_cpol_win_s(p);
	return (p->ev_s - seq) & MT_CPOL_SEQ_MASK;
}

static int mt_cpol_ghost_alloc(struct mt_cpol_ghost *g, uint32_t buckets)
{
	uint64_t *slots = mt_calloc((size_t)buckets * MT_CPOL_BUCKET, sizeof(uint64_t));

	if (slots == NULL)
		return MANTIS_ENOMEM;
	g->slots = slots;
	g->mask = buckets - 1;
	return MANTIS_OK;
}

/* Stores rec in its bucket: same fingerprint, else empty or expired, else
 * the oldest relative to its window. */
static void mt_cpol_ghost_put(struct mt_cpol *p, uint64_t rec)
{
	uint32_t fp = (uint32_t)(rec >> 32);
	uint64_t *b = mt_cpol_bucket(p, fp);
	unsigned victim = 0;
	uint64_t worst = 0; /* age / window, 32.32 fixed point */

	for (unsigned i = 0; i < MT_CPOL_BUCKET; i++) {
		uint32_t win, age;
		uint64_t rel;

		if (b[i] == 0 || (uint32_t)(b[i] >> 32) == fp) {
			victim = i;
			break;
		}
		age = mt_cpol_age(p, b[i], &win);
		if (age > win) {
			victim = i;
			break;
		}
		rel = ((uint64_t)age << 32) / win;
		if (rel >= worst) {
			worst = rel;
			victim = i;
		}
	}
	b[victim] = rec;
}

static void mt_cpol_ghost_record(struct mt_cpol *p, uint64_t hash, int kind_m, uint32_t seq)
{
	uint64_t rec = (uint64_t)mt_cpol_fp(hash) << 32 | (kind_m ? MT_CPOL_KIND_M : 0) |
	               (seq & MT_CPOL_SEQ_MASK);

	mt_cpol_ghost_put(p, rec);
}

/* The buckets a doubled ghost needs while it has fewer than 2.5 slots per
 * resident entry, else 0 (also while a previous growth is still moving).
 * Reads only fields that the lock holder stores atomically. */
uint32_t mt_cpol_ghost_due(const struct mt_cpol *p)
{
	uint64_t n = ck_pr_load_64(&p->s_n) + ck_pr_load_64(&p->m_n);
	uint32_t buckets = ck_pr_load_32(&p->ghost.mask) + 1;
	uint64_t slots = (uint64_t)buckets * MT_CPOL_BUCKET;

	if (n * 5 <= slots * 2 || buckets >= (1u << 28) ||
	    ck_pr_load_ptr(&p->ghost_old.slots) != NULL)
		return 0;
	while ((uint64_t)buckets * MT_CPOL_BUCKET * 2 < n * 5 && buckets < (1u << 28))
		buckets *= 2;
	return buckets;
}

uint64_t *mt_cpol_ghost_alloc_buckets(uint32_t buckets)
{
	uint64_t *slots = mt_calloc((size_t)buckets * MT_CPOL_BUCKET, sizeof(uint64_t));

	if (slots != NULL) /* its page faults here, not under the shard lock */
		mt_calloc_prefault(slots, (size_t)buckets * MT_CPOL_BUCKET * sizeof(uint64_t));
	return slots;
}

int mt_cpol_ghost_offer(struct mt_cpol *p, uint64_t *slots, uint32_t buckets)
{
	assert(slots != NULL && (buckets & (buckets - 1)) == 0);
	if (p->ghost_old.slots != NULL || buckets <= p->ghost.mask + 1 ||
	    mt_cpol_entries(p) * 5 <= ((uint64_t)p->ghost.mask + 1) * MT_CPOL_BUCKET * 2)
		return 0;
	ck_pr_store_ptr(&p->ghost_old.slots, p->ghost.slots);
	p->ghost_old.mask = p->ghost.mask;
	p->ghost_moved = 0;
	p->ghost.slots = slots;
	ck_pr_store_32(&p->ghost.mask, buckets - 1);
	return 1;
}

static int mt_cpol_ghost_has(const struct mt_cpol *p, uint32_t fp)
{
	const uint64_t *b = mt_cpol_bucket(p, fp);

	for (unsigned i = 0; i < MT_CPOL_BUCKET; i++)
		if (b[i] != 0 && (uint32_t)(b[i] >> 32) == fp)
			return 1;
	return 0;
}

/* Moves the live records of up to `budget` old buckets into the ghost. */
static void mt_cpol_ghost_step(struct mt_cpol *p, uint32_t budget)
{
	uint64_t *old = p->ghost_old.slots;

	if (old == NULL)
		return;
	for (; budget > 0 && p->ghost_moved <= p->ghost_old.mask; budget--, p->ghost_moved++) {
		uint64_t *b = &old[(size_t)p->ghost_moved * MT_CPOL_BUCKET];

		for (unsigned i = 0; i < MT_CPOL_BUCKET; i++) {
			uint32_t win;

			/* A record of the same key in the new table is newer. */
			if (b[i] != 0 && mt_cpol_age(p, b[i], &win) <= win &&
			    !mt_cpol_ghost_has(p, (uint32_t)(b[i] >> 32)))
				mt_cpol_ghost_put(p, b[i]);
			b[i] = 0; /* moved: a classify must not find it twice */
		}
	}
	if (p->ghost_moved > p->ghost_old.mask) {
		assert(p->garbage == NULL);
		p->garbage = old;
		ck_pr_store_ptr(&p->ghost_old.slots, NULL);
	}
}

uint64_t *mt_cpol_garbage(struct mt_cpol *p)
{
	uint64_t *g = p->garbage;

	p->garbage = NULL;
	return g;
}

int mt_cpol_init(struct mt_cpol *p, uint64_t capacity)
{
	assert(p != NULL && capacity > 0);
	memset(p, 0, sizeof(*p));
	mt_clist_init(&p->s);
	mt_clist_init(&p->m);
	p->capacity = capacity;
	p->s_min = capacity / 100 > 0 ? capacity / 100 : 1;
	p->s_max = capacity - capacity / 10 > p->s_min ? capacity - capacity / 10 : p->s_min;
	p->s_target = p->s_min;
	return mt_cpol_ghost_alloc(&p->ghost, MT_CPOL_MIN_BUCKET);
}

void mt_cpol_destroy(struct mt_cpol *p)
{
	mt_free(p->ghost.slots);
	mt_free(p->ghost_old.slots);
	mt_free(p->garbage);
	p->ghost.slots = p->ghost_old.slots = p->garbage = NULL;
}

/* One average entry's cost: the adaptation step. */
static uint64_t mt_cpol_step(const struct mt_cpol *p)
{
	uint64_t n = mt_cpol_entries(p);
	uint64_t step = n == 0 ? 1 : mt_cpol_cost(p) / n;

	return step > 0 ? step : 1;
}

void mt_cpol_prefetch(const struct mt_cpol *p, uint64_t hash)
{
	uint32_t fp = mt_cpol_fp(hash);

	__builtin_prefetch(mt_cpol_bucket(p, fp), 1);
	__builtin_prefetch(p->s.prev, 1);
	__builtin_prefetch(p->m.prev, 1);
}

/* The ghost slot holding fp's record: the ghost's, else (while a growth
 * moves) the old table's not yet moved; NULL if none. */
static uint64_t *mt_cpol_ghost_find(struct mt_cpol *p, uint32_t fp)
{
	uint64_t *b = mt_cpol_bucket(p, fp);

	for (unsigned i = 0; i < MT_CPOL_BUCKET; i++)
		if (b[i] != 0 && (uint32_t)(b[i] >> 32) == fp)
			return &b[i];
	if (p->ghost_old.slots == NULL)
		return NULL;
	b = &p->ghost_old.slots[(size_t)(fp & p->ghost_old.mask) * MT_CPOL_BUCKET];
	for (unsigned i = 0; i < MT_CPOL_BUCKET; i++)
		if (b[i] != 0 && (uint32_t)(b[i] >> 32) == fp)
			return &b[i];
	return NULL;
}

int mt_cpol_classify(struct mt_cpol *p, uint64_t hash)
{
	uint32_t fp = mt_cpol_fp(hash);
	uint64_t *slot = mt_cpol_ghost_find(p, fp);

	if (slot != NULL) {
		uint64_t rec = *slot;
		uint32_t win, age;

		*slot = 0; /* consumed (or expired) */
		age = mt_cpol_age(p, rec, &win);
		if (age > win)
			return MT_CPOL_S;
		if (rec & MT_CPOL_KIND_M) {
			/* M was too small by at most delta: shrink S. */
			uint64_t step = mt_cpol_step(p);

			p->s_target = p->s_target > p->s_min + step ? p->s_target - step : p->s_min;
			return MT_CPOL_S;
		}
		if (age <= mt_cpol_win_delta(p)) {
			/* S was too small by at most delta: grow it. */
			uint64_t step = mt_cpol_step(p);

			p->s_target = p->s_target + step < p->s_max ? p->s_target + step : p->s_max;
		}
		return MT_CPOL_M;
	}
	return MT_CPOL_S;
}

static void mt_cpol_link(struct mt_cpol *p, struct mt_cache_entry *e, int queue)
{
	e->queue = (uint8_t)queue;
	if (queue == MT_CPOL_S) {
		mt_clist_push(&p->s, &e->q);
		mt_cpol_set(&p->s_cost, p->s_cost + e->cost);
		mt_cpol_set(&p->s_n, p->s_n + 1);
	} else {
		mt_clist_push(&p->m, &e->q);
		mt_cpol_set(&p->m_cost, p->m_cost + e->cost);
		mt_cpol_set(&p->m_n, p->m_n + 1);
	}
}

static void mt_cpol_unlink(struct mt_cpol *p, struct mt_cache_entry *e)
{
	mt_clist_del(&e->q);
	if (e->queue == MT_CPOL_S) {
		assert(p->s_n > 0 && p->s_cost >= e->cost);
		mt_cpol_set(&p->s_cost, p->s_cost - e->cost);
		mt_cpol_set(&p->s_n, p->s_n - 1);
	} else {
		assert(e->queue == MT_CPOL_M && p->m_n > 0 && p->m_cost >= e->cost);
		mt_cpol_set(&p->m_cost, p->m_cost - e->cost);
		mt_cpol_set(&p->m_n, p->m_n - 1);
	}
}

void mt_cpol_insert(struct mt_cpol *p, struct mt_cache_entry *e, int queue)
{
	assert(queue == MT_CPOL_S || queue == MT_CPOL_M);
	assert(mt_cpol_cost(p) + e->cost <= p->capacity);
	/* Not yet published: plain initialisation is fine, but keep the byte
	 * accessed atomically everywhere for the sanitizers. */
	ck_pr_store_8(&e->freq, 0);
	e->pass = 0;
	mt_cpol_link(p, e, queue);
	mt_cpol_set(&p->inserted, p->inserted + 1);
	mt_cpol_ghost_step(p, MT_CPOL_GHOST_STEP);
}

void mt_cpol_replace(struct mt_cpol *p, struct mt_cache_entry *old, struct mt_cache_entry *e)
{
	uint8_t f = ck_pr_load_8(&old->freq);

	e->queue = old->queue;
	e->pass = old->pass;
	ck_pr_store_8(&e->freq, (uint8_t)(f < MT_CPOL_FREQ_MAX ? f + 1 : f));
	mt_clist_replace(&old->q, &e->q);
	if (e->queue == MT_CPOL_S)
		mt_cpol_set(&p->s_cost, p->s_cost - old->cost + e->cost);
	else
		mt_cpol_set(&p->m_cost, p->m_cost - old->cost + e->cost);
	mt_cpol_set(&p->inserted, p->inserted + 1);
}

static struct mt_cache_entry *mt_cpol_tail(struct mt_clist *q)
{
	return MT_CACHE_ENTRY_OF(q->prev, q);
}

struct mt_cache_entry *mt_cpol_evict(struct mt_cpol *p)
{
	uint64_t m_budget = 3 * p->m_n + 8;
	uint32_t scan = MT_CPOL_SCAN_MAX;

	for (;;) {
		struct mt_cache_entry *e;
		int force = scan == 0; /* take this tail, hit or not */
		uint8_t f;

		p->examined++;
		scan -= !force;
		if (!mt_clist_empty(&p->s) && (p->s_cost >= p->s_target || mt_clist_empty(&p->m))) {
			e = mt_cpol_tail(&p->s);
			f = ck_pr_load_8(&e->freq);
			if (f == 0 && !e->pass) /* the victim (see below) */
				__builtin_prefetch(mt_cpol_bucket(p, mt_cpol_fp(e->hash)), 1);
			mt_cpol_unlink(p, e);
			if (!force && !e->pass && f > 0 && f < MT_CPOL_PROMOTE) {
				/* Second pass: the entry must be hit again. */
				e->pass = 1;
				ck_pr_store_8(&e->freq, 0);
				mt_cpol_link(p, e, MT_CPOL_S);
				continue;
			}
			p->ev_s = (p->ev_s + 1) & MT_CPOL_SEQ_MASK;
			if (!force && (f >= MT_CPOL_PROMOTE || (e->pass && f > 0))) {
				e->pass = 0;
				ck_pr_store_8(&e->freq, 0);
				mt_cpol_link(p, e, MT_CPOL_M);
				continue;
			}
			mt_cpol_ghost_record(p, e->hash, 0, p->ev_s);
			mt_cpol_set(&p->evicted, p->evicted + 1);
			return e;
		}
		if (mt_clist_empty(&p->m))
			return NULL;
		e = mt_cpol_tail(&p->m);
		f = ck_pr_load_8(&e->freq);
		if (f == 0) /* the victim: start loading its ghost bucket */
			__builtin_prefetch(mt_cpol_bucket(p, mt_cpol_fp(e->hash)), 1);
		if (f > 0 && m_budget > 0 && !force) {
			/* Reinsert: one unit of count pays for one more round. */
			m_budget--;
			ck_pr_store_8(&e->freq, (uint8_t)(f - 1));
			mt_clist_del(&e->q);
			mt_clist_push(&p->m, &e->q);
			continue;
		}
		mt_cpol_unlink(p, e);
		p->ev_m = (p->ev_m + 1) & MT_CPOL_SEQ_MASK;
		mt_cpol_ghost_record(p, e->hash, 1, p->ev_m);
		mt_cpol_set(&p->evicted, p->evicted + 1);
		return e;
	}
}

void mt_cpol_remove(struct mt_cpol *p, struct mt_cache_entry *e)
{
	mt_cpol_unlink(p, e);
}

struct mt_cache_entry *mt_cpol_pop(struct mt_cpol *p)
{
	struct mt_cache_entry *e;

	if (!mt_clist_empty(&p->s))
		e = mt_cpol_tail(&p->s);
	else if (!mt_clist_empty(&p->m))
		e = mt_cpol_tail(&p->m);
	else
		return NULL;
	mt_cpol_unlink(p, e);
	return e;
}

uint64_t *mt_cpol_ghost_new(void)
{
	return mt_calloc((size_t)MT_CPOL_MIN_BUCKET * MT_CPOL_BUCKET, sizeof(uint64_t));
}

/* Moves list h's entries (if any) to the tail end of gone: O(1). */
static void mt_cpol_splice(struct mt_clist *h, struct mt_clist *gone)
{
	if (mt_clist_empty(h))
		return;
	h->next->prev = gone->prev;
	gone->prev->next = h->next;
	h->prev->next = gone;
	gone->prev = h->prev;
	mt_clist_init(h);
}

uint64_t *mt_cpol_clear(struct mt_cpol *p, struct mt_clist *gone, uint64_t *ghost)
{
	uint64_t *old = p->ghost.slots;

	assert(ghost != NULL);
	mt_cpol_splice(&p->s, gone);
	mt_cpol_splice(&p->m, gone);
	mt_cpol_set(&p->s_cost, 0);
	mt_cpol_set(&p->m_cost, 0);
	mt_cpol_set(&p->s_n, 0);
	mt_cpol_set(&p->m_n, 0);
	p->ghost.slots = ghost;
	ck_pr_store_32(&p->ghost.mask, MT_CPOL_MIN_BUCKET - 1);
	if (p->ghost_old.slots != NULL) { /* a growth was moving: drop it */
		assert(p->garbage == NULL);
		p->garbage = p->ghost_old.slots;
		ck_pr_store_ptr(&p->ghost_old.slots, NULL);
	}
	p->s_target = p->s_min;
	return old;
}
