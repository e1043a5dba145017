/*
 * mt_clock.h - the monotonic millisecond clock TTLs are measured with, and
 * its test hook. Module prefix mt_clock_.
 *
 * One clock for the storage engine (TTL expiry at reads, prunes, sweeps).
 * Tests move it forward instead of sleeping (mt_clock_advance_ms). The
 * cache keeps its own nanosecond copy in mt_cache.c for now (its owner may
 * switch it over).
 */
#ifndef MT_CLOCK_H
#define MT_CLOCK_H

#include <stdint.h>

/* Milliseconds on the monotonic clock, plus every advance; never 0 (callers
 * use 0 for "not read yet"). */
uint64_t mt_clock_now_ms(void);

/* Test hook: moves the clock forward by ms, process-wide. */
void mt_clock_advance_ms(uint64_t ms);

/* The absolute expiry of a TTL of ttl_ms from now (0: no TTL), saturating. */
uint64_t mt_clock_expiry(uint64_t ttl_ms);

#endif /* MT_CLOCK_H */
