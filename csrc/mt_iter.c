/*
 * mt_iter.c - iterators over a snapshot (mantis_iter_*).
 *
 * An iterator owns a registered snapshot slot (its own, even when opened on
 * a snapshot handle: it registers the handle's seq while holding the handle,
 * so the user may close the snapshot first) and a reference on the db.
 *
 * POSITION AND POINTER LIFETIME
 *
 * Calls on an iterator may come from different threads (Go moves goroutines
 * between OS threads), so no epoch section is held between calls. Instead
 * the iterator pins the node it stands on (mt_sl_pin): a pinned node is not
 * removed, so its key bytes stay, and the next call resumes with a tree
 * scan after that key (in chunks: mt_sl_cur). The
 * version mantis_iter_next returned is the one visible at the iterator's
 * snapshot, which no prune unlinks while the snapshot is registered (see
 * mt_skiplist.c), so the value pointer stays valid too. The pin is dropped
 * when the iterator moves on or closes, that is at the next call, which is
 * exactly the lifetime the header promises. A pin that fails means the
 * node is being removed, i.e. its key is dead at every live snapshot: the
 * iterator skips it.
 *
 * States: START (before the first entry), PENDING (cur pinned, to be
 * returned next: after a seek, or after a chunk that stopped before it),
 * AT (cur pinned and returned: the next entry follows it), DONE.
 *
 * Each call does its whole walk inside one epoch section; next_chunk copies
 * every entry of the chunk in that one section, with one pin per chunk.
 *
 * SCANS AT THE MEMORY LIMIT
 *
 * At a million keys an entry costs three random cache lines (key node,
 * then its newest version's two lines), and a leaf of the tree costs a
 * dependent miss: a walk that waits for each in turn runs at one miss per
 * entry. So the walk reads the nodes of many entries from the tree in one
 * scan (a chunk's first scan is as large as the buffer could hold, and the
 * cursor keeps MT_SL_CUR_AHEAD nodes ahead after that), bounded by the
 * prefix's end (mt_iter_end: no tree scan past the prefix, and no per-entry
 * prefix compare), and prefetches in a pipeline (node, version, value
 * lines: see MT_ITER_AHEAD_NODE) so that the misses of consecutive entries
 * overlap. Nothing of this changes what is read or validated: the tree's
 * scan validates its leaves (OLC) as before, each entry is decided by
 * mt_db_visible on the node's chain read in this section, and pins and
 * sections are unchanged; prefetches are hints that read nothing the walk
 * relies on.
 */
#include "mantis.h"
#include "mt_alloc.h"
#include "mt_args.h"
#include "mt_clock.h"
#include "mt_db.h"
#include "mt_snapshot.h"
#include "mt_handle.h"

#include <assert.h>
#include <string.h>

enum mt_iter_state {
	MT_IT_START,
	MT_IT_PENDING,
	MT_IT_AT,
	MT_IT_DONE,
};

struct mt_iter {
	struct mt_db *db;
	uint64_t *slot; /* this iterator's snapshot registration */
	struct mt_db_view view;
	struct mt_sl_node *cur; /* pinned (PENDING, AT) or NULL */
	/* The calling thread's cursor (mt_iter_cur), set by mt_iter_walk at
	 * the start of each call and used within it only (calls on one
	 * iterator never overlap: mantis.h): one TLS address computation per
	 * call instead of one per entry (general-dynamic TLS in -fPIC code is
	 * a __tls_get_addr call). */
	struct mt_sl_cur *walk;
	int state;
	uint32_t plen;
	uint32_t elen;          /* the range's end: 1..plen bytes, 0: none */
	uint32_t entry_bytes;   /* the last chunk's mean entry size (0: none yet) */
	unsigned char prefix[]; /* plen bytes, then the end's elen bytes */
};

/* The range's exclusive end: the least key above every key with the
 * prefix (the prefix with trailing 0xff bytes dropped and its last byte
 * incremented), or NULL (no prefix, or one of 0xff bytes only). Keys k
 * with prefix <= k < end are exactly those with the prefix, so a cursor
 * bounded by it returns no node without the prefix. */
