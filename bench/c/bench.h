/*
 * bench.h - the small framework shared by the C benchmark suites.
 *
 * Each suite (bench_storage.c, bench_cache.c) is a function that runs its
 * workloads and records one JSON object per result with bench_record();
 * bench_main.c collects them into build/bench/bench-c.json as
 * {"results": [...]} and prints a table as it goes.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>

struct bench_config {
	const char *traces_dir; /* ../shared/traces */
	int quick;              /* --quick: fewer keys and shorter runs */
	int big;                /* --big: storage at 10M keys instead (bench_storage.c) */
};

/* The suites. Each returns 0, or non-zero if a run failed its checks. */
int bench_storage_run(const struct bench_config *cfg);
int bench_cache_run(const struct bench_config *cfg);
int bench_index_run(const struct bench_config *cfg); /* bench_index.c */
int bench_scan_run(const struct bench_config *cfg);  /* bench_scan.c */
int bench_txn_run(const struct bench_config *cfg);   /* bench_txn.c */

/* Records one result: json is a complete JSON object, copied. */
void bench_record(const char *json);

/* Monotonic nanoseconds. */
uint64_t bench_now_ns(void);

/* A latency histogram: log2 buckets split 16 ways (under 7% error). */
#define BENCH_HIST_BUCKETS (64 * 16)
struct bench_hist {
	uint64_t count[BENCH_HIST_BUCKETS];
	uint64_t total;
};
void bench_hist_add(struct bench_hist *h, uint64_t ns);
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);
/* The q-quantile (0 < q < 1) in nanoseconds; 0 if empty. */
uint64_t bench_hist_quantile(const struct bench_hist *h, double q);

/* A fast per-thread PRNG (splitmix64 seeded, xorshift64*). */
static inline uint64_t bench_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* Fills p[0..n) with 0..n-1 in a random order (Fisher-Yates from *state). */
static inline void bench_shuffle(uint32_t *p, size_t n, uint64_t *state)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint32_t)i;
	for (size_t i = n; i-- > 1;) {
		size_t j = (size_t)(bench_rand(state) % (i + 1));
		uint32_t x = p[i];

		p[i] = p[j];
		p[j] = x;
	}
}

/* Writes the 16-byte key of index i (big-endian index, so that key order
 * is index order, after an 8-byte fixed prefix "key:0000"). */
void bench_key16(uint8_t out[16], uint64_t i);

#endif /* BENCH_H */
