/*
 * bench_main.c - runs every C benchmark suite and writes bench-c.json.
 *
 * usage: bench-c [--out FILE] [--traces DIR] [--quick] [--big] [--only
 * storage|cache|index|scan|txn]
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static char **bench_results;
static size_t bench_nresults, bench_capresults;

void bench_record(const char *json)
{
	if (bench_nresults == bench_capresults) {
		size_t cap = bench_capresults ? bench_capresults * 2 : 64;
		char **r = realloc(bench_results, cap * sizeof(*r));
		if (r == NULL) {
			fprintf(stderr, "bench: out of memory\n");
			exit(2);
		}
		bench_results = r;
		bench_capresults = cap;
	}
	bench_results[bench_nresults] = strdup(json);
	if (bench_results[bench_nresults] == NULL) {
		fprintf(stderr, "bench: out of memory\n");
		exit(2);
	}
	bench_nresults++;
}

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static unsigned bench_hist_index(uint64_t ns)
{
	unsigned lg;

	if (ns < 16)
		return (unsigned)ns;
	lg = 63u - (unsigned)__builtin_clzll(ns);
	/* 16 sub-buckets from the 4 bits under the leading one. */
	return (lg - 3) * 16 + (unsigned)((ns >> (lg - 4)) & 15);
}

static uint64_t bench_hist_value(unsigned idx)
{
	unsigned lg, sub;

	if (idx < 16)
		return idx;
	lg = idx / 16 + 3;
	sub = idx % 16;
	return (1ull << lg) + ((uint64_t)sub << (lg - 4));
}

void bench_hist_add(struct bench_hist *h, uint64_t ns)
{
	unsigned i = bench_hist_index(ns);

	if (i >= BENCH_HIST_BUCKETS)
		i = BENCH_HIST_BUCKETS - 1;
	h->count[i]++;
	h->total++;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
		dst->count[i] += src->count[i];
	dst->total += src->total;
}

uint64_t bench_hist_quantile(const struct bench_hist *h, double q)
{
	uint64_t want, seen = 0;

	if (h->total == 0)
		return 0;
	want = (uint64_t)(q * (double)h->total);
	if (want >= h->total)
		want = h->total - 1;
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen > want)
			return bench_hist_value(i);
	}
	return bench_hist_value(BENCH_HIST_BUCKETS - 1);
}

void bench_key16(uint8_t out[16], uint64_t i)
{
	memcpy(out, "key:0000", 8);
	for (int b = 0; b < 8; b++)
		out[8 + b] = (uint8_t)(i >> (56 - 8 * b));
}

static int bench_write_json(const char *path)
{
	FILE *f;
	char dir[4096];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash != NULL) {
		*slash = '\0';
		for (char *p = dir + 1; *p; p++) {
			if (*p == '/') {
				*p = '\0';
				(void)mkdir(dir, 0755);
				*p = '/';
			}
		}
		(void)mkdir(dir, 0755);
	}
	f = fopen(path, "w");
	if (f == NULL) {
		fprintf(stderr, "bench: cannot write %s: %s\n", path, strerror(errno));
		return 1;
	}
	fprintf(f, "{\"results\": [\n");
	for (size_t i = 0; i < bench_nresults; i++)
		fprintf(f, "  %s%s\n", bench_results[i], i + 1 < bench_nresults ? "," : "");
	fprintf(f, "]}\n");
	if (fclose(f) != 0) {
		fprintf(stderr, "bench: cannot write %s: %s\n", path, strerror(errno));
		return 1;
	}
	printf("bench: %zu results written to %s\n", bench_nresults, path);
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_config cfg = {.traces_dir = "../shared/traces", .quick = 0};
	const char *out = "build/bench/bench-c.json";
	const char *only = NULL;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "--traces") == 0 && i + 1 < argc)
			cfg.traces_dir = argv[++i];
		else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
			only = argv[++i];
		else if (strcmp(argv[i], "--quick") == 0)
			cfg.quick = 1;
		else if (strcmp(argv[i], "--big") == 0)
			cfg.big = 1;
		else {
			fprintf(stderr,
			        "usage: %s [--out FILE] [--traces DIR] [--quick] [--big] "
			        "[--only storage|cache|index|scan|txn]\n",
			        argv[0]);
			return 2;
		}
	}
	if (only == NULL || strcmp(only, "storage") == 0)
		rc |= bench_storage_run(&cfg);
	if (only == NULL || strcmp(only, "cache") == 0)
		rc |= bench_cache_run(&cfg);
	if (only == NULL || strcmp(only, "index") == 0)
		rc |= bench_index_run(&cfg);
	if (only != NULL &&
	    strcmp(only, "scan") == 0) /* issue 8's scan floors, not in a full run */
		rc |= bench_scan_run(&cfg);
	if (only != NULL && strcmp(only, "txn") == 0) /* writers beside transactions */
		rc |= bench_txn_run(&cfg);
	rc |= bench_write_json(out);
	return rc;
}
