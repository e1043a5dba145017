/*
 * bench_storage.c - the storage suite of make bench-c.
 *
 * Workloads, each at 10 thousand and 1 million keys (--quick: 10 thousand
 * and 100 thousand, shorter runs), with 1 and 2 threads, 16-byte keys
 * (bench_key16) and 100-byte values:
 *
 *   put     insert every key, in random order, into an empty store
 *           (threads insert disjoint shares)
 *   get     uniformly random keys of the loaded store, value copied out
 *   mixed   50% get, 50% overwrite, uniformly random keys
 *   scan    prefix scans: a random 15-byte prefix (256 keys), every entry
 *           copied out (mantis: one iterator, mantis_iter_next_chunk)
 *   delete  delete every key, in random order
 *
 * Implementations: "mantis" (the public C API: handles and all), and the
 * anchors measured in the same run: "rwlock" (the seed design: a chained
 * hash table behind one pthread_rwlock) and "cds_lfht" (liburcu's lock-free
 * hash table, point operations only). Latency: every 8th operation is timed
 * with CLOCK_MONOTONIC (every scan), so p50/p99 include ~20 ns of clock
 * reading; throughput is counted over all operations and the wall time.
 *
 * Memory: for mantis, after each 1-thread load, the bytes per entry beyond
 * key and value, from the engine's own allocation accounting
 * (mt_sl_mem_bytes: node and version bytes requested from the allocator;
 * mt_sl_tree_bytes: the ordered index's nodes)
 * and from the process's resident set (what the allocator really took).
 *
 * Floors: at the larger size, one dependent load (bench_mem.c's chase) over
 * mantis's resident footprint, so that the CPU time of an operation reads
 * as a count of dependent misses.
 *
 * Oversubscription: at the larger size, mantis's mixed workload also runs
 * with 8 and 32 threads (on a 2-core machine), right after its 2-thread
 * run on the same store; p99.9 comes from the sampled operations. Each
 * thread's CPU time is measured too (ops per CPU-second, and the workers'
 * CPU share: on a shared machine the wall clock counts other processes).
 *
 * --big (bench_storage_big): 10M keys, mantis only: a 1-thread load, then
 * gets through mantis_db_get, against one dependent load (bench_mem.c's
 * chase) over the loaded engine's resident growth, with the same page size
 * (huge with MIMALLOC_LARGE_OS_PAGES=1, the engine's only huge-page switch),
 * in CPU time.
 *
 * At the end, the targets of issue 8 are printed with their ratios.
 */
#include "bench.h"
#include "bench_mem.h"
#include "bench_store.h"
#include "mantis.h"
#include "mt_epoch.h"
#include "mt_skiplist.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BS_KLEN   16
#define BS_VLEN   100
#define BS_SAMPLE 7u /* time one operation in 8 */

/* ------------------------------------------------------------ mantis */

static void *bs_m_open(size_t nkeys)
{
	uint64_t h;

	(void)nkeys;
	return mantis_db_open(NULL, &h) == MANTIS_OK ? (void *)(uintptr_t)h : NULL;
}

static void bs_m_close(void *s)
{
	(void)mantis_db_close((uint64_t)(uintptr_t)s);
	mantis_thread_release(); /* run the deferred frees now */
}

static int bs_m_put(void *s, const void *k, size_t klen, const void *v, size_t vlen)
{
	return mantis_db_put((uint64_t)(uintptr_t)s, k, klen, v, vlen, 0, NULL) == MANTIS_OK ? 0
	                                                                                     : -1;
}

static int bs_m_get(void *s, const void *k, size_t klen, void *buf, size_t cap, size_t *vlen)
{
	int rc = mantis_db_get((uint64_t)(uintptr_t)s, 0, k, klen, buf, cap, vlen, NULL);

	return rc == MANTIS_OK ? 0 : rc == MANTIS_NOTFOUND ? 1 : -1;
}

