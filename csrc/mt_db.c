/*
 * mt_db.c - MVCC over the key nodes (mt_skiplist.h): sequence numbers, in-order publication of
 * batches, conflict checks, reads at a snapshot, pruning, TTL, sweep and
 * striped statistics; and the public mantis_db_* functions. Snapshots and
 * the prune bound are in mt_snapshot.c, the clock in mt_clock.c.
 *
 * Past 800 lines (about 1,400): publication, views, the batch codec, reads
 * and sweeps all work on struct mt_db_rec and the ready ring; the batch
 * codec and the public read functions are the next to move out.
 *
 * SEQUENCE NUMBERS AND THE READY RING
 *
 * A write (a put, a delete or a batch) first does everything slow or
 * fallible: allocates its versions, finds each key's node (point index or
 * tree get) or allocates a new one born with its version (mt_sl_locate).
 * Then it takes s = ++next_seq, stamps its versions with s and links them
 * (mt_sl_link_at: a CAS each into a known node, a tree insert for a new
 * one; allocation only if a key's node was removed meanwhile), and marks s
 * ready: one CAS of its ring slot (ready[s % MT_DB_RING], 8 bytes) from the
 * word it held before (an earlier seq's) to s. That CAS is the write's
 * linearization point: every version of batch s becomes visible at that
 * one instant, on every key. The writer returns right after (a new node's
 * index slot, its accounting and its prunes done): it never waits for an
 * earlier writer. published moves over consecutive ready seqs, advanced by
 * whichever thread gets there (a CAS per step; a writer advances after
 * marking ready, a full barrier, and reads the next slot after its CAS, a
 * full barrier, so of two neighbours one always sees the other ready).
 *
 *  P1 Every version of batch s was linked before s was ready, and ABORTED
 *     (if s failed) was set before: a reader that finds s ready sees all
 *     of s or knows it aborted; one that finds it not ready skips all of it.
 *  P2 published only grows and every seq <= published is ready (decided:
 *     committed, or its versions carry ABORTED). A writer that fails after
 *     taking its seq (ENOMEM while linking, CONFLICT, or a lost key below)
 *     marks what it linked ABORTED, frees what it did not, and still marks
 *     s ready, so published never stalls for ever on it.
 *
 * A slot is reused by s + MT_DB_RING only once s is published
 * (mt_db_ring_wait): a slot word w says of seq s "ready" if w == s or w is
 * a later seq's (then s is published), "killed" if w == s | KILLED, and
 * "pending" if w is an earlier seq's. The ring-full wait (a sleep) is the
 * only remaining bound on a writer behind a descheduled one: MT_DB_RING
 * (256K) seqs, a quarter of a second at a million writes per second (16K
 * filled within a scheduling round of 32 threads on 2 cores: 45 ms).
 *
 * SAME-KEY ORDER
 *
 * Writes of one key must commit in seq order, or no order of the writes
 * explains what readers see: if s < t both write k, t is ready first and s
 * also writes j, a reader sees t on k (the newest by seq) and the old j,
 * and after s is ready k still reads t: s must come before t (k) and after
 * it (j). So of two writes of one key in flight at once, the lower seq
 * loses unless it was ready before the higher one linked: a writer that
 * links below a version with a higher seq that is not ABORTED (mt_sl_link_at
 * reports it) aborts; a writer that links above versions with lower seqs
 * that are neither ready nor ABORTED kills them (CAS of their slot from the
 * pending word to q | KILLED; mt_db_settle_below), and their writer's ready
 * CAS then fails: it aborts. Either way the loser marks its versions
 * ABORTED, marks its seq ready and retries the whole write with a new seq
 * (new versions: the old ones stay linked, aborted, until pruned). Nobody
 * waits: a retry means that a higher seq wrote the key meanwhile (which
 * commits unless it loses in turn; a writer that lost twice running sleeps
 * 1 us, doubling, before its next try, so that two writers whose windows
 * keep overlapping do not kill each other for ever).
 * So in every chain, committed versions became ready in seq order (a test
 * without this rule fails linear_* in test_db_nowait.c within a second).
 *
 * READS OF THE LATEST STATE
 *
 * A point read (snap 0) reads p = published, then walks the chain: a
 * version with seq <= p is decided (visible unless ABORTED); one above p is
 * visible iff its slot says ready (then its flags are re-read: ABORTED was
 * set before ready). It returns the newest such. Linearizable: for the
 * version Y it returns, every version above Y that it skipped (pending when
 * its slot was read) becomes ready after Y (SAME-KEY ORDER), so right after
 * Y became ready (or at the call's start, if later) the key read Y.
 *
 * VIEWS (snapshots, iterators, multigets)
 *
 * A view is the set of writes committed at one instant of the call:
 * (lo, hi, pending), lo the registered seq (published at registration),
 * hi = next_seq, pending = the seqs of (lo, hi] not ready. Reading the
 * slots one by one does not give an instant (a write may become ready
 * between two slot reads, after a write of another key that the view
 * missed), so mt_db_view_take re-reads next_seq and the pending slots until
 * neither changed (see there): a double collect, lock-free, never a wait.
 * A version is in the view iff its seq <= lo, or <= hi and not pending;
 * ABORTED never is. So every write that returned before the view began is
 * in it, and no batch is torn. The pending list is as long as the writes in
 * flight (inline up to MT_DB_VIEW_INL, else allocated; with no memory the
 * view waits, sleeping, for hi to be published). view.seq is the highest
 * seq s such that every seq <= s that ever commits is in the view.
 *
 * CONFLICT CHECKS
 *
 * A checked write of seq s conflicts iff a key's newest committed version
 * below s lies outside the check view: a transaction's snapshot's own view
 * (mantis_db_commit), or for a sequence number c the view "every seq <= c"
 * (mantis_db_write). Against the snapshot's view the check is exact with
 * writes in flight at its open (a pending one that commits later is
 * outside it: a conflict; one that returned before is inside: none), and
 * nobody is disturbed. A snapshot whose caller asks for its sequence number
 * (mantis_snapshot_open's seq_out, a check_seq for mantis_db_write) needs
 * that number exact (a writer's own transaction after its own put must not
 * conflict): its view kills each pending seq as its collect finds it
 * (mt_db_view_kill; their writers have not returned, and retry above hi),
 * so that seq = hi. Killing during the collect, not after it: a seq that
 * committed between the view's instant and a later kill would be outside
 * the view with a write that returned before the snapshot above it, and
 * seq would have to drop below that write. The kills make the writers in
 * flight retry (bench-c --only txn: two writers beside a thread opening
 * snapshots in a loop, their p99.9 4-7x higher with the number asked for):
 * transactions use the view instead. Multigets and iterators never kill.
 *
 * A checked write waits, before being ready, until published == s - 1:
 * every version below s is then decided, so "the newest committed version
 * of k below s" is exact. If a key's history was removed, removed_seq
 * (raised before the removal can be observed) stands for it, against the
 * view's seq, conservatively. That wait is the one left on the write path
 * of earlier writers (docs/architecture/storage.md, Waits).
 *
 * SNAPSHOTS AND THE PRUNE BOUND
 *
 * Snapshots are registered slots; their protocol and the prune bound
 * (mt_snapshot_min_seq: a lower bound of every seq a reader may read at,
 * now or later) are argued in mt_snapshot.c. The TTL clock is mt_clock.c.
 *
 * A view registers its lo (prune bound: a prune keeps the newest committed
 * version <= min_seq and everything above it, so all a view can see) and
 * its hi beside it (the middle versions of sweeps: mt_snapshot.c).
 *
 * Readers of "the latest state" (snap 0) register nothing. They read at
 * S = published and may race with a prune whose bound has moved past S:
 * the version they want, the newest <= S, may be cut below a newer version
 * V <= min_seq (V is committed, ready, and visible to any later reader). A
 * reader that passed over a newer version and found nothing therefore
 * reads published again and retries: its result is then that of a later
 * instant, which is still inside the call. A reader that finds a version
 * returns it: everything <= S was linked before S was published.
 *
 * PRUNING AND TTL
 *
 * Every write prunes the chains it wrote once ready (mt_sl_prune with
 * min_seq): under overwrites a chain holds the versions live snapshots need
 * plus the ones above published (in flight, or ready behind a descheduled
 * writer that holds published: a latest-state reader that found a newer
 * one pending may still read them); the first write or sweep of the key
 * after published passes them cuts them. At most a ring's worth. A delete makes the key's node
 * removable as soon as no snapshot needs what it hid. An expired version is invisible to every
 * reader whatever its snapshot (the clock is read at the read), so an expired newest version counts
 * as a tombstone for pruning; reads that meet one prune its node at once, and mantis_db_sweep walks
 * the whole list. Pruning never blocks: one pruner per chain, others skip it.
 *
 * STATS
 *
 * Each thread adds to its own stripe of counters (two cache lines; a live
 * thread owns its stripe, so a counter update is a plain load and store;
 * beyond 63 live threads the rest share stripe 0 with atomic adds: see
 * mt_sl_stripe_add), so the hot path has no shared counter beyond
 * next_seq/published. entries changes once a write commits: a version
 * that is a put adds one unless the newest committed version below it is a
 * put; a tombstone removes one if it is. That version is known before s is
 * ready, without waiting for the seqs below: it is the first one below that
 * is ready or at or below published and not ABORTED, after killing the
 * pending ones on the way (SAME-KEY ORDER: every version below it that is
 * not ready then, or linked below later, aborts; mt_db_settle_below). Then
 * the writer sets the version's DONE flag; no prune cuts below a version
 * without it, or removes its node (a prune cuts below a version only once
 * the bound reaches it, hence after it is ready, hence after the walk: the
 * flag is kept for the checker and as a second guard). A removal of an
 * expired key removes one. bytes and versions count every version held
 * (aborted ones too) until it is unlinked.
 *
 * LIFETIMES
 *
 * The db object has a reference count: one for its handle and one per
 * snapshot and iterator; it is freed when the handle is closed and the
 * last snapshot and iterator are gone. Point reads and writes look the
 * handle up without a reference (mt_handle_peek: no shared write per call)
 * inside their epoch section, so mt_db_destroy defers the free until every
 * section active at that point has ended (mt_epoch_call): a call that saw
 * the handle open began its section before the close, and the handle was
 * closed before the last reference went. Sweeps, stats, snapshot and
 * iterator opens take a reference (mt_handle_acquire). Nothing of the db
 * is touched by deferred frees, which only free memory already unlinked.
 */
