/*
 * mt_db.h - the MVCC storage engine behind mantis_db_*, mantis_snapshot_*
 * and mantis_iter_* (internal interface shared by mt_db.c, mt_snapshot.c and
 * mt_iter.c). The design is argued at the top of mt_db.c.
 */
#ifndef MT_DB_H
#define MT_DB_H

#include "mt_clock.h"
#include "mt_epoch.h"
#include "mt_pr.h"
#include "mt_skiplist.h"

#include <stdint.h>

/* Seqs handed out beyond published before a writer waits (sleeping) for a
 * ready ring slot: 8 bytes each, 2 MiB per db (pages touched as seqs go),
 * so that a writer descheduled for a scheduling round (45 ms with 32
 * threads on 2 cores) at a million writes per second does not fill it
 * (16K slots did: bench-c's 32-thread p99.9 stayed at 2.8 ms). A power of
 * two. */
#define MT_DB_RING (1u << 18)
/* A ring slot holding s | KILLED: seq s lost its race on a key to a higher
 * seq and will abort (mt_db.c, SAME-KEY ORDER). */
#define MT_DB_KILLED (1ull << 63)

/* Snapshot slots come in chunks that are never freed before the db. */
#define MT_DB_SNAPCHUNK 63
#define MT_DB_SLOT_USED (1ull << 63)

struct mt_db_snapchunk {
	struct mt_db_snapchunk *next;
	uint64_t slot[MT_DB_SNAPCHUNK]; /* 0 free, else USED | seq (a view's lo) */
	/* hi[i]: the highest seq slot i's view may see (0: not known yet, so
	 * any; mt_snapshot.c), for the middle-version rule of sweeps. */
	uint64_t hi[MT_DB_SNAPCHUNK];
};

/* One stripe of the counters; a thread adds to its own stripe only. Two
 * lines each: CPUs that fetch lines in pairs would otherwise make
 * neighbouring stripes (consecutive threads) share. */
struct mt_db_stripe {
	uint64_t reads;
	uint64_t writes;
	uint64_t deletes;
	uint64_t entries;  /* signed deltas, summed modulo 2^64 */
	uint64_t bytes;    /* idem */
	uint64_t versions; /* idem */
	char pad[2 * CK_MD_CACHELINE - 6 * sizeof(uint64_t)];
} CK_CC_CACHELINE;

struct mt_db {
	/* The write order: each on its own lines, as writers take sequence
	 * numbers while readers read published. */
	uint64_t next_seq; /* the last sequence number handed out */
	char pad0[2 * CK_MD_CACHELINE - sizeof(uint64_t)];
	uint64_t published; /* every seq <= published is decided and visible */
	uint64_t *ready;    /* MT_DB_RING slots: s once s is ready (mt_db.c) */
	uint32_t sleepers;  /* event count of writers asleep on published */
	char pad0b[2 * CK_MD_CACHELINE - 2 * sizeof(uint64_t) - sizeof(uint32_t)];
	/* Read by every prune, written by snapshot opens and closes. */
	uint64_t nsnaps;    /* registered snapshot slots */
	uint64_t min_cache; /* a lower bound of every registered slot */
	struct mt_db_snapchunk *snaps;
	struct mt_sl sl;
	char pad1[2 * CK_MD_CACHELINE - 3 * sizeof(uint64_t) - sizeof(struct mt_sl)];
	/* Written by node removals and by opens/closes. */
	uint64_t removed_seq; /* no dropped history is newer than this */
	uint64_t refs;        /* the handle's, and one per snapshot/iterator */
	char pad2[CK_MD_CACHELINE - 2 * sizeof(uint64_t)];
	struct mt_db_stripe stripe[MT_SL_STRIPES];
	ck_epoch_entry_t free_entry; /* the deferred free of the last reference */
} CK_CC_CACHELINE;

/*
 * A view of the latest state at one instant (mt_db_view_take, argued in
 * mt_db.c, VIEWS): a version with seq q is in it iff q <= lo, or q <= hi
 * and q is not in pend (the seqs of (lo, hi] not ready at that instant);
 * an ABORTED version never is. seq: the highest seq s such that every
 * seq <= s is in it (the snapshot's "sequence number", a conflict check's
 * bound). pend points to inl or to a heap array (mt_db_view_free).
 */
