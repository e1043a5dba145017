/*
 * bench_txn.c - writers beside transactions (--only txn): what opening
 * snapshots costs the writers in flight.
 *
 * Two threads put random keys of 100 thousand into an empty db (16-byte
 * keys, 100-byte values: inserts at first, then overwrites) while a third
 * opens and closes snapshots in a loop, as a stream of transactions
 * begins; 3 threads on the machine's 2 cores. Modes:
 *
 *   none      no third thread (the anchor)
 *   snap-seq  mantis_snapshot_open asking for the sequence number: exact,
 *             so every write in flight at the open is killed and retries
 *             (mt_db.c, CONFLICT CHECKS)
 *   snap      mantis_snapshot_open without it, as transactions open theirs
 *             (mantis_db_commit checks against the snapshot's own view):
 *             no writer is disturbed
 *
 * Printed per mode: puts/s (both writers, wall time), the puts' p99 and
 * p99.9, and snapshots/s. A mode is compared with none in the same run.
 */
#include "bench.h"
#include "mantis.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TX_KEYS    100000
#define TX_VLEN    100
#define TX_WRITERS 2

enum tx_mode { TX_NONE, TX_SNAP_SEQ, TX_SNAP, TX_MODES };
static const char *const tx_names[TX_MODES] = {"none", "snap-seq", "snap"};

struct tx_ctx {
	uint64_t db;
	uint64_t puts; /* per writer */
	enum tx_mode mode;
	int stop;
	uint64_t snaps;
	struct bench_hist hist[TX_WRITERS];
	int failed;
};

struct tx_arg {
	struct tx_ctx *c;
	int id;
};

static void *tx_writer(void *p)
{
	struct tx_arg *a = p;
	uint64_t rnd = 0x9e3779b97f4a7c15ull * (uint64_t)(a->id + 1);
	uint8_t key[16], val[TX_VLEN];

	memset(val, 'v', sizeof(val));
	for (uint64_t i = 0; i < a->c->puts; i++) {
		uint64_t t0;

		bench_key16(key, bench_rand(&rnd) % TX_KEYS);
		t0 = bench_now_ns();
		if (mantis_db_put(a->c->db, key, sizeof(key), val, sizeof(val), 0, NULL) !=
		    MANTIS_OK) {
			__atomic_store_n(&a->c->failed, 1, __ATOMIC_RELAXED);
			break;
		}
		bench_hist_add(&a->c->hist[a->id], bench_now_ns() - t0);
	}
	return NULL;
}

static void *tx_snapper(void *p)
{
	struct tx_ctx *c = p;
	uint64_t n = 0;

	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		uint64_t snap, seq;

		if (mantis_snapshot_open(c->db, &snap, c->mode == TX_SNAP_SEQ ? &seq : NULL) !=
		            MANTIS_OK ||
		    mantis_snapshot_close(snap) != MANTIS_OK) {
			__atomic_store_n(&c->failed, 1, __ATOMIC_RELAXED);
			break;
		}
		n++;
	}
	c->snaps = n;
	return NULL;
}

/* One mode on a fresh db. Returns 0, or 1 if a call failed. */
static int tx_run(enum tx_mode mode, uint64_t puts, double out[4])
{
	struct tx_ctx *c = calloc(1, sizeof(*c));
	struct tx_arg args[TX_WRITERS];
	pthread_t w[TX_WRITERS], s;
	struct bench_hist all;
	uint64_t t0, el;
	int failed;

	if (c == NULL || mantis_db_open(NULL, &c->db) != MANTIS_OK)
		return 1;
	c->puts = puts;
	c->mode = mode;
	t0 = bench_now_ns();
	if (mode != TX_NONE)
		pthread_create(&s, NULL, tx_snapper, c);
	for (int i = 0; i < TX_WRITERS; i++) {
		args[i] = (struct tx_arg){c, i};
		pthread_create(&w[i], NULL, tx_writer, &args[i]);
	}
	for (int i = 0; i < TX_WRITERS; i++)
		pthread_join(w[i], NULL);
	el = bench_now_ns() - t0;
	__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
	if (mode != TX_NONE)
		pthread_join(s, NULL);
	memset(&all, 0, sizeof(all));
	for (int i = 0; i < TX_WRITERS; i++)
		bench_hist_merge(&all, &c->hist[i]);
	out[0] = (double)(puts * TX_WRITERS) * 1e9 / (double)el;
	out[1] = (double)bench_hist_quantile(&all, 0.99);
	out[2] = (double)bench_hist_quantile(&all, 0.999);
	out[3] = (double)c->snaps * 1e9 / (double)el;
	failed = c->failed;
	mantis_db_close(c->db);
	free(c);
	return failed;
}

int bench_txn_run(const struct bench_config *cfg)
{
	uint64_t puts = cfg->quick ? 100000 : 1000000;
	double r[TX_MODES][4];
	char json[512];

	printf("== txn: %d writers (puts of %d keys) beside a thread opening snapshots\n",
	       TX_WRITERS, TX_KEYS);
	for (int m = 0; m < TX_MODES; m++) {
		if (tx_run((enum tx_mode)m, puts, r[m]) != 0) {
			fprintf(stderr, "bench txn: a call failed (%s)\n", tx_names[m]);
			return 1;
		}
		printf("  %-9s %6.2fM puts/s (%.2fx none), p99 %7.0f ns, p99.9 %8.0f ns, %8.0f "
		       "snapshots/s\n",
		       tx_names[m], r[m][0] / 1e6, r[m][0] / r[0][0], r[m][1], r[m][2], r[m][3]);
		snprintf(
		        json, sizeof(json),
		        "{\"suite\": \"txn\", \"workload\": \"%s\", \"writers\": %d, \"keys\": %d, "
		        "\"puts_per_sec\": %.0f, \"p99_ns\": %.0f, \"p999_ns\": %.0f, "
		        "\"snapshots_per_sec\": %.0f}",
		        tx_names[m], TX_WRITERS, TX_KEYS, r[m][0], r[m][1], r[m][2], r[m][3]);
		bench_record(json);
	}
	return 0;
}
