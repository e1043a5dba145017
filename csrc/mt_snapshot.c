/*
 * mt_snapshot.c - snapshots of a db: registered slots, the prune bound they
 * give (mt_snapshot_min_seq), and the mantis_snapshot_* functions.
 *
 * A snapshot is a slot holding USED | seq, in chunks of MT_DB_SNAPCHUNK
 * appended to the db's list and never moved or freed before the db.
 * Registering stores USED | published, then re-reads published until it
 * is unchanged, with a full fence between the store and each re-read; a
 * pruner reads published (p0) and then scans the slots. Either the scan
 * sees the slot (and bounds by it) or the slot's final store came after
 * the scan, and its seq (a read of published after that store) is >= p0.
 * So any min(p0, slots seen) is a lower bound of every snapshot's seq, now
 * and later: db->min_cache keeps the greatest such value found (raised by
 * mt_snapshot_refresh_min: on snapshot opens and closes, at the end of a
 * multiget, and by pruners that find it lagging), and mt_snapshot_min_seq
 * returns p0 when no slot is registered (nsnaps, incremented before the
 * slot is stored, read after p0), else min(min_cache, p0). Both sides of
 * that handshake store then load (the registration increments nsnaps then
 * reads published; the publisher stores published then, pruning, reads
 * nsnaps), so both stores are locked instructions (full barriers).
 *
 * Iterators register their own slot at a snapshot handle's seq, later in
 * scan order than the handle's (mt_snapshot_register_at), so the user may
 * close the snapshot first. A snapshot handle holds a reference on its db.
 *
 * A registered seq is a view's lo (mt_db.c, VIEWS): the view also sees
 * some writes in (lo, hi]. The prune bound needs only lo (a prune keeps the
 * newest committed version <= min_seq and everything above it); the
 * middle-version rule of sweeps needs hi too, kept beside the slot
 * (chunk->hi[i]): stored after the view is taken, cleared before the slot
 * is freed, so a sweep that reads the slot and then hi (acquire) sees this
 * registration's hi or 0, which it reads as "any" (mt_snapshot_seqs).
 */
#include "mt_snapshot.h"

#include "mantis.h"
#include "mt_alloc.h"
#include "mt_handle.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ the prune bound */

/* Lowers the bound from a scan of every slot (see the top comment). */
void mt_snapshot_refresh_min(struct mt_db *db)
{
	uint64_t m, cur;
	struct mt_db_snapchunk *c;

	m = ck_pr_load_64(&db->published);
	/* p0 before the slots (and before the chunk list head). */
	ck_pr_fence_load();
	for (c = ck_pr_load_ptr(&db->snaps); c != NULL; c = ck_pr_load_ptr(&c->next)) {
		for (unsigned i = 0; i < MT_DB_SNAPCHUNK; i++) {
			uint64_t v = ck_pr_load_64(&c->slot[i]);

			if ((v & MT_DB_SLOT_USED) && (v & ~MT_DB_SLOT_USED) < m)
				m = v & ~MT_DB_SLOT_USED;
		}
	}
	/* Keep the greatest bound found: each one is valid for ever. */
	while ((cur = ck_pr_load_64(&db->min_cache)) < m && !ck_pr_cas_64(&db->min_cache, cur, m))
		;
}

uint64_t mt_snapshot_min_seq(struct mt_db *db)
{
	uint64_t p = ck_pr_load_64(&db->published), c;

	/* p0 before nsnaps: a registration not counted yet will read a
	 * published value >= p. */
	ck_pr_fence_load();
	if (ck_pr_load_64(&db->nsnaps) == 0)
		return p;
	c = ck_pr_load_64(&db->min_cache);
	return c < p ? c : p;
}

/*
 * Claims a free slot with value v, searching in scan order from just after
 * slot after (NULL: from the start); chunks are appended at the end of the
 * list, so scan order is stable. Returns the slot, or NULL on ENOMEM.
 */