static int bs_m_del(void *s, const void *k, size_t klen)
{
	return mantis_db_delete((uint64_t)(uintptr_t)s, k, klen, NULL) == MANTIS_OK ? 0 : -1;
}

static long bs_m_scan(void *s, const void *prefix, size_t plen, void *buf, size_t cap)
{
	uint64_t it;
	long n = 0;
	size_t len;
	uint32_t count;
	int rc;

	if (mantis_iter_open((uint64_t)(uintptr_t)s, 0, prefix, plen, &it) != MANTIS_OK)
		return -1;
	while ((rc = mantis_iter_next_chunk(it, buf, cap, 0, &len, &count)) == MANTIS_OK)
		n += count;
	(void)mantis_iter_close(it);
	return rc == MANTIS_DONE ? n : -1;
}

static void bs_m_thread_enter(void)
{
}

static void bs_m_thread_exit(void)
{
	mantis_thread_release();
}

static const struct bench_store_ops bs_mantis = {
        .name = "mantis",
        .open = bs_m_open,
        .close = bs_m_close,
        .put = bs_m_put,
        .get = bs_m_get,
        .del = bs_m_del,
        .scan = bs_m_scan,
        .thread_enter = bs_m_thread_enter,
        .thread_exit = bs_m_thread_exit,
};

/* ------------------------------------------------------------ the runner */

enum bs_workload { BS_PUT, BS_GET, BS_MIXED, BS_SCAN, BS_DELETE };
static const char *const bs_names[] = {"put", "get", "mixed", "scan", "delete"};

struct bs_run {
	const struct bench_store_ops *ops;
	void *store;
	size_t nkeys;
	int threads;
	enum bs_workload w;
	uint64_t duration_ns; /* get, mixed, scan */
	const uint32_t *perm; /* put, delete: the order of the keys */
	pthread_barrier_t start;
};

struct bs_thread {
	struct bs_run *run;
	int id;
	uint64_t ops, entries, t0, t1, cpu_ns;
	int errors;
	struct bench_hist hist;
};

static void bs_value(unsigned char *v, uint64_t i, uint64_t salt)
{
	for (int b = 0; b < BS_VLEN; b++)
		v[b] = (unsigned char)(i >> (8 * (b % 8))) ^ (unsigned char)(salt + (uint64_t)b);
}