#include "mt_db.h"

#include "mantis.h"
#include "mt_alloc.h"
#include "mt_args.h"
#include "mt_clock.h"
#include "mt_handle.h"
#include "mt_slidx.h"
#include "mt_snapshot.h"
#include "mt_wait.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ lifetime */

static int mt_db_create(struct mt_db **out)
{
	struct mt_db *db = mt_malloc_aligned(sizeof(*db), CK_MD_CACHELINE);

	if (db == NULL)
		return MANTIS_ENOMEM;
	memset(db, 0, sizeof(*db));
	/* Zeroed by the allocator: fresh pages cost nothing until written. */
	db->ready = mt_calloc(MT_DB_RING, sizeof(uint64_t));
	if (db->ready == NULL || mt_sl_init(&db->sl) != MANTIS_OK) {
		mt_free(db->ready);
		mt_free(db);
		return MANTIS_ENOMEM;
	}
	db->refs = 1;
	*out = db;
	return MANTIS_OK;
}

/* Frees the db and everything still in it (no thread can reach it). */
static void mt_db_free(struct mt_db *db)
{
	struct mt_db_snapchunk *c = db->snaps, *next;

	mt_sl_destroy(&db->sl);
	mt_free(db->ready);
	while (c != NULL) {
		next = c->next;
		mt_free(c);
		c = next;
	}
	mt_free(db);
}

static void mt_db_free_cb(ck_epoch_entry_t *e)
{
	mt_epoch_reclaim_acquire();
	mt_db_free((struct mt_db *)((char *)e - offsetof(struct mt_db, free_entry)));
}

/*
 * Last reference. Calls that hold a reference are gone; calls that looked
 * the handle up without one (mt_handle_peek) did so inside an epoch section
 * that began before they saw it open, and the handle was closed before the
 * last reference went. So the db is freed once every section active now has
 * ended: deferred through the epoch like any unlinked node (no wait here:
 * ck_epoch_synchronize_wait used to spin on the calls still running), and
 * then reclaimed at once if no section is active (mt_epoch_reclaim), else
 * by the next poll of any thread. Never called inside a section (handle
 * releases and closes happen outside).
 */
static void mt_db_destroy(struct mt_db *db)
{
	ck_epoch_record_t *r = mt_epoch_record();

	assert(!mt_epoch_in_section());
	if (r == NULL) {
		/* No record to defer on (ENOMEM): wait, sleeping. */
		(void)mt_epoch_reclaim();
		mt_epoch_reclaim_acquire();
		mt_db_free(db);
		return;
	}
	mt_epoch_call(r, &db->free_entry, mt_db_free_cb);
	(void)mt_epoch_reclaim();
}

void mt_db_ref(struct mt_db *db)
{
	ck_pr_inc_64(&db->refs);
}

void mt_db_unref(struct mt_db *db)
{
	bool zero;

	/* Full barrier: everything this holder did precedes the free. */
	ck_pr_dec_64_zero(&db->refs, &zero);
	if (zero)
		mt_db_destroy(db);
}

static void mt_db_handle_destroy(void *obj)
{
	mt_db_unref(obj);
}

/* ------------------------------------------------------------ pruning */

void mt_db_prune_account(struct mt_db *db, const struct mt_sl_prune_stats *st)
{
	struct mt_db_stripe *sp;

	if (st->versions == 0 && st->entries == 0)
		return;
	sp = mt_db_stripe(db);
	mt_sl_stripe_add(&sp->versions, -st->versions);
	mt_sl_stripe_add(&sp->bytes, -st->bytes);
	mt_sl_stripe_add(&sp->entries, (uint64_t)st->entries);
}

/*
 * The cached bound only rises when someone rescans the slots. Snapshot
 * opens and closes do; call-long registrations (multiget) rescan when they
 * end; and a pruner that finds the bound more than MT_DB_REFRESH_LAG seqs
 * behind published rescans, at most once every MT_DB_REFRESH_EVERY prunes
 * of its thread (a scan reads every slot: a chunk of 63 for most dbs). So
 * however registrations overlap, a chain keeps what live snapshots read
 * plus a bounded lag (defect 2 of issue 8: without this, back-to-back
 * multigets held the bound still and chains grew without limit).
 */
#define MT_DB_REFRESH_LAG   64u
#define MT_DB_REFRESH_EVERY 8u
static __thread uint32_t mt_db_tls_prunes;

static uint64_t mt_db_prune_bound(struct mt_db *db)
{
	uint64_t m = mt_snapshot_min_seq(db);

	if (ck_pr_load_64(&db->published) - m > MT_DB_REFRESH_LAG &&
	    ++mt_db_tls_prunes % MT_DB_REFRESH_EVERY == 0) {
		mt_snapshot_refresh_min(db);
		m = mt_snapshot_min_seq(db);
	}
	return m;
}

void mt_db_prune_node(struct mt_db *db, ck_epoch_record_t *r, struct mt_sl_node *n, uint64_t now_ms)
{
	struct mt_sl_prune_stats st = {0};
	struct mt_sl_bound b = {0};

	b.min_seq = mt_db_prune_bound(db);
	b.now_ms = now_ms;
	mt_sl_prune(&db->sl, r, n, &b, &db->removed_seq, &st);
	mt_db_prune_account(db, &st);
}

/* ------------------------------------------------------------ point index */

static uint64_t mt_db_entries(struct mt_db *db)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < MT_SL_STRIPES; i++)
		sum += ck_pr_load_64(&db->stripe[i].entries);
	return (int64_t)sum < 0 ? 0 : sum;
}

/* Every MT_DB_INDEX_EVERY writes of a thread, see whether the point index
 * must grow or shrink (a sum over the stripes: cheap at that rate). */
#define MT_DB_INDEX_EVERY 64u
static __thread uint32_t mt_db_tls_writes;