static const unsigned char *mt_iter_end(const struct mt_iter *it)
{
	return it->elen > 0 ? it->prefix + it->plen : NULL;
}

static uint32_t mt_iter_end_init(unsigned char *end, const unsigned char *prefix, uint32_t plen)
{
	uint32_t n = plen;

	while (n > 0 && prefix[n - 1] == 0xff)
		n--;
	if (n == 0)
		return 0;
	memcpy(end, prefix, n);
	end[n - 1]++;
	return n;
}

static void mt_iter_destroy(void *obj)
{
	struct mt_iter *it = obj;
	struct mt_db *db = it->db;

	if (it->cur != NULL)
		mt_sl_unpin(it->cur);
	mt_snapshot_unregister(db, it->slot, 1);
	mt_db_view_free(&it->view);
	mt_free(it);
	mt_db_unref(db);
}

int mantis_iter_open(uint64_t dbh, uint64_t snaph, const void *prefix, size_t plen,
                     uint64_t *it_out)
{
	struct mt_snap *snap = NULL;
	struct mt_iter *it;
	struct mt_db *db;
	void *obj;
	int rc;

	if (it_out == NULL || (prefix == NULL && plen > 0))
		return MANTIS_EINVAL;
	if (plen > MANTIS_KEY_MAX)
		return MANTIS_ETOOLARGE;
	rc = mt_handle_acquire(dbh, MT_HANDLE_DB, &obj);
	if (rc != MANTIS_OK)
		return rc;
	db = obj;
	if (snaph != 0) {
		rc = mt_snapshot_acquire(db, snaph, &snap);
		if (rc != MANTIS_OK)
			goto out;
	}
	it = mt_malloc(sizeof(*it) + 2 * plen);
	if (it == NULL) {
		rc = MANTIS_ENOMEM;
		goto out;
	}
	it->db = db;
	it->cur = NULL;
	it->walk = NULL;
	it->state = MT_IT_START;
	it->plen = (uint32_t)plen;
	it->elen = 0;
	it->entry_bytes = 0;
	if (plen > 0) {
		memcpy(it->prefix, prefix, plen);
		it->elen = mt_iter_end_init(it->prefix + plen, it->prefix, (uint32_t)plen);
	}
	if (snap != NULL) {
		rc = mt_db_view_copy(&it->view, &snap->view);
		if (rc == MANTIS_OK) {
			rc = mt_snapshot_register_at(db, snap->slot, &it->slot);
			if (rc != MANTIS_OK)
				mt_db_view_free(&it->view);
		}
	} else {
		uint64_t seq;

		/* No rescan of the slots here (a registration never raises the
		 * prune bound; a lagging one is rescanned by pruners, and the
		 * close rescans, as multiget's does: mt_db_prune_bound). It was
		 * 21% of an open and close, one of the two 63-slot scans. */
		rc = mt_snapshot_register(db, 0, &it->slot, &seq);
		if (rc == MANTIS_OK) {
			mt_db_view_take(db, seq, &it->view, 0);
			mt_snapshot_set_hi(it->slot, it->view.hi);
		}
	}
	if (rc != MANTIS_OK) {
		mt_free(it);
		goto out;
	}
	mt_db_ref(db);
	rc = mt_handle_alloc(MT_HANDLE_ITER, it, mt_iter_destroy, it_out);
	if (rc != MANTIS_OK)
		mt_iter_destroy(it);
out:
	if (snap != NULL)
		mt_handle_release(snaph);
	mt_handle_release(dbh);
	return rc;
}

int mantis_iter_close(uint64_t it)
{
	return mt_handle_close(it, MT_HANDLE_ITER);
}

/* The walk of the current call: a cursor reading the tree in chunks,
 * bounded by the prefix's end. Restarted at the start of every call
 * (mt_iter_start, seek): its nodes are valid only inside the section that
 * read them. */
static __thread struct mt_sl_cur mt_iter_cur;

