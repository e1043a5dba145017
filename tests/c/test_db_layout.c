/*
 * test_db_layout.c - key nodes born with their first version inline
 * (mt_skiplist.c, COMPACTION): a key written once is one block; overwrites
 * link standalone versions above the inline one; once no snapshot reads
 * the inline version, the node moves to a plain node and its block is
 * freed. Each test checks values at every snapshot, the memory counter
 * and the invariant checker (which knows the layout: F1).
 */
#include "mantis.h"
#include "mt_check.h"
#include "mt_clock.h"
#include "mt_db.h"
#include "mt_epoch.h"
#include "mt_handle.h"
#include "mt_alloc.h"
#include "mt_slidx.h"
#include "test_db_util.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <unistd.h>

static uint64_t tl_mem(void)
{
	mt_epoch_barrier();
	return mt_sl_mem_bytes();
}

enum { TL_ABSENT, TL_INLINE_HEAD, TL_INLINE_BELOW, TL_PLAIN };

/* The form of key k's node: absent, a block whose head is its inline
 * version, a block whose inline version is below newer ones, or plain. */
static int tl_form(uint64_t dbh, const char *k)
{
	ck_epoch_record_t *r = NULL;
	struct mt_db *db;
	struct mt_sl_node *n;
	int form = TL_ABSENT;

	cr_assert_eq(mt_handle_enter(dbh, MT_HANDLE_DB, &r, (void **)&db), MANTIS_OK);
	n = mt_sl_find(&db->sl, k, strlen(k));
	if (n != NULL && !(n->flags & MT_SL_N_INLINE)) {
		form = TL_PLAIN;
	} else if (n != NULL) {
		struct mt_sl_ver *v = mt_sl_node_head(n);

		form = TL_INLINE_BELOW;
		if (v == mt_sl_node_inline(n))
			form = TL_INLINE_HEAD;
		else
			while (v != NULL && v != mt_sl_node_inline(n))
				v = mt_sl_ver_next(v);
		if (v == NULL)
			form = TL_PLAIN; /* inline pruned, compaction pending */
	}
	mt_handle_leave(r);
	return form;
}