static void *bs_thread_main(void *arg)
{
	struct bs_thread *t = arg;
	struct bs_run *r = t->run;
	const struct bench_store_ops *o = r->ops;
	uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(t->id + 1) + r->nkeys;
	unsigned char key[BS_KLEN], val[BS_VLEN], buf[BS_VLEN];
	unsigned char *chunk = NULL;
	size_t vlen, share = r->nkeys / (size_t)r->threads;
	size_t lo = share * (size_t)t->id, hi = t->id + 1 == r->threads ? r->nkeys : lo + share;
	uint64_t n = 0, deadline;

	if (r->w == BS_SCAN) {
		chunk = malloc(64 << 10);
		if (chunk == NULL)
			t->errors++;
	}
	o->thread_enter();
	bs_value(val, (uint64_t)t->id, 1);
	pthread_barrier_wait(&r->start);
	t->cpu_ns = bench_cpu_ns();
	t->t0 = bench_now_ns();
	deadline = t->t0 + r->duration_ns;
	if (r->w == BS_PUT || r->w == BS_DELETE) {
		for (size_t i = lo; i < hi; i++, n++) {
			uint64_t a = 0;
			int rc;

			bench_key16(key, r->perm[i]);
			if ((n & BS_SAMPLE) == 0)
				a = bench_now_ns();
			if (r->w == BS_PUT) {
				bs_value(val, r->perm[i], 0);
				rc = o->put(r->store, key, BS_KLEN, val, BS_VLEN);
			} else {
				rc = o->del(r->store, key, BS_KLEN);
			}
			if (a != 0)
				bench_hist_add(&t->hist, bench_now_ns() - a);
			t->errors += rc != 0;
		}
	} else {
		for (;; n++) {
			uint64_t x = bench_rand(&rng), a = 0;
			int rc = 0;

			if ((n & 1023) == 0 && bench_now_ns() >= deadline)
				break;
			if (r->w == BS_SCAN || (n & BS_SAMPLE) == 0)
				a = bench_now_ns();
			if (r->w == BS_SCAN) {
				size_t groups = r->nkeys >> 8 ? r->nkeys >> 8 : 1;
				long e;

				bench_key16(key, (x % groups) << 8);
				e = o->scan(r->store, key, 15, chunk, 64 << 10);
				if (e < 0)
					rc = -1;
				else
					t->entries += (uint64_t)e;
			} else if (r->w == BS_GET || (x >> 63) == 0) {
				bench_key16(key, x % r->nkeys);
				rc = o->get(r->store, key, BS_KLEN, buf, sizeof(buf), &vlen);
			} else {
				bench_key16(key, x % r->nkeys);
				val[0] = (unsigned char)n;
				rc = o->put(r->store, key, BS_KLEN, val, BS_VLEN);
			}
			if (a != 0)
				bench_hist_add(&t->hist, bench_now_ns() - a);
			t->errors += rc != 0; /* every key is present: a miss is an error */
		}
	}
	t->t1 = bench_now_ns();
	t->cpu_ns = bench_cpu_ns() - t->cpu_ns;
	t->ops = n;
	o->thread_exit();
	free(chunk);
	return NULL;
}

struct bs_result {
	double ops_per_sec;
	double entries_per_sec;
	double ops_per_cpu_sec, cpu_share; /* per CPU-second of the workers; their share */
	uint64_t p50, p99, p999;
	int errors;
};

#define BS_MAX_THREADS 64

static struct bs_result bs_measure(struct bs_run *r)
{
	struct bs_thread *ts = calloc((size_t)r->threads, sizeof(*ts));
	pthread_t tid[BS_MAX_THREADS];
	struct bs_result res = {0};
	struct bench_hist *all = calloc(1, sizeof(*all));
	uint64_t t0 = UINT64_MAX, t1 = 0, ops = 0, entries = 0, cpu = 0;

	if (r->threads > BS_MAX_THREADS || ts == NULL || all == NULL) {
		fprintf(stderr, "bench: out of memory\n");
		exit(2);
	}
	pthread_barrier_init(&r->start, NULL, (unsigned)r->threads);
	for (int i = 0; i < r->threads; i++) {
		ts[i].run = r;
		ts[i].id = i;
		pthread_create(&tid[i], NULL, bs_thread_main, &ts[i]);
	}
	for (int i = 0; i < r->threads; i++) {
		pthread_join(tid[i], NULL);
		t0 = ts[i].t0 < t0 ? ts[i].t0 : t0;
		t1 = ts[i].t1 > t1 ? ts[i].t1 : t1;
		ops += ts[i].ops;
		entries += ts[i].entries;
		cpu += ts[i].cpu_ns;
		res.errors += ts[i].errors;
		bench_hist_merge(all, &ts[i].hist);
	}
	pthread_barrier_destroy(&r->start);
	res.ops_per_sec = (double)ops * 1e9 / (double)(t1 - t0);
	res.entries_per_sec = (double)entries * 1e9 / (double)(t1 - t0);
	res.ops_per_cpu_sec = (double)ops * 1e9 / (double)(cpu ? cpu : 1);
	res.cpu_share = (double)cpu / (double)(t1 - t0);
	res.p50 = bench_hist_quantile(all, 0.50);
	res.p99 = bench_hist_quantile(all, 0.99);
	res.p999 = bench_hist_quantile(all, 0.999);
	free(all);
	free(ts);
	return res;
}