static inline struct mt_sl_cur *mt_iter_walk(struct mt_iter *it)
{
	it->walk = &mt_iter_cur;
	return it->walk;
}

/*
 * The scan pipeline. An entry costs three random lines (its key node, then
 * the first and second lines of its newest version, which the node points
 * to), and consecutive entries' misses are independent, so a walk keeps
 * them in flight together instead of waiting for each in turn: at entry i
 * it prefetches the node of entry i + AHEAD_NODE and the head version's
 * first two lines of entry i + AHEAD_VER (its node line has arrived by
 * then; the second line holds the value's start or a neighbour, and a
 * stage that read vlen first to decide measured slower: 14.1M against 18.9M
 * entries per CPU-second at 1M keys, since it issues the line too late).
 * Longer values stream behind their first lines. The cursor keeps
 * MT_SL_CUR_AHEAD nodes ahead, so the pipeline runs across its chunks.
 * Distances: a line costs ~160-200 ns here unloaded, more with ten in
 * flight (about what a core's line fill buffers hold), and an entry ~40-50
 * ns, so 8 entries cover a miss; 6 to 10 measured alike. Prefetches are
 * hints: they never fault, read nothing the walk relies on, and a node
 * removed meanwhile stays valid in the section.
 */
#define MT_ITER_AHEAD_NODE 15
#define MT_ITER_AHEAD_VER  8
_Static_assert(MT_ITER_AHEAD_NODE < MT_SL_CUR_AHEAD, "the cursor keeps the nodes ahead");

static inline void mt_iter_prefetch(const struct mt_sl_cur *c)
{
	uint32_t i = c->i;

	if (i + MT_ITER_AHEAD_NODE < c->n)
		__builtin_prefetch(c->b[i + MT_ITER_AHEAD_NODE]);
	if (i + MT_ITER_AHEAD_VER < c->n) {
		const char *v = (const char *)mt_sl_node_head(c->b[i + MT_ITER_AHEAD_VER]);

		__builtin_prefetch(v);
		__builtin_prefetch(v + 64);
	}
}

/* Starts the pipeline on a fresh chunk: the head versions of the first
 * AHEAD_VER nodes (their node lines were prefetched by the fill and are
 * loaded here together). */
static void mt_iter_prime(const struct mt_sl_cur *c)
{
	for (uint32_t k = 0; k < MT_ITER_AHEAD_VER && k < c->n; k++) {
		const char *v = (const char *)mt_sl_node_head(c->b[k]);

		__builtin_prefetch(v);
		__builtin_prefetch(v + 64);
	}
}

static inline struct mt_sl_node *mt_iter_succ(const struct mt_iter *it, const struct mt_sl_node *n)
{
	return mt_sl_cur_next(it->walk, &it->db->sl, n);
}

static int mt_iter_has_prefix(const struct mt_iter *it, const struct mt_sl_node *n)
{
	return n->klen >= it->plen && memcmp(mt_sl_node_key(n), it->prefix, it->plen) == 0;
}

/* From candidate n on, the first node with the prefix and an entry visible
 * at the snapshot, or NULL (past the prefix's keys: they are contiguous). */
static inline struct mt_sl_node *mt_iter_visible_from(const struct mt_iter *it,
                                                      struct mt_sl_node *n,
                                                      struct mt_sl_ver **v_out, uint64_t *now)
{
	for (; n != NULL; n = mt_iter_succ(it, n)) {
		struct mt_sl_ver *v;
		const struct mt_sl_cur *c = it->walk;

		if (c->i < c->n && c->b[c->i] == n)
			mt_iter_prefetch(c);
		/* The cursor is bounded by the prefix's end when it has one
		 * (mt_iter_end): then every node it returns has the prefix. */
		if (it->elen == 0 && it->plen > 0 && !mt_iter_has_prefix(it, n))
			return NULL;
		assert(mt_iter_has_prefix(it, n));
		v = mt_db_visible(n, &it->view, now);
		if (v != NULL) {
			*v_out = v;
			return n;
		}
	}
	return NULL;
}