static uint64_t *mt_snapshot_slot_claim(struct mt_db *db, uint64_t v, const uint64_t *after)
{
	struct mt_db_snapchunk *c, *fresh, **link;
	unsigned i = 0;

	c = ck_pr_load_ptr(&db->snaps);
	if (after != NULL) {
		while (c != NULL && !(after >= c->slot && after < c->slot + MT_DB_SNAPCHUNK))
			c = ck_pr_load_ptr(&c->next);
		assert(c != NULL);
		i = (unsigned)(after - c->slot) + 1;
	}
	for (; c != NULL; c = ck_pr_load_ptr(&c->next), i = 0) {
		for (; i < MT_DB_SNAPCHUNK; i++) {
			/* Full barrier: the slot is visible before the caller
			 * re-reads published. */
			if (ck_pr_load_64(&c->slot[i]) == 0 && ck_pr_cas_64(&c->slot[i], 0, v))
				return &c->slot[i];
		}
	}
	fresh = mt_calloc(1, sizeof(*fresh));
	if (fresh == NULL)
		return NULL;
	fresh->slot[0] = v;
	for (;;) {
		link = &db->snaps;
		while ((c = ck_pr_load_ptr(link)) != NULL)
			link = &c->next;
		/* Release: the chunk and its claimed slot before it is
		 * reachable; full barrier before the caller re-reads published.
		 * Fails if another chunk was appended first. */
		if (ck_pr_cas_ptr(link, NULL, fresh))
			return &fresh->slot[0];
	}
}

int mt_snapshot_register(struct mt_db *db, int refresh, uint64_t **slot_out, uint64_t *seq_out)
{
	uint64_t *slot, s, s2;

	/* Counted first (full barrier): see mt_snapshot_min_seq. */
	ck_pr_inc_64(&db->nsnaps);
	ck_pr_fence_memory();
	s = ck_pr_load_64(&db->published);
	slot = mt_snapshot_slot_claim(db, MT_DB_SLOT_USED | s, NULL);
	if (slot == NULL) {
		ck_pr_dec_64(&db->nsnaps);
		return MANTIS_ENOMEM;
	}
	for (;;) {
		/* The slot's store is ordered before this load (the claim's
		 * CAS or the fence below): a scan that missed it began after
		 * published was already s2. */
		s2 = ck_pr_load_64(&db->published);
		if (s2 == s)
			break;
		s = s2;
		ck_pr_store_64(slot, MT_DB_SLOT_USED | s);
		ck_pr_fence_memory(); /* store-load: slot before re-read */
	}
	if (refresh)
		mt_snapshot_refresh_min(db);
	*slot_out = slot;
	*seq_out = s;
	return MANTIS_OK;
}

/* The hi word of slot (chunk->hi[i] for chunk->slot[i]). */
static uint64_t *mt_snapshot_hi_of(const uint64_t *slot)
{
	_Static_assert(offsetof(struct mt_db_snapchunk, hi) -
	                               offsetof(struct mt_db_snapchunk, slot) ==
	                       MT_DB_SNAPCHUNK * sizeof(uint64_t),
	               "hi[] follows slot[]");
	return (uint64_t *)slot + MT_DB_SNAPCHUNK;
}

void mt_snapshot_set_hi(uint64_t *slot, uint64_t hi)
{
	/* Release: after the slot's registration (a sweep reads slot, then hi). */
	ck_pr_store_64(mt_snapshot_hi_of(slot), hi);
}

int mt_snapshot_register_at(struct mt_db *db, const uint64_t *held, uint64_t **slot_out)
{
	uint64_t *slot;

	/* The caller's live registration (held) bounds every prune until
	 * this slot is visible. A scan that misses both slots would have to
	 * read this one before it is claimed and held after it is released,
	 * which is after this claim: impossible when this slot comes later in
	 * scan order, as claimed here. */
	ck_pr_inc_64(&db->nsnaps);
	slot = mt_snapshot_slot_claim(db, ck_pr_load_64(held), held);
	if (slot == NULL) {
		ck_pr_dec_64(&db->nsnaps);
		return MANTIS_ENOMEM;
	}
	mt_snapshot_set_hi(slot, ck_pr_load_64(mt_snapshot_hi_of(held)));
	*slot_out = slot;
	return MANTIS_OK;
}

void mt_snapshot_unregister(struct mt_db *db, uint64_t *slot, int refresh)
{
	assert(ck_pr_load_64(slot) & MT_DB_SLOT_USED); /* registered, once */
	/* hi first: the next registration of the slot starts from 0. */
	ck_pr_store_64(mt_snapshot_hi_of(slot), 0);
	/* Release: the snapshot's reads happen before its versions may go. */
	ck_pr_store_64(slot, 0);
	ck_pr_dec_64(&db->nsnaps);
	if (refresh)
		mt_snapshot_refresh_min(db);
}

static int mt_snapshot_pair_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/*
 * Every registered view as a pair (lo, hi), sorted by lo, with hi replaced
 * by the greatest hi of the pairs up to it (so "some view with lo < u' has
 * hi >= u" is one binary search: mt_sl_prune's middle versions). A hi not
 * stored yet reads as any (MT_SL_SEQ_MASK). See mt_snapshot_refresh_min for
 * why a scan after reading published sees every one that matters. Returns
 * NULL with *n 0 if there are none, or on ENOMEM with *n SIZE_MAX.
 */