/* Accumulates one of rounds repeated runs into sum: mean rates, the last
 * run's latencies. */
static void bs_result_add(struct bs_result *sum, const struct bs_result *res, int rounds)
{
	sum->ops_per_sec += res->ops_per_sec / rounds;
	sum->ops_per_cpu_sec += res->ops_per_cpu_sec / rounds;
	sum->cpu_share += res->cpu_share / rounds;
	sum->p50 = res->p50;
	sum->p99 = res->p99;
	sum->p999 = res->p999;
	sum->errors += res->errors;
}

/* ------------------------------------------------------------ results */

#define BS_MAX_RESULTS 128

struct bs_row {
	const char *impl;
	int w, threads;
	size_t keys;
	struct bs_result r;
};

static struct bs_row bs_rows[BS_MAX_RESULTS];
static int bs_nrows;

static void bs_emit(const char *impl, enum bs_workload w, int threads, size_t keys,
                    struct bs_result r, const char *extra)
{
	char json[1024];

	snprintf(
	        json, sizeof(json),
	        "{\"suite\": \"storage\", \"workload\": \"%s\", \"impl\": \"%s\", \"threads\": %d, "
	        "\"keys\": %zu, \"ops_per_sec\": %.0f, \"p50_ns\": %llu, \"p99_ns\": %llu, "
	        "\"p999_ns\": %llu, \"ops_per_cpu_sec\": %.0f, \"cpu_share\": %.2f%s}",
	        bs_names[w], impl, threads, keys, r.ops_per_sec, (unsigned long long)r.p50,
	        (unsigned long long)r.p99, (unsigned long long)r.p999, r.ops_per_cpu_sec,
	        r.cpu_share, extra != NULL ? extra : "");
	bench_record(json);
	printf("%-7s %-9s %2d %8zu %12.0f %9llu %9llu %9llu %5.2f", bs_names[w], impl, threads,
	       keys, r.ops_per_sec, (unsigned long long)r.p50, (unsigned long long)r.p99,
	       (unsigned long long)r.p999, r.cpu_share);
	if (w == BS_SCAN)
		printf("  %.1fM entries/s/thread", r.entries_per_sec / threads / 1e6);
	if (r.errors != 0)
		printf("  ERRORS: %d", r.errors);
	printf("\n");
	fflush(stdout);
	if (bs_nrows < BS_MAX_RESULTS)
		bs_rows[bs_nrows++] = (struct bs_row){impl, (int)w, threads, keys, r};
}

static const struct bs_row *bs_find(const char *impl, enum bs_workload w, int threads, size_t keys)
{
	for (int i = 0; i < bs_nrows; i++)
		if (strcmp(bs_rows[i].impl, impl) == 0 && bs_rows[i].w == (int)w &&
		    bs_rows[i].threads == threads && bs_rows[i].keys == keys)
			return &bs_rows[i];
	return NULL;
}

static uint64_t bs_rss_bytes(void)
{
	return bench_proc_kb("/proc/self/status", "VmRSS:") * 1024;
}

/* The thread counts of the oversubscribed mixed runs (2 cores here). */
static const int bs_oversub[] = {8, 32};

/* Overheads per entry measured at the last 1-thread load of each size. */
static double bs_mem_acct[2], bs_mem_rss[2];

/* One dependent load over the larger store's resident footprint (CPU ns). */
static double bs_chase;

/* ------------------------------------------------------------ the suite */

