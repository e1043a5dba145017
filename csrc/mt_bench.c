/*
 * mt_bench.c - benchmark entry points for hosts (mt_bench.h). They live in
 * the library, not in a host's FFI glue, so that the floor a host measures
 * is a call into the same shared object as the calls it compares.
 */
#include "mt_bench.h"

#include "mantis.h"

#include <string.h>

int mt_bench_nop(void)
{
	return 0;
}

uint64_t mt_bench_cache_get(uint64_t cache, const void *keys, size_t len, uint64_t n)
{
	const unsigned char *k = keys;
	unsigned char buf[4096];
	uint64_t hits = 0;
	size_t off = 0, vlen;
	uint32_t klen;

	for (uint64_t i = 0; i < n && len >= 4; i++) {
		if (off + 4 > len)
			off = 0;
		memcpy(&klen, k + off, 4);
		if (off + 4 + klen > len)
			break; /* malformed tail */
		if (mantis_cache_get(cache, k + off + 4, klen, buf, sizeof(buf), &vlen, NULL) ==
		    MANTIS_OK)
			hits++;
		off += 4 + klen;
	}
	return hits;
}