static void mt_db_index_check(struct mt_db *db, ck_epoch_record_t *r, size_t writes)
{
	uint32_t before = mt_db_tls_writes;

	mt_db_tls_writes += (uint32_t)writes;
	if (before / MT_DB_INDEX_EVERY != mt_db_tls_writes / MT_DB_INDEX_EVERY)
		mt_slx_resize(&db->sl, r, mt_db_entries(db));
}

/* ------------------------------------------------------------ writes */

struct mt_db_rec {
	const unsigned char *key;
	const unsigned char *val;
	uint32_t klen;
	uint32_t vlen;
	uint64_t ttl;
	uint32_t order; /* position in the batch */
	uint8_t op;
	uint8_t apply;     /* the last write of its key in the batch */
	uint8_t located;   /* pos is filled (may hold a new node) */
	uint8_t linked;    /* ver is in the list */
	uint8_t below_put; /* the newest committed version below ver is a put */
	struct mt_sl_ver *ver;
	struct mt_sl_node *node;
	struct mt_sl_pos pos;
};

void (*mt_db_test_hold)(uint64_t s);

static void mt_db_advance(struct mt_db *db);

/*
 * Waits until published >= target, helping to advance it (mt_db_advance).
 * Only three callers remain (see the waits table in
 * docs/architecture/storage.md): a writer whose ring slot is still held by
 * the write MT_DB_RING seqs earlier, a conflict-checked commit, and a view
 * that cannot allocate its pending list. Spins MT_WAIT_SPINS times, then
 * sleeps on the event count sleepers (a futex, mt_wait_ec_*) instead of
 * yielding. Lost wake-ups are impossible: a sleeper sets the count's
 * WAITERS bit (a full barrier) and then re-reads published, the advancer
 * CASes published (a full barrier) and then reads the count (mt_wait.c
 * argues the rest). The advancer wakes only when WAITERS is set and clears
 * it as it wakes: one wake-up system call per sleep.
 */
static void mt_db_wait_pub(struct mt_db *db, uint64_t target)
{
	unsigned spins = 0;

	/* Only seqs already handed out are ever published. */
	assert(target <= ck_pr_load_64(&db->next_seq));
	for (;;) {
		uint64_t p;

		mt_db_advance(db);
		p = ck_pr_load_64(&db->published);
		if (p >= target)
			break;
		if (spins < MT_WAIT_SPINS) {
			spins++;
			ck_pr_stall();
			continue;
		}
		/* Full barrier: WAITERS is set before the re-read. */
		uint32_t ec = mt_wait_ec_prepare(&db->sleepers);

		p = ck_pr_load_64(&db->published);
		if (p < target)
			mt_wait_ec_sleep(&db->sleepers, ec);
	}
	/* Acquire: every write up to target is visible and decided. */
	ck_pr_fence_load();
}

/* The ready ring slot of seq s (see READY RING at the top). */
static inline uint64_t *mt_db_slot(struct mt_db *db, uint64_t s)
{
	return &db->ready[s & (MT_DB_RING - 1)];
}

/* Is slot word w that of a ready seq s? s itself, or a later seq's (the
 * slot is reused only once s is published). Not ready: an earlier seq's
 * word (s is pending), or s | KILLED. */
static inline int mt_db_word_ready(uint64_t w, uint64_t s)
{
	return w == s || (w & ~MT_DB_KILLED) > s;
}

/* Is s (handed out) ready? Acquire: what its writer did before marking it
 * ready (links, ABORTED flags) is visible to the caller's later loads. */
static inline int mt_db_is_ready(struct mt_db *db, uint64_t s)
{
	int ready = mt_db_word_ready(ck_pr_load_64(mt_db_slot(db, s)), s);

	ck_pr_fence_load();
	return ready;
}

static void mt_db_ring_wait(struct mt_db *db, uint64_t s)
{
	/* The slot was s - MT_DB_RING's: free once that one is published
	 * (the ring only fills with MT_DB_RING seqs beyond published). */
	if (ck_pr_load_64(&db->published) + MT_DB_RING < s)
		mt_db_wait_pub(db, s - MT_DB_RING);
}

/* Moves published over every consecutive ready seq. */
static void mt_db_advance(struct mt_db *db)
{
	for (;;) {
		uint64_t p = ck_pr_load_64(&db->published);

		/* Acquire: the ready word, then the write's links. Only the
		 * word p + 1 itself means ready here (a killed seq is not). */
		if (ck_pr_load_64(mt_db_slot(db, p + 1)) != p + 1)
			return;
		/* Locked (full barrier), which a plain store would not be: a
		 * publisher then reads nsnaps in its prune (mt_snapshot_min_seq);
		 * with its store still buffered, it could read nsnaps 0 while a
		 * registering snapshot, which incremented nsnaps, reads the old
		 * published value, and prune what that snapshot needs. Fails
		 * if another writer advanced first: read again. The same
		 * barrier orders it before the read of the event count (see
		 * mt_db_wait_pub), and before the read of the next slot (a
		 * writer marks ready, a full barrier, then advances: one of the
		 * two sees the other's store, so published never stalls on a
		 * ready seq). */
		if (ck_pr_cas_64(&db->published, p, p + 1))
			mt_wait_ec_notify(&db->sleepers);
	}
}

/*
 * SAME-KEY ORDER, for a version v of seq s that its writer just linked:
 * every version below v with a higher seq than published that is neither
 * ready nor ABORTED is killed (its slot CASed from its pending word to
 * q | KILLED: its writer then aborts and retries), down to the first one
 * that is committed: ready, or at or below published, and not ABORTED.
 * Returns whether that one is a put (the entries accounting). Exact: every
 * version below it that is not ready yet is doomed (it was killed by the
 * writer of the committed one, or linked below it later and aborts on
 * seeing a live version above it), and so is anything linked below v from
 * now on while v may commit.
 */
static int mt_db_settle_below(struct mt_db *db, const struct mt_sl_ver *v)
{
	uint64_t p = ck_pr_load_64(&db->published);
	const struct mt_sl_ver *x = mt_sl_ver_next(v);

	while (x != NULL) {
		uint64_t sf = mt_sl_ver_seqf(x), q = sf & MT_SL_SEQ_MASK;

		if (!(sf & MT_SL_V_ABORTED)) {
			uint64_t *slot, w;

			if (q <= p)
				return !(sf & MT_SL_V_TOMB); /* decided: committed */
			slot = mt_db_slot(db, q);
			w = ck_pr_load_64(slot);
			if (mt_db_word_ready(w, q)) {
				/* Acquire (the slot load): flags set before ready. */
				ck_pr_fence_load();
				sf = mt_sl_ver_seqf(x);
				if (!(sf & MT_SL_V_ABORTED))
					return !(sf & MT_SL_V_TOMB);
			} else if (w != (q | MT_DB_KILLED)) {
				/* Pending: kill it. Full barrier; fails if its
				 * writer marked it ready or another killed it
				 * first: look at it again. */
				if (!ck_pr_cas_64(slot, w, q | MT_DB_KILLED))
					continue;
			}
		}
		x = mt_sl_ver_next(x);
	}
	return 0;
}

/* Conflict check of one key for seq s, every seq below s decided: does the
 * key's newest committed version lie outside view check? */
static int mt_db_conflicts(struct mt_db *db, const void *key, size_t klen, uint64_t s,
                           const struct mt_db_view *check)
{
	struct mt_sl_node *n = mt_sl_find(&db->sl, key, klen, mt_slx_hash(key, klen));
	struct mt_sl_ver *v = n != NULL ? mt_sl_node_head(n) : NULL;

	for (; v != NULL; v = mt_sl_ver_next(v)) {
		uint64_t sf = mt_sl_ver_seqf(v);

		if ((sf & MT_SL_SEQ_MASK) < s && !(sf & MT_SL_V_ABORTED))
			return !mt_db_view_has(check, sf & MT_SL_SEQ_MASK);
	}
	/* No committed version left: was a newer history dropped? The removal
	 * raised removed_seq before cutting the chain we just read (a bound,
	 * not a version: against the view's seq, conservatively). */
	return ck_pr_load_64(&db->removed_seq) > check->seq;
}

