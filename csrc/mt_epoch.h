/*
 * mt_epoch.h - one epoch-reclamation domain for the whole library, with
 * per-thread records that any thread gets on its first call.
 *
 * Readers bracket every access to shared nodes with mt_epoch_begin/_end.
 * Writers that unlink a node hand it to mt_epoch_call; its callback runs
 * (and frees it) only after every section that could have seen it ended.
 *
 * Hosts such as Go call in from OS threads that come and go, so records are
 * registered lazily and, when a thread exits (pthread key destructor) or
 * calls mantis_thread_release, first flushed with ck_epoch_barrier (so that
 * no deferred free is lost: ck_epoch_unregister drops pending callbacks) and
 * then unregistered for ck_epoch_recycle to hand to the next new thread.
 * Records are therefore bounded by the peak number of threads, never leaked.
 *
 * Every reclamation callback must call mt_epoch_reclaim_acquire() first: it
 * tells ThreadSanitizer about the grace period, which it cannot see inside
 * libck (a no-op in other builds).
 */
#ifndef MT_EPOCH_H
#define MT_EPOCH_H

#include "mt_pr.h"

#include <ck_epoch.h>
#include <stdint.h>

#ifdef MT_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#endif

extern ck_epoch_t mt_epoch_global;
extern __thread ck_epoch_record_t *mt_epoch_tls;

/* Slow path of mt_epoch_record: register or recycle a record. */
ck_epoch_record_t *mt_epoch_record_slow(void);

/* Returns the calling thread's record, creating it on first use, or NULL if
 * that allocation failed (callers return MANTIS_ENOMEM). */
static inline ck_epoch_record_t *mt_epoch_record(void)
{
	ck_epoch_record_t *r = mt_epoch_tls;

	return r != NULL ? r : mt_epoch_record_slow();
}

/* Is the calling thread inside one of its sections? (For assertions: code
 * that may wait for a grace period must not run inside one.) */
static inline int mt_epoch_in_section(void)
{
	ck_epoch_record_t *r = mt_epoch_tls;

	return r != NULL && ck_pr_load_uint(&r->active) != 0;
}

static inline void mt_epoch_begin(ck_epoch_record_t *r, ck_epoch_section_t *s)
{
	ck_epoch_begin(r, s);
}

static inline void mt_epoch_end(ck_epoch_record_t *r, ck_epoch_section_t *s)
{
#ifdef MT_TSAN
	/* Everything this section read happens-before any later reclamation. */
	__tsan_release(&mt_epoch_global);
#endif
	ck_epoch_end(r, s);
}

static inline void mt_epoch_reclaim_acquire(void)
{
#ifdef MT_TSAN
	__tsan_acquire(&mt_epoch_global);
#endif
}

/* Defers cb(e) until no section that began before this call is active. Must
 * be called outside a section or inside one of r's; r must be the calling
 * thread's record. Every store the caller made before (the unlink above
 * all) is ordered before the epoch is read. Polls for expired grace periods
 * every few calls, its own record's and one other thread's, so that
 * deferred memory stays bounded even when its deferring thread parks.
 * cb may run on any thread, inside that thread's section. */
void mt_epoch_call(ck_epoch_record_t *r, ck_epoch_entry_t *e, ck_epoch_cb_t *cb);

/* Runs every callback the calling thread has deferred, waiting for the
 * grace periods they need (sleeping, see mt_wait). Must not be called
 * inside a section. */
void mt_epoch_barrier(void);

/* Reclaims what every thread deferred before this call, its own and parked
 * threads' alike (callbacks whose owner holds its record's lock at that
 * instant are left to it): two grace periods, then every record's expired
 * callbacks. Returns how many ran. Must not be called inside a section. */
uint64_t mt_epoch_reclaim(void);

#endif /* MT_EPOCH_H */