/* Starts the call's cursor (first fill of want nodes) and returns the
 * first candidate for the next entry, by state (inside a section). */
static struct mt_sl_node *mt_iter_start(struct mt_iter *it, uint32_t want)
{
	struct mt_sl_cur *c = mt_iter_walk(it);
	struct mt_sl_node *n;

	mt_sl_cur_start(c, &it->db->sl, mt_iter_end(it), it->elen, want);
	switch (it->state) {
	case MT_IT_START:
		n = mt_sl_cur_first(c, it->plen > 0 ? it->prefix : NULL, it->plen);
		break;
	case MT_IT_PENDING:
		if (want <= 4)
			return it->cur; /* a step: cur is likely the entry */
		/* A chunk: read the tree from cur on (cur is pinned, hence
		 * in the tree), so that the pipeline runs from cur. */
		n = mt_sl_cur_first(c, mt_sl_node_key(it->cur), it->cur->klen);
		if (n != it->cur) {
			mt_sl_cur_start(c, &it->db->sl, mt_iter_end(it), it->elen, want);
			return it->cur; /* not expected: the walk restarts after cur */
		}
		break;
	case MT_IT_AT:
		/* cur is pinned, hence not removed: its key is the resume
		 * point. */
		n = mt_iter_succ(it, it->cur);
		break;
	default:
		return NULL;
	}
	if (want > 4)
		mt_iter_prime(c);
	return n;
}

/* Moves the pin to n (already pinned by the caller, or cur itself). */
static void mt_iter_move(struct mt_iter *it, struct mt_sl_node *n, int state)
{
	if (it->cur != NULL && it->cur != n)
		mt_sl_unpin(it->cur);
	it->cur = n;
	it->state = state;
}

/*
 * From candidate n, finds the next visible entry and pins it (skipping
 * nodes whose pin fails: they are being removed, so dead). Returns 1 with
 * *node and *v set, 0 if none is left, or MANTIS_ENOMEM (pin count full).
 */
static int mt_iter_find_pinned(struct mt_iter *it, struct mt_sl_node *n, struct mt_sl_node **node,
                               struct mt_sl_ver **v, uint64_t *now)
{
	for (;;) {
		int p;

		n = mt_iter_visible_from(it, n, v, now);
		if (n == NULL)
			return 0;
		if (n == it->cur)
			p = 1; /* already ours */
		else
			p = mt_sl_pin(n);
		if (p > 0) {
			*node = n;
			return 1;
		}
		if (p < 0)
			return MANTIS_ENOMEM;
		n = mt_iter_succ(it, n);
	}
}

static void mt_iter_finish(struct mt_iter *it)
{
	mt_iter_move(it, NULL, MT_IT_DONE);
}

int mantis_iter_seek(uint64_t ith, const void *key, size_t klen)
{
	ck_epoch_record_t *r;
	struct mt_sl_node *n;
	struct mt_sl_ver *v;
	struct mt_iter *it;
	const void *from = key;
	size_t flen = klen;
	uint64_t now = 0;
	void *obj;
	int rc;

	rc = mt_args_check_key(key, klen);
	if (rc != MANTIS_OK)
		return rc;
	rc = mt_handle_acquire(ith, MT_HANDLE_ITER, &obj);
	if (rc != MANTIS_OK)
		return rc;
	it = obj;
	r = mt_epoch_record();
	if (r == NULL) {
		mt_handle_release(ith);
		return MANTIS_ENOMEM;
	}
	/* Keys below the prefix: start at the prefix. */
	if (it->plen > 0 && mt_sl_cmp(key, klen, it->prefix, it->plen) < 0) {
		from = it->prefix;
		flen = it->plen;
	}
	mt_epoch_begin(r, NULL);
	mt_sl_cur_start(mt_iter_walk(it), &it->db->sl, mt_iter_end(it), it->elen, 4);
	n = mt_sl_cur_first(it->walk, from, flen);
	rc = mt_iter_find_pinned(it, n, &n, &v, &now);
	if (rc == 1) {
		mt_iter_move(it, n, MT_IT_PENDING);
		rc = MANTIS_OK;
	} else if (rc == 0) {
		mt_iter_finish(it);
		rc = MANTIS_DONE;
	}
	mt_epoch_end(r, NULL);
	mt_handle_release(ith);
	return rc;
}

