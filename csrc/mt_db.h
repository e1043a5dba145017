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

/* Writes in flight at once before a writer waits for a ring slot (one
 * cache line each). */
#define MT_DB_RING 256u

/* Snapshot slots come in chunks that are never freed before the db. */
#define MT_DB_SNAPCHUNK 63
#define MT_DB_SLOT_USED (1ull << 63)

struct mt_db_snapchunk {
	struct mt_db_snapchunk *next;
	uint64_t slot[MT_DB_SNAPCHUNK]; /* 0 free, else USED | seq */
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
	uint64_t *ready;    /* MT_DB_RING line-sized slots: s once s is ready */
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

/* A snapshot handle's object. Holds a reference on db. */
struct mt_snap {
	struct mt_db *db;
	uint64_t *slot;
	uint64_t seq;
};

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

/* The version of n visible at seq (put, committed, not expired), or NULL.
 * *now_ms is read from the clock on first need (0: not yet). */
static inline struct mt_sl_ver *mt_db_visible(const struct mt_sl_node *n, uint64_t seq,
                                              uint64_t *now_ms)
{
	int skipped = 0;
	struct mt_sl_ver *v = mt_sl_ver_at(n, seq, &skipped);
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