static int mt_db_rec_cmp(const void *a, const void *b)
{
	const struct mt_db_rec *x = a, *y = b;
	int c = mt_sl_cmp(x->key, x->klen, y->key, y->klen);

	if (c != 0)
		return c;
	return (x->order > y->order) - (x->order < y->order);
}

/* Allocates every applied record's version and finds its key's place (or
 * a new node). On ENOMEM frees what it allocated. */
static int mt_db_prepare(struct mt_db *db, ck_epoch_record_t *r, struct mt_db_rec *recs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		recs[i].linked = 0;
		recs[i].located = 0;
		recs[i].below_put = 0;
		recs[i].ver = NULL;
	}
	for (i = 0; i < n; i++) {
		struct mt_db_rec *rec = &recs[i];

		if (!rec->apply)
			continue;
		rec->ver = mt_sl_ver_new(rec->val, rec->vlen, mt_clock_expiry(rec->ttl),
		                         rec->op == MANTIS_OP_DELETE);
		if (rec->ver == NULL || mt_sl_locate(&db->sl, r, rec->key, rec->klen, rec->ver,
		                                     &rec->pos) != MANTIS_OK) {
			for (size_t j = 0; j <= i; j++) {
				if (recs[j].located)
					mt_sl_pos_drop(&recs[j].pos);
				mt_sl_ver_free_unlinked(recs[j].ver);
				recs[j].ver = NULL;
			}
			return MANTIS_ENOMEM;
		}
		rec->located = 1;
	}
	return MANTIS_OK;
}

/*
 * One attempt of a write under a new seq s (*s_out). Returns MANTIS_OK
 * (committed), an error (aborted: nothing visible), or MANTIS_CONFLICT; sets
 * *lost if it aborted because a higher seq won one of its keys (SAME-KEY
 * ORDER: the caller retries with a new seq). Adds the versions it linked
 * to *nver and *bytes, and on commit the change of entries to *entries.
 */
static int mt_db_attempt(struct mt_db *db, ck_epoch_record_t *r, struct mt_db_rec *recs, size_t n,
                         const struct mt_db_view *check, uint64_t *s_out, int *lost, uint64_t *nver,
                         uint64_t *bytes, int64_t *entries)
{
	uint64_t s, w0, now = 0;
	int rc = MANTIS_OK, commit;
	size_t i;

	*lost = 0;
	s = ck_pr_faa_64(&db->next_seq, 1) + 1;
	assert(s <= MT_SL_SEQ_LIMIT);
	mt_db_ring_wait(db, s);
	/* The slot's word before s is ready: s - MT_DB_RING's (or 0), unless
	 * a snapshot killed s already (mt_db_view_take, exact): then lose
	 * before linking anything. */
	w0 = ck_pr_load_64(mt_db_slot(db, s));
	assert(w0 < s || w0 == (s | MT_DB_KILLED));
	if (w0 == (s | MT_DB_KILLED))
		*lost = 1;
	for (i = 0; i < n && !*lost; i++) {
		struct mt_db_rec *rec = &recs[i];
		int shadowed = 0;

		if (!rec->apply)
			continue;
		rec->ver->seqf |= s; /* not yet linked: plain */
		rc = mt_sl_link_at(&db->sl, r, rec->key, rec->klen, rec->ver, &rec->pos, &rec->node,
		                   &shadowed);
		if (rc != MANTIS_OK)
			break;
		rec->linked = 1;
		(*nver)++;
		*bytes += rec->klen + rec->vlen;
		if (shadowed)
			*lost = 1;
	}
	for (i = 0; rc == MANTIS_OK && !*lost && i < n; i++)
		if (recs[i].linked)
			recs[i].below_put = (uint8_t)mt_db_settle_below(db, recs[i].ver);
	if (mt_db_test_hold != NULL)
		mt_db_test_hold(s);
	if (rc == MANTIS_OK && !*lost && check != NULL) {
		/* Conflict checks need every seq below s decided: wait for
		 * them while not ready (the one case where a writer waits for
		 * the writers before it). */
		mt_db_wait_pub(db, s - 1);
		for (i = 0; i < n; i++) {
			/* One check per key: the first record of its group. */
			if (i > 0 && mt_sl_cmp(recs[i].key, recs[i].klen, recs[i - 1].key,
			                       recs[i - 1].klen) == 0)
				continue;
			if (mt_db_conflicts(db, recs[i].key, recs[i].klen, s, check)) {
				rc = MANTIS_CONFLICT;
				break;
			}
		}
	}
	/* Ready: the linearization point. Full barrier (every link and flag
	 * of s before it); fails only if a higher seq killed s. */
	commit = rc == MANTIS_OK && !*lost && ck_pr_cas_64(mt_db_slot(db, s), w0, s);
	if (!commit) {
		if (rc == MANTIS_OK)
			*lost = 1; /* killed: retry */
		for (i = 0; i < n; i++) {
			if (recs[i].linked) {
				/* Full barrier each; all before the write is ready. */
				ck_pr_or_64(&recs[i].ver->seqf, MT_SL_V_ABORTED);
			} else {
				if (recs[i].located)
					mt_sl_pos_drop(&recs[i].pos);
				mt_sl_ver_free_unlinked(recs[i].ver);
				recs[i].ver = NULL;
			}
		}
		/* Ready as aborted (over a KILLED word too). Full barrier, as
		 * the CAS above, before the advance's loads. */
		(void)ck_pr_fas_64(mt_db_slot(db, s), s);
	}
	mt_db_advance(db);
	if (commit) {
		/* Counted (settle_below) before ready; the flag lets prunes cut
		 * below. Only this writer changes its versions' flags. */
		for (i = 0; i < n; i++) {
			struct mt_db_rec *rec = &recs[i];
			int put;

			if (!rec->apply)
				continue;
			put = rec->op == MANTIS_OP_PUT;
			*entries += put - rec->below_put;
			/* Release: the reads below this version precede the
			 * flag that lets a prune cut there. */
			ck_pr_fence_release();
			ck_pr_store_64(&rec->ver->seqf, mt_sl_ver_seqf(rec->ver) | MT_SL_V_DONE);
		}
	}
	/* A new node's index slot (it may be removed from now on), then
	 * reclaim what the write made dead (aborted versions included). */
	for (i = 0; i < n; i++)
		if (recs[i].linked)
			mt_sl_link_finish(&db->sl, r, recs[i].key, recs[i].klen, &recs[i].pos);
	for (i = 0; i < n; i++) {
		uint64_t sf;

		if (!recs[i].linked)
			continue;
		sf = mt_sl_ver_seqf(recs[i].ver);
		/* A new key's node holds only this put: nothing to prune. */
		if (recs[i].pos.linked && !(sf & (MT_SL_V_ABORTED | MT_SL_V_TOMB)))
			continue;
		if (now == 0 && (sf & MT_SL_V_TTL))
			now = mt_clock_now_ms();
		mt_db_prune_node(db, r, recs[i].node, now != 0 ? now : 1);
	}
	*s_out = s;
	return rc;
}

/*
 * Applies n records (sorted by key then position if n > 1, apply flags set)
 * under one new sequence number, if check is not NULL only if no key's
 * committed version lies outside it (a view of check_db, NULL for a
 * sequence number's view). Nothing is visible unless MANTIS_OK.
 */
