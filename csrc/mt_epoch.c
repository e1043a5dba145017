/*
 * mt_epoch.c - lazy per-thread ck_epoch records, recycled at thread exit,
 * whose deferred frees any thread can reclaim. See mt_epoch.h.
 *
 * RECLAMATION THAT DOES NOT WAIT FOR THE DEFERRING THREAD
 *
 * ck_epoch keeps deferred callbacks on the deferring thread's record, in
 * four buckets by the global epoch at deferral, and only that thread's
 * polls run them. Go parks idle OS threads for as long as it likes, so what
 * a thread deferred before parking stayed allocated until it ran again
 * (defect 3 of issue 8: 40 MiB of deletes held through sweep and close).
 *
 * So each record carries a lock (mt_wait: a CAS, then a futex sleep only if
 * contended), held by its owner around each deferral and its own polls, and
 * by another thread while it takes the record's expired callbacks
 * (mt_epoch_reclaim_record), and the epoch of its owner's last deferral
 * (last_e, read after the push: >= the epoch stamped). While a thread holds
 * the lock of record X no one pushes onto X's buckets, so a reclaimer that
 * reads the global epoch E after taking the lock knows every entry in X was
 * deferred at an epoch <= E. An entry deferred at e is safe once the epoch
 * reached e + 2 (every section active at e ended: ck_epoch's own rule in
 * ck_epoch_poll). So if last_e + 2 <= E every bucket is safe; otherwise
 * buckets (E - 2) mod 4 and (E - 3) mod 4 are (e <= E and e = E - 2 or
 * E - 3 modulo 4 mean e <= E - 2). The reclaimer detaches those, releases
 * the lock and runs them. Nothing of a foreign record is written but its
 * buckets and n_pending (atomics).
 *
 * Reclaimers: mt_epoch_call reclaims one other record, round robin, every
 * MT_EPOCH_POLL_EVERY deferrals of a thread; mantis_db_sweep and the last
 * close of a db (mt_epoch_reclaim) move the epoch two steps (grace periods,
 * and when no section is active a step of their own: advancing from E needs
 * every active record to have observed E, vacuous then) and reclaim every
 * record. The critical section under a record's lock is bounded: a push,
 * or detaching at most four stacks (an exchange each) and, for the owner's
 * poll, ck_epoch's scan of the records; callbacks run after the unlock.
 *
 * FENCE BEFORE THE EPOCH READ (defect 6 of issue 8)
 *
 * A caller unlinks with a plain store and then defers; ck_epoch_call reads
 * the global epoch with no fence before it. Were that read satisfied before
 * the unlinking store became visible (store-load reordering, allowed on
 * every target, x86-64 included), a reader could begin a section in the
 * epoch after the one stamped on the entry, still reach the object, and
 * outlive its grace period. Taking the record's lock is a full barrier on
 * TSO targets (a locked CAS); elsewhere a full fence follows it. Either way
 * every store of the caller precedes the epoch read.
 */
#include "mt_epoch.h"

#include "mantis.h"
#include "mt_alloc.h"
#include "mt_wait.h"

#include <assert.h>
#include <pthread.h>
#include <stddef.h>

/* How many deferrals between polls: a poll scans every record, so this
 * trades scan cost against memory held by pending callbacks. */
#define MT_EPOCH_POLL_EVERY 64u

/* A record with the lock that lets other threads reclaim its callbacks.
 * The ck record comes first: records on the epoch's list are all ours. */
struct mt_epoch_rec {
	ck_epoch_record_t r;
	uint32_t lock;   /* mt_wait lock: the owner's pushes and polls, reclaimers */
	unsigned last_e; /* >= the epoch of the owner's last deferral */
};

ck_epoch_t mt_epoch_global;
__thread ck_epoch_record_t *mt_epoch_tls;
static __thread unsigned int mt_epoch_deferred;
static __thread ck_stack_entry_t *mt_epoch_cursor; /* round-robin reclaim */

static pthread_once_t mt_epoch_once = PTHREAD_ONCE_INIT;
static pthread_key_t mt_epoch_key;

static struct mt_epoch_rec *mt_epoch_rec(ck_epoch_record_t *r)
{
	return (struct mt_epoch_rec *)((char *)r - offsetof(struct mt_epoch_rec, r));
}

/* Takes r's lock and orders every earlier store of the caller before the
 * loads that follow (the epoch read above all). */
static void mt_epoch_lock(ck_epoch_record_t *r)
{
	mt_wait_lock(&mt_epoch_rec(r)->lock);
#if defined(CK_MD_TSO)
	ck_pr_fence_atomic_load(); /* the locked CAS or swap was a full barrier */
#else
	ck_pr_fence_memory();
#endif
}

