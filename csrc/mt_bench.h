/*
 * mt_bench.h - entry points for hosts' benchmarks (not public API): the
 * floor of one call across an FFI boundary, and the cache's own lookup cost
 * measured from inside C (csrc/mt_bench.c).
 */
#ifndef MT_BENCH_H
#define MT_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* Does nothing and returns 0: a host times it to know what one call costs. */
int mt_bench_nop(void);

/* Runs n mantis_cache_get lookups on cache, cycling over the encoded keys
 * ("u32 klen, klen bytes" each, little-endian; len bytes in all), each into
 * a 4 KiB stack buffer. Returns the number of hits. */
uint64_t mt_bench_cache_get(uint64_t cache, const void *keys, size_t len, uint64_t n);

#endif /* MT_BENCH_H */
