/*
 * test_db_defects.c - one regression test per defect of issue 8 ("Storage
 * core v2"), each of which failed before its fix (the commit that fixed it
 * says how).
 */
#include "mantis.h"
#include "mt_alloc.h"
#include "mt_epoch.h"
#include "mt_handle.h"
#include "mt_skiplist.h"
#include "test_db_util.h"
#include "test_util.h"
#include "test_watchdog.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

/* ------------------------------------------------------------ 1: releases inside a section */

struct td1_arg {
	uint64_t dba;
	uint64_t other; /* the handle the reader passes as its snapshot */
	uint64_t stop;
	uint64_t calls;
};

static void *td1_reader(void *p)
{
	struct td1_arg *a = p;
	char buf[16];

	while (!ck_pr_load_64(&a->stop)) {
		size_t vlen;
		uint64_t h = ck_pr_load_64(&a->other);
		unsigned char keys[8] = {1, 0, 0, 0, 'k'};
		size_t olen;
		int rc;

		if (h == 0)
			continue;
		rc = mantis_db_get(a->dba, h, "k", 1, buf, sizeof(buf), &vlen, NULL);
		cr_assert(rc == MANTIS_EINVAL || rc == MANTIS_CLOSED || rc == MANTIS_EBADHANDLE,
		          "get: %s", mantis_strerror(rc));
		rc = mantis_db_multiget(a->dba, h, keys, 5, 1, buf, sizeof(buf), &olen);
		cr_assert(rc == MANTIS_EINVAL || rc == MANTIS_CLOSED || rc == MANTIS_EBADHANDLE,
		          "multiget: %s", mantis_strerror(rc));
		ck_pr_inc_64(&a->calls);
	}
	return NULL;
}

/*
 * A reader passes another db's snapshot (or an iterator handle) to get and
 * multiget on dbA while that handle and its db are closed: the reader's
 * release can be the last reference, whose destroy waits for a grace period.
 * Inside the reader's own epoch section that wait never ends.
 */
static void td1_run(int use_iter)
{
	struct td1_arg a = {0};
	struct test_watchdog w;
	pthread_t t;
	uint64_t rounds = test_scaled(20000);

	a.dba = tdb_open();
	tdb_put(a.dba, "k", "v");
	test_watchdog_start(&w, "get/multiget with another db's handle", 60);
	cr_assert_eq(pthread_create(&t, NULL, td1_reader, &a), 0);
	for (uint64_t i = 0; i < rounds; i++) {
		uint64_t dbb = tdb_open(), h;

		if (use_iter)
			cr_assert_eq(mantis_iter_open(dbb, 0, NULL, 0, &h), MANTIS_OK);
		else
			cr_assert_eq(mantis_snapshot_open(dbb, &h, NULL), MANTIS_OK);
		ck_pr_store_64(&a.other, h);
		/* Give the reader a moment with the handle held. */
		for (int k = 0; k < 4; k++)
			sched_yield();
		cr_assert_eq(mantis_db_close(dbb), MANTIS_OK);
		if (use_iter)
			cr_assert_eq(mantis_iter_close(h), MANTIS_OK);
		else
			cr_assert_eq(mantis_snapshot_close(h), MANTIS_OK);
	}
	ck_pr_store_64(&a.stop, 1);
	cr_assert_eq(pthread_join(t, NULL), 0);
	test_watchdog_stop(&w);
	cr_assert_gt(a.calls, 0);
	cr_assert_eq(mantis_db_close(a.dba), MANTIS_OK);
}

Test(db_defects, d1_foreign_snapshot_release_outside_section, .timeout = 300)
{
	td1_run(0);
}

Test(db_defects, d1_wrong_kind_handle_release_outside_section, .timeout = 300)
{
	td1_run(1);
}