static int bs_run_impl(const struct bench_store_ops *o, size_t nkeys, int threads,
                       const uint32_t *perm, uint64_t dur_ns, int size_idx, int quick)
{
	struct bs_run r = {.ops = o, .nkeys = nkeys, .threads = threads, .perm = perm};
	struct bs_result res, sum;
	/* Small stores: repeat loads and deletes to measure long enough. */
	int rounds = nkeys >= 200000 ? 1 : (int)((quick ? 100000 : 400000) / nkeys);
	uint64_t rss0 = 0, mem0 = 0;
	char extra[256] = "";
	int errors = 0;

	if (rounds < 1)
		rounds = 1;
	memset(&sum, 0, sizeof(sum));
	/* put: fresh stores; the last one stays loaded. */
	for (int i = 0; i < rounds; i++) {
		if (i > 0)
			o->close(r.store);
		if (o == &bs_mantis && threads == 1 && i == rounds - 1) {
			mt_epoch_barrier();
			rss0 = bs_rss_bytes();
		}
		r.store = o->open(nkeys);
		if (r.store == NULL) {
			fprintf(stderr, "bench: %s: open failed\n", o->name);
			return 1;
		}
		if (o == &bs_mantis && threads == 1 && i == rounds - 1)
			mem0 = mt_sl_mem_bytes() + mt_sl_tree_bytes();
		r.w = BS_PUT;
		res = bs_measure(&r);
		bs_result_add(&sum, &res, rounds);
	}
	if (o == &bs_mantis && threads == 1) {
		double acct =
		        (double)(mt_sl_mem_bytes() + mt_sl_tree_bytes() - mem0) / (double)nkeys -
		        BS_KLEN - BS_VLEN;
		double rss =
		        ((double)bs_rss_bytes() - (double)rss0) / (double)nkeys - BS_KLEN - BS_VLEN;

		bs_mem_acct[size_idx] = acct;
		bs_mem_rss[size_idx] = rss;
		snprintf(extra, sizeof(extra),
		         ", \"mem_overhead_bytes_per_entry\": %.1f, "
		         "\"rss_overhead_bytes_per_entry\": %.1f",
		         acct, rss);
	}
	bs_emit(o->name, BS_PUT, threads, nkeys, sum, extra);
	errors += sum.errors;
	r.duration_ns = dur_ns;
	r.w = BS_GET;
	res = bs_measure(&r);
	bs_emit(o->name, BS_GET, threads, nkeys, res, NULL);
	errors += res.errors;
	r.w = BS_MIXED;
	res = bs_measure(&r);
	bs_emit(o->name, BS_MIXED, threads, nkeys, res, NULL);
	errors += res.errors;
	if (o == &bs_mantis && threads == 2 && size_idx == 1) {
		/* Oversubscribed, on the store the 2-thread run just used. */
		for (size_t m = 0; m < sizeof(bs_oversub) / sizeof(bs_oversub[0]); m++) {
			r.threads = bs_oversub[m];
			res = bs_measure(&r);
			bs_emit(o->name, BS_MIXED, r.threads, nkeys, res, NULL);
			errors += res.errors;
		}
		r.threads = threads;
	}
	if (o->scan != NULL) {
		r.w = BS_SCAN;
		res = bs_measure(&r);
		snprintf(extra, sizeof(extra),
		         ", \"entries_per_sec\": %.0f, \"entries_per_sec_per_thread\": %.0f",
		         res.entries_per_sec, res.entries_per_sec / threads);
		bs_emit(o->name, BS_SCAN, threads, nkeys, res, extra);
		errors += res.errors;
	}
	/* delete: everything, then reload for the next round. */
	memset(&sum, 0, sizeof(sum));
	for (int i = 0; i < rounds; i++) {
		if (i > 0) {
			struct bs_run load = r;

			load.w = BS_PUT;
			(void)bs_measure(&load);
		}
		r.w = BS_DELETE;
		res = bs_measure(&r);
		bs_result_add(&sum, &res, rounds);
	}
	bs_emit(o->name, BS_DELETE, threads, nkeys, sum, NULL);
	errors += sum.errors;
	o->close(r.store);
	return errors != 0;
}

static void bs_target(const char *what, double v, double want, const char *unit)
{
	printf("  %-58s %9.2f%-2s (target >= %g%s)  %s\n", what, v, unit, want, unit,
	       v >= want ? "met" : "MISSED");
}

