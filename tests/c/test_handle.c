/*
 * test_handle.c - the FFI handle table: issue, acquire, close, stale and
 * forged handles, close concurrent with users.
 */
#include "mantis.h"
#include "mt_alloc.h"
#include "mt_handle.h"
#include "mt_pr.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <pthread.h>

struct th_obj {
	uint64_t magic;
	uint64_t *destroyed;
};

static void th_destroy(void *p)
{
	struct th_obj *o = p;

	cr_assert_eq(o->magic, 0xfeedu, "destroyed twice or corrupt");
	o->magic = 0;
	ck_pr_inc_64(o->destroyed);
	free(o);
}

static struct th_obj *th_new(uint64_t *destroyed)
{
	struct th_obj *o = malloc(sizeof(*o));

	cr_assert_not_null(o);
	o->magic = 0xfeedu;
	o->destroyed = destroyed;
	return o;
}

Test(handle, issue_acquire_close)
{
	uint64_t destroyed = 0, h;
	struct th_obj *o = th_new(&destroyed);
	void *got = NULL;

	cr_assert_eq(mt_handle_alloc(MT_HANDLE_DB, o, th_destroy, &h), MANTIS_OK);
	cr_assert_neq(h, 0);
	cr_assert_eq(mt_handle_acquire(h, MT_HANDLE_DB, &got), MANTIS_OK);
	cr_assert_eq(got, o);
	mt_handle_release(h);
	cr_assert_eq(mt_handle_close(h, MT_HANDLE_DB), MANTIS_OK);
	cr_assert_eq(destroyed, 1);
	/* Stale: closed once, and a second close. */
	cr_assert_eq(mt_handle_acquire(h, MT_HANDLE_DB, &got), MANTIS_CLOSED);
	cr_assert_eq(mt_handle_close(h, MT_HANDLE_DB), MANTIS_CLOSED);
}

Test(handle, wrong_kind_and_forged)
{
	uint64_t destroyed = 0, h;
	void *got = NULL;

	cr_assert_eq(mt_handle_alloc(MT_HANDLE_CACHE, th_new(&destroyed), th_destroy, &h),
	             MANTIS_OK);
	cr_assert_eq(mt_handle_acquire(h, MT_HANDLE_DB, &got), MANTIS_EBADHANDLE);
	cr_assert_eq(mt_handle_close(h, MT_HANDLE_ITER), MANTIS_EBADHANDLE);
	cr_assert_eq(mt_handle_acquire(0, MT_HANDLE_CACHE, &got), MANTIS_EBADHANDLE);
	/* A future generation of a live slot, an index never issued, index 0. */
	cr_assert_eq(mt_handle_acquire(h + (5ull << 32), MT_HANDLE_CACHE, &got), MANTIS_EBADHANDLE);
	cr_assert_eq(mt_handle_acquire((1ull << 32) | 0xfffffff0u, MT_HANDLE_CACHE, &got),
	             MANTIS_EBADHANDLE);
	cr_assert_eq(mt_handle_acquire(1ull << 32, MT_HANDLE_CACHE, &got), MANTIS_EBADHANDLE);
	cr_assert_eq(mt_handle_acquire(UINT64_MAX, MT_HANDLE_CACHE, &got), MANTIS_EBADHANDLE);
	cr_assert_eq(destroyed, 0);
	cr_assert_eq(mt_handle_close(h, MT_HANDLE_CACHE), MANTIS_OK);
	cr_assert_eq(destroyed, 1);
}

Test(handle, close_waits_for_last_user)
{
	uint64_t destroyed = 0, h;
	void *got = NULL;

	cr_assert_eq(mt_handle_alloc(MT_HANDLE_ITER, th_new(&destroyed), th_destroy, &h),
	             MANTIS_OK);
	cr_assert_eq(mt_handle_acquire(h, MT_HANDLE_ITER, &got), MANTIS_OK);
	cr_assert_eq(mt_handle_close(h, MT_HANDLE_ITER), MANTIS_OK);
	/* Still in use: not destroyed, but no new user gets in. */
	cr_assert_eq(destroyed, 0);
	cr_assert_eq(((struct th_obj *)got)->magic, 0xfeedu);
	cr_assert_eq(mt_handle_acquire(h, MT_HANDLE_ITER, &got), MANTIS_CLOSED);
	mt_handle_release(h);
	cr_assert_eq(destroyed, 1);
}

Test(handle, slot_reuse_keeps_old_handles_stale)
{
	uint64_t destroyed = 0, first, h;
	void *got = NULL;

	cr_assert_eq(mt_handle_alloc(MT_HANDLE_DB, th_new(&destroyed), th_destroy, &first),
	             MANTIS_OK);
	cr_assert_eq(mt_handle_close(first, MT_HANDLE_DB), MANTIS_OK);
	/* The freed slot is reused (LIFO free list) with a new generation. */
	cr_assert_eq(mt_handle_alloc(MT_HANDLE_DB, th_new(&destroyed), th_destroy, &h), MANTIS_OK);
	cr_assert_eq((uint32_t)h, (uint32_t)first);
	cr_assert_neq(h, first);
	cr_assert_eq(mt_handle_acquire(first, MT_HANDLE_DB, &got), MANTIS_CLOSED);
	cr_assert_eq(mt_handle_close(first, MT_HANDLE_DB), MANTIS_CLOSED);
	cr_assert_eq(mt_handle_close(h, MT_HANDLE_DB), MANTIS_OK);
	cr_assert_eq(destroyed, 2);
}

