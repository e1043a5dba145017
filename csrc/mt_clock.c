/*
 * mt_clock.c - the storage engine's TTL clock (see mt_clock.h): the
 * monotonic clock in milliseconds plus a process-wide offset that tests
 * advance. The offset is read with an atomic load on every call: a test
 * that advances it from one thread is seen by the next read on any other.
 */
#include "mt_clock.h"

#include "mt_pr.h"

#include <time.h>

static uint64_t mt_clock_offset;

uint64_t mt_clock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* +1: never 0, which callers use for "not read yet". */
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u + 1u +
	       ck_pr_load_64(&mt_clock_offset);
}

void mt_clock_advance_ms(uint64_t ms)
{
	ck_pr_add_64(&mt_clock_offset, ms);
}

uint64_t mt_clock_expiry(uint64_t ttl_ms)
{
	uint64_t now;

	if (ttl_ms == 0)
		return 0;
	now = mt_clock_now_ms();
	return ttl_ms > UINT64_MAX - now ? UINT64_MAX : now + ttl_ms;
}
