/*
 * bench_index.c - the ordered index suite of make bench-c (--only index):
 * mt_bptree under a minimal key-value store, against cds_lfht, rwlock and
 * a pointer-chase anchor, at 1M and 10M keys (--quick: 100K and 1M).
 *
 * The store ("bptree"): an item per key (value pointer, key bytes) in the
 * tree, a value block per write; an overwrite swaps the value pointer and
 * frees the old block through the epoch; every call runs in an epoch
 * section, as the engine's do. It has no MVCC: it measures what the index
 * costs, for the storage core's design (docs/performance/storage.md).
 *
 * Workloads (16-byte keys bench_key16, 100-byte values): put (1 thread,
 * random order into an empty store), get (1 thread, uniform, value copied
 * out), scan (1 thread, prefix of 256 keys, every value copied), mixed
 * 50/50 get/overwrite at 2, 8 and 32 threads (this machine has 2 cores),
 * with p99.9 from every 8th operation timed.
 *
 * Anchor "chase" (bench_mem.c): dependent random loads over a buffer as
 * large as the store's resident growth, with the same page size as the
 * store: transparent huge pages (MADV_HUGEPAGE) when
 * MIMALLOC_LARGE_OS_PAGES=1 is set (mimalloc then asks for them too, and the
 * tree is opened with MT_BPT_HUGE), MADV_NOHUGEPAGE otherwise. The
 * AnonHugePages of the process after the load tell what the store really
 * got.
 */
#include "bench.h"
#include "bench_mem.h"
#include "bench_store.h"
#include "mantis.h"
#include "mt_alloc.h"
#include "mt_bptree.h"
#include "mt_epoch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BI_KLEN 16
#define BI_VLEN 100

/* ------------------------------------------------------------ the store */

/* An item: key and value in one block (as cds_lfht's nodes), replaced
 * whole by an overwrite and freed through the epoch. */
struct bi_item {
	ck_epoch_entry_t epoch;
	uint32_t vlen;
	uint16_t klen;
	unsigned char data[]; /* key, then value */
};

static const unsigned char *bi_key(const void *item, size_t *klen)
{
	const struct bi_item *it = item;

	*klen = it->klen;
	return it->data;
}

static void bi_item_free(ck_epoch_entry_t *e)
{
	mt_epoch_reclaim_acquire();
	mt_free(e); /* epoch is the first member */
}

static struct bi_item *bi_item_new(const void *k, size_t klen, const void *v, size_t vlen)
{
	struct bi_item *it = mt_malloc(sizeof(*it) + klen + vlen);

	if (it != NULL) {
		it->klen = (uint16_t)klen;
		it->vlen = (uint32_t)vlen;
		memcpy(it->data, k, klen);
		memcpy(it->data + klen, v, vlen);
	}
	return it;
}

/* Huge pages for the tree's nodes when the run asks for them. */
static unsigned bi_flags;

static void *bi_open(size_t nkeys)
{
	struct mt_bpt *t = malloc(sizeof(*t));

	(void)nkeys;
	if (t == NULL || mt_bpt_init(t, bi_key, bi_flags) != MANTIS_OK) {
		free(t);
		return NULL;
	}
	return t;
}

static void bi_close(void *s)
{
	struct mt_bpt *t = s;
	void *out[256];
	size_t n;
	static unsigned char keep[4096];
	size_t kl = 0;
	int after = 0;

	mt_epoch_barrier();
	/* Single-threaded now: each chunk's items are freed once the next
	 * chunk's start key is copied out of the last one. */
	while ((n = mt_bpt_scan(t, keep, kl, after, NULL, 0, out, 256)) > 0) {
		const struct bi_item *last = out[n - 1];

		kl = last->klen;
		memcpy(keep, last->data, kl);
		after = 1;
		for (size_t i = 0; i < n; i++)
			mt_free(out[i]);
	}
	mt_bpt_destroy(t);
	free(t);
}

static int bi_put(void *s, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct mt_bpt *t = s;
	ck_epoch_record_t *r = mt_epoch_record();
	ck_epoch_section_t sec;
	struct bi_item *nw = bi_item_new(k, klen, v, vlen);
	void *old;
	int rc = 0;

	if (r == NULL || nw == NULL) {
		mt_free(nw);
		return -1;
	}
	mt_epoch_begin(r, &sec);
	/* One descent for a new key; an overwrite replaces the item (a second
	 * descent, its path now cached). */
	for (;;) {
		if (mt_bpt_insert(t, k, klen, nw, &old) != MANTIS_OK) {
			mt_free(nw);
			rc = -1;
			break;
		}
		if (old == NULL)
			break;
		if (mt_bpt_replace(t, k, klen, old, nw)) {
			mt_epoch_call(r, &((struct bi_item *)old)->epoch, bi_item_free);
			break;
		}
	}
	mt_epoch_end(r, &sec);
	return rc;
}