static int mt_db_apply(uint64_t dbh, struct mt_db_rec *recs, size_t n,
                       const struct mt_db_view *check, const struct mt_db *check_db,
                       uint64_t *seq_out)
{
	ck_epoch_record_t *r;
	struct mt_db_stripe *sp;
	struct mt_db *db;
	uint64_t s = 0, nwrites = 0, ndeletes = 0, bytes = 0, nver = 0;
	int64_t entries = 0;
	int rc, lost;
	size_t i;

	/* The handle is looked up without a reference: the section keeps the
	 * db alive until its end (mt_db_destroy defers the free past it). Everything
	 * that touches db stays inside it. */
	rc = mt_handle_enter(dbh, MT_HANDLE_DB, &r, (void **)&db);
	if (rc != MANTIS_OK)
		return rc;
	if (check_db != NULL && check_db != db) {
		mt_handle_leave(r);
		return MANTIS_EINVAL; /* another db's snapshot */
	}
	for (unsigned losses = 0;; losses++) {
		/* Everything that may fail or take long (allocating, finding
		 * each key's place), before taking a seq. */
		rc = mt_db_prepare(db, r, recs, n);
		if (rc != MANTIS_OK)
			break;
		rc = mt_db_attempt(db, r, recs, n, check, &s, &lost, &nver, &bytes, &entries);
		if (rc != MANTIS_OK || !lost)
			break;
		if (losses > 0) {
			/* Lost twice running: two writers of a key can kill each
			 * other in turn for as long as their windows overlap;
			 * step aside, sleeping 1 us doubling to 1 ms (a
			 * contention manager: it waits for no one). */
			unsigned b = MT_WAIT_SPINS + (losses - 1 < 10 ? losses - 1 : 10);

			mt_wait_backoff(&b);
		}
	}
	sp = mt_db_stripe(db);
	if (nver != 0) {
		mt_sl_stripe_add(&sp->versions, nver);
		mt_sl_stripe_add(&sp->bytes, bytes);
	}
	if (rc == MANTIS_OK) {
		for (i = 0; i < n; i++) {
			if (!recs[i].apply)
				continue;
			if (recs[i].op == MANTIS_OP_PUT)
				nwrites++;
			else
				ndeletes++;
		}
		if (nwrites != 0)
			mt_sl_stripe_add(&sp->writes, nwrites);
		if (ndeletes != 0)
			mt_sl_stripe_add(&sp->deletes, ndeletes);
		if (entries != 0)
			mt_sl_stripe_add(&sp->entries, (uint64_t)entries);
		if (seq_out != NULL)
			*seq_out = s;
		mt_db_index_check(db, r, nwrites + ndeletes);
	}
	mt_handle_leave(r);
	return rc;
}

/* ------------------------------------------------------------ views */

void mt_db_view_free(struct mt_db_view *v)
{
	if (v->pend != v->inl)
		mt_free(v->pend);
	v->pend = v->inl;
	v->cap = MT_DB_VIEW_INL;
	v->npend = 0;
}

/* Appends pending seq s (ascending). Returns 0 on ENOMEM. */
static int mt_db_view_add(struct mt_db_view *v, uint64_t s)
{
	if (v->npend == v->cap) {
		uint64_t *g = mt_malloc(2 * (size_t)v->cap * sizeof(*g));

		if (g == NULL)
			return 0;
		memcpy(g, v->pend, v->npend * sizeof(*g));
		if (v->pend != v->inl)
			mt_free(v->pend);
		v->pend = g;
		v->cap *= 2;
	}
	v->pend[v->npend++] = s;
	return 1;
}

/*
 * Kills seq s for an exact view unless it is ready: CAS of its slot from
 * s - MT_DB_RING's ready word (or 0) to s | KILLED; its writer, which has
 * not returned, then aborts and retries with a higher seq. Returns 1 if s
 * is ready, else 0: s never commits (its versions may still lack ABORTED
 * until its writer notices: the view keeps s pending). The slot is s's
 * only once s - MT_DB_RING is published (before, its ready word is what
 * advances published over it: the ring wait's rule for every writer): with
 * the ring full this sleeps until then, as that writer does.
 */
static int mt_db_view_kill(struct mt_db *db, uint64_t s)
{
	uint64_t *slot = mt_db_slot(db, s);

	for (;;) {
		uint64_t w = ck_pr_load_64(slot);

		if (mt_db_word_ready(w, s)) {
			ck_pr_fence_load(); /* acquire, as mt_db_is_ready */
			return 1;
		}
		if (w == (s | MT_DB_KILLED))
			return 0;
		if (ck_pr_load_64(&db->published) + MT_DB_RING < s) {
			mt_db_wait_pub(db, s - MT_DB_RING);
			continue;
		}
		/* Full barrier; fails if its writer marked it ready or
		 * someone killed it first: look again. */
		if (ck_pr_cas_64(slot, w, s | MT_DB_KILLED))
			return 0;
	}
}

/*
 * VIEWS (see the top comment). Reads next_seq (n) and every slot of
 * (hi, n], noting the pending seqs, until a read of next_seq finds no new
 * seq and a re-read of every pending slot finds it still pending. At that
 * read of next_seq (the instant t) no seq above hi existed, every seq noted
 * ready was ready already (noted before t; ready is for ever), and every
 * pending one was not (still pending when re-read after t). So the view is
 * exactly the writes committed at t: all of a batch or none, and every
 * write that returned before the call. Each extra round means that a writer
 * took a seq or became ready meanwhile (lock-free, never a wait).
 */
void mt_db_view_take(struct mt_db *db, uint64_t lo, struct mt_db_view *v, int exact)
{
	uint64_t hi = lo, n;

	v->lo = lo;
	v->pend = v->inl;
	v->cap = MT_DB_VIEW_INL;
	v->npend = 0;
	for (;;) {
		uint32_t k = 0;
		int changed = 0;

		n = ck_pr_load_64(&db->next_seq);
		/* Acquire: the slots are read after next_seq (t). */
		ck_pr_fence_load();
		if (n > hi) {
			for (uint64_t s = hi + 1; s <= n; s++) {
				if (exact ? mt_db_view_kill(db, s) : mt_db_is_ready(db, s))
					continue;
				if (!mt_db_view_add(v, s))
					goto nomem;
			}
			hi = n;
			continue;
		}
		for (uint32_t i = 0; i < v->npend; i++) {
			if (mt_db_is_ready(db, v->pend[i]))
				changed = 1;
			else
				v->pend[k++] = v->pend[i];
		}
		v->npend = k;
		if (!changed)
			break;
	}
	v->hi = hi;
	/* Exact: every pending seq was killed, none of them ever commits. */
	v->seq = v->npend > 0 && !exact ? v->pend[0] - 1 : hi;
	return;
nomem:
	/* No memory for the list: wait (sleeping) until every seq up to n
	 * is decided, then the view is all of them. */
	mt_db_view_free(v);
	mt_db_wait_pub(db, n);
	v->hi = n;
	v->seq = n;
}

int mt_db_view_copy(struct mt_db_view *dst, const struct mt_db_view *src)
{
	*dst = *src;
	dst->pend = dst->inl;
	dst->cap = MT_DB_VIEW_INL;
	if (src->npend > MT_DB_VIEW_INL) {
		dst->pend = mt_malloc(src->npend * sizeof(uint64_t));
		if (dst->pend == NULL) {
			dst->pend = dst->inl;
			dst->npend = 0;
			return MANTIS_ENOMEM;
		}
		dst->cap = src->npend;
	}
	memcpy(dst->pend, src->pend, src->npend * sizeof(uint64_t));
	return MANTIS_OK;
}

/* ------------------------------------------------------------ little-endian batch fields */

static uint32_t mt_db_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t mt_db_le64(const unsigned char *p)
{
	return (uint64_t)mt_db_le32(p) | (uint64_t)mt_db_le32(p + 4) << 32;
}

static void mt_db_put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

/*
 * The entry of the point reads that take a snapshot handle: the snapshot is
 * acquired before the epoch section begins and released after it ends, by
 * mt_db_leave_snap, because releasing it may drop its last reference (and
 * its db's) and destroy them, which waits for a grace period: inside the
 * caller's own section, for ever. The db handle's error comes first, as it
 * did when the db was looked up first.
 */
static int mt_db_enter_snap(uint64_t dbh, uint64_t snaph, ck_epoch_record_t **r, struct mt_db **db,
                            struct mt_snap **snap)
{
	void *obj = NULL;
	int src = MANTIS_OK, rc;

	*snap = NULL;
	if (snaph != 0)
		src = mt_handle_acquire(snaph, MT_HANDLE_SNAPSHOT, &obj);
	rc = mt_handle_enter(dbh, MT_HANDLE_DB, r, (void **)db);
	if (rc == MANTIS_OK && src != MANTIS_OK) {
		mt_handle_leave(*r);
		rc = src;
	} else if (rc == MANTIS_OK && obj != NULL && ((struct mt_snap *)obj)->db != *db) {
		mt_handle_leave(*r);
		rc = MANTIS_EINVAL;
	}
	if (rc != MANTIS_OK) {
		if (src == MANTIS_OK && obj != NULL)
			mt_handle_release(snaph);
		return rc;
	}
	*snap = obj;
	return MANTIS_OK;
}

