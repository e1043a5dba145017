/*
 * mt_epoch.c - lazy per-thread ck_epoch records, recycled at thread exit.
 * See mt_epoch.h for the protocol.
 */
#include "mt_epoch.h"

#include "mantis.h"
#include "mt_alloc.h"

#include <pthread.h>
#include <stddef.h>

/* How many deferrals between polls: a poll scans every record, so this
 * trades scan cost against memory held by pending callbacks. */
#define MT_EPOCH_POLL_EVERY 64u

ck_epoch_t mt_epoch_global;
__thread ck_epoch_record_t *mt_epoch_tls;
static __thread unsigned int mt_epoch_deferred;

static pthread_once_t mt_epoch_once = PTHREAD_ONCE_INIT;
static pthread_key_t mt_epoch_key;

static void mt_epoch_retire(ck_epoch_record_t *r)
{
	/* Flush first: unregistering drops whatever is still pending. */
	ck_epoch_barrier(r);
#ifdef MT_TSAN
	/* The next owner's ck_epoch_recycle (a CAS inside libck, invisible to
	 * TSan) orders this thread's last use of r before its own. */
	__tsan_release(r);
#endif
	ck_epoch_unregister(r);
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
		r = mt_malloc_aligned(sizeof(*r), CK_MD_CACHELINE);
		if (r == NULL)
			return NULL;
		ck_epoch_register(&mt_epoch_global, r, NULL);
	}
	if (mt_epoch_key != (pthread_key_t)-1)
		(void)pthread_setspecific(mt_epoch_key, r);
	mt_epoch_tls = r;
	return r;
}

void mt_epoch_call(ck_epoch_record_t *r, ck_epoch_entry_t *e, ck_epoch_cb_t *cb)
{
	ck_epoch_call(r, e, cb);
	if (++mt_epoch_deferred % MT_EPOCH_POLL_EVERY == 0)
		(void)ck_epoch_poll(r);
}

void mt_epoch_barrier(void)
{
	ck_epoch_record_t *r = mt_epoch_tls;

	if (r != NULL)
		ck_epoch_barrier(r);
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