static int bi_get(void *s, const void *k, size_t klen, void *buf, size_t cap, size_t *vlen)
{
	struct mt_bpt *t = s;
	ck_epoch_record_t *r = mt_epoch_record();
	ck_epoch_section_t sec;
	const struct bi_item *it;

	if (r == NULL)
		return -1;
	mt_epoch_begin(r, &sec);
	it = mt_bpt_get(t, k, klen);
	if (it != NULL) {
		*vlen = it->vlen;
		memcpy(buf, it->data + it->klen, it->vlen < cap ? it->vlen : cap);
	}
	mt_epoch_end(r, &sec);
	return it != NULL ? 0 : 1;
}

static int bi_del(void *s, const void *k, size_t klen)
{
	struct mt_bpt *t = s;
	ck_epoch_record_t *r = mt_epoch_record();
	ck_epoch_section_t sec;
	struct bi_item *it;

	if (r == NULL)
		return -1;
	mt_epoch_begin(r, &sec);
	it = mt_bpt_remove(t, k, klen, NULL);
	if (it != NULL)
		mt_epoch_call(r, &it->epoch, bi_item_free);
	mt_epoch_end(r, &sec);
	return it != NULL ? 0 : 1;
}

static long bi_scan(void *s, const void *prefix, size_t plen, void *buf, size_t cap)
{
	struct mt_bpt *t = s;
	ck_epoch_record_t *r = mt_epoch_record();
	ck_epoch_section_t sec;
	void *out[256];
	unsigned char *dst = buf;
	size_t n, used = 0;
	long total = 0;
	const void *k = prefix;
	size_t kl = plen, elen = plen;
	int after = 0;
	unsigned char end[BI_KLEN];

	/* The prefix's successor bounds the scan: the smallest key above
	 * every key with the prefix (NULL if the prefix is all 0xff). */
	memcpy(end, prefix, plen < sizeof(end) ? plen : sizeof(end));
	while (elen > 0 && end[elen - 1] == 0xff)
		elen--;
	if (elen > 0)
		end[elen - 1]++;
	if (r == NULL)
		return -1;
	mt_epoch_begin(r, &sec);
	while ((n = mt_bpt_scan(t, k, kl, after, elen > 0 ? end : NULL, elen, out, 256)) > 0) {
		size_t i;

		/* Independent loads: every item of the chunk is requested before
		 * the first is copied. */
		for (i = 0; i < n; i++)
			__builtin_prefetch(out[i]);
		for (i = 0; i < n; i++) {
			const struct bi_item *it = out[i];
			size_t sz = (size_t)it->klen + it->vlen;

			if (it->klen < plen || memcmp(it->data, prefix, plen) != 0)
				break;
			if (used + sz > cap)
				used = 0;
			memcpy(dst + used, it->data, sz);
			used += sz;
			total++;
		}
		if (i < n)
			break;
		k = ((const struct bi_item *)out[n - 1])->data;
		kl = ((const struct bi_item *)out[n - 1])->klen;
		after = 1;
	}
	mt_epoch_end(r, &sec);
	return total;
}

static void bi_thread_enter(void)
{
}

static void bi_thread_exit(void)
{
	mantis_thread_release();
}

static const struct bench_store_ops bi_bptree = {
        .name = "bptree",
        .open = bi_open,
        .close = bi_close,
        .put = bi_put,
        .get = bi_get,
        .del = bi_del,
        .scan = bi_scan,
        .thread_enter = bi_thread_enter,
        .thread_exit = bi_thread_exit,
};

/* ------------------------------------------------------------ the runner */

enum bi_work { BI_PUT, BI_GET, BI_SCAN, BI_MIXED };

struct bi_run {
	const struct bench_store_ops *ops;
	void *store;
	size_t nkeys;
	int threads;
	enum bi_work w;
	uint64_t duration_ns;
	const uint32_t *perm;
	pthread_barrier_t start;
};