/* Ends the section of mt_db_enter_snap, then releases the snapshot. */
static void mt_db_leave_snap(ck_epoch_record_t *r, uint64_t snaph, struct mt_snap *snap)
{
	mt_handle_leave(r);
	if (snap != NULL)
		mt_handle_release(snaph);
}

/* ------------------------------------------------------------ public: db */

int mantis_db_open(const mantis_db_options_t *opts, uint64_t *db_out)
{
	struct mt_db *db;
	int rc;

	if (db_out == NULL || (opts != NULL && opts->reserved != 0))
		return MANTIS_EINVAL;
	rc = mt_db_create(&db);
	if (rc != MANTIS_OK)
		return rc;
	rc = mt_handle_alloc(MT_HANDLE_DB, db, mt_db_handle_destroy, db_out);
	if (rc != MANTIS_OK)
		mt_db_destroy(db);
	return rc;
}

int mantis_db_close(uint64_t db)
{
	return mt_handle_close(db, MT_HANDLE_DB);
}

static int mt_db_write_one(uint64_t dbh, uint8_t op, const void *key, size_t klen,
                           const void *value, size_t vlen, uint64_t ttl_ms, uint64_t *seq_out)
{
	struct mt_db_rec rec;
	int rc = mt_args_check_key(key, klen);

	if (rc == MANTIS_OK)
		rc = mt_args_check_value(value, vlen);
	if (rc != MANTIS_OK)
		return rc;
	memset(&rec, 0, sizeof(rec));
	rec.key = key;
	rec.klen = (uint32_t)klen;
	rec.val = value;
	rec.vlen = (uint32_t)vlen;
	rec.ttl = ttl_ms;
	rec.op = op;
	rec.apply = 1;
	return mt_db_apply(dbh, &rec, 1, NULL, NULL, seq_out);
}

int mantis_db_put(uint64_t db, const void *key, size_t klen, const void *value, size_t vlen,
                  uint64_t ttl_ms, uint64_t *seq_out)
{
	return mt_db_write_one(db, MANTIS_OP_PUT, key, klen, value, vlen, ttl_ms, seq_out);
}

int mantis_db_delete(uint64_t db, const void *key, size_t klen, uint64_t *seq_out)
{
	return mt_db_write_one(db, MANTIS_OP_DELETE, key, klen, NULL, 0, 0, seq_out);
}

/*
 * Parses a batch in one pass into *recs, which starts as the caller's
 * stack array of *cap records and is replaced by a larger heap array
 * (mt_malloc, doubling) when it fills; the caller frees *recs if it is no
 * longer stack. One pass, so that the count and the records come from the
 * same reading of the caller's buffer: two passes (count, then fill) trusted
 * the second to find no more records than the first, and a buffer changed
 * in between (a caller's bug, never ours to crash on) overflowed the array
 * (defect 7 of issue 8). Returns MANTIS_OK or the first error.
 */
static int mt_db_parse_batch(const unsigned char *b, size_t len, struct mt_db_rec *stack,
                             struct mt_db_rec **recs, size_t *cap, size_t *n_out)
{
	size_t off = 0, n = 0;

	assert(*recs == stack && *cap > 0);
	while (off < len) {
		size_t left = len - off;
		struct mt_db_rec *rec;
		uint8_t op;
		uint32_t klen, vlen;
		uint64_t ttl;
		int rc;

		if (left < MANTIS_BATCH_HDR)
			return MANTIS_EINVAL; /* truncated header */
		op = b[off];
		klen = mt_db_le32(b + off + 1);
		vlen = mt_db_le32(b + off + 5);
		ttl = mt_db_le64(b + off + 9);
		if (op != MANTIS_OP_PUT && op != MANTIS_OP_DELETE && op != MANTIS_OP_CHECK)
			return MANTIS_EINVAL;
		if ((uint64_t)klen + vlen > left - MANTIS_BATCH_HDR)
			return MANTIS_EINVAL; /* lengths past the end */
		if (op != MANTIS_OP_PUT && (vlen != 0 || ttl != 0))
			return MANTIS_EINVAL;
		rc = mt_args_check_klen(klen);
		if (rc != MANTIS_OK)
			return rc;
		if (vlen > MANTIS_VALUE_MAX)
			return MANTIS_ETOOLARGE;
		if (n == *cap) {
			/* Records are at least MANTIS_BATCH_HDR + 1 bytes, so
			 * len bounds the count and the doubling cannot wrap. */
			struct mt_db_rec *grown = mt_malloc(2 * n * sizeof(*grown));

			if (grown == NULL)
				return MANTIS_ENOMEM;
			memcpy(grown, *recs, n * sizeof(*grown));
			if (*recs != stack)
				mt_free(*recs);
			*recs = grown;
			*cap = 2 * n;
		}
		rec = &(*recs)[n];
		memset(rec, 0, sizeof(*rec));
		rec->op = op;
		rec->klen = klen;
		rec->vlen = vlen;
		rec->ttl = ttl;
		rec->key = b + off + MANTIS_BATCH_HDR;
		rec->val = rec->key + klen;
		rec->order = (uint32_t)n;
		n++;
		off += MANTIS_BATCH_HDR + (size_t)klen + vlen;
	}
	*n_out = n;
	return MANTIS_OK;
}

#define MT_DB_STACK_RECS 8

/* mantis_db_write (check_seq) and mantis_db_commit (check_snap): at most
 * one of them not 0. */
static int mt_db_write_check(uint64_t dbh, const void *batch, size_t len, uint64_t check_seq,
                             uint64_t check_snap, uint64_t *seq_out)
{
	struct mt_db_rec stack[MT_DB_STACK_RECS], *recs = stack;
	size_t n = 0, i, cap = MT_DB_STACK_RECS;
	struct mt_db_view seqv, *check = NULL;
	struct mt_snap *snap = NULL;
	void *obj;
	int rc;

	assert(check_seq == 0 || check_snap == 0);
	if (batch == NULL && len > 0)
		return MANTIS_EINVAL;
	if (len > MANTIS_BATCH_MAX)
		return MANTIS_ETOOLARGE;
	rc = mt_db_parse_batch(batch, len, stack, &recs, &cap, &n);
	if (rc != MANTIS_OK) {
		if (recs != stack)
			mt_free(recs);
		return rc;
	}
	if (check_snap != 0) {
		/* Released after the apply's epoch section: the release may
		 * destroy the snapshot, which waits for a grace period. */
		rc = mt_handle_acquire(check_snap, MT_HANDLE_SNAPSHOT, &obj);
		if (rc != MANTIS_OK) {
			if (recs != stack)
				mt_free(recs);
			return rc;
		}
		snap = obj;
		check = &snap->view;
	} else if (check_seq != 0) {
		/* The snapshot at check_seq: every seq at or below it. */
		seqv.lo = seqv.hi = seqv.seq = check_seq;
		seqv.npend = 0;
		check = &seqv;
	}
	if (n > 1)
		qsort(recs, n, sizeof(*recs), mt_db_rec_cmp);
	/* The last write of each key applies (sorted by key, then position). */
	for (i = 0; i < n; i++) {
		size_t j = i;

		/* A group of one key: mark its last PUT or DELETE. */
		while (j + 1 < n &&
		       mt_sl_cmp(recs[j + 1].key, recs[j + 1].klen, recs[i].key, recs[i].klen) == 0)
			j++;
		for (size_t k = j + 1; k-- > i;) {
			if (recs[k].op != MANTIS_OP_CHECK) {
				recs[k].apply = 1;
				break;
			}
		}
		i = j;
	}
	rc = mt_db_apply(dbh, recs, n, check, snap != NULL ? snap->db : NULL, seq_out);
	if (snap != NULL)
		mt_handle_release(check_snap);
	if (recs != stack)
		mt_free(recs);
	return rc;
}