/*
 * The common entry of a step (next, next_chunk): acquires the iterator's
 * handle and the thread's epoch record. On MANTIS_OK the caller owns the
 * handle reference and must mt_handle_release(ith); on any other code
 * (MANTIS_DONE for a finished iterator, MANTIS_ENOMEM, a handle error)
 * nothing is held.
 */
static inline int mt_iter_step_enter(uint64_t ith, struct mt_iter **it_out,
                                     ck_epoch_record_t **r_out)
{
	void *obj;
	int rc = mt_handle_acquire(ith, MT_HANDLE_ITER, &obj);

	if (rc != MANTIS_OK)
		return rc;
	if (((struct mt_iter *)obj)->state == MT_IT_DONE) {
		mt_handle_release(ith);
		return MANTIS_DONE;
	}
	*r_out = mt_epoch_record();
	if (*r_out == NULL) {
		mt_handle_release(ith);
		return MANTIS_ENOMEM;
	}
	*it_out = obj;
	return MANTIS_OK;
}

/*
 * One step of an iterator: the next visible entry, pinned, its pointers
 * valid until the next call. ttl_ms (NULL: not asked) receives the entry's
 * remaining time to live, 0 without a TTL, at least 1 ms with one. Inline:
 * mantis_iter_next passes a constant NULL, so its scan path carries no TTL
 * work.
 */
static inline int mt_iter_next_step(uint64_t ith, const void **key, size_t *klen,
                                    const void **value, size_t *vlen, uint64_t *ttl_ms)
{
	ck_epoch_record_t *r;
	struct mt_sl_node *n;
	struct mt_sl_ver *v;
	struct mt_iter *it;
	uint64_t now = 0;
	int rc = mt_iter_step_enter(ith, &it, &r);

	if (rc != MANTIS_OK)
		return rc;
	mt_epoch_begin(r, NULL);
	rc = mt_iter_find_pinned(it, mt_iter_start(it, 4), &n, &v, &now);
	if (rc == 1) {
		mt_iter_move(it, n, MT_IT_AT);
		/* Valid until the next call: n is pinned, v is visible at the
		 * iterator's registered snapshot. */
		if (key != NULL)
			*key = mt_sl_node_key(n);
		if (klen != NULL)
			*klen = n->klen;
		if (value != NULL)
			*value = mt_sl_ver_value(v);
		if (vlen != NULL)
			*vlen = v->vlen;
		if (ttl_ms != NULL && (mt_sl_ver_seqf(v) & MT_SL_V_TTL)) {
			uint64_t exp = mt_sl_ver_expiry(v);

			if (now == 0)
				now = mt_clock_now_ms();
			*ttl_ms = exp > now ? exp - now : 1;
		}
		rc = MANTIS_OK;
	} else if (rc == 0) {
		mt_iter_finish(it);
		rc = MANTIS_DONE;
	}
	mt_epoch_end(r, NULL);
	mt_handle_release(ith);
	return rc;
}

int mantis_iter_next(uint64_t ith, const void **key, size_t *klen, const void **value, size_t *vlen)
{
	return mt_iter_next_step(ith, key, klen, value, vlen, NULL);
}

static void mt_iter_put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

/* The size of a chunk's first tree scan: a chunk reads many entries, so
 * it reads their nodes in one scan (the pipeline then runs without a pause
 * for the tree: a first scan of 512 against 32 to 128 measured 22.6-24.3M
 * against 20.0-22.8M entries per CPU-second), as many as would fill the
 * buffer at the last chunk's mean entry size (64 bytes before the first:
 * the cursor grows further if they are smaller, and a scan of entries
 * larger than guessed reads nodes it does not copy, ~7 ns each), one more
 * than max_entries, at least 4. For a prefix, the scan stops at the
 * prefix's end anyway. */