static void bs_target_max(const char *what, double v, double limit, const char *unit)
{
	printf("  %-58s %9.2f%-2s (target <= %g%s)  %s\n", what, v, unit, limit, unit,
	       v <= limit ? "met" : "MISSED");
}

static double bs_ops(const char *impl, enum bs_workload w, int threads, size_t keys)
{
	const struct bs_row *row = bs_find(impl, w, threads, keys);

	return row != NULL ? row->r.ops_per_sec : 0;
}

static double bs_cpu(const char *impl, enum bs_workload w, int threads, size_t keys)
{
	const struct bs_row *row = bs_find(impl, w, threads, keys);

	return row != NULL ? row->r.ops_per_cpu_sec : 0;
}

static double bs_p999(const char *impl, enum bs_workload w, int threads, size_t keys)
{
	const struct bs_row *row = bs_find(impl, w, threads, keys);

	return row != NULL ? (double)row->r.p999 : 0;
}

static void bs_targets(size_t big, int quick)
{
	const struct bs_row *s1 = bs_find("mantis", BS_SCAN, 1, big);
	const struct bs_row *s2 = bs_find("mantis", BS_SCAN, 2, big);
	double mix2 = bs_ops("mantis", BS_MIXED, 2, big);
	char what[128];

	printf("\nstorage targets (issue 8) at %zu keys%s, ratios from this run "
	       "(the 10M-key get: --big):\n",
	       big, quick ? " (--quick: not the 1M-key figures)" : "");
	for (int t = 1; t <= 2; t++) {
		/* put >= 0.6x and get >= 1.0x cds_lfht, by wall time and per CPU-second. */
		static const struct {
			enum bs_workload op;
			const char *name;
			double target;
		} pg[] = {{BS_PUT, "put", 0.6}, {BS_GET, "get", 1.0}};

		for (size_t i = 0; i < sizeof(pg) / sizeof(pg[0]); i++) {
			snprintf(what, sizeof(what), "%s, mantis / cds_lfht, %d thread(s), wall",
			         pg[i].name, t);
			bs_target(what,
			          bs_ops("mantis", pg[i].op, t, big) /
			                  bs_ops("cds_lfht", pg[i].op, t, big),
			          pg[i].target, "x");
			snprintf(what, sizeof(what),
			         "%s, mantis / cds_lfht, %d thread(s), per CPU-s", pg[i].name, t);
			bs_target(what,
			          bs_cpu("mantis", pg[i].op, t, big) /
			                  bs_cpu("cds_lfht", pg[i].op, t, big),
			          pg[i].target, "x");
		}
	}
	if (s1 != NULL) {
		bs_target("prefix scan, entries/s per thread (1 thread), millions",
		          s1->r.entries_per_sec / 1e6, 20, "M");
		bs_target("prefix scan, entries per CPU-second (1 thread), millions",
		          s1->r.entries_per_sec / s1->r.cpu_share / 1e6, 20, "M");
	}
	if (s2 != NULL)
		bs_target("prefix scan, entries/s per thread (2 threads), millions",
		          s2->r.entries_per_sec / 2e6, 20, "M");
	bs_target_max("memory beyond key+value per entry, allocation accounting", bs_mem_acct[1],
	              48, "B");
	bs_target_max("memory beyond key+value per entry, resident set", bs_mem_rss[1], 48, "B");
	if (bs_chase > 0) {
		/* The floor: how many dependent misses each operation costs. */
		printf("  in dependent loads (CPU time per operation / chase %.0f ns, 1 thread): "
		       "mantis put %.1f, get %.1f, scan %.2f per entry; cds_lfht put %.1f, "
		       "get %.1f\n",
		       bs_chase, 1e9 / bs_cpu("mantis", BS_PUT, 1, big) / bs_chase,
		       1e9 / bs_cpu("mantis", BS_GET, 1, big) / bs_chase,
		       s1 != NULL ? s1->r.cpu_share * 1e9 / s1->r.entries_per_sec / bs_chase : 0,
		       1e9 / bs_cpu("cds_lfht", BS_PUT, 1, big) / bs_chase,
		       1e9 / bs_cpu("cds_lfht", BS_GET, 1, big) / bs_chase);
	}
	bs_target("mixed 50/50, 2 threads, mantis / rwlock",
	          mix2 / bs_ops("rwlock", BS_MIXED, 2, big), 3.0, "x");
	for (size_t m = 0; m < sizeof(bs_oversub) / sizeof(bs_oversub[0]); m++) {
		int t = bs_oversub[m];

		snprintf(what, sizeof(what), "mixed 50/50, %d threads / 2 threads, throughput", t);
		bs_target(what, bs_ops("mantis", BS_MIXED, t, big) / mix2, 0.9, "x");
		snprintf(what, sizeof(what), "mixed 50/50, %d threads / 2 threads, p99.9", t);
		bs_target_max(what,
		              bs_p999("mantis", BS_MIXED, t, big) /
		                      bs_p999("mantis", BS_MIXED, 2, big),
		              10, "x");
	}
}

