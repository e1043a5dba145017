/*
 * mt_alloc.c - allocation through mimalloc, with a fault injector for tests.
 *
 * The fault injector costs one relaxed load of a global on the hot path when
 * disarmed; the countdown itself only runs while a test has armed it.
 */
#include "mt_alloc.h"

#include "mt_pr.h"

#include <stdlib.h>

#ifndef MT_LIBC_MALLOC
#include <mimalloc.h>
#endif

/* 0: disarmed. Otherwise the allocations left before failing starts. */
static uint64_t mt_alloc_fault;
static uint64_t mt_alloc_total;

static int mt_alloc_should_fail(void)
{
	uint64_t left;

	if (ck_pr_load_64(&mt_alloc_fault) == 0)
		return 0;
	/* Armed: count down; stay at 1 once reached so every later call fails. */
	for (;;) {
		left = ck_pr_load_64(&mt_alloc_fault);
		if (left == 0)
			return 0;
		if (left == 1)
			return 1;
		if (ck_pr_cas_64(&mt_alloc_fault, left, left - 1))
			return 0;
	}
}

void mt_alloc_fail_after(uint64_t n)
{
	ck_pr_store_64(&mt_alloc_fault, n);
}

uint64_t mt_alloc_count(void)
{
	return ck_pr_load_64(&mt_alloc_total);
}

#ifdef MT_ALLOC_COUNT
#define MT_ALLOC_TICK() ck_pr_inc_64(&mt_alloc_total)
#else
#define MT_ALLOC_TICK() ((void)0)
#endif

void *mt_malloc(size_t size)
{
	if (mt_alloc_should_fail())
		return NULL;
	MT_ALLOC_TICK();
#ifdef MT_LIBC_MALLOC
	return malloc(size);
#else
	return mi_malloc(size);
#endif
}

void *mt_calloc(size_t n, size_t size)
{
	if (mt_alloc_should_fail())
		return NULL;
	MT_ALLOC_TICK();
#ifdef MT_LIBC_MALLOC
	return calloc(n, size);
#else
	return mi_calloc(n, size);
#endif
}

void *mt_malloc_aligned(size_t size, size_t align)
{
	if (mt_alloc_should_fail())
		return NULL;
	MT_ALLOC_TICK();
#ifdef MT_LIBC_MALLOC
	void *p = NULL;
	if (align < sizeof(void *))
		align = sizeof(void *);
	return posix_memalign(&p, align, size) == 0 ? p : NULL;
#else
	return mi_malloc_aligned(size, align);
#endif
}

void mt_calloc_prefault(void *p, size_t len)
{
	/* Volatile: the compiler knows calloc'd bytes are zero and would drop
	 * a plain store of zero. */
	volatile unsigned char *b = p;

	for (size_t i = 0; i < len; i += 4096)
		b[i] = 0;
}

void mt_free(void *p)
{
#ifdef MT_LIBC_MALLOC
	free(p);
#else
	mi_free(p);
#endif
}