static uint32_t mt_iter_chunk_first(const struct mt_iter *it, size_t cap, uint32_t max_entries)
{
	size_t want = cap / (it->entry_bytes != 0 ? it->entry_bytes : 64) + 1;

	if (max_entries != 0 && want > (size_t)max_entries + 1)
		want = (size_t)max_entries + 1;
	return want < 4 ? 4 : want > MT_SL_CUR_MAX ? MT_SL_CUR_MAX : (uint32_t)want;
}

int mantis_iter_next_chunk(uint64_t ith, void *buf, size_t cap, uint32_t max_entries,
                           size_t *len_out, uint32_t *count_out)
{
	unsigned char *out = buf;
	ck_epoch_record_t *r;
	struct mt_sl_node *n;
	struct mt_sl_ver *v;
	struct mt_iter *it;
	uint64_t now = 0;
	size_t used = 0, need = 0;
	uint32_t count = 0;
	int done = 0;
	int rc;

	if (len_out == NULL || count_out == NULL || (buf == NULL && cap > 0))
		return MANTIS_EINVAL;
	rc = mt_iter_step_enter(ith, &it, &r);
	if (rc == MANTIS_DONE) {
		*len_out = 0;
		*count_out = 0;
	}
	if (rc != MANTIS_OK)
		return rc;
	mt_epoch_begin(r, NULL);
	n = mt_iter_start(it, mt_iter_chunk_first(it, cap, max_entries));
	for (;;) {
		n = mt_iter_visible_from(it, n, &v, &now);
		if (n == NULL)
			break;
		need = 8 + (size_t)n->klen + v->vlen;
		if (need > cap - used || (max_entries != 0 && count == max_entries))
			break;
		mt_iter_put_le32(out + used, n->klen);
		mt_iter_put_le32(out + used + 4, v->vlen);
		memcpy(out + used + 8, mt_sl_node_key(n), n->klen);
		if (v->vlen > 0)
			memcpy(out + used + 8 + n->klen, mt_sl_ver_value(v), v->vlen);
		used += need;
		count++;
		n = mt_iter_succ(it, n);
	}
	/* Park on the next entry (not consumed) so the next call starts
	 * there; pinning may skip entries that died meanwhile. */
	rc = mt_iter_find_pinned(it, n, &n, &v, &now);
	if (rc == 1) {
		mt_iter_move(it, n, MT_IT_PENDING);
		need = 8 + (size_t)n->klen + v->vlen;
		rc = MANTIS_OK;
	} else if (rc == 0) {
		mt_iter_finish(it);
		done = 1;
		rc = MANTIS_OK;
	}
	if (count > 0)
		it->entry_bytes = (uint32_t)(used / count);
	mt_epoch_end(r, NULL);
	mt_handle_release(ith); /* it may be gone from here on */
	if (rc != MANTIS_OK)
		return rc;
	if (count == 0) {
		if (done) {
			*len_out = 0;
			*count_out = 0;
			return MANTIS_DONE;
		}
		*len_out = need; /* the pending entry does not fit */
		return MANTIS_EBUFSIZE;
	}
	*len_out = used;
	*count_out = count;
	return MANTIS_OK;
}

/*
 * mantis_iter_next with the entry's remaining time to live: the same step
 * (mt_iter_next_step), pin and pointer lifetimes, plus *ttl_ms. Hosts call
 * it where they persist a snapshot (checkpoints store absolute expiries and
 * convert from the remaining time, since the core's clock is monotonic).
 * A visible entry with a TTL reports at least 1 ms.
 */
int mantis_iter_next_ttl(uint64_t ith, const void **key, size_t *klen, const void **value,
                         size_t *vlen, uint64_t *ttl_ms)
{
	if (ttl_ms == NULL)
		return MANTIS_EINVAL;
	*ttl_ms = 0;
	return mt_iter_next_step(ith, key, klen, value, vlen, ttl_ms);
}
