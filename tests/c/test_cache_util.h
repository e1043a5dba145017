/*
 * test_cache_util.h - helpers for the cache's tests (test_cache_*.c).
 */
#ifndef TEST_CACHE_UTIL_H
#define TEST_CACHE_UTIL_H

#include "mantis.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static inline uint64_t tc_open(uint64_t capacity)
{
	mantis_cache_options_t o = {.capacity = capacity};
	uint64_t h = 0;

	cr_assert_eq(mantis_cache_open(&o, &h), MANTIS_OK);
	cr_assert_neq(h, 0);
	return h;
}

static inline void tc_close(uint64_t h)
{
	cr_assert_eq(mantis_cache_close(h), MANTIS_OK);
}

/* Puts string key -> string value; returns admitted. */
static inline int tc_put(uint64_t h, const char *k, const char *v, uint64_t cost, uint64_t ttl_ms,
                         uint64_t version)
{
	int admitted = -1;

	cr_assert_eq(
	        mantis_cache_put(h, k, strlen(k), v, strlen(v), cost, ttl_ms, version, &admitted),
	        MANTIS_OK, "put %s", k);
	cr_assert(admitted == 0 || admitted == 1);
	return admitted;
}

/* Gets string key into buf (NUL-terminated); returns the call's code. */
static inline int tc_get(uint64_t h, const char *k, char *buf, size_t cap, uint64_t *version)
{
	size_t vlen = 0;
	int rc = mantis_cache_get(h, k, strlen(k), buf, cap - 1, &vlen, version);

	if (rc == MANTIS_OK)
		buf[vlen] = '\0';
	return rc;
}

static inline mantis_cache_stats_t tc_stats(uint64_t h)
{
	mantis_cache_stats_t s;

	cr_assert_eq(mantis_cache_stats(h, &s), MANTIS_OK);
	return s;
}

/* A fixed-width binary key for index i (8 bytes, NUL bytes included). */
static inline void tc_key8(unsigned char out[8], uint64_t i)
{
	memcpy(out, &i, 8);
}

/* Puts the 8-byte key of i with cost 1 and an 8-byte value holding v. */
static inline int tc_put8(uint64_t h, uint64_t i, uint64_t v, uint64_t version)
{
	unsigned char k[8];
	int admitted = -1;

	tc_key8(k, i);
	cr_assert_eq(mantis_cache_put(h, k, 8, &v, 8, 1, 0, version, &admitted), MANTIS_OK);
	return admitted;
}

static inline int tc_get8(uint64_t h, uint64_t i, uint64_t *v)
{
	unsigned char k[8];
	size_t vlen = 0;
	uint64_t got = 0;
	int rc;

	tc_key8(k, i);
	rc = mantis_cache_get(h, k, 8, &got, sizeof(got), &vlen, NULL);
	if (rc == MANTIS_OK) {
		cr_assert_eq(vlen, 8);
		if (v != NULL)
			*v = got;
	}
	return rc;
}

#endif /* TEST_CACHE_UTIL_H */