int mantis_db_write(uint64_t dbh, const void *batch, size_t len, uint64_t check_seq,
                    uint64_t *seq_out)
{
	return mt_db_write_check(dbh, batch, len, check_seq, 0, seq_out);
}

int mantis_db_commit(uint64_t dbh, uint64_t snap, const void *batch, size_t len, uint64_t *seq_out)
{
	if (snap == 0)
		return MANTIS_EINVAL;
	return mt_db_write_check(dbh, batch, len, 0, snap, seq_out);
}

/*
 * The newest version of n in the latest state read with published p: a
 * version at or below p is decided (visible unless ABORTED); one above p is
 * visible iff its seq is ready (then re-read its flags: ABORTED was set
 * before ready). Sets *skipped if it passed over a pending one. Reader.
 */
static struct mt_sl_ver *mt_db_ver_latest(struct mt_db *db, const struct mt_sl_node *n, uint64_t p,
                                          int *skipped)
{
	struct mt_sl_ver *x = mt_sl_node_head(n);

	for (; x != NULL; x = mt_sl_ver_next(x)) {
		uint64_t sf = mt_sl_ver_seqf(x), q = sf & MT_SL_SEQ_MASK;

		if (q > p) {
			if (!mt_db_is_ready(db, q)) {
				*skipped = 1;
				continue;
			}
			sf = mt_sl_ver_seqf(x); /* after the acquire */
		}
		if (!(sf & MT_SL_V_ABORTED))
			return x;
	}
	return NULL;
}

/*
 * The newest committed version of key (hash h: mt_slx_hash) in view, or for
 * view NULL in the latest state, retrying when a prune overtook the read
 * (see the top comment). Inside a section. *node_out gets the node.
 */
static struct mt_sl_ver *mt_db_read(struct mt_db *db, const void *key, size_t klen, uint64_t h,
                                    const struct mt_db_view *view, struct mt_sl_node **node_out)
{
	for (;;) {
		uint64_t p = view == NULL ? ck_pr_load_64(&db->published) : 0;
		struct mt_sl_node *n;
		struct mt_sl_ver *v = NULL;
		int skipped = 0;

		/* Acquire: versions up to p were linked before p was. */
		ck_pr_fence_load();
		n = mt_sl_find(&db->sl, key, klen, h);
		if (n != NULL)
			v = view != NULL ? mt_db_ver_in(n, view, &skipped)
			                 : mt_db_ver_latest(db, n, p, &skipped);
		if (view == NULL && v == NULL && skipped && ck_pr_load_64(&db->published) != p)
			continue;
		*node_out = n;
		return v;
	}
}

int mantis_db_get(uint64_t dbh, uint64_t snaph, const void *key, size_t klen, void *buf, size_t cap,
                  size_t *vlen_out, uint64_t *seq_out)
{
	ck_epoch_record_t *r;
	struct mt_snap *snap = NULL;
	struct mt_sl_node *n;
	struct mt_sl_ver *v;
	struct mt_db *db;
	int rc = mt_args_check_key(key, klen);

	if (rc != MANTIS_OK)
		return rc;
	if (vlen_out == NULL || (buf == NULL && cap > 0))
		return MANTIS_EINVAL;
	/* A reference-free lookup: the section keeps db alive. */
	rc = mt_db_enter_snap(dbh, snaph, &r, &db, &snap);
	if (rc != MANTIS_OK)
		return rc;
	v = mt_db_read(db, key, klen, mt_slx_hash(key, klen), snap != NULL ? &snap->view : NULL,
	               &n);
	if (v == NULL || (mt_sl_ver_seqf(v) & MT_SL_V_TOMB)) {
		rc = MANTIS_NOTFOUND;
	} else if ((mt_sl_ver_seqf(v) & MT_SL_V_TTL) && mt_sl_ver_expiry(v) <= mt_clock_now_ms()) {
		rc = MANTIS_NOTFOUND;
		mt_db_prune_node(db, r, n, mt_clock_now_ms()); /* reclaim it lazily */
	} else if (v->vlen > cap) {
		*vlen_out = v->vlen;
		rc = MANTIS_EBUFSIZE;
	} else {
		if (v->vlen > 0)
			memcpy(buf, mt_sl_ver_value(v), v->vlen);
		*vlen_out = v->vlen;
		if (seq_out != NULL)
			*seq_out = mt_sl_ver_seqf(v) & MT_SL_SEQ_MASK;
	}
	mt_sl_stripe_add(&mt_db_stripe(db)->reads, 1);
	mt_db_leave_snap(r, snaph, snap);
	return rc;
}

int mantis_db_key_seq(uint64_t dbh, const void *key, size_t klen, uint64_t *seq_out)
{
	ck_epoch_record_t *r;
	struct mt_sl_node *n;
	struct mt_sl_ver *v;
	struct mt_db *db;
	int rc = mt_args_check_key(key, klen);

	if (rc != MANTIS_OK)
		return rc;
	if (seq_out == NULL)
		return MANTIS_EINVAL;
	rc = mt_handle_enter(dbh, MT_HANDLE_DB, &r, (void **)&db);
	if (rc != MANTIS_OK)
		return rc;
	v = mt_db_read(db, key, klen, mt_slx_hash(key, klen), NULL, &n);
	*seq_out = v != NULL ? mt_sl_ver_seqf(v) & MT_SL_SEQ_MASK : 0;
	mt_sl_stripe_add(&mt_db_stripe(db)->reads, 1);
	mt_handle_leave(r);
	return MANTIS_OK;
}

/*
 * A multiget's reads overlap their misses. One read is three dependent
 * misses (the index bucket, the key node, its newest version) whatever the
 * code does; the keys of a multiget are independent, so while key i is
 * read, key i + 2A's buckets are being fetched, key i + A's candidate node
 * (the first slot of its buckets with a matching tag), and key i + A/2's
 * node's head version: by the time each key is read, its lines are on their
 * way. Prefetches only (hints: mt_db_read decides everything, as for a
 * single get); the node and version pointers are loaded inside the
 * caller's section, so touching them is safe (mt_slidx.c X1).
 */
#define MT_DB_MG_AHEAD 8u

struct mt_db_mg_pipe {
	const unsigned char *kb;
	size_t off;      /* of key `hashed` in kb */
	uint32_t hashed; /* keys whose buckets were prefetched */
	uint32_t peeked; /* keys whose candidate node was prefetched */
	uint32_t headed; /* keys whose head version was prefetched */
	uint64_t h[2 * MT_DB_MG_AHEAD];
	struct mt_sl_node *cand[MT_DB_MG_AHEAD];
};

static void mt_db_mg_pipe_init(struct mt_db_mg_pipe *p, const unsigned char *kb)
{
	p->kb = kb;
	p->off = 0;
	p->hashed = p->peeked = p->headed = 0;
}

/* Advances the three prefetch stages before key i is read. */
static inline void mt_db_mg_pipe_step(struct mt_db_mg_pipe *p, const struct mt_sl *sl, uint32_t i,
                                      uint32_t nkeys)
{
	/* Each stage stays within its ring: hashed - peeked <= A (ring 2A),
	 * peeked - headed <= A/2 (ring A). */
	for (; p->hashed < nkeys && p->hashed < i + 2 * MT_DB_MG_AHEAD; p->hashed++) {
		uint32_t klen = mt_db_le32(p->kb + p->off);
		uint64_t h = mt_slx_hash(p->kb + p->off + 4, klen);

		p->h[p->hashed % (2 * MT_DB_MG_AHEAD)] = h;
		mt_slx_prefetch(sl, h);
		p->off += 4 + (size_t)klen;
	}
	for (; p->peeked < nkeys && p->peeked < i + MT_DB_MG_AHEAD; p->peeked++) {
		struct mt_sl_node *n = mt_slx_peek(sl, p->h[p->peeked % (2 * MT_DB_MG_AHEAD)]);

		p->cand[p->peeked % MT_DB_MG_AHEAD] = n;
		if (n != NULL)
			__builtin_prefetch(n);
	}
	for (; p->headed < nkeys && p->headed < i + MT_DB_MG_AHEAD / 2; p->headed++) {
		const struct mt_sl_node *n = p->cand[p->headed % MT_DB_MG_AHEAD];
		const struct mt_sl_ver *v = n != NULL ? mt_sl_node_head(n) : NULL;

		if (v != NULL) {
			/* The header and the first value bytes, then the rest of a
			 * small value. */
			__builtin_prefetch(v);
			__builtin_prefetch((const char *)v + 64);
		}
	}
}

