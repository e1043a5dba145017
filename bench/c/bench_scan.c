/*
 * bench_scan.c - the prefix-scan suite (--only scan): issue 8's "prefix
 * scan at least 20M entries/s per thread" at 1M keys, with its floors, in
 * one run.
 *
 * The store is the storage suite's (bench_storage.c): 1M keys (--quick:
 * 100 thousand) of 16 bytes (bench_key16), 100-byte values, loaded by one
 * thread in random order. A scan is the storage suite's too: a random
 * 15-byte prefix (256 keys), every entry copied out. Each round measures,
 * over the same random prefixes:
 *
 *   mantis  mantis_iter_open, mantis_iter_next_chunk into a 64 KiB buffer
 *           until DONE, mantis_iter_close (bench_storage.c's bs_m_scan)
 *   fixed   mantis_iter_open then mantis_iter_close: the per-scan fixed
 *           cost (handle, snapshot registration), per scan
 *   walk    the floor: the same tree scan (mt_bpt_scan of the prefix's
 *           nodes) and a walk that reads the same two lines per entry (key
 *           node, newest version) with software prefetch, copying key and
 *           value with the chunk's framing, and nothing else: no handle,
 *           no snapshot, no visibility rule, no pin
 *   index   the tree scan alone (one line per entry: the leaf's)
 *   chase   one dependent random load over the store's resident footprint
 *           (bench_mem.c), the unit the storage suite reads costs in
 *
 * mantis and walk run on 1 and 2 threads (each thread its own prefixes and
 * buffer). Entries/s are per thread, of wall time and per CPU-second of the
 * workers; the rounds' medians are printed at the end (the machine is
 * shared: compare ratios within a run).
 */
#include "bench.h"
#include "bench_mem.h"
#include "mantis.h"
#include "mt_db.h"
#include "mt_epoch.h"
#include "mt_handle.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SC_KLEN       16
#define SC_VLEN       100
#define SC_PLEN       15
#define SC_GROUP      256
#define SC_CAP        (64u << 10)
#define SC_ROUNDS     3
#define SC_MAXTHREADS 2
#define SC_AHEAD                                                                                   \
	16 /* walk: nodes prefetched ahead; versions at half that (the best                        \
	    * of 8/4 to 48/24 measured) */

enum sc_kind { SC_MANTIS, SC_FIXED, SC_WALK, SC_INDEX, SC_KINDS };
static const char *const sc_names[SC_KINDS] = {"mantis", "fixed", "walk", "index"};

struct sc_ctx {
	uint64_t dbh;
	struct mt_db *db; /* the handle's object, held for the run */
	size_t groups;
	unsigned char *buf;
};

static long sc_mantis(struct sc_ctx *c, const unsigned char *prefix)
{
	uint64_t it;
	long n = 0;
	size_t len;
	uint32_t count;
	int rc;

	if (mantis_iter_open(c->dbh, 0, prefix, SC_PLEN, &it) != MANTIS_OK)
		return -1;
	while ((rc = mantis_iter_next_chunk(it, c->buf, SC_CAP, 0, &len, &count)) == MANTIS_OK)
		n += count;
	(void)mantis_iter_close(it);
	return rc == MANTIS_DONE ? n : -1;
}

static long sc_fixed(struct sc_ctx *c, const unsigned char *prefix)
{
	uint64_t it;

	if (mantis_iter_open(c->dbh, 0, prefix, SC_PLEN, &it) != MANTIS_OK)
		return -1;
	return mantis_iter_close(it) == MANTIS_OK ? 1 : -1;
}

/* The nodes of prefix's keys, in a section the caller holds. */
static size_t sc_nodes(struct sc_ctx *c, const unsigned char *prefix, void **out)
{
	unsigned char end[SC_PLEN];

	memcpy(end, prefix, SC_PLEN);
	for (int i = SC_PLEN - 1; i >= 0 && ++end[i] == 0; i--) /* the next prefix */
		;
	return mt_bpt_scan(&c->db->sl.tree, prefix, SC_PLEN, 0, end, SC_PLEN, out, SC_GROUP);
}

static long sc_index(struct sc_ctx *c, const unsigned char *prefix)
{
	ck_epoch_record_t *r = mt_epoch_record();
	void *nodes[SC_GROUP];
	size_t n;

	mt_epoch_begin(r, NULL);
	n = sc_nodes(c, prefix, nodes);
	mt_epoch_end(r, NULL);
	__asm__ __volatile__("" ::"r"(nodes) : "memory");
	return (long)n;
}