static void mt_epoch_unlock(ck_epoch_record_t *r)
{
	mt_wait_unlock(&mt_epoch_rec(r)->lock);
}

/* Runs callbacks detached onto a local stack (outside every lock). */
static void mt_epoch_run(ck_stack_entry_t *c)
{
	while (c != NULL) {
		ck_stack_entry_t *next = c->next;
		ck_epoch_entry_t *e =
		        (ck_epoch_entry_t *)((char *)c - offsetof(ck_epoch_entry_t, stack_entry));

		e->function(e);
		c = next;
	}
}

/* Detaches bucket b of r onto *out (r's lock held). */
static void mt_epoch_take(ck_epoch_record_t *r, unsigned b, ck_stack_entry_t **out)
{
	ck_stack_entry_t *c = ck_stack_batch_pop_upmc(&r->pending[b & (CK_EPOCH_LENGTH - 1)]);
	unsigned n = 0;

	while (c != NULL) {
		ck_stack_entry_t *next = c->next;

		c->next = *out;
		*out = c;
		c = next;
		n++;
	}
	if (n != 0)
		ck_pr_sub_uint(&r->n_pending, n);
}

static void mt_epoch_wait_cb(ck_epoch_t *g, ck_epoch_record_t *cr, void *ct)
{
	mt_wait_backoff(ct);
}

/* Waits for a grace period, sleeping (not spinning) once it takes long. */
static void mt_epoch_synchronize(void)
{
	unsigned n = 0;

	assert(!mt_epoch_in_section());
	ck_epoch_synchronize_wait(&mt_epoch_global, mt_epoch_wait_cb, &n);
}

/* Runs every callback r holds, after a grace period (r is the caller's, or
 * its owner is gone). */
static void mt_epoch_flush(ck_epoch_record_t *r)
{
	ck_stack_entry_t *todo = NULL;

	mt_epoch_synchronize();
	mt_epoch_lock(r);
	for (unsigned b = 0; b < CK_EPOCH_LENGTH; b++)
		mt_epoch_take(r, b, &todo);
	mt_epoch_unlock(r);
	mt_epoch_reclaim_acquire();
	mt_epoch_run(todo);
}

static void mt_epoch_retire(ck_epoch_record_t *r)
{
	/* Flush first: unregistering drops whatever is still pending. */
	mt_epoch_flush(r);
	mt_epoch_lock(r);
#ifdef MT_TSAN
	/* The next owner's ck_epoch_recycle (a CAS inside libck, invisible to
	 * TSan) orders this thread's last use of r before its own. */
	__tsan_release(r);
#endif
	ck_epoch_unregister(r);
	mt_epoch_unlock(r);
}

static void mt_epoch_thread_exit(void *arg)
{
	ck_epoch_record_t *r = arg;

	mt_epoch_tls = NULL;
	if (r != NULL)
		mt_epoch_retire(r);
}

static void mt_epoch_setup(void)
{
	ck_epoch_init(&mt_epoch_global);
	/* A key that cannot be created leaves records unrecycled at thread
	 * exit (still reachable from the epoch, so not leaked): degrade. */
	if (pthread_key_create(&mt_epoch_key, mt_epoch_thread_exit) != 0)
		mt_epoch_key = (pthread_key_t)-1;
}

ck_epoch_record_t *mt_epoch_record_slow(void)
{
	ck_epoch_record_t *r;

	pthread_once(&mt_epoch_once, mt_epoch_setup);
	r = ck_epoch_recycle(&mt_epoch_global, NULL);
#ifdef MT_TSAN
	if (r != NULL)
		__tsan_acquire(r); /* pairs with the release in mt_epoch_retire */
#endif
	if (r == NULL) {
		/* Records are never freed: the epoch's record list keeps them
		 * and ck_epoch_recycle reuses them. */
		struct mt_epoch_rec *er = mt_malloc_aligned(sizeof(*er), CK_MD_CACHELINE);

		if (er == NULL)
			return NULL;
		er->lock = 0;
		er->last_e = 0;
		r = &er->r;
#ifdef MT_TSAN
		/* libck's publishing store is not instrumented: pairs with the
		 * acquire of a reclaimer that finds r on the record list. */
		__tsan_release(r);
#endif
		ck_epoch_register(&mt_epoch_global, r, NULL);
	}
	if (mt_epoch_key != (pthread_key_t)-1)
		(void)pthread_setspecific(mt_epoch_key, r);
	mt_epoch_tls = r;
	return r;
}