struct bi_thread {
	struct bi_run *run;
	int id;
	uint64_t ops, entries, t0, t1, cpu_ns;
	int errors;
	struct bench_hist hist;
};

static void *bi_thread_main(void *arg)
{
	struct bi_thread *t = arg;
	struct bi_run *r = t->run;
	const struct bench_store_ops *o = r->ops;
	uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(t->id + 1) + r->nkeys;
	unsigned char key[BI_KLEN], val[BI_VLEN], buf[BI_VLEN];
	unsigned char *chunk = malloc(64 << 10);
	size_t vlen, share = r->nkeys / (size_t)r->threads;
	size_t lo = share * (size_t)t->id, hi = t->id + 1 == r->threads ? r->nkeys : lo + share;
	uint64_t n = 0, deadline;

	memset(val, 0x5a, sizeof(val));
	o->thread_enter();
	pthread_barrier_wait(&r->start);
	t->cpu_ns = bench_cpu_ns();
	t->t0 = bench_now_ns();
	deadline = t->t0 + r->duration_ns;
	if (r->w == BI_PUT) {
		for (size_t i = lo; i < hi; i++, n++) {
			bench_key16(key, r->perm[i]);
			val[0] = (unsigned char)i;
			t->errors += o->put(r->store, key, BI_KLEN, val, BI_VLEN) != 0;
		}
	} else {
		for (;; n++) {
			uint64_t x = bench_rand(&rng), a = 0;
			int rc;

			if ((n & 255) == 0 && bench_now_ns() >= deadline)
				break;
			if (r->w == BI_SCAN || (n & 7) == 0)
				a = bench_now_ns();
			if (r->w == BI_SCAN) {
				size_t groups = r->nkeys >> 8 ? r->nkeys >> 8 : 1;
				long e;

				bench_key16(key, (x % groups) << 8);
				e = o->scan(r->store, key, 15, chunk, 64 << 10);
				rc = e != 256 && (size_t)e != r->nkeys;
				t->entries += e > 0 ? (uint64_t)e : 0;
			} else if (r->w == BI_GET || (x >> 63) == 0) {
				bench_key16(key, x % r->nkeys);
				rc = o->get(r->store, key, BI_KLEN, buf, sizeof(buf), &vlen);
			} else {
				bench_key16(key, x % r->nkeys);
				val[0] = (unsigned char)n;
				rc = o->put(r->store, key, BI_KLEN, val, BI_VLEN);
			}
			if (a != 0)
				bench_hist_add(&t->hist, bench_now_ns() - a);
			t->errors += rc != 0;
		}
	}
	t->t1 = bench_now_ns();
	t->cpu_ns = bench_cpu_ns() - t->cpu_ns;
	t->ops = n;
	o->thread_exit();
	free(chunk);
	return NULL;
}

struct bi_result {
	double ops_per_sec, entries_per_sec;
	double ops_per_cpu_sec, cpu_share; /* per CPU-second of the workers; their CPU share */
	uint64_t p50, p99, p999;
	int errors;
};

static struct bi_result bi_measure(struct bi_run *r)
{
	struct bi_thread *ts = calloc((size_t)r->threads, sizeof(*ts));
	pthread_t tid[64];
	struct bench_hist *all = calloc(1, sizeof(*all));
	struct bi_result res = {0};
	uint64_t t0 = UINT64_MAX, t1 = 0, ops = 0, entries = 0, cpu = 0;