static void sc_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static long sc_walk(struct sc_ctx *c, const unsigned char *prefix)
{
	ck_epoch_record_t *r = mt_epoch_record();
	void *nodes[SC_GROUP];
	size_t n, used = 0;

	mt_epoch_begin(r, NULL);
	n = sc_nodes(c, prefix, nodes);
	for (size_t i = 0; i < n && i < SC_AHEAD; i++)
		__builtin_prefetch(nodes[i]);
	for (size_t i = 0; i < n; i++) {
		const struct mt_sl_node *nd = nodes[i];
		const struct mt_sl_ver *v;

		if (i + SC_AHEAD < n)
			__builtin_prefetch(nodes[i + SC_AHEAD]);
		if (i + SC_AHEAD / 2 < n) { /* both lines of a 100-byte value's version */
			const char *pv = (const char *)mt_sl_node_head(nodes[i + SC_AHEAD / 2]);

			__builtin_prefetch(pv);
			__builtin_prefetch(pv + 64);
		}
		v = mt_sl_node_head(nd);
		sc_le32(c->buf + used, nd->klen);
		sc_le32(c->buf + used + 4, v->vlen);
		memcpy(c->buf + used + 8, mt_sl_node_key(nd), nd->klen);
		memcpy(c->buf + used + 8 + nd->klen, mt_sl_ver_value(v), v->vlen);
		used += 8 + (size_t)nd->klen + v->vlen;
	}
	mt_epoch_end(r, NULL);
	return (long)n;
}

struct sc_res {
	double per_s, per_cpu_s; /* per thread: entries (fixed: scans) per second, per CPU-second */
	int errors;
};

struct sc_job {
	struct sc_ctx c; /* a copy with the thread's own buffer */
	enum sc_kind k;
	uint64_t dur_ns, seed;
	uint64_t n, cpu_ns;
	int errors;
	pthread_barrier_t *start;
};

static void *sc_job_main(void *p)
{
	long (*const fn[SC_KINDS])(struct sc_ctx *, const unsigned char *) = {sc_mantis, sc_fixed,
	                                                                      sc_walk, sc_index};
	struct sc_job *j = p;
	uint64_t rng = j->seed, t0, c0;
	unsigned char prefix[SC_KLEN];

	pthread_barrier_wait(j->start);
	t0 = bench_now_ns();
	c0 = bench_cpu_ns();
	for (uint64_t i = 0;; i++) {
		long e;

		if ((i & 63) == 0 && bench_now_ns() - t0 >= j->dur_ns)
			break;
		bench_key16(prefix, (bench_rand(&rng) % j->c.groups) * SC_GROUP);
		e = fn[j->k](&j->c, prefix);
		if (e < 0 || (j->k != SC_FIXED && e != SC_GROUP))
			j->errors++;
		else
			j->n += (uint64_t)e;
	}
	j->cpu_ns = bench_cpu_ns() - c0;
	mantis_thread_release();
	return NULL;
}

/* Runs kind k on threads threads (each over its own random prefixes). */
static struct sc_res sc_measure(const struct sc_ctx *c, enum sc_kind k, int threads,
                                uint64_t dur_ns, uint64_t seed)
{
	struct sc_job j[SC_MAXTHREADS];
	pthread_t t[SC_MAXTHREADS];
	pthread_barrier_t start;
	struct sc_res res = {0};
	uint64_t n = 0, cpu = 0, t0, t1;

	pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
	for (int i = 0; i < threads; i++) {
		j[i] = (struct sc_job){.c = *c, .k = k, .dur_ns = dur_ns, .start = &start};
		j[i].seed = seed * 31 + (uint64_t)i;
		j[i].c.buf = malloc(SC_CAP);
		if (j[i].c.buf == NULL || pthread_create(&t[i], NULL, sc_job_main, &j[i]) != 0) {
			fprintf(stderr, "bench: scan: thread start failed\n");
			exit(2);
		}
	}
	pthread_barrier_wait(&start);
	t0 = bench_now_ns();
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		n += j[i].n;
		cpu += j[i].cpu_ns;
		res.errors += j[i].errors;
		free(j[i].c.buf);
	}
	t1 = bench_now_ns();
	pthread_barrier_destroy(&start);
	res.per_s = (double)n * 1e9 / (double)(t1 - t0) / threads;
	res.per_cpu_s = (double)n * 1e9 / (double)cpu;
	return res;
}

static int sc_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double sc_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), sc_cmp);
	return v[n / 2];
}

/* Loads nkeys keys in random order; returns the resident growth in bytes. */
static int sc_load(struct sc_ctx *c, size_t nkeys, size_t *rss_bytes)
{
	uint32_t *perm = malloc(nkeys * sizeof(*perm));
	unsigned char key[SC_KLEN], val[SC_VLEN];
	uint64_t rng = 12345, rss0;

	if (perm == NULL)
		return -1;
	bench_shuffle(perm, nkeys, &rng);
	mt_epoch_barrier();
	rss0 = bench_proc_kb("/proc/self/status", "VmRSS:");
	for (size_t i = 0; i < nkeys; i++) {
		bench_key16(key, perm[i]);
		for (int b = 0; b < SC_VLEN; b++)
			val[b] = (unsigned char)(perm[i] >> (8 * (b % 4))) ^ (unsigned char)b;
		if (mantis_db_put(c->dbh, key, SC_KLEN, val, SC_VLEN, 0, NULL) != MANTIS_OK) {
			free(perm);
			return -1;
		}
	}
	free(perm);
	*rss_bytes = (size_t)(bench_proc_kb("/proc/self/status", "VmRSS:") - rss0) * 1024;
	return 0;
}