Test(handle, many_handles_grow_the_table)
{
	enum { N = 10000 };
	static uint64_t hs[N];
	uint64_t destroyed = 0, before = mt_handle_open_count();

	for (int i = 0; i < N; i++)
		cr_assert_eq(
		        mt_handle_alloc(MT_HANDLE_SNAPSHOT, th_new(&destroyed), th_destroy, &hs[i]),
		        MANTIS_OK);
	cr_assert_eq(mt_handle_open_count(), before + N);
	for (int i = 0; i < N; i++) {
		void *got;
		cr_assert_eq(mt_handle_acquire(hs[i], MT_HANDLE_SNAPSHOT, &got), MANTIS_OK);
		mt_handle_release(hs[i]);
		cr_assert_eq(mt_handle_close(hs[i], MT_HANDLE_SNAPSHOT), MANTIS_OK);
	}
	cr_assert_eq(destroyed, N);
	cr_assert_eq(mt_handle_open_count(), before);
}

Test(handle, alloc_failure)
{
	uint64_t destroyed = 0, h = 0;
	struct th_obj *o = th_new(&destroyed);
	uint64_t n;
	int rc;

	/* The table may already have room; then no allocation is needed and
	 * the first try succeeds. Either way a failure leaves o the caller's. */
	for (n = 1;; n++) {
		mt_alloc_fail_after(n);
		rc = mt_handle_alloc(MT_HANDLE_DB, o, th_destroy, &h);
		mt_alloc_fail_after(0);
		if (rc == MANTIS_OK)
			break;
		cr_assert_eq(rc, MANTIS_ENOMEM);
		cr_assert_eq(destroyed, 0);
	}
	cr_assert_eq(mt_handle_close(h, MT_HANDLE_DB), MANTIS_OK);
	cr_assert_eq(destroyed, 1);
}

/* Several threads acquire and release one handle while another closes it:
 * every acquire either fails with MANTIS_CLOSED or sees a live object, and
 * the object is destroyed exactly once. */
struct th_race {
	uint64_t h;
	uint64_t ok, closed;
	int stop;
};

static void *th_user(void *arg)
{
	struct th_race *r = arg;
	uint64_t ok = 0, closed = 0;

	for (;;) {
		void *got;
		int rc = mt_handle_acquire(r->h, MT_HANDLE_DB, &got);
		if (rc == MANTIS_CLOSED) {
			closed++;
			break;
		}
		cr_assert_eq(rc, MANTIS_OK);
		cr_assert_eq(((struct th_obj *)got)->magic, 0xfeedu);
		mt_handle_release(r->h);
		ok++;
	}
	ck_pr_add_64(&r->ok, ok);
	ck_pr_add_64(&r->closed, closed);
	return NULL;
}

Test(handle, close_concurrent_with_users)
{
	uint64_t rounds = test_scaled(200);

	for (uint64_t round = 0; round < rounds; round++) {
		uint64_t destroyed = 0;
		struct th_race r = {0};
		pthread_t t[3];

		cr_assert_eq(mt_handle_alloc(MT_HANDLE_DB, th_new(&destroyed), th_destroy, &r.h),
		             MANTIS_OK);
		for (int i = 0; i < 3; i++)
			pthread_create(&t[i], NULL, th_user, &r);
		for (volatile int spin = 0; spin < 2000; spin++)
			;
		cr_assert_eq(mt_handle_close(r.h, MT_HANDLE_DB), MANTIS_OK);
		for (int i = 0; i < 3; i++)
			pthread_join(t[i], NULL);
		cr_assert_eq(destroyed, 1);
		cr_assert_eq(r.closed, 3);
	}
}

Test(error, strerror_covers_every_code)
{
	const int codes[] = {MANTIS_OK,        MANTIS_NOTFOUND, MANTIS_EINVAL,     MANTIS_EKEY,
	                     MANTIS_ETOOLARGE, MANTIS_ENOMEM,   MANTIS_EBADHANDLE, MANTIS_CLOSED,
	                     MANTIS_CONFLICT,  MANTIS_EBUFSIZE, MANTIS_DONE};
	const char *unknown = mantis_strerror(12345);

	cr_assert_str_eq(unknown, "unknown error code");
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		cr_assert_not_null(mantis_strerror(codes[i]));
		cr_assert_str_neq(mantis_strerror(codes[i]), unknown, "code %d", codes[i]);
		if (codes[i] != MANTIS_OK)
			cr_assert(codes[i] <= -30900 && codes[i] >= -30999);
	}
}

Test(alloc, fail_after_counts_down)
{
	void *a, *b, *c;

	mt_alloc_fail_after(3);
	a = mt_malloc(8);
	b = mt_calloc(1, 8);
	c = mt_malloc_aligned(64, 64);
	mt_alloc_fail_after(0);
	cr_assert_not_null(a);
	cr_assert_not_null(b);
	cr_assert_null(c, "the third allocation must fail");
	mt_free(a);
	mt_free(b);
	mt_free(NULL);
	c = mt_malloc_aligned(64, 64);
	cr_assert_not_null(c);
	cr_assert_eq((uintptr_t)c % 64, 0);
	mt_free(c);
}