int mantis_db_multiget(uint64_t dbh, uint64_t snaph, const void *keys, size_t keys_len,
                       uint32_t nkeys, void *out, size_t out_cap, size_t *out_len)
{
	const unsigned char *kb = keys;
	unsigned char *ob = out;
	ck_epoch_record_t *r;
	struct mt_snap *snap = NULL;
	struct mt_db_view own;
	const struct mt_db_view *view;
	uint64_t *slot = NULL, seq, now = 0;
	size_t off = 0, need = 0;
	struct mt_db_mg_pipe pipe;
	struct mt_db *db;
	int rc;

	if ((keys == NULL && keys_len > 0) || (out == NULL && out_cap > 0) || out_len == NULL)
		return MANTIS_EINVAL;
	/* Validate the whole key list first: nothing is read on error. */
	for (uint32_t i = 0; i < nkeys; i++) {
		uint32_t klen;

		if (keys_len - off < 4)
			return MANTIS_EINVAL;
		klen = mt_db_le32(kb + off);
		if (klen > keys_len - off - 4)
			return MANTIS_EINVAL;
		rc = mt_args_check_klen(klen);
		if (rc != MANTIS_OK)
			return rc;
		off += 4 + (size_t)klen;
	}
	if (off != keys_len)
		return MANTIS_EINVAL; /* trailing bytes */
	rc = mt_db_enter_snap(dbh, snaph, &r, &db, &snap);
	if (rc != MANTIS_OK)
		return rc;
	if (snap != NULL) {
		view = &snap->view;
	} else {
		/* One view for the whole call, so that keys agree. */
		rc = mt_snapshot_register(db, 0, &slot, &seq);
		if (rc != MANTIS_OK)
			goto out;
		mt_db_view_take(db, seq, &own, 0);
		mt_snapshot_set_hi(slot, own.hi);
		view = &own;
	}
	off = 0;
	mt_db_mg_pipe_init(&pipe, kb);
	for (uint32_t i = 0; i < nkeys; i++) {
		uint32_t klen = mt_db_le32(kb + off);
		struct mt_sl_node *n;
		struct mt_sl_ver *v;

		mt_db_mg_pipe_step(&pipe, &db->sl, i, nkeys);
		/* Key i's hash, from the pipeline's first stage. */
		v = mt_db_read(db, kb + off + 4, klen, pipe.h[i % (2 * MT_DB_MG_AHEAD)], view, &n);
		off += 4 + (size_t)klen;
		if (v != NULL && (mt_sl_ver_seqf(v) & MT_SL_V_TOMB))
			v = NULL;
		if (v != NULL && (mt_sl_ver_seqf(v) & MT_SL_V_TTL)) {
			if (now == 0)
				now = mt_clock_now_ms();
			if (mt_sl_ver_expiry(v) <= now)
				v = NULL;
		}
		if (need + 4 <= out_cap)
			mt_db_put_le32(ob + need, v != NULL ? v->vlen : MANTIS_ABSENT);
		need += 4;
		if (v != NULL) {
			if (need + v->vlen <= out_cap && v->vlen > 0)
				memcpy(ob + need, mt_sl_ver_value(v), v->vlen);
			need += v->vlen;
		}
	}
	mt_sl_stripe_add(&mt_db_stripe(db)->reads, nkeys);
	*out_len = need;
	rc = need <= out_cap ? MANTIS_OK : MANTIS_EBUFSIZE;
out:
	/* Refresh: the bound may rise past this call's registration. */
	if (slot != NULL) {
		mt_db_view_free(&own);
		mt_snapshot_unregister(db, slot, 1);
	}
	mt_db_leave_snap(r, snaph, snap);
	return rc;
}

struct mt_db_sweep_arg {
	struct mt_db *db;
	ck_epoch_record_t *r;
	struct mt_sl_bound b;
	struct mt_sl_prune_stats st;
};

static void mt_db_sweep_node(struct mt_sl_node *n, void *arg)
{
	struct mt_db_sweep_arg *a = arg;

	mt_sl_prune(&a->db->sl, a->r, n, &a->b, &a->db->removed_seq, &a->st);
}

int mantis_db_sweep(uint64_t dbh, uint64_t *reclaimed_out)
{
	struct mt_db_sweep_arg a;
	ck_epoch_section_t sec;
	uint64_t *snaps, aged;
	size_t nsnaps;
	void *obj;
	int rc = mt_handle_acquire(dbh, MT_HANDLE_DB, &obj);

	if (rc != MANTIS_OK)
		return rc;
	memset(&a, 0, sizeof(a));
	a.db = obj;
	a.r = mt_epoch_record();
	if (a.r == NULL) {
		mt_handle_release(dbh);
		return MANTIS_ENOMEM;
	}
	/* Age a published seq by one grace period: every section running
	 * after the barrier began after this read, so reads at or above it. */
	aged = ck_pr_load_64(&a.db->published);
	mt_epoch_barrier();
	mt_snapshot_refresh_min(a.db);
	/* published, then the slots: as in mt_snapshot_refresh_min. */
	(void)ck_pr_load_64(&a.db->published);
	ck_pr_fence_load();
	snaps = mt_snapshot_seqs(a.db, &nsnaps);
	if (nsnaps == SIZE_MAX) {
		aged = 0; /* no memory for the list: skip middle versions */
		nsnaps = 0;
	}
	a.b.aged = aged;
	a.b.snaps = snaps;
	a.b.nsnaps = nsnaps;
	mt_epoch_begin(a.r, &sec);
	a.b.min_seq = mt_snapshot_min_seq(a.db);
	a.b.now_ms = mt_clock_now_ms();
	mt_sl_walk(&a.db->sl, a.r, mt_db_sweep_node, &a);
	mt_db_prune_account(a.db, &a.st);
	mt_slx_resize(&a.db->sl, a.r, mt_db_entries(a.db)); /* maybe shrink */
	mt_epoch_end(a.r, &sec);
	mt_free(snaps);
	mt_handle_release(dbh);
	/* Free what was unlinked once current readers are gone, and what
	 * every other thread deferred meanwhile, parked ones included. */
	mt_epoch_barrier();
	(void)mt_epoch_reclaim();
	if (reclaimed_out != NULL)
		*reclaimed_out = a.st.versions;
	return MANTIS_OK;
}

int mantis_db_stats(uint64_t dbh, mantis_db_stats_t *out)
{
	mantis_db_stats_t s;
	struct mt_db *db;
	void *obj;
	int rc;

	if (out == NULL)
		return MANTIS_EINVAL;
	rc = mt_handle_acquire(dbh, MT_HANDLE_DB, &obj);
	if (rc != MANTIS_OK)
		return rc;
	db = obj;
	memset(&s, 0, sizeof(s));
	for (unsigned i = 0; i < MT_SL_STRIPES; i++) {
		struct mt_db_stripe *sp = &db->stripe[i];

		s.reads += ck_pr_load_64(&sp->reads);
		s.writes += ck_pr_load_64(&sp->writes);
		s.deletes += ck_pr_load_64(&sp->deletes);
		s.entries += ck_pr_load_64(&sp->entries);
		s.bytes += ck_pr_load_64(&sp->bytes);
		s.versions += ck_pr_load_64(&sp->versions);
	}
	/* Sums of signed parts may be transiently negative while writes run. */
	if ((int64_t)s.entries < 0)
		s.entries = 0;
	if ((int64_t)s.bytes < 0)
		s.bytes = 0;
	if ((int64_t)s.versions < 0)
		s.versions = 0;
	s.snapshots = ck_pr_load_64(&db->nsnaps);
	s.seq = ck_pr_load_64(&db->published);
	*out = s;
	mt_handle_release(dbh);
	return MANTIS_OK;
}