Test(db_layout, written_once_is_one_block)
{
	uint64_t db = tdb_open(), mem0 = tl_mem();

	tdb_put(db, "k", "value");
	cr_assert_eq(tl_form(db, "k"), TL_INLINE_HEAD);
	/* One allocation: header, key, padding to 8, version header, value. */
	cr_assert_eq(tl_mem() - mem0, mt_sl_inline_off(1) + MT_SL_VER_HDR + 5);
	tdb_expect(db, 0, "k", "value");
	tdb_check(db);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* A key overwritten while a snapshot still reads its inline version: the
 * block stays (the snapshot reads it), and goes once the snapshot does. */
Test(db_layout, overwrite_while_a_snapshot_reads_the_inline_version)
{
	uint64_t db = tdb_open(), snap, it, after_one, reclaimed;
	const void *k, *v;
	size_t kl, vl;

	tdb_put(db, "a", "first");
	tdb_put(db, "b", "other");
	cr_assert_eq(mantis_snapshot_open(db, &snap, NULL), MANTIS_OK);
	cr_assert_eq(mantis_iter_open(db, snap, NULL, 0, &it), MANTIS_OK);
	cr_assert_eq(mantis_iter_next(it, &k, &kl, &v, &vl), MANTIS_OK);
	cr_assert(kl == 1 && memcmp(k, "a", 1) == 0 && vl == 5 && memcmp(v, "first", 5) == 0);
	for (int i = 0; i < 50; i++)
		tdb_put(db, "a", i % 2 ? "second" : "third!");
	cr_assert_eq(tl_form(db, "a"), TL_INLINE_BELOW, "the snapshot needs the inline version");
	tdb_expect(db, snap, "a", "first");
	tdb_expect(db, 0, "a", "second");
	/* The iterator's pointers stay valid (it pins the node: no move). */
	cr_assert_eq(memcmp(v, "first", 5), 0);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	cr_assert_eq(mantis_db_sweep(db, &reclaimed), MANTIS_OK);
	cr_assert_eq(tl_form(db, "a"), TL_INLINE_BELOW, "the iterator still reads it");
	cr_assert_eq(memcmp(v, "first", 5), 0);
	cr_assert_eq(mantis_iter_next(it, &k, &kl, &v, &vl), MANTIS_OK);
	cr_assert(kl == 1 && memcmp(k, "b", 1) == 0 && vl == 5 && memcmp(v, "other", 5) == 0);
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(mantis_db_sweep(db, &reclaimed), MANTIS_OK);
	cr_assert_eq(tl_form(db, "a"), TL_PLAIN, "moved out of its block");
	cr_assert_eq(tl_form(db, "b"), TL_INLINE_HEAD);
	cr_assert_eq(tdb_stats(db).versions, 2);
	tdb_expect(db, 0, "a", "second");
	tdb_check(db);
	/* Further overwrites of a plain node keep its memory constant. */
	after_one = tl_mem();
	for (int i = 0; i < 50; i++)
		tdb_put(db, "a", i % 2 ? "second" : "third!");
	cr_assert_eq(tl_mem(), after_one);
	tdb_check(db);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* Without a snapshot the first overwrite compacts at once, and the block,
 * the version and the plain node all go with a delete. */
Test(db_layout, delete_and_reinsert)
{
	uint64_t mem0 = tl_mem();
	uint64_t db = tdb_open(), base = tl_mem(), snap;

	tdb_put(db, "k", "v1");
	tdb_put(db, "k", "v2");
	cr_assert_eq(tl_form(db, "k"), TL_PLAIN);
	tdb_del(db, "k");
	cr_assert_eq(tl_form(db, "k"), TL_ABSENT);
	cr_assert_eq(tl_mem(), base, "block, node and versions freed");
	/* A delete of a key written once frees its block. */
	tdb_put(db, "k", "v3");
	cr_assert_eq(tl_form(db, "k"), TL_INLINE_HEAD);
	tdb_del(db, "k");
	cr_assert_eq(tl_mem(), base);
	/* Reinserted under a snapshot that saw it deleted and one that saw it
	 * live: the same node keeps the whole history. */
	tdb_put(db, "k", "v4");
	cr_assert_eq(mantis_snapshot_open(db, &snap, NULL), MANTIS_OK);
	tdb_del(db, "k");
	tdb_put(db, "k", "v5");
	cr_assert_eq(tl_form(db, "k"), TL_INLINE_BELOW);
	tdb_expect(db, snap, "k", "v4");
	tdb_expect(db, 0, "k", "v5");
	tdb_check(db);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	tdb_put(db, "k", "v6");
	cr_assert_eq(tl_form(db, "k"), TL_PLAIN);
	cr_assert_eq(tdb_stats(db).versions, 1);
	tdb_expect(db, 0, "k", "v6");
	tdb_check(db);
	tdb_del(db, "k");
	cr_assert_eq(tl_mem(), base);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
	cr_assert_eq(tl_mem(), mem0);
}

/* A reader that found the node before it moved (in the same section):
 * it reads the moved-to node's chain through it, a pin fails and
 * mt_sl_moved_to names the node that holds the key now, and a writer that
 * found it links into that node. */
Test(db_layout, a_node_found_before_it_moved)
{
	uint64_t dbh = tdb_open(), base;
	ck_epoch_record_t *r = NULL;
	struct mt_db *db;
	struct mt_sl_node *n, *m;
	uint64_t now = 0;
	struct mt_sl_ver *v;

	tdb_put(dbh, "k", "one");
	tdb_put(dbh, "j", "jay");
	cr_assert_eq(mt_handle_enter(dbh, MT_HANDLE_DB, &r, (void **)&db), MANTIS_OK);
	n = mt_sl_find(&db->sl, "k", 1);
	cr_assert(n != NULL && (n->flags & MT_SL_N_INLINE));
	tdb_put(dbh, "k", "two"); /* compacts n (no snapshot) */
	cr_assert_eq(ck_pr_load_32(&n->state) & (MT_SL_REMOVED | MT_SL_MOVING),
	             MT_SL_REMOVED | MT_SL_MOVING);
	m = mt_sl_node_moved(n);
	cr_assert(m != NULL && m != n && !(m->flags & MT_SL_N_INLINE));
	cr_assert_eq(mt_sl_find(&db->sl, "k", 1), m);
	cr_assert_eq(mt_sl_node_head(n), mt_sl_node_head(m));
	v = mt_db_visible(n, ck_pr_load_64(&db->published), &now);
	cr_assert(v != NULL && v->vlen == 3 && memcmp(mt_sl_ver_value(v), "two", 3) == 0);
	cr_assert_eq(mt_sl_pin(n), 0);
	cr_assert_eq(mt_sl_moved_to(n), m);
	/* A removed node that did not move is dead. */
	tdb_del(dbh, "j");
	/* (j's node was freed only after this section: still readable) */
	tdb_put(dbh, "k", "three"); /* m is plain: links, no move */
	cr_assert_eq(mt_sl_node_moved(m), NULL);
	v = mt_db_visible(n, ck_pr_load_64(&db->published), &now);
	cr_assert(v != NULL && memcmp(mt_sl_ver_value(v), "three", 5) == 0);
	mt_handle_leave(r);
	tdb_expect(dbh, 0, "k", "three");
	tdb_expect(dbh, 0, "j", NULL);
	tdb_check(dbh);
	base = tl_mem();
	tdb_put(dbh, "k", "four!");
	cr_assert_eq(tl_mem(), base);
	cr_assert_eq(mantis_db_close(dbh), MANTIS_OK);
}

/* Takes k's node out of the point index (as a full bucket pair or a
 * resize in flight would leave it). */
static void tl_unindex(uint64_t dbh, const char *k)
{
	ck_epoch_record_t *r = NULL;
	struct mt_db *db;
	struct mt_sl_node *n;

	cr_assert_eq(mt_handle_enter(dbh, MT_HANDLE_DB, &r, (void **)&db), MANTIS_OK);
	n = mt_sl_find(&db->sl, k, strlen(k));
	cr_assert_not_null(n);
	cr_assert(mt_slx_unindex(&db->sl, n));
	mt_handle_leave(r);
}

/* A write to an existing key the index misses: the writer allocates a new
 * node with its version inline, its tree insert meets the key's node, and
 * it links a standalone copy there (allocated inside the ordered window:
 * every allocation failure there aborts the write cleanly). */
Test(db_layout, a_key_the_index_misses)
{
	uint64_t db = tdb_open(), snap, mem, n;

	tdb_put(db, "k", "v1");
	cr_assert_eq(mantis_snapshot_open(db, &snap, NULL), MANTIS_OK);
	tl_unindex(db, "k");
	tdb_put(db, "k", "v2");
	tdb_expect(db, snap, "k", "v1");
	tdb_expect(db, 0, "k", "v2");
	cr_assert_eq(tl_form(db, "k"), TL_INLINE_BELOW, "linked into the key's own node");
	tdb_check(db);
	mem = tl_mem();
	for (n = 1;; n++) {
		int rc;

		cr_assert_lt(n, 50, "never succeeded");
		tl_unindex(db, "k");
		mt_alloc_fail_after(n);
		rc = mantis_db_put(db, "k", 1, "v3", 2, 0, NULL);
		mt_alloc_fail_after(0);
		if (rc == MANTIS_OK)
			break;
		cr_assert_eq(rc, MANTIS_ENOMEM);
		tdb_expect(db, 0, "k", "v2");
		tdb_expect(db, snap, "k", "v1");
		cr_assert_eq(mantis_db_sweep(db, NULL), MANTIS_OK); /* aborted versions */
		cr_assert_eq(tl_mem(), mem, "N=%llu: nothing left behind", (unsigned long long)n);
	}
	cr_assert_geq(n, 3, "the node, the copy (after the seq was taken)");
	tdb_expect(db, 0, "k", "v3");
	tdb_expect(db, snap, "k", "v1");
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	tdb_check(db);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* An iterator about to pin a node that a prune compacts at that moment:
 * the pin fails, and the iterator pins the node it moved to and returns
 * the key (which was live throughout) instead of skipping it. The hook
 * prunes the node the iterator is about to pin, inside the iterator's
 * section, as another thread could. */
static struct mt_db *tl_hook_db;
static int tl_hook_moves;

static void tl_prune_before_pin(struct mt_sl_node *n)
{
	ck_epoch_record_t *r = mt_epoch_record();

	if (!(n->flags & MT_SL_N_INLINE) || mt_sl_node_head(n) == mt_sl_node_inline(n))
		return;
	mt_db_prune_node(tl_hook_db, r, n, 1);
	tl_hook_moves += mt_sl_node_moved(n) != NULL;
}

Test(db_layout, an_iterator_pins_a_node_that_moves)
{
	uint64_t dbh = tdb_open(), snap, it;
	ck_epoch_record_t *r = NULL;
	char key[32];

	for (int i = 0; i < 20; i++) {
		tdb_key(key, sizeof(key), "k", (uint64_t)i);
		tdb_put(dbh, key, "v1");
	}
	/* Overwritten under a snapshot (the inline versions stay), which
	 * closes after the iterator opened: the inline versions are dead to
	 * every reader but not pruned yet when the iterator reaches them. */
	cr_assert_eq(mantis_snapshot_open(dbh, &snap, NULL), MANTIS_OK);
	for (int i = 0; i < 20; i++) {
		tdb_key(key, sizeof(key), "k", (uint64_t)i);
		tdb_put(dbh, key, "v2");
	}
	cr_assert_eq(mantis_iter_open(dbh, 0, "k", 1, &it), MANTIS_OK);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	cr_assert_eq(mt_handle_enter(dbh, MT_HANDLE_DB, &r, (void **)&tl_hook_db), MANTIS_OK);
	mt_handle_leave(r);
	tl_hook_moves = 0;
	mt_iter_test_before_pin = tl_prune_before_pin;
	cr_assert_str_eq(tdb_iter_all(it),
	                 "k00000000=v2;k00000001=v2;k00000002=v2;k00000003=v2;k00000004=v2;"
	                 "k00000005=v2;k00000006=v2;k00000007=v2;k00000008=v2;k00000009=v2;"
	                 "k00000010=v2;k00000011=v2;k00000012=v2;k00000013=v2;k00000014=v2;"
	                 "k00000015=v2;k00000016=v2;k00000017=v2;k00000018=v2;k00000019=v2;");
	mt_iter_test_before_pin = NULL;
	cr_assert_eq(tl_hook_moves, 20, "every node moved just before its pin");
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	for (int i = 0; i < 20; i++) {
		tdb_key(key, sizeof(key), "k", (uint64_t)i);
		cr_assert_eq(tl_form(dbh, key), TL_PLAIN);
	}
	tdb_check(dbh);
	cr_assert_eq(mantis_db_close(dbh), MANTIS_OK);
}

/* An expired inline version: reads prune the node away; a TTL put over
 * an inline one compacts too. */
Test(db_layout, ttl_inline_versions)
{
	uint64_t db = tdb_open(), base = tl_mem();

	cr_assert_eq(mantis_db_put(db, "t", 1, "ttl", 3, 10, NULL), MANTIS_OK);
	cr_assert_eq(tl_form(db, "t"), TL_INLINE_HEAD);
	mt_clock_advance_ms(20);
	tdb_expect(db, 0, "t", NULL);
	cr_assert_eq(tl_form(db, "t"), TL_ABSENT, "the read pruned the expired key");
	cr_assert_eq(tl_mem(), base);
	tdb_put(db, "u", "plain");
	cr_assert_eq(mantis_db_put(db, "u", 1, "ttl", 3, 1000, NULL), MANTIS_OK);
	cr_assert_eq(tl_form(db, "u"), TL_PLAIN);
	tdb_expect(db, 0, "u", "ttl");
	tdb_check(db);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* A batch over new and existing keys under one seq: new keys are blocks,
 * existing ones compact; a CHECK conflict aborts inline versions too. */
Test(db_layout, batches_and_aborts)
{
	uint64_t db = tdb_open(), seq = 0, snap;
	struct tdb_batch b = {0};

	tdb_put(db, "x", "old");
	cr_assert_eq(mantis_snapshot_open(db, &snap, NULL), MANTIS_OK);
	tdb_batch_put(&b, "x", "new");
	tdb_batch_put(&b, "y", "fresh");
	cr_assert_eq(mantis_db_write(db, b.buf, b.len, 0, &seq), MANTIS_OK);
	cr_assert_eq(tl_form(db, "y"), TL_INLINE_HEAD);
	cr_assert_eq(tl_form(db, "x"), TL_INLINE_BELOW);
	tdb_expect(db, snap, "y", NULL);
	tdb_expect(db, snap, "x", "old");
	tdb_batch_free(&b);
	/* A conflicting batch with a new key: its node, with its inline
	 * version ABORTED, must read as absent and go away. */
	tdb_batch_check(&b, "x");
	tdb_batch_put(&b, "z", "never");
	cr_assert_eq(mantis_db_write(db, b.buf, b.len, 1, NULL), MANTIS_CONFLICT);
	tdb_expect(db, 0, "z", NULL);
	tdb_batch_free(&b);
	cr_assert_eq(mantis_snapshot_close(snap), MANTIS_OK);
	cr_assert_eq(mantis_db_sweep(db, NULL), MANTIS_OK);
	tdb_put(db, "z", "now");
	tdb_expect(db, 0, "z", "now");
	tdb_expect(db, 0, "x", "new");
	cr_assert_eq(mantis_db_sweep(db, NULL), MANTIS_OK);
	cr_assert_eq(tdb_stats(db).versions, 3);
	tdb_check(db);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}

/* Iterators racing compactions: every key stays present throughout (only
 * overwritten), so every full scan must see every key, in order, whichever
 * nodes moved under it (a pin that fails on a moved node follows it). */
#define TL_KEYS 4000

struct tl_arg {
	uint64_t db;
	int id;
	int *stop;
	uint64_t scans;
};

static void *tl_writer(void *p)
{
	struct tl_arg *a = p;
	char key[32], val[32];
	uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(a->id + 1);

	for (uint64_t i = 0; !__atomic_load_n(a->stop, __ATOMIC_ACQUIRE); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		tdb_key(key, sizeof(key), "k", x % TL_KEYS);
		snprintf(val, sizeof(val), "w%d-%llu", a->id, (unsigned long long)i);
		cr_assert_eq(mantis_db_put(a->db, key, strlen(key), val, strlen(val), 0, NULL),
		             MANTIS_OK);
	}
	return NULL;
}

static void *tl_scanner(void *p)
{
	struct tl_arg *a = p;
	unsigned char buf[4096];

	while (!__atomic_load_n(a->stop, __ATOMIC_ACQUIRE)) {
		uint64_t it, seen = 0;
		size_t len;
		uint32_t count;
		char last[32] = "";
		int rc;

		cr_assert_eq(mantis_iter_open(a->db, 0, "k", 1, &it), MANTIS_OK);
		while ((rc = mantis_iter_next_chunk(it, buf, sizeof(buf), 7, &len, &count)) ==
		       MANTIS_OK) {
			size_t o = 0;

			for (uint32_t e = 0; e < count; e++) {
				uint32_t kl, vl;
				char k[32];

				memcpy(&kl, buf + o, 4);
				memcpy(&vl, buf + o + 4, 4);
				cr_assert_lt(kl, sizeof(k));
				memcpy(k, buf + o + 8, kl);
				k[kl] = '\0';
				cr_assert_gt(strcmp(k, last), 0, "order: %s after %s", k, last);
				memcpy(last, k, kl + 1);
				o += 8 + kl + vl;
				seen++;
			}
		}
		cr_assert_eq(rc, MANTIS_DONE);
		cr_assert_eq(seen, TL_KEYS, "a scan missed keys that were present throughout");
		cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
		a->scans++;
	}
	return NULL;
}

Test(db_layout, scans_racing_compactions, .timeout = 120)
{
	uint64_t db = tdb_open(), rounds = test_scaled(6);
	pthread_t th[4];
	struct tl_arg args[4];
	char key[32];

	for (uint64_t round = 0; round < rounds; round++) {
		int stop = 0;

		/* Fresh blocks each round: delete everything, load again. */
		for (int i = 0; i < TL_KEYS; i++) {
			tdb_key(key, sizeof(key), "k", (uint64_t)i);
			if (round > 0)
				tdb_del(db, key);
			tdb_put(db, key, "loaded");
		}
		for (int t = 0; t < 4; t++) {
			args[t] = (struct tl_arg){db, t, &stop, 0};
			cr_assert_eq(pthread_create(&th[t], NULL, t < 2 ? tl_writer : tl_scanner,
			                            &args[t]),
			             0);
		}
		usleep(300 * 1000);
		__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
		for (int t = 0; t < 4; t++)
			pthread_join(th[t], NULL);
		cr_assert_gt(args[2].scans + args[3].scans, 0);
		cr_assert_eq(tdb_stats(db).entries, TL_KEYS);
		tdb_check(db);
	}
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}