	if (ts == NULL || all == NULL) {
		fprintf(stderr, "bench: out of memory\n");
		exit(2);
	}
	pthread_barrier_init(&r->start, NULL, (unsigned)r->threads);
	for (int i = 0; i < r->threads; i++) {
		ts[i].run = r;
		ts[i].id = i;
		pthread_create(&tid[i], NULL, bi_thread_main, &ts[i]);
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
	res.ops_per_cpu_sec = (double)ops * 1e9 / (double)(cpu ? cpu : 1);
	res.cpu_share = (double)cpu / (double)(t1 - t0);
	res.entries_per_sec = (double)entries * 1e9 / (double)(t1 - t0);
	res.p50 = bench_hist_quantile(all, 0.50);
	res.p99 = bench_hist_quantile(all, 0.99);
	res.p999 = bench_hist_quantile(all, 0.999);
	free(all);
	free(ts);
	return res;
}

static const char *const bi_names[] = {"put", "get", "scan", "mixed"};

static void bi_emit(const char *impl, enum bi_work w, int threads, size_t keys, struct bi_result r,
                    const char *extra)
{
	char json[1024];

	snprintf(json, sizeof(json),
	         "{\"suite\": \"index\", \"workload\": \"%s\", \"impl\": \"%s\", \"threads\": %d, "
	         "\"keys\": %zu, \"ops_per_sec\": %.0f, \"p50_ns\": %llu, \"p99_ns\": %llu, "
	         "\"p999_ns\": %llu, \"ops_per_cpu_sec\": %.0f, \"cpu_share\": %.2f%s}",
	         bi_names[w], impl, threads, keys, r.ops_per_sec, (unsigned long long)r.p50,
	         (unsigned long long)r.p99, (unsigned long long)r.p999, r.ops_per_cpu_sec,
	         r.cpu_share, extra != NULL ? extra : "");
	bench_record(json);
	printf("%-6s %-9s %2d %9zu %12.0f %8llu %8llu %9llu", bi_names[w], impl, threads, keys,
	       r.ops_per_sec, (unsigned long long)r.p50, (unsigned long long)r.p99,
	       (unsigned long long)r.p999);
	printf(" %12.0f %5.2f", r.ops_per_cpu_sec, r.cpu_share);
	if (w == BI_SCAN)
		printf("  %.1fM entries/s/thread", r.entries_per_sec / threads / 1e6);
	if (r.errors != 0)
		printf("  ERRORS: %d", r.errors);
	printf("\n");
	fflush(stdout);
}

static void bi_target(const char *what, double v, double want, int at_most)
{
	int ok = at_most ? v <= want : v >= want;

	printf("  %-62s %8.2f (target %s %g)  %s\n", what, v, at_most ? "<=" : ">=", want,
	       ok ? "met" : "MISSED");
}

static int bi_size(size_t n, uint64_t dur_ns, int huge, int oversub)
{
	uint32_t *perm = malloc(n * sizeof(*perm));
	uint64_t rng = 12345, rss0, hp0;
	struct bi_run r = {.nkeys = n, .perm = NULL, .duration_ns = dur_ns};
	struct bi_result put[2], get[2], scan, mix[4], rw2;
	const struct bench_store_ops *impl[2] = {&bi_bptree, &bench_store_lfht};
	char extra[256];
	double index_b = 0, rss_b = 0, chase_ns;
	int errors = 0;
	static const int mix_threads[3] = {2, 8, 32};

	if (perm == NULL)
		return 1;
	bench_shuffle(perm, n, &rng);
	r.perm = perm;
	for (int k = 0; k < 2; k++) {
		mt_epoch_barrier();
		rss0 = bench_proc_kb("/proc/self/status", "VmRSS:");
		hp0 = bench_proc_kb("/proc/self/smaps_rollup", "AnonHugePages:");
		r.ops = impl[k];
		r.store = impl[k]->open(n);
		if (r.store == NULL)
			return 1;
		r.threads = 1;
		r.w = BI_PUT;
		put[k] = bi_measure(&r);
		extra[0] = '\0';
		if (k == 0) {
			index_b = (double)mt_bpt_mem_bytes(r.store) / (double)n;
			rss_b = (double)(bench_proc_kb("/proc/self/status", "VmRSS:") - rss0) *
			        1024.0 / (double)n;
			snprintf(
			        extra, sizeof(extra),
			        ", \"index_bytes_per_entry\": %.1f, \"rss_bytes_per_entry\": %.1f, "
			        "\"anon_huge_kb\": %llu",
			        index_b, rss_b,
			        (unsigned long long)(bench_proc_kb("/proc/self/smaps_rollup",
			                                           "AnonHugePages:") -
			                             hp0));
		}
		bi_emit(impl[k]->name, BI_PUT, 1, n, put[k], extra);
		r.w = BI_GET;
		get[k] = bi_measure(&r);
		bi_emit(impl[k]->name, BI_GET, 1, n, get[k], NULL);
		if (k == 0) {
			r.w = BI_SCAN;
			scan = bi_measure(&r);
			bi_emit("bptree", BI_SCAN, 1, n, scan, NULL);
			for (int m = 0; m < (oversub ? 3 : 1); m++) {
				r.w = BI_MIXED;
				r.threads = mix_threads[m];
				mix[m] = bi_measure(&r);
				bi_emit("bptree", BI_MIXED, r.threads, n, mix[m], NULL);
				errors += mix[m].errors;
			}
			errors += scan.errors;
		}
		errors += put[k].errors + get[k].errors;
		impl[k]->close(r.store);
	}
	/* The rwlock anchor's 2-thread mixed run. */
	r.ops = &bench_store_rwlock;
	r.store = bench_store_rwlock.open(n);
	r.threads = 1;
	r.w = BI_PUT;
	(void)bi_measure(&r);
	r.threads = 2;
	r.w = BI_MIXED;
	rw2 = bi_measure(&r);
	bi_emit("rwlock", BI_MIXED, 2, n, rw2, NULL);
	bench_store_rwlock.close(r.store);
	chase_ns = bench_chase_ns((size_t)(rss_b * (double)n), huge);
	snprintf(extra, sizeof(extra),
	         "{\"suite\": \"index\", \"workload\": \"chase\", \"keys\": %zu, "
	         "\"bytes\": %.0f, \"huge\": %d, \"ns_per_load\": %.1f}",
	         n, rss_b * (double)n, huge, chase_ns);
	bench_record(extra);
	printf("chase  %zu MiB (%s pages): %.1f ns per dependent load\n",
	       (size_t)(rss_b * (double)n) >> 20, huge ? "huge" : "4 KiB", chase_ns);

	printf("\nindex targets at %zu keys (%s pages), ratios from this run:\n", n,
	       huge ? "huge" : "4 KiB");
	bi_target("put, bptree / cds_lfht (1 thread), per CPU-second",
	          put[0].ops_per_cpu_sec / put[1].ops_per_cpu_sec, 0.6, 0);
	bi_target("put, bptree / cds_lfht (1 thread), wall clock",
	          put[0].ops_per_sec / put[1].ops_per_sec, 0.6, 0);
	bi_target("get, bptree / cds_lfht (1 thread), per CPU-second",
	          get[0].ops_per_cpu_sec / get[1].ops_per_cpu_sec, 1.0, 0);
	bi_target("get, bptree / cds_lfht (1 thread), wall clock",
	          get[0].ops_per_sec / get[1].ops_per_sec, 1.0, 0);
	bi_target("get CPU time / one dependent load (chase, CPU time)",
	          1e9 / get[0].ops_per_cpu_sec / chase_ns, 2.0, 1);
	bi_target("prefix scan, M entries per CPU-second",
	          scan.entries_per_sec / scan.cpu_share / 1e6, 20, 0);
	bi_target("mixed 50/50, 2 threads, bptree / rwlock, wall clock",
	          mix[0].ops_per_sec / rw2.ops_per_sec, 3.0, 0);
	if (oversub)
		for (int m = 1; m < 3; m++) {
			char what[128];

			snprintf(what, sizeof(what), "mixed, %d threads / 2 threads, throughput",
			         mix_threads[m]);
			bi_target(what, mix[m].ops_per_sec / mix[0].ops_per_sec, 0.9, 0);
			snprintf(what, sizeof(what), "mixed, %d threads / 2 threads, p99.9",
			         mix_threads[m]);
			bi_target(what, (double)mix[m].p999 / (double)mix[0].p999, 10, 1);
		}
	printf("  index bytes per entry (tree nodes and separators): %.1f; resident growth "
	       "beyond key+value: %.1f\n\n",
	       index_b, rss_b - BI_KLEN - BI_VLEN);
	free(perm);
	return errors;
}

int bench_index_run(const struct bench_config *cfg)
{
	const char *lp = getenv("MIMALLOC_LARGE_OS_PAGES");
	int huge = lp != NULL && lp[0] == '1';
	int errors = 0;

	bi_flags = huge ? MT_BPT_HUGE : 0;

	printf("index: mt_bptree store against cds_lfht, rwlock and a pointer chase, %s pages\n",
	       huge ? "huge (MIMALLOC_LARGE_OS_PAGES=1)" : "4 KiB");
	printf("%-6s %-9s %2s %9s %12s %8s %8s %9s %12s %5s\n", "work", "impl", "th", "keys",
	       "ops/s", "p50 ns", "p99 ns", "p99.9 ns", "ops/cpu-s", "cpu");
	errors |= bi_size(cfg->quick ? 100000 : 1000000, cfg->quick ? 200000000ull : 1000000000ull,
	                  huge, 1);
	errors |= bi_size(cfg->quick ? 1000000 : 10000000,
	                  cfg->quick ? 200000000ull : 1000000000ull, huge, 0);
	if (errors)
		fprintf(stderr, "index: some operations failed (see ERRORS above)\n");
	return errors;
}
