/*
 * mt_snapshot.h - snapshot registration and the prune bound of a db
 * (mt_snapshot.c argues the protocol). Module prefix mt_snapshot_.
 */
#ifndef MT_SNAPSHOT_H
#define MT_SNAPSHOT_H

#include "mt_db.h"

#include <stddef.h>
#include <stdint.h>

/* A lower bound of every seq a reader of db may read at, now or later. */
uint64_t mt_snapshot_min_seq(struct mt_db *db);

/* Registers a snapshot of the latest committed state: writes its slot and
 * seq. refresh: recompute the prune bound (skip for call-long snapshots).
 * Returns MANTIS_OK or MANTIS_ENOMEM. */
int mt_snapshot_register(struct mt_db *db, int refresh, uint64_t **slot_out, uint64_t *seq_out);
/* Registers another slot at the seq of slot held, a live registration the
 * caller keeps until this returns (to hand a snapshot's seq to an
 * iterator). */
int mt_snapshot_register_at(struct mt_db *db, const uint64_t *held, uint64_t **slot_out);
void mt_snapshot_unregister(struct mt_db *db, uint64_t *slot, int refresh);
/* Stores the hi of the view registered in slot (after mt_db_view_take). */
void mt_snapshot_set_hi(uint64_t *slot, uint64_t hi);

/* Acquires snapshot handle h (the caller releases it) and checks that it
 * belongs to db: MANTIS_EINVAL if not. */
int mt_snapshot_acquire(struct mt_db *db, uint64_t h, struct mt_snap **out);

/* Rescans every slot and raises the cached bound (db->min_cache). */
void mt_snapshot_refresh_min(struct mt_db *db);

/* Every registered view as *n pairs (lo, greatest hi so far), sorted by lo
 * (a scan after reading published sees every one that matters). Returns
 * NULL with *n 0 if there are none, or on ENOMEM with *n SIZE_MAX; the
 * caller frees the array. */
uint64_t *mt_snapshot_seqs(struct mt_db *db, size_t *n);

#endif /* MT_SNAPSHOT_H */