/*
 * --big: 10M keys, mantis only. A 1-thread load (random order), the
 * resident growth it caused, 1-thread gets through the public API, then the
 * chase over that many bytes with the engine's page size; the store is
 * closed before the chase so that both fit. Returns non-zero on errors.
 */
static int bench_storage_big(uint64_t dur_ns)
{
	const char *lp = getenv("MIMALLOC_LARGE_OS_PAGES");
	int huge = lp != NULL && lp[0] == '1';
	size_t n = 10000000;
	uint32_t *perm = malloc(n * sizeof(*perm));
	struct bs_run r = {.ops = &bs_mantis, .nkeys = n, .threads = 1, .perm = perm};
	struct bs_result put, get;
	uint64_t rng = 12345, rss0, hp0, mem0, hp;
	double rss, acct, chase, get_cpu_ns;
	char extra[512];

	if (perm == NULL) {
		fprintf(stderr, "bench: out of memory\n");
		return 1;
	}
	bench_shuffle(perm, n, &rng);
	printf("storage --big: 10M keys, mantis, %s pages\n",
	       huge ? "huge (MIMALLOC_LARGE_OS_PAGES=1)" : "4 KiB");
	mt_epoch_barrier();
	rss0 = bench_proc_kb("/proc/self/status", "VmRSS:");
	hp0 = bench_proc_kb("/proc/self/smaps_rollup", "AnonHugePages:");
	r.store = bs_mantis.open(n);
	if (r.store == NULL) {
		free(perm);
		return 1;
	}
	mem0 = mt_sl_mem_bytes() + mt_sl_tree_bytes();
	r.w = BS_PUT;
	put = bs_measure(&r);
	rss = (double)(bench_proc_kb("/proc/self/status", "VmRSS:") - rss0) * 1024.0;
	hp = bench_proc_kb("/proc/self/smaps_rollup", "AnonHugePages:") - hp0;
	acct = (double)(mt_sl_mem_bytes() + mt_sl_tree_bytes() - mem0) / (double)n - BS_KLEN -
	       BS_VLEN;
	snprintf(
	        extra, sizeof(extra),
	        ", \"mem_overhead_bytes_per_entry\": %.1f, \"rss_overhead_bytes_per_entry\": %.1f, "
	        "\"anon_huge_kb\": %llu, \"huge\": %d",
	        acct, rss / (double)n - BS_KLEN - BS_VLEN, (unsigned long long)hp, huge);
	bs_emit("mantis", BS_PUT, 1, n, put, extra);
	r.w = BS_GET;
	r.duration_ns = dur_ns;
	get = bs_measure(&r);
	bs_emit("mantis", BS_GET, 1, n, get, NULL);
	bs_mantis.close(r.store);
	free(perm);
	chase = bench_chase_ns((size_t)rss, huge);
	snprintf(extra, sizeof(extra),
	         "{\"suite\": \"storage\", \"workload\": \"chase\", \"keys\": %zu, "
	         "\"bytes\": %.0f, \"huge\": %d, \"ns_per_load\": %.1f}",
	         n, rss, huge, chase);
	bench_record(extra);
	get_cpu_ns = 1e9 / get.ops_per_cpu_sec;
	printf("chase   %.0f MiB (%s pages): %.1f ns per dependent load (CPU time)\n",
	       rss / 1048576.0, huge ? "huge" : "4 KiB", chase);
	printf("resident growth %.1f B/entry beyond key+value (accounting %.1f), huge pages "
	       "%llu MiB\n",
	       rss / (double)n - BS_KLEN - BS_VLEN, acct, (unsigned long long)hp >> 10);
	printf("\nstorage target (issue 8) at 10M keys (%s pages), from this run:\n",
	       huge ? "huge" : "4 KiB");
	printf("  get: %.0f ns CPU (%.0f ns wall) per mantis_db_get; chase %.0f ns\n", get_cpu_ns,
	       1e9 / get.ops_per_sec, chase);
	bs_target_max("get CPU time / one dependent load (same footprint and pages)",
	              get_cpu_ns / chase, 2.0, "x");
	return put.errors + get.errors != 0;
}

