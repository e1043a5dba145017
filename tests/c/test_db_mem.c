/*
 * test_db_mem.c - memory comes back: after overwrites, deletes, expiry,
 * snapshots and iterators let go, and after close; measured with the
 * engine's stats (versions, bytes) and with its allocation counter
 * (mt_sl_mem_bytes: node and version bytes allocated and not yet freed).
 * And allocation failure: every call retried with the Nth allocation
 * failing, N = 1, 2, ... until it succeeds, each failure MANTIS_ENOMEM
 * with nothing half-written visible and nothing leaked.
 */
#include "mantis.h"
#include "mt_alloc.h"
#include "mt_db.h"
#include "mt_epoch.h"
#include "mt_handle.h"
#include "mt_skiplist.h"
#include "mt_slidx.h"
#include "test_db_util.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <pthread.h>

/* Allocated node/version bytes once every deferred free has run. */
static uint64_t tm_mem(void)
{
	mt_epoch_barrier();
	return mt_sl_mem_bytes();
}

Test(db_mem, overwrites_do_not_grow)
{
	uint64_t mem0 = tm_mem();
	uint64_t n = test_scaled(20000), db = tdb_open(), base;
	char val[32];

	tdb_put(db, "hot", "value-000000");
	tdb_put(db, "cold", "x");
	base = tm_mem();
	for (uint64_t i = 0; i < n; i++) {
		snprintf(val, sizeof(val), "value-%06llu", (unsigned long long)(i % 1000000));
		tdb_put(db, "hot", val);
	}
	cr_assert_eq(tdb_stats(db).versions, 2);
	cr_assert_eq(tdb_stats(db).bytes, 3 + 12 + 4 + 1);
	cr_assert_eq(tm_mem(), base, "every replaced version freed");
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
	cr_assert_eq(tm_mem(), mem0, "close frees everything");
}

Test(db_mem, deletes_return_everything)
{
	uint64_t mem0 = tm_mem();
	uint64_t n = test_scaled(10000), db = tdb_open(), base = tm_mem();
	char key[32];

	for (uint64_t i = 0; i < n; i++) {
		tdb_key(key, sizeof(key), "k", i);
		tdb_put(db, key, "some value bytes");
	}
	cr_assert_gt(tm_mem(), base + n * (16 + 9 + 16));
	for (uint64_t i = 0; i < n; i++) {
		tdb_key(key, sizeof(key), "k", (i * 7) % n == i ? i : i);
		tdb_del(db, key);
	}
	mantis_db_stats_t st = tdb_stats(db);
	cr_assert_eq(st.entries, 0);
	cr_assert_eq(st.versions, 0, "tombstones and nodes removed at once");
	cr_assert_eq(st.bytes, 0);
	cr_assert_eq(tm_mem(), base, "only the empty list is left");
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
	cr_assert_eq(tm_mem(), mem0);
}

Test(db_mem, snapshots_hold_versions_until_closed)
{
	uint64_t mem0 = tm_mem();
	uint64_t n = test_scaled(2000), db = tdb_open(), snap, it, loaded, reclaimed;
	char key[32];

	for (uint64_t i = 0; i < n; i++) {
		tdb_key(key, sizeof(key), "k", i);
		tdb_put(db, key, "v0");
	}
	loaded = tm_mem();
	cr_assert_eq(mantis_snapshot_open(db, &snap, NULL), MANTIS_OK);
	cr_assert_eq(mantis_iter_open(db, 0, NULL, 0, &it), MANTIS_OK);
	for (int round = 1; round <= 5; round++) {
		for (uint64_t i = 0; i < n; i++) {
			tdb_key(key, sizeof(key), "k", i);
			tdb_put(db, key, round == 5 ? "v0" : "vX");
		}
	}
	/* The snapshot and the iterator were taken at the same state: the
	 * versions of rounds 1..4 are dead, v0 and the newest held. */
	cr_assert_eq(tdb_stats(db).versions, 2 * n + 4 * n, "not pruned: writes prune lazily");
	cr_assert_eq(mantis_db_sweep(db, &reclaimed), MANTIS_OK);
	cr_assert_eq(reclaimed, 4 * n, "the middle versions no snapshot sees");
	cr_assert_eq(tdb_stats(db).versions, 2 * n);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	cr_assert_eq(mantis_db_sweep(db, &reclaimed), MANTIS_OK);
	cr_assert_eq(reclaimed, 0, "the iterator still holds them");
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(mantis_db_sweep(db, &reclaimed), MANTIS_OK);
	cr_assert_eq(reclaimed, n);
	cr_assert_eq(tdb_stats(db).versions, n);
	cr_assert_eq(tm_mem(), loaded, "back to one version per key");
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
	cr_assert_eq(tm_mem(), mem0);
}