/*
 * Takes the expired callbacks of record x (another thread's, or a free
 * one) and runs them; gives up at once if x's lock is held (its owner is
 * deferring or polling: it reclaims itself). Returns how many ran.
 */
static unsigned mt_epoch_reclaim_record(ck_epoch_record_t *x)
{
	ck_stack_entry_t *todo = NULL, *c;
	unsigned e, n = 0;

#ifdef MT_TSAN
	__tsan_acquire(x); /* pairs with the release before ck_epoch_register */
#endif
	if (!mt_wait_trylock(&mt_epoch_rec(x)->lock))
		return 0;
	/* After the lock: every entry of x was deferred at an epoch <= e. */
	ck_pr_fence_load();
	e = ck_epoch_value(&mt_epoch_global);
	if ((int)(e - ck_pr_load_uint(&mt_epoch_rec(x)->last_e)) >= 2) {
		for (unsigned b = 0; b < CK_EPOCH_LENGTH; b++)
			mt_epoch_take(x, b, &todo);
	} else {
		mt_epoch_take(x, e - 2, &todo);
		mt_epoch_take(x, e - 3, &todo);
	}
	mt_epoch_unlock(x);
	for (c = todo; c != NULL; c = c->next)
		n++;
	mt_epoch_reclaim_acquire();
	mt_epoch_run(todo);
	return n;
}

/* The record after cursor on the epoch's list (records are never removed),
 * wrapping to the first. */
static ck_stack_entry_t *mt_epoch_next_rec(ck_stack_entry_t *cursor)
{
	ck_stack_entry_t *n = cursor != NULL ? ck_pr_load_ptr(&cursor->next) : NULL;

	return n != NULL ? n : ck_pr_load_ptr(&mt_epoch_global.records.head);
}

void mt_epoch_call(ck_epoch_record_t *r, ck_epoch_entry_t *e, ck_epoch_cb_t *cb)
{
	ck_stack_t done = CK_STACK_INITIALIZER;
	ck_stack_entry_t *other;
	bool polled = false;

	assert(r == mt_epoch_tls);
	mt_epoch_lock(r);
	ck_epoch_call(r, e, cb);
	ck_pr_store_uint(&mt_epoch_rec(r)->last_e, ck_epoch_value(&mt_epoch_global));
	if (++mt_epoch_deferred % MT_EPOCH_POLL_EVERY == 0)
		polled = ck_epoch_poll_deferred(r, &done);
	mt_epoch_unlock(r);
	if (!polled)
		return;
	mt_epoch_reclaim_acquire();
	mt_epoch_run(ck_stack_batch_pop_npsc(&done));
	/* And one other record, so that a parked thread's frees move on. */
	other = mt_epoch_cursor = mt_epoch_next_rec(mt_epoch_cursor);
	if (other != NULL && other != &r->record_next)
		(void)mt_epoch_reclaim_record(
		        (ck_epoch_record_t *)((char *)other -
		                              offsetof(ck_epoch_record_t, record_next)));
}

void mt_epoch_barrier(void)
{
	ck_epoch_record_t *r = mt_epoch_tls;

	if (r != NULL)
		mt_epoch_flush(r);
}

uint64_t mt_epoch_reclaim(void)
{
	ck_stack_entry_t *c;
	uint64_t n = 0;

	if (ck_pr_load_ptr(&mt_epoch_global.records.head) == NULL)
		return 0;
	/* Two epochs past every entry deferred before this call. */
	for (int i = 0; i < 2; i++) {
		unsigned e = ck_epoch_value(&mt_epoch_global);

		mt_epoch_synchronize();
		/* It returns without a step when no section was active at its
		 * scan; then the step is ours to take (see the top comment).
		 * Fails if another thread stepped meanwhile. */
		(void)ck_pr_cas_uint(&mt_epoch_global.epoch, e, e + 1);
	}
	for (c = ck_pr_load_ptr(&mt_epoch_global.records.head); c != NULL;
	     c = ck_pr_load_ptr(&c->next))
		n += mt_epoch_reclaim_record((
		        ck_epoch_record_t *)((char *)c - offsetof(ck_epoch_record_t, record_next)));
	return n;
}

void mantis_thread_release(void)
{
	ck_epoch_record_t *r = mt_epoch_tls;

	if (r == NULL)
		return;
	mt_epoch_tls = NULL;
	if (mt_epoch_key != (pthread_key_t)-1)
		(void)pthread_setspecific(mt_epoch_key, NULL);
	mt_epoch_retire(r);
}