#define MT_DB_VIEW_INL 8
struct mt_db_view {
	uint64_t lo, hi, seq;
	uint64_t *pend; /* ascending */
	uint32_t npend, cap;
	uint64_t inl[MT_DB_VIEW_INL];
};

/* Takes a view whose lo is the caller's registered seq lo (mt_snapshot.c).
 * Never waits for a writer; allocates only if more than MT_DB_VIEW_INL
 * writes are pending, and if that fails, sleeps until they are published.
 * exact: kill the pending writes as they are found (they retry above
 * hi), so that seq = hi (a snapshot whose sequence number is asked for: a
 * check_seq is then exact). With the ring full, sleeps until a pending
 * seq's slot is its own (as its writer does). */
void mt_db_view_take(struct mt_db *db, uint64_t lo, struct mt_db_view *v, int exact);
/* Copies view src into dst. Returns MANTIS_OK or MANTIS_ENOMEM. */
int mt_db_view_copy(struct mt_db_view *dst, const struct mt_db_view *src);
void mt_db_view_free(struct mt_db_view *v);

/* Is a version with seq q (flags ignored) in view v? */
static inline int mt_db_view_has(const struct mt_db_view *v, uint64_t q)
{
	uint32_t a = 0, b = v->npend;

	if (q <= v->lo)
		return 1;
	if (q > v->hi)
		return 0;
	while (a < b) { /* is q pending? */
		uint32_t m = a + (b - a) / 2;

		if (v->pend[m] < q)
			a = m + 1;
		else
			b = m;
	}
	return a == v->npend || v->pend[a] != q;
}

/* The newest version of n in view v that is not aborted, or NULL; sets
 * *skipped if it passed over a newer one. Reader. */
static inline struct mt_sl_ver *mt_db_ver_in(const struct mt_sl_node *n, const struct mt_db_view *v,
                                             int *skipped)
{
	struct mt_sl_ver *x = mt_sl_node_head(n);

	/* Acquire on each load: a version's fields were written before the
	 * CAS that linked it; the view's ready slots were read (acquire)
	 * before, so an ABORTED set before one was marked ready is seen. */
	for (; x != NULL; x = mt_sl_ver_next(x)) {
		uint64_t sf = mt_sl_ver_seqf(x);

		if (mt_db_view_has(v, sf & MT_SL_SEQ_MASK)) {
			if (!(sf & MT_SL_V_ABORTED))
				return x;
		} else {
			*skipped = 1;
		}
	}
	return NULL;
}

/* A snapshot handle's object. Holds a reference on db. */
struct mt_snap {
	struct mt_db *db;
	uint64_t *slot;
	struct mt_db_view view;
};

/* Test hook (NULL outside tests): called by every writer after its seq s
 * is taken and its versions linked, before it is ready, so that a test
 * can hold it there (test_db_nowait.c). */
extern void (*mt_db_test_hold)(uint64_t s);

static inline struct mt_db_stripe *mt_db_stripe(struct mt_db *db)
{
	return &db->stripe[mt_sl_thread_stripe()];
}

/* References: mt_db_unref destroys the db when the last one goes. */
void mt_db_ref(struct mt_db *db);
void mt_db_unref(struct mt_db *db);

/* Applies what a prune did to the calling thread's counters. */
void mt_db_prune_account(struct mt_db *db, const struct mt_sl_prune_stats *st);

/* Prunes one node now (inside r's section). */
void mt_db_prune_node(struct mt_db *db, ck_epoch_record_t *r, struct mt_sl_node *n,
                      uint64_t now_ms);

/* The version of n visible in view (put, committed, not expired), or NULL.
 * *now_ms is read from the clock on first need (0: not yet). */
static inline struct mt_sl_ver *mt_db_visible(const struct mt_sl_node *n,
                                              const struct mt_db_view *view, uint64_t *now_ms)
{
	int skipped = 0;
	struct mt_sl_ver *v = mt_db_ver_in(n, view, &skipped);
	uint64_t sf;

	if (v == NULL)
		return NULL;
	sf = mt_sl_ver_seqf(v);
	if (sf & MT_SL_V_TOMB)
		return NULL;
	if (sf & MT_SL_V_TTL) {
		if (*now_ms == 0)
			*now_ms = mt_clock_now_ms();
		if (mt_sl_ver_expiry(v) <= *now_ms)
			return NULL;
	}
	return v;
}

#endif /* MT_DB_H */