Test(db_mem, expired_entries_are_swept)
{
	uint64_t n = test_scaled(5000), db = tdb_open(), base = tm_mem(), reclaimed;
	char key[32];

	tdb_put(db, "keep", "me");
	for (uint64_t i = 0; i < n; i++) {
		tdb_key(key, sizeof(key), "t", i);
		cr_assert_eq(mantis_db_put(db, key, strlen(key), "ttl", 3, 100 + i % 50, NULL),
		             MANTIS_OK);
	}
	cr_assert_eq(tdb_stats(db).entries, n + 1);
	mt_clock_advance_ms(1000);
	cr_assert_eq(mantis_db_sweep(db, &reclaimed), MANTIS_OK);
	cr_assert_eq(reclaimed, n);
	cr_assert_eq(tdb_stats(db).entries, 1);
	cr_assert_eq(tdb_stats(db).versions, 1);
	tdb_del(db, "keep");
	cr_assert_eq(tm_mem(), base);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* A parked iterator delays only its own node's removal. */
Test(db_mem, parked_iterator_pins_one_node)
{
	uint64_t db = tdb_open(), it, base = tm_mem(), reclaimed;
	const void *k;
	size_t kl;

	tdb_put(db, "a", "1");
	tdb_put(db, "b", "2");
	tdb_put(db, "c", "3");
	cr_assert_eq(mantis_iter_open(db, 0, NULL, 0, &it), MANTIS_OK);
	cr_assert_eq(mantis_iter_next(it, &k, &kl, NULL, NULL), MANTIS_OK); /* on "a" */
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(mantis_iter_open(db, 0, NULL, 0, &it), MANTIS_OK);
	cr_assert_eq(mantis_iter_next(it, &k, &kl, NULL, NULL), MANTIS_OK);
	cr_assert_eq(mantis_iter_next(it, &k, &kl, NULL, NULL), MANTIS_OK); /* on "b" */
	tdb_del(db, "a");
	tdb_del(db, "b");
	tdb_del(db, "c");
	cr_assert_eq(mantis_db_sweep(db, &reclaimed), MANTIS_OK);
	/* Deleted keys' versions the iterator's snapshot needs are kept. */
	cr_assert_eq(tdb_stats(db).entries, 0);
	cr_assert_eq(mantis_iter_next(it, &k, &kl, NULL, NULL), MANTIS_OK);
	cr_assert_eq(memcmp(k, "c", 1), 0, "the snapshot still sees c");
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(mantis_db_sweep(db, &reclaimed), MANTIS_OK);
	cr_assert_eq(tdb_stats(db).versions, 0);
	cr_assert_eq(tm_mem(), base);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* ------------------------------------------------------------ allocation failure */

/* Runs op with the Nth allocation failing for N = 1, 2, ... until it
 * succeeds; every failure must be MANTIS_ENOMEM and pass check. Returns
 * the number of failures seen. */
#define TM_FAIL_LOOP(op, check)                                                                    \
	({                                                                                         \
		uint64_t fn_ = 1;                                                                  \
		int frc_;                                                                          \
		for (;; fn_++) {                                                                   \
			cr_assert_lt(fn_, 200, "never succeeded");                                 \
			mt_alloc_fail_after(fn_);                                                  \
			frc_ = (op);                                                               \
			mt_alloc_fail_after(0);                                                    \
			if (frc_ == MANTIS_OK)                                                     \
				break;                                                             \
			cr_assert_eq(frc_, MANTIS_ENOMEM, "N=%llu: %s", (unsigned long long)fn_,   \
			             mantis_strerror(frc_));                                       \
			check;                                                                     \
		}                                                                                  \
		fn_ - 1;                                                                           \
	})

Test(db_mem, enomem_open_close)
{
	uint64_t mem0 = tm_mem();
	uint64_t db = 0, open0 = mt_handle_open_count();
	uint64_t fails = TM_FAIL_LOOP(mantis_db_open(NULL, &db), {
		cr_assert_eq(mt_handle_open_count(), open0);
		cr_assert_eq(mt_sl_mem_bytes(), mem0);
	});

	cr_assert_geq(fails, 1);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
	cr_assert_eq(tm_mem(), mem0);
}

Test(db_mem, enomem_put_and_delete)
{
	uint64_t mem0 = tm_mem();
	uint64_t db = tdb_open(), fails, mem;
	mantis_db_stats_t st0;

	tdb_put(db, "old", "value");
	st0 = tdb_stats(db);
	mem = tm_mem();
	/* A new key needs a version and a node (after its seq is taken). */
	fails = TM_FAIL_LOOP(mantis_db_put(db, "new", 3, "v", 1, 0, NULL), {
		tdb_expect(db, 0, "new", NULL);
		cr_assert_eq(tdb_stats(db).entries, st0.entries);
		cr_assert_eq(tdb_stats(db).writes, st0.writes);
		cr_assert_eq(tm_mem(), mem, "nothing leaked or left behind");
	});
	cr_assert_geq(fails, 2, "version and node");
	tdb_expect(db, 0, "new", "v");
	/* An existing key: only a version. */
	mem = tm_mem();
	fails = TM_FAIL_LOOP(mantis_db_put(db, "old", 3, "other", 5, 0, NULL), {
		tdb_expect(db, 0, "old", "value");
		cr_assert_eq(tm_mem(), mem);
	});
	cr_assert_geq(fails, 1);
	tdb_expect(db, 0, "old", "other");
	fails = TM_FAIL_LOOP(mantis_db_delete(db, "old", 3, NULL),
	                     { tdb_expect(db, 0, "old", "other"); });
	cr_assert_geq(fails, 1);
	tdb_expect(db, 0, "old", NULL);
	cr_assert_eq(tdb_stats(db).entries, 1);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
	cr_assert_eq(tm_mem(), mem0);
}

/* A batch of new and existing keys failing at every allocation, including
 * node allocations after the batch has linked some of its versions. */
Test(db_mem, enomem_batch_nothing_half_written)
{
	uint64_t mem0 = tm_mem();
	uint64_t db = tdb_open(), fails, snap, mem;
	struct tdb_batch b = {0};
	char key[32];
	const int nk = 12; /* more than the stack records: the array is allocated */

	for (int i = 0; i < nk; i += 3) {
		tdb_key(key, sizeof(key), "k", (uint64_t)i);
		tdb_put(db, key, "old");
	}
	for (int i = 0; i < nk; i++) {
		tdb_key(key, sizeof(key), "k", (uint64_t)i);
		tdb_batch_rec(&b, MANTIS_OP_PUT, key, (uint32_t)strlen(key), "new", 3, 0);
	}
	tdb_batch_del(&b, "k00000003");
	cr_assert_eq(mantis_snapshot_open(db, &snap, NULL), MANTIS_OK);
	mem = tm_mem();
	fails = TM_FAIL_LOOP(mantis_db_write(db, b.buf, b.len, 0, NULL), {
		for (int i = 0; i < nk; i++) {
			tdb_key(key, sizeof(key), "k", (uint64_t)i);
			tdb_expect(db, 0, key, i % 3 == 0 ? "old" : NULL);
		}
		{
			uint64_t it;

			cr_assert_eq(mantis_iter_open(db, 0, NULL, 0, &it), MANTIS_OK);
			cr_assert_str_eq(
			        tdb_iter_all(it),
			        "k00000000=old;k00000003=old;k00000006=old;k00000009=old;");
			cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
		}
		cr_assert_eq(tdb_stats(db).entries, 4);
		/* Aborted versions go once no reader needs them. */
		cr_assert_eq(mantis_db_sweep(db, NULL), MANTIS_OK);
	});
	cr_assert_geq(fails, 1 + (uint64_t)nk + 8, "array, versions, nodes");
	for (int i = 0; i < nk; i++) {
		tdb_key(key, sizeof(key), "k", (uint64_t)i);
		tdb_expect(db, 0, key, i == 3 ? NULL : "new");
	}
	cr_assert_eq(tdb_stats(db).entries, (uint64_t)nk - 1);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	(void)mem;
	tdb_batch_free(&b);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
	cr_assert_eq(tm_mem(), mem0);
}

Test(db_mem, enomem_snapshots_iterators_multiget)
{
	uint64_t mem0 = tm_mem();
	uint64_t db = tdb_open(), snap = 0, it = 0, open0, fails;
	unsigned char kb[8], out[16];
	size_t olen;

	tdb_put(db, "a", "1");
	open0 = mt_handle_open_count();
	/* The first snapshot of a db allocates its slot chunk too. */
	fails = TM_FAIL_LOOP(mantis_snapshot_open(db, &snap, NULL), {
		cr_assert_eq(mt_handle_open_count(), open0);
		cr_assert_eq(tdb_stats(db).snapshots, 0);
	});
	cr_assert_geq(fails, 2);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	fails = TM_FAIL_LOOP(mantis_iter_open(db, 0, "a", 1, &it), {
		cr_assert_eq(mt_handle_open_count(), open0);
		cr_assert_eq(tdb_stats(db).snapshots, 0);
	});
	cr_assert_geq(fails, 1);
	cr_assert_str_eq(tdb_iter_all(it), "a=1;");
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	tdb_le32(kb, 1);
	kb[4] = 'a';
	(void)TM_FAIL_LOOP(mantis_db_multiget(db, 0, kb, 5, 1, out, sizeof(out), &olen),
	                   { cr_assert_eq(tdb_stats(db).snapshots, 0); });
	cr_assert_eq(olen, 5);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
	cr_assert_eq(tm_mem(), mem0);
}

/* A thread's first call allocates its epoch record. */
static void *tm_fresh_thread(void *arg)
{
	uint64_t db = *(uint64_t *)arg;
	int rc;

	mt_alloc_fail_after(1);
	rc = mantis_db_put(db, "t", 1, "v", 1, 0, NULL);
	mt_alloc_fail_after(0);
	cr_assert_eq(rc, MANTIS_ENOMEM);
	tdb_expect(db, 0, "t", NULL);
	cr_assert_eq(mantis_db_put(db, "t", 1, "v", 1, 0, NULL), MANTIS_OK);
	return NULL;
}

Test(db_mem, enomem_first_call_of_a_thread)
{
	uint64_t db = tdb_open();
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, tm_fresh_thread, &db), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	tdb_expect(db, 0, "t", "v");
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* The point index grows with the keys and shrinks back after deletes. */
Test(db_mem, point_index_grows_and_shrinks)
{
	uint64_t mem0 = tm_mem();
	uint64_t n = test_scaled(20000), db = tdb_open(), slots0, before;
	struct mt_db *obj;
	char key[32];

	cr_assert_eq(mt_handle_acquire(db, MT_HANDLE_DB, (void **)&obj), MANTIS_OK);
	slots0 = mt_slx_slots(&obj->sl);
	for (uint64_t i = 0; i < n; i++) {
		tdb_key(key, sizeof(key), "k", i);
		tdb_put(db, key, "v");
	}
	cr_assert_geq(mt_slx_slots(&obj->sl) * 3, n * 4 - 4 * 64, "at most 3/4 full (%llu slots)",
	              (unsigned long long)mt_slx_slots(&obj->sl));
	before = tm_mem();
	for (uint64_t i = 0; i < n; i++) {
		tdb_key(key, sizeof(key), "k", i);
		tdb_expect(db, 0, key, "v");
	}
	cr_assert_eq(tm_mem(), before, "reads allocate nothing");
	for (uint64_t i = 0; i < n; i++) {
		tdb_key(key, sizeof(key), "k", i);
		tdb_del(db, key);
	}
	cr_assert_eq(mantis_db_sweep(db, NULL), MANTIS_OK);
	cr_assert_eq(mt_slx_slots(&obj->sl), slots0, "back to the smallest table");
	mt_handle_release(db);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
	cr_assert_eq(tm_mem(), mem0);
}

/* A prune that cannot allocate its carrier leaves the old versions linked
 * (the write itself succeeds); a later sweep reclaims them. */
Test(db_mem, prune_without_memory_defers_to_sweep)
{
	uint64_t mem0 = tm_mem();
	uint64_t db = tdb_open(), reclaimed;

	tdb_put(db, "k", "one");
	tdb_put(db, "gone", "x");
	/* 1st allocation: the new version; 2nd: the prune's carrier. */
	mt_alloc_fail_after(2);
	cr_assert_eq(mantis_db_put(db, "k", 1, "two", 3, 0, NULL), MANTIS_OK);
	cr_assert_eq(mantis_db_delete(db, "gone", 4, NULL), MANTIS_ENOMEM);
	mt_alloc_fail_after(0);
	tdb_expect(db, 0, "k", "two");
	cr_assert_eq(tdb_stats(db).versions, 3, "k's old version stays for now");
	/* A delete whose prune and removal both lack memory. */
	mt_alloc_fail_after(2);
	cr_assert_eq(mantis_db_delete(db, "gone", 4, NULL), MANTIS_OK);
	mt_alloc_fail_after(0);
	tdb_expect(db, 0, "gone", NULL);
	cr_assert_eq(tdb_stats(db).versions, 4);
	cr_assert_eq(tdb_stats(db).entries, 1);
	cr_assert_eq(mantis_db_sweep(db, &reclaimed), MANTIS_OK);
	cr_assert_eq(reclaimed, 3, "k's old version, gone's value and tombstone");
	cr_assert_eq(tdb_stats(db).versions, 1);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
	cr_assert_eq(tm_mem(), mem0);
}