/* The rows of a round: what, on how many threads. */
static const struct {
	enum sc_kind k;
	int threads;
} sc_rows[] = {{SC_MANTIS, 1}, {SC_FIXED, 1},  {SC_WALK, 1},
               {SC_INDEX, 1},  {SC_MANTIS, 2}, {SC_WALK, 2}};
#define SC_NROWS (int)(sizeof(sc_rows) / sizeof(sc_rows[0]))

int bench_scan_run(const struct bench_config *cfg)
{
	size_t nkeys = cfg->quick ? 100000 : 1000000, rss = 0;
	uint64_t dur_ns = cfg->quick ? 300000000ull : 1000000000ull;
	double per_s[SC_NROWS][SC_ROUNDS], per_cpu[SC_NROWS][SC_ROUNDS], chase[SC_ROUNDS];
	struct sc_ctx c = {.groups = nkeys / SC_GROUP};
	const char *lp = getenv("MIMALLOC_LARGE_OS_PAGES");
	void *obj;
	int errors = 0;
	char json[512];

	if (mantis_db_open(NULL, &c.dbh) != MANTIS_OK) {
		fprintf(stderr, "bench: scan: open failed\n");
		return 1;
	}
	if (mt_handle_acquire(c.dbh, MT_HANDLE_DB, &obj) != MANTIS_OK ||
	    sc_load(&c, nkeys, &rss) != 0) {
		fprintf(stderr, "bench: scan: load failed\n");
		return 1;
	}
	c.db = obj;
	printf("scan: %zu keys, 16-byte keys, 100-byte values, %d rounds of %.1f s each; "
	       "per thread: entries/s (fixed: scans/s), wall and per CPU-second\n",
	       nkeys, SC_ROUNDS, (double)dur_ns / 1e9);
	for (int round = 0; round < SC_ROUNDS; round++) {
		for (int w = 0; w < SC_NROWS; w++) {
			struct sc_res r = sc_measure(&c, sc_rows[w].k, sc_rows[w].threads, dur_ns,
			                             777 + (uint64_t)round);

			per_s[w][round] = r.per_s;
			per_cpu[w][round] = r.per_cpu_s;
			errors += r.errors;
			printf("scan round %d %-7s %d thread(s) %7.2fM/s %7.2fM/CPU-s%s\n", round,
			       sc_names[sc_rows[w].k], sc_rows[w].threads, r.per_s / 1e6,
			       r.per_cpu_s / 1e6, r.errors ? "  ERRORS" : "");
		}
		chase[round] = bench_chase_ns(rss, lp != NULL && lp[0] == '1');
		printf("scan round %d chase   %.1f ns per dependent load over %zu MiB (CPU)\n",
		       round, chase[round], rss >> 20);
		fflush(stdout);
	}
	{
		double ch = sc_median(chase, SC_ROUNDS), m[SC_NROWS], mc[SC_NROWS];

		printf("scan medians of %d rounds (chase %.1f ns):\n", SC_ROUNDS, ch);
		for (int w = 0; w < SC_NROWS; w++) {
			m[w] = sc_median(per_s[w], SC_ROUNDS);
			mc[w] = sc_median(per_cpu[w], SC_ROUNDS);
			printf("  %-7s %d thread(s) %7.2fM/s %7.2fM/CPU-s  %6.0f ns CPU per %s = "
			       "%.2f chase\n",
			       sc_names[sc_rows[w].k], sc_rows[w].threads, m[w] / 1e6, mc[w] / 1e6,
			       1e9 / mc[w], sc_rows[w].k == SC_FIXED ? "scan" : "entry",
			       1e9 / mc[w] / ch);
			snprintf(json, sizeof(json),
			         "{\"suite\": \"scan\", \"workload\": \"%s\", \"threads\": %d, "
			         "\"keys\": %zu, \"per_sec_per_thread\": %.0f, \"per_cpu_sec\": "
			         "%.0f, "
			         "\"chase_ns\": %.1f}",
			         sc_names[sc_rows[w].k], sc_rows[w].threads, nkeys, m[w], mc[w],
			         ch);
			bench_record(json);
		}
		printf("  target: mantis >= 20M entries/s per thread (1 thread): %s (%.2fM wall, "
		       "%.2fM per CPU-s); mantis/walk %.2f (1 thread, CPU), %.2f (2 threads)\n",
		       m[0] >= 20e6 ? "met" : "missed", m[0] / 1e6, mc[0] / 1e6, mc[0] / mc[2],
		       mc[4] / mc[5]);
	}
	mt_handle_release(c.dbh);
	(void)mantis_db_close(c.dbh);
	mantis_thread_release();
	if (errors)
		fprintf(stderr, "scan: %d scans returned a wrong count\n", errors);
	return errors != 0;
}
