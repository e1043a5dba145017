/*
 * test_epoch.c - per-thread epoch records: created on first use, recycled
 * when threads exit, deferred frees flushed rather than dropped.
 */
#include "mt_alloc.h"
#include "mt_epoch.h"
#include "mantis.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <pthread.h>

static unsigned te_records(void)
{
	ck_stack_entry_t *cursor;
	unsigned n = 0;

	CK_STACK_FOREACH(&mt_epoch_global.records, cursor)
	n++;
	return n;
}

struct te_node {
	ck_epoch_entry_t epoch;
	uint64_t *freed;
};

CK_EPOCH_CONTAINER(struct te_node, epoch, te_node_container)

static void te_free(ck_epoch_entry_t *e)
{
	struct te_node *n = te_node_container(e);

	mt_epoch_reclaim_acquire();
	ck_pr_inc_64(n->freed);
	mt_free(n);
}

static uint64_t te_freed;

static void *te_thread(void *arg)
{
	ck_epoch_record_t *r = mt_epoch_record();
	ck_epoch_section_t s;

	cr_assert_not_null(r);
	mt_epoch_begin(r, &s);
	mt_epoch_end(r, &s);
	/* Defer a few frees and exit without flushing: the exit hook must
	 * run them (ck_epoch_unregister alone would drop them). */
	for (int i = 0; i < 3; i++) {
		struct te_node *n = mt_malloc(sizeof(*n));
		cr_assert_not_null(n);
		n->freed = &te_freed;
		mt_epoch_call(r, &n->epoch, te_free);
	}
	return arg;
}

Test(epoch, records_recycled_and_frees_flushed_at_thread_exit)
{
	uint64_t threads = test_scaled(400);
	unsigned after_first;
	pthread_t t;

	pthread_create(&t, NULL, te_thread, NULL);
	pthread_join(t, NULL);
	after_first = te_records();
	for (uint64_t i = 0; i < threads; i++) {
		pthread_create(&t, NULL, te_thread, NULL);
		pthread_join(t, NULL);
	}
	/* One thread at a time: every new thread recycles the same record. */
	cr_assert_eq(te_records(), after_first);
	cr_assert_eq(ck_pr_load_64(&te_freed), 3 * (threads + 1));
}

Test(epoch, thread_release_flushes_and_recreates)
{
	uint64_t freed = 0;
	ck_epoch_record_t *r = mt_epoch_record();
	struct te_node *n = mt_malloc(sizeof(*n));

	cr_assert_not_null(r);
	cr_assert_not_null(n);
	n->freed = &freed;
	mt_epoch_call(r, &n->epoch, te_free);
	mantis_thread_release();
	cr_assert_eq(freed, 1);
	cr_assert_not_null(mt_epoch_record());
	mantis_thread_release();
	mantis_thread_release(); /* harmless without a record */
}