uint64_t *mt_snapshot_seqs(struct mt_db *db, size_t *n)
{
	size_t cap = 0, k = 0;
	struct mt_db_snapchunk *c;
	uint64_t *out, top = 0;

	for (c = ck_pr_load_ptr(&db->snaps); c != NULL; c = ck_pr_load_ptr(&c->next))
		cap += MT_DB_SNAPCHUNK;
	*n = 0;
	if (cap == 0)
		return NULL;
	out = mt_malloc(2 * cap * sizeof(*out));
	if (out == NULL) {
		*n = SIZE_MAX;
		return NULL;
	}
	/* Every slot must be read (a copied registration may sit in a chunk
	 * appended since the count): if they do not fit, give up. */
	for (c = ck_pr_load_ptr(&db->snaps); c != NULL; c = ck_pr_load_ptr(&c->next)) {
		for (unsigned i = 0; i < MT_DB_SNAPCHUNK; i++) {
			uint64_t v = ck_pr_load_64(&c->slot[i]), hi;

			if (!(v & MT_DB_SLOT_USED))
				continue;
			if (k == cap) {
				mt_free(out);
				*n = SIZE_MAX;
				return NULL;
			}
			/* Acquire (the slot load): hi after it. */
			hi = ck_pr_load_64(&c->hi[i]);
			v &= ~MT_DB_SLOT_USED;
			out[2 * k] = v;
			out[2 * k + 1] = hi >= v ? hi : MT_SL_SEQ_MASK;
			k++;
		}
	}
	qsort(out, k, 2 * sizeof(*out), mt_snapshot_pair_cmp);
	for (size_t i = 0; i < k; i++) {
		if (out[2 * i + 1] > top)
			top = out[2 * i + 1];
		out[2 * i + 1] = top;
	}
	*n = k;
	return out;
}

int mt_snapshot_acquire(struct mt_db *db, uint64_t h, struct mt_snap **out)
{
	void *obj;
	int rc;

	/* Both releases below may drop the last reference of the handle and
	 * destroy its object (and db), which must not happen inside one of
	 * this thread's sections (defect 1 of issue 8): callers hold none. */
	assert(!mt_epoch_in_section());
	rc = mt_handle_acquire(h, MT_HANDLE_SNAPSHOT, &obj);
	if (rc != MANTIS_OK)
		return rc;
	if (((struct mt_snap *)obj)->db != db) {
		mt_handle_release(h);
		return MANTIS_EINVAL;
	}
	*out = obj;
	return MANTIS_OK;
}

/* ------------------------------------------------------------ public: snapshots */

static void mt_snapshot_destroy(void *obj)
{
	struct mt_snap *snap = obj;
	struct mt_db *db = snap->db;

	mt_snapshot_unregister(db, snap->slot, 1);
	mt_db_view_free(&snap->view);
	mt_free(snap);
	mt_db_unref(db);
}

int mantis_snapshot_open(uint64_t dbh, uint64_t *snap_out, uint64_t *seq_out)
{
	struct mt_snap *snap;
	struct mt_db *db;
	uint64_t seq;
	void *obj;
	int rc;

	if (snap_out == NULL)
		return MANTIS_EINVAL;
	rc = mt_handle_acquire(dbh, MT_HANDLE_DB, &obj);
	if (rc != MANTIS_OK)
		return rc;
	db = obj;
	snap = mt_malloc(sizeof(*snap));
	if (snap == NULL) {
		rc = MANTIS_ENOMEM;
		goto out;
	}
	snap->db = db;
	rc = mt_snapshot_register(db, 1, &snap->slot, &seq);
	if (rc != MANTIS_OK) {
		mt_free(snap);
		goto out;
	}
	/* Exact (killing the writes in flight) only if its number is asked
	 * for: mantis_db_commit checks against the view itself. */
	mt_db_view_take(db, seq, &snap->view, seq_out != NULL);
	mt_snapshot_set_hi(snap->slot, snap->view.hi);
	mt_db_ref(db);
	rc = mt_handle_alloc(MT_HANDLE_SNAPSHOT, snap, mt_snapshot_destroy, snap_out);
	if (rc != MANTIS_OK) {
		mt_snapshot_destroy(snap);
		goto out;
	}
	if (seq_out != NULL)
		*seq_out = snap->view.seq;
out:
	mt_handle_release(dbh);
	return rc;
}

int mantis_snapshot_close(uint64_t snap)
{
	return mt_handle_close(snap, MT_HANDLE_SNAPSHOT);
}