int bench_storage_run(const struct bench_config *cfg)
{
	const struct bench_store_ops *impls[] = {&bs_mantis, &bench_store_lfht,
	                                         &bench_store_rwlock};
	size_t sizes[2] = {10000, cfg->quick ? 100000 : 1000000};
	uint64_t dur_ns = cfg->quick ? 150000000ull : 1000000000ull;
	int errors = 0;

	printf("%-7s %-9s %2s %8s %12s %9s %9s %9s %5s\n", "work", "impl", "th", "keys", "ops/s",
	       "p50 ns", "p99 ns", "p99.9 ns", "cpu");
	if (cfg->big)
		return bench_storage_big(cfg->quick ? 500000000ull : 2000000000ull);
	printf("storage: %s, 16-byte keys, 100-byte values\n", cfg->quick ? "--quick" : "full run");
	for (int s = 0; s < 2; s++) {
		size_t n = sizes[s];
		uint32_t *perm = malloc(n * sizeof(*perm));
		uint64_t rng = 12345;

		if (perm == NULL) {
			fprintf(stderr, "bench: out of memory\n");
			return 1;
		}
		bench_shuffle(perm, n, &rng);
		for (size_t i = 0; i < sizeof(impls) / sizeof(impls[0]); i++)
			for (int t = 1; t <= 2; t++)
				errors |= bs_run_impl(impls[i], n, t, perm, dur_ns, s, cfg->quick);
		free(perm);
		if (s == 1) {
			const char *lp = getenv("MIMALLOC_LARGE_OS_PAGES");
			size_t bytes = (size_t)((bs_mem_rss[1] + BS_KLEN + BS_VLEN) * (double)n);

			char json[256];

			bs_chase = bench_chase_ns(bytes, lp != NULL && lp[0] == '1');
			snprintf(json, sizeof(json),
			         "{\"suite\": \"storage\", \"workload\": \"chase\", \"keys\": %zu, "
			         "\"bytes\": %zu, \"ns_per_load\": %.1f}",
			         n, bytes, bs_chase);
			bench_record(json);
			printf("chase   %zu MiB (mantis's resident footprint): %.1f ns per "
			       "dependent "
			       "load (CPU time)\n",
			       bytes >> 20, bs_chase);
		}
	}
	bs_targets(sizes[1], cfg->quick);
	if (errors)
		fprintf(stderr, "storage: some operations failed (see ERRORS above)\n");
	return errors;
}
