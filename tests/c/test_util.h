/*
 * test_util.h - helpers shared by the Criterion tests.
 */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <valgrind/valgrind.h>

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

/* Whether copying values of MANTIS_VALUE_MAX (512 MiB) is too slow here:
 * under valgrind (a minute per test) and ThreadSanitizer (minutes, and
 * gigabytes of shadow memory). Such tests skip themselves there; the release
 * and ASan+UBSan runs still check them. */
static inline int test_huge_values_too_slow(void)
{
#if defined(__SANITIZE_THREAD__)
	return 1;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
	return 1;
#endif
#endif
	return RUNNING_ON_VALGRIND;
}

#endif /* TEST_UTIL_H */
