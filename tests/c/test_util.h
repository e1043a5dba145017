/*
 * test_util.h - helpers shared by the Criterion tests.
 */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <stdint.h>
#include <stdlib.h>

/* The divisor for iteration counts: sanitizer and valgrind runs set
 * MANTIS_TEST_SCALE so that the whole suite stays fast there. */
static inline uint64_t test_scaled(uint64_t n)
{
	const char *s = getenv("MANTIS_TEST_SCALE");
	uint64_t div = s != NULL ? strtoull(s, NULL, 10) : 1;

	if (div == 0)
		div = 1;
	n /= div;
	return n == 0 ? 1 : n;
}

#endif /* TEST_UTIL_H */
