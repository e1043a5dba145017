/*
 * mt_skiplist.c - key nodes with MVCC version chains, ordered by the OLC
 * B+tree of mt_bptree.c. (The file keeps the name of the skiplist it
 * replaced, and its prefix: the chains, pruning, removal and pins are what
 * it holds; the towers are gone.)
 *
 * STRUCTURE
 *
 * A key node holds one key (copied after its header) and a chain of
 * versions, newest (highest seq) first. A version is a put (value bytes,
 * maybe an expiry) or a tombstone, and has the seq of the write that made
 * it. The MVCC rules (which seqs a reader may read) live in mt_db.c; here a
 * "reader at seq S" reads the newest version with seq <= S that is not
 * aborted. The tree (sl->tree) maps each key to its node; the point index
 * (mt_slidx.c) caches key -> node for point reads.
 *
 * Bit 0 of node->head is SEALED: the chain is being removed with its node
 * and writers must not add to it. Bit 0 of a version's next is set only in
 * the newest version of a removed node, where it holds the address of the
 * node's carrier for the deferred free (readers see the end of the chain).
 *
 * INVARIANTS
 *
 *  I1 The tree holds at most one node per key (mt_bpt_insert inserts only
 *     an absent key and returns the present node otherwise), and a node
 *     leaves it only through mt_bpt_remove(key, node) or
 *     mt_bpt_replace(key, node, fresh), both conditional on the key still
 *     mapping to that node: each node leaves the tree exactly once, and the
 *     one call that takes it out retires its carrier (I3).
 *  I2 A node is put into the tree complete: its key and its first version
 *     (seq set) are written before the insert, whose leaf unlock releases
 *     them. Removal never starts while INSERTING is set (the inserter
 *     clears it after installing the node's index slot).
 *  I3 A removed node's REMOVED bit is set before its chain is cut into its
 *     carrier, and the head version's tagged link (the carrier's address)
 *     is stored after the carrier is filled. Only after that tag is the
 *     node taken out of the tree: by its remover (mt_bpt_remove), or by a
 *     writer of the same key that met the sealed, tagged head and replaced
 *     the node with a new one (mt_bpt_replace); whichever call succeeds
 *     hands the carrier to the epoch.
 *  I4 A chain is ordered by seq, newest first. A writer links its version
 *     (seq s, not yet ready, so s > published >= min_seq) after the last
 *     version with seq > s; those versions are above min_seq too (a lower
 *     seq linked below a higher one that is not ABORTED aborts: mt_db.c,
 *     SAME-KEY ORDER, so committed versions become ready in chain order,
 *     though a reader may meet a ready one above pending ones). The only
 *     other changes to a chain are by the one pruner that holds PRUNING:
 *     it unlinks versions at or below min_seq (all decided: published or
 *     aborted), and writers never link below such a version, because their
 *     seq is above min_seq. So a writer's CAS and a pruner's CAS can meet
 *     on one link only when the pruner unlinks an aborted version right
 *     after a link a writer targets; one of the two CASes fails and retries.
 *  I5 A node in the tree always has a version (a new node is inserted with
 *     its first version already in place), so a removed node always has a
 *     head version, whose link then holds the node's carrier (tagged).
 *
 * MVCC PRUNING (mt_sl_prune)
 *
 * Let V be the newest version of a chain that is committed (not aborted) and
 * has seq <= min_seq, min_seq being at or below every seq a reader may use.
 * Every reader reads V or something newer, so everything below V is dead:
 * the pruner cuts V->next and retires the versions below (once V's writer
 * has set its DONE flag: until then it still reads below V, see mt_db.c). Aborted versions
 * at or below a published seq are unlinked one by one (the head too, by a
 * CAS on node->head that fails if a writer linked a newer head, unless it is
 * the chain's only version). Sweeps also unlink "middle" versions between
 * snapshots: a committed version u whose nearest newer committed version u'
 * has seq <= aged (a published seq read a grace period ago: every reader
 * now running, registered or not, reads at or above it, so none needs u)
 * and such that no registered snapshot s has u <= s < u' (the snapshots
 * scanned after aged was read; any registered later reads >= aged). If V is a tombstone, or an
 * expired put, and nothing above it is live (everything above is aborted),
 * the whole key is dead: the node is removed. Removal seals the head (a CAS
 * that fails if a writer has just linked a newer version), then sets REMOVED
 * unless the node is pinned by an iterator, still INSERTING, or its index
 * slot cannot be cleared (then it unseals and gives up: removal is only
 * ever an optimisation), raises the list owner's removed_seq, cuts the
 * chain below the head into the node's carrier (allocated before the seal:
 * no memory, no removal), tags the head's next with the carrier's address
 * and removes the node from the tree (I3). Writers that meet a sealed head
 * wait for the seal to go (the remover gave up: link again) or for the tag
 * (then they replace the node with a new one, or insert one if the remover
 * took it out first).
 *
 * MEMORY RECLAMATION
 *
 * Nodes and versions are freed by the library's epoch domain (mt_epoch): a
 * version unlinked from its chain, or a node taken out of the tree, is
 * handed to mt_epoch_call, and its callback runs only when every section
 * active at that moment has ended. Readers (every tree search, chain walk
 * and iterator step) run inside a section, and a reader reaches a node only
 * through the tree or the point index, which stop holding it before it is
 * retired (the index slot is cleared before REMOVED, the tree entry before
 * the carrier is handed over); the tree's own nodes are never freed while
 * it lives. Versions: a version is only unlinked by the cut below V or by
 * unlinking an aborted version, both read-frozen links (nothing is linked
 * below V), so the same argument holds along a chain. Versions and nodes
 * carry no epoch entry: what a prune unlinks goes into a carrier (allocated
 * by the prune; if that fails, the prune leaves things linked), and a
 * carrier is handed to mt_epoch_call. Unlinked versions are never written
 * again, so readers still on them see intact fields.
 *
 * Iterators hold positions across calls (and across threads) outside any
 * section by pinning their node: a pinned node cannot be REMOVED, so its
 * key stays valid as the point a scan resumes after, and the version an
 * iterator returned is the one visible at its live snapshot, which no prune
 * unlinks (it is V or newer for every min_seq).
 *
 * READS NEVER BLOCK
 *
 * Point reads go through the index (mt_slidx.c: CASes into a free slot,
 * given up on any race), else a tree get; tree readers take no lock and
 * restart on a concurrent change, and wait (spin, then futex) only for a
 * writer's bounded critical section on a leaf (mt_bptree.c). Writers wait
 * for a sealed head (the remover's few steps); in mt_db.c, only for a free
 * ready-ring slot and, with a conflict check, for the seqs below theirs.
 */
#include "mt_skiplist.h"

#include "mantis.h"
#include "mt_alloc.h"
#include "mt_slidx.h"
#include "mt_wait.h"

#include <assert.h>
#include <pthread.h>
#include <string.h>

/* ------------------------------------------------------------ accounting */

struct mt_sl_memstripe {
	uint64_t bytes; /* allocated minus freed, wraps: summed as signed */
	char pad[2 * CK_MD_CACHELINE - sizeof(uint64_t)]; /* line pairs */
} CK_CC_CACHELINE;

static struct mt_sl_memstripe mt_sl_mem[MT_SL_STRIPES];

/*
 * Stripe ownership. A thread claims a stripe of its own (1..63) from a
 * bitmap on first use and gives it back when it exits (a pthread key
 * destructor), so while it runs no other thread writes that stripe and
 * its counters need no locked instruction (mt_sl_stripe_add). Threads that
 * find none free (more than 63 alive) all share stripe 0 with atomic adds.
 * A released stripe keeps its sums: the next owner adds to them.
 */
__thread int mt_sl_stripe_tls;
static uint64_t mt_sl_stripe_bits = 1u; /* stripe 0 is never owned */
static pthread_once_t mt_sl_stripe_once = PTHREAD_ONCE_INIT;
static pthread_key_t mt_sl_stripe_key;
static int mt_sl_stripe_key_ok;

static void mt_sl_stripe_release(void *arg)
{
	unsigned s = (unsigned)(uintptr_t)arg - 1;

	mt_sl_stripe_tls = 0;
	/* Full barrier (locked): this thread's last counter stores are
	 * visible before the next owner's claiming CAS. */
	ck_pr_and_64(&mt_sl_stripe_bits, ~(1ull << s));
}

static void mt_sl_stripe_setup(void)
{
	mt_sl_stripe_key_ok = pthread_key_create(&mt_sl_stripe_key, mt_sl_stripe_release) == 0;
}

unsigned mt_sl_stripe_slow(void)
{
	uint64_t b;

	pthread_once(&mt_sl_stripe_once, mt_sl_stripe_setup);
	while (mt_sl_stripe_key_ok && (b = ck_pr_load_64(&mt_sl_stripe_bits)) != ~0ull) {
		unsigned s = (unsigned)__builtin_ctzll(~b);

		/* Claim stripe s; fails if another thread changed the map. */
		if (!ck_pr_cas_64(&mt_sl_stripe_bits, b, b | 1ull << s))
			continue;
		if (pthread_setspecific(mt_sl_stripe_key, (void *)(uintptr_t)(s + 1)) != 0) {
			ck_pr_and_64(&mt_sl_stripe_bits, ~(1ull << s));
			break;
		}
		mt_sl_stripe_tls = (int)s + 1;
		return s;
	}
	mt_sl_stripe_tls = -1; /* shared stripe 0 */
	return 0;
}

void mt_sl_mem_add(int64_t d)
{
	mt_sl_stripe_add(&mt_sl_mem[mt_sl_thread_stripe()].bytes, (uint64_t)d);
}

uint64_t mt_sl_mem_bytes(void)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < MT_SL_STRIPES; i++)
		sum += ck_pr_load_64(&mt_sl_mem[i].bytes);
	return sum;
}

/* ------------------------------------------------------------ allocation */

static size_t mt_sl_ver_size(const struct mt_sl_ver *v)
{
	return MT_SL_VER_HDR + ((mt_sl_ver_seqf(v) & MT_SL_V_TTL) ? sizeof(uint64_t) : 0) + v->vlen;
}

static size_t mt_sl_node_size(size_t klen)
{
	return sizeof(struct mt_sl_node) + klen;
}

struct mt_sl_ver *mt_sl_ver_new(const void *value, size_t vlen, uint64_t expiry_ms, int tomb)
{
	size_t extra = expiry_ms != 0 ? sizeof(uint64_t) : 0;
	size_t size = MT_SL_VER_HDR + extra + vlen;
	struct mt_sl_ver *v;

	assert(vlen == 0 || value != NULL);
	assert(vlen <= UINT32_MAX);
	v = mt_malloc(size);
	if (v == NULL)
		return NULL;
	v->next = NULL;
	v->seqf = (tomb ? MT_SL_V_TOMB : 0) | (extra ? MT_SL_V_TTL : 0);
	v->vlen = (uint32_t)vlen;
	if (extra)
		memcpy(v->data, &expiry_ms, sizeof(expiry_ms));
	if (vlen > 0)
		memcpy(v->data + extra, value, vlen);
	mt_sl_mem_add((int64_t)size);
	return v;
}

void mt_sl_ver_free_unlinked(struct mt_sl_ver *v)
{
	if (v == NULL)
		return;
	mt_sl_mem_add(-(int64_t)mt_sl_ver_size(v));
	mt_free(v);
}

static struct mt_sl_node *mt_sl_node_new(const void *key, size_t klen, struct mt_sl_ver *head)
{
	struct mt_sl_node *n;
	size_t size = mt_sl_node_size(klen);

	assert(klen >= 1 && klen <= UINT16_MAX);
	n = mt_malloc(size);
	if (n == NULL)
		return NULL;
	n->head = head;
	n->state = MT_SL_INSERTING;
	n->klen = (uint16_t)klen;
	n->reserved = 0;
	memcpy((unsigned char *)(n + 1), key, klen);
	mt_sl_mem_add((int64_t)size);
	return n;
}

/* Frees a node that was never linked (its head version stays the caller's). */
static void mt_sl_node_free_unlinked(struct mt_sl_node *n)
{
	mt_sl_mem_add(-(int64_t)mt_sl_node_size(n->klen));
	mt_free(n);
}

/*
 * A carrier hands unlinked memory to the epoch: versions carry no epoch
 * entry of their own (16 bytes per version saved), so a prune allocates one
 * carrier for what it unlinks, and skips what it cannot carry (pruning is
 * always optional). A removed node's carrier is allocated before the
 * removal commits and holds the node and its last versions; the node's head
 * version points to it (tagged) so that whoever takes the node out of the
 * tree can hand it to the epoch (I3).
 */
struct mt_sl_carrier {
	ck_epoch_entry_t epoch;
	struct mt_sl_node *node; /* a removed node, or NULL */
	uint32_t n, cap;
	struct mt_sl_ver *v[];
};

static size_t mt_sl_carrier_size(uint32_t cap)
{
	return sizeof(struct mt_sl_carrier) + cap * sizeof(struct mt_sl_ver *);
}

static struct mt_sl_carrier *mt_sl_carrier_new(uint32_t cap)
{
	struct mt_sl_carrier *c = mt_malloc(mt_sl_carrier_size(cap));

	if (c == NULL)
		return NULL;
	c->node = NULL;
	c->n = 0;
	c->cap = cap;
	mt_sl_mem_add((int64_t)mt_sl_carrier_size(cap));
	return c;
}

/* Frees a carrier and everything in it (after a grace period, or at
 * destruction). */
static void mt_sl_carrier_free(struct mt_sl_carrier *c)
{
	for (uint32_t i = 0; i < c->n; i++)
		mt_sl_ver_free_unlinked(c->v[i]);
	if (c->node != NULL)
		mt_sl_node_free_unlinked(c->node);
	mt_sl_mem_add(-(int64_t)mt_sl_carrier_size(c->cap));
	mt_free(c);
}

static void mt_sl_carrier_cb(ck_epoch_entry_t *e)
{
	mt_epoch_reclaim_acquire();
	mt_sl_carrier_free(
	        (struct mt_sl_carrier *)((char *)e - offsetof(struct mt_sl_carrier, epoch)));
}

/* Hands a carrier to the epoch (an empty one is just freed). */
static void mt_sl_carrier_retire(ck_epoch_record_t *r, struct mt_sl_carrier *c)
{
	if (c == NULL)
		return;
	if (c->n == 0 && c->node == NULL)
		mt_sl_carrier_free(c);
	else
		mt_epoch_call(r, &c->epoch, mt_sl_carrier_cb);
}

/* Makes room for k more versions in *c (retiring a full one). Returns 0 if
 * no carrier could be allocated: the caller then leaves them linked. */
static int mt_sl_carrier_room(ck_epoch_record_t *r, struct mt_sl_carrier **c, uint32_t k)
{
	struct mt_sl_carrier *fresh;

	if (*c != NULL && (*c)->cap - (*c)->n >= k)
		return 1;
	fresh = mt_sl_carrier_new(k > 8 ? k : 8);
	if (fresh == NULL)
		return 0;
	mt_sl_carrier_retire(r, *c);
	*c = fresh;
	return 1;
}

/* The carrier of a removed node: its last version's tagged link. */
static struct mt_sl_carrier *mt_sl_node_carrier(const struct mt_sl_node *n)
{
	struct mt_sl_ver *h = mt_sl_node_head(n);
	uintptr_t t = (uintptr_t)ck_pr_load_ptr(&h->next);

	assert((t & 1u) != 0);
	/* Acquire: pairs with the remover's release before the tag, so the
	 * carrier's fill is seen by whoever retires it. */
	ck_pr_fence_load();
	return (struct mt_sl_carrier *)(t & ~(uintptr_t)1);
}

/* ------------------------------------------------------------ init/destroy */

/* The tree's key function: a node's key bytes (valid while the node is, by
 * the epoch rule above). */
static const unsigned char *mt_sl_bpt_key(const void *item, size_t *klen)
{
	const struct mt_sl_node *n = item;

	*klen = n->klen;
	return mt_sl_node_key(n);
}

static uint64_t mt_sl_tree_mem; /* mt_sl_tree_bytes (atomic) */

uint64_t mt_sl_tree_bytes(void)
{
	return ck_pr_load_64(&mt_sl_tree_mem);
}

/* Brings the tree's bytes counted in mt_sl_tree_bytes up to date (after
 * inserts, which are what grows it). Each change is counted once: the CAS
 * moves tree_acct from what this thread read to what it adds up to. */
static void mt_sl_tree_acct(struct mt_sl *sl)
{
	for (;;) {
		uint64_t had = ck_pr_load_64(&sl->tree_acct);
		uint64_t now = mt_bpt_mem_bytes(&sl->tree);

		if (now == had)
			return;
		/* Fails if another thread counted a change first: re-read. */
		if (ck_pr_cas_64(&sl->tree_acct, had, now)) {
			ck_pr_add_64(&mt_sl_tree_mem, now - had);
			return;
		}
	}
}

int mt_sl_init(struct mt_sl *sl)
{
	if (mt_bpt_init(&sl->tree, mt_sl_bpt_key, 0) != MANTIS_OK)
		return MANTIS_ENOMEM;
	sl->tree_acct = 0;
	mt_sl_tree_acct(sl);
	if (mt_slx_init(sl) != MANTIS_OK) {
		ck_pr_sub_64(&mt_sl_tree_mem, sl->tree_acct);
		mt_bpt_destroy(&sl->tree);
		return MANTIS_ENOMEM;
	}
	return MANTIS_OK;
}

/* Frees a chain from v down (single-threaded). */
static void mt_sl_free_chain(struct mt_sl_ver *v)
{
	while (v != NULL) {
		struct mt_sl_ver *next = mt_sl_ver_next(v);

		mt_sl_ver_free_unlinked(v);
		v = next;
	}
}

void mt_sl_destroy(struct mt_sl *sl)
{
	struct mt_sl_node *b[MT_SL_CUR_MAX], *dead = NULL, *last = NULL;
	size_t got;

	if (sl->idx == NULL)
		return;
	/* Every node in the tree is live: a removal takes its node out of the
	 * tree before its call returns (I3). A scan compares the keys of the
	 * nodes around its start, so no node is freed while the walk goes on:
	 * each one's chain is freed and the node is threaded through its head
	 * (the key, all the tree reads, stays intact), then freed after. */
	do {
		got = mt_bpt_scan(&sl->tree, last != NULL ? mt_sl_node_key(last) : NULL,
		                  last != NULL ? last->klen : 0, last != NULL, NULL, 0, (void **)b,
		                  MT_SL_CUR_MAX);
		for (size_t i = 0; i < got; i++) {
			assert((ck_pr_load_32(&b[i]->state) & MT_SL_REMOVED) == 0);
			assert((ck_pr_load_32(&b[i]->state) >> MT_SL_PIN_SHIFT) == 0);
			mt_sl_free_chain(mt_sl_node_head(b[i]));
			b[i]->head = (struct mt_sl_ver *)dead;
			dead = b[i];
		}
		last = got > 0 ? b[got - 1] : NULL;
	} while (last != NULL);
	while (dead != NULL) {
		struct mt_sl_node *n = dead;

		dead = (struct mt_sl_node *)n->head;
		mt_sl_node_free_unlinked(n);
	}
	ck_pr_sub_64(&mt_sl_tree_mem, ck_pr_load_64(&sl->tree_acct));
	mt_bpt_destroy(&sl->tree);
	mt_slx_destroy(sl);
}

/* ------------------------------------------------------------ searches */

struct mt_sl_node *mt_sl_seek(const struct mt_sl *sl, const void *key, size_t klen)
{
	void *n = NULL;

	if (mt_bpt_scan(&sl->tree, key, key != NULL ? klen : 0, 0, NULL, 0, &n, 1) == 0)
		return NULL;
	return n;
}

struct mt_sl_node *mt_sl_find(struct mt_sl *sl, const void *key, size_t klen, uint64_t h)
{
	struct mt_sl_node *n = mt_slx_lookup(sl, key, klen, h);

	if (n != NULL)
		return n;
	n = mt_bpt_get(&sl->tree, key, klen);
	if (n != NULL)
		mt_slx_install(sl, n, h, 0); /* next time, the short way */
	return n;
}

struct mt_sl_node *mt_sl_succ(const struct mt_sl *sl, const struct mt_sl_node *n)
{
	void *s = NULL;

	if (mt_bpt_scan(&sl->tree, mt_sl_node_key(n), n->klen, 1, NULL, 0, &s, 1) == 0)
		return NULL;
	return s;
}

/* Refills c with up to c->want nodes from key (after: past key). */
static struct mt_sl_node *mt_sl_cur_fill(struct mt_sl_cur *c, const void *key, size_t klen,
                                         int after)
{
	c->n = (uint32_t)mt_bpt_scan(&c->sl->tree, key, klen, after, c->end, c->elen, (void **)c->b,
	                             c->want);
	c->i = 0;
	c->ended = c->n < c->want;
	/* Start the first nodes' misses together (a walk prefetches the
	 * rest as it goes: mt_iter.c). */
	for (uint32_t k = 0; k < c->n && k < MT_SL_CUR_AHEAD; k++)
		__builtin_prefetch(c->b[k]);
	if (c->want < MT_SL_CUR_MAX)
		c->want *= 2; /* a walk that goes on reads larger chunks */
	return c->n > 0 ? c->b[0] : NULL;
}

void mt_sl_cur_more(struct mt_sl_cur *c)
{
	uint32_t left = c->n - c->i, want = c->want, got;
	const struct mt_sl_node *last = c->b[c->n - 1];

	assert(c->n > 0 && c->i < c->n && !c->ended);
	/* Keep b[i..n) (the current node and those ahead, some already
	 * prefetched by the walker) at the front; read after the last one,
	 * a node of this section (its key bytes stay valid). */
	memmove(c->b, c->b + c->i, left * sizeof(struct mt_sl_node *));
	c->i = 0;
	c->n = left;
	if (want > MT_SL_CUR_MAX - left)
		want = MT_SL_CUR_MAX - left;
	got = (uint32_t)mt_bpt_scan(&c->sl->tree, mt_sl_node_key(last), last->klen, 1, c->end,
	                            c->elen, (void **)(c->b + left), want);
	c->n = left + got;
	c->ended = got < want;
	if (c->want < MT_SL_CUR_MAX)
		c->want *= 2;
}

void mt_sl_cur_start(struct mt_sl_cur *c, const struct mt_sl *sl, const void *end, size_t elen,
                     uint32_t want)
{
	assert(want >= 1 && want <= MT_SL_CUR_MAX);
	c->sl = sl;
	c->end = end;
	c->elen = end != NULL ? elen : 0;
	c->want = want;
	c->i = c->n = 0;
	c->ended = 0;
}

struct mt_sl_node *mt_sl_cur_first(struct mt_sl_cur *c, const void *key, size_t klen)
{
	return mt_sl_cur_fill(c, key, key != NULL ? klen : 0, 0);
}

struct mt_sl_node *mt_sl_cur_seek(struct mt_sl_cur *c, const struct mt_sl *sl, const void *key,
                                  size_t klen)
{
	mt_sl_cur_start(c, sl, NULL, 0, 4);
	return mt_sl_cur_first(c, key, klen);
}

struct mt_sl_node *mt_sl_cur_next_slow(struct mt_sl_cur *c, const struct mt_sl *sl,
                                       const struct mt_sl_node *n)
{
	if (c->sl != sl) /* a fresh cursor, resuming after n */
		mt_sl_cur_start(c, sl, NULL, 0, 4);
	else if (c->n > 0 && c->b[c->i] == n && c->ended)
		return NULL; /* n is the range's last node */
	return mt_sl_cur_fill(c, mt_sl_node_key(n), n->klen, 1);
}

/* ------------------------------------------------------------ linking */

/* Links v into n's chain at its seq's place (I4). Returns 0, 1 if the
 * chain is sealed (the node is being removed), or 2 if linked below a
 * version that is not ABORTED (a higher seq: the caller must abort, see
 * SAME-KEY ORDER in mt_db.c). */
static int mt_sl_link_ver(struct mt_sl_node *n, struct mt_sl_ver *v)
{
	uint64_t s = v->seqf & MT_SL_SEQ_MASK;

	for (;;) {
		struct mt_sl_ver *h = ck_pr_load_ptr(&n->head), *pred, *cur;
		int live;

		if ((uintptr_t)h & 1u)
			return 1;
		if ((mt_sl_ver_seqf(h) & MT_SL_SEQ_MASK) < s) {
			ck_pr_store_ptr(&v->next, h);
			/* Release: v's fields before v is reachable; fails if
			 * another writer linked first or the head was sealed. */
			if (ck_pr_cas_ptr(&n->head, h, v))
				return 0;
			continue;
		}
		/* Newer versions are writes not yet published: go below them
		 * (they cannot be unlinked: seq > min_seq), noting whether one
		 * may commit (ABORTED is final once read). */
		pred = h;
		live = !(mt_sl_ver_seqf(h) & MT_SL_V_ABORTED);
		cur = ck_pr_load_ptr(&h->next);
		while (cur != NULL && !((uintptr_t)cur & 1u) &&
		       (mt_sl_ver_seqf(cur) & MT_SL_SEQ_MASK) > s) {
			live |= !(mt_sl_ver_seqf(cur) & MT_SL_V_ABORTED);
			pred = cur;
			cur = ck_pr_load_ptr(&cur->next);
		}
		if ((uintptr_t)cur & 1u)
			continue; /* the head was sealed and tagged: re-read */
		ck_pr_store_ptr(&v->next, cur);
		/* Release as above; fails if a writer or the pruner changed
		 * this link (I4), then we walk again. */
		if (ck_pr_cas_ptr(&pred->next, cur, v))
			return live ? 2 : 0;
	}
}

/* A writer met a sealed chain: wait until the seal is dropped (the prune
 * gave up: returns 0) or the head carries its carrier's tag (the node is
 * removed: returns 1). The remover's window is a few CASes, the index
 * slot's clearing and its carrier's fill, so a brief spin nearly always
 * ends it; a remover descheduled inside it costs waiters a sleep
 * (mt_wait_backoff), never a busy wait. */
static int mt_sl_wait_unsealed(struct mt_sl_node *n)
{
	unsigned spins = 0;

	for (;;) {
		uintptr_t h = (uintptr_t)ck_pr_load_ptr(&n->head);

		if (!(h & 1u))
			return 0;
		if ((uintptr_t)ck_pr_load_ptr(&((struct mt_sl_ver *)(h & ~(uintptr_t)1))->next) &
		    1u)
			return 1;
		mt_wait_backoff(&spins);
	}
}

int mt_sl_locate(struct mt_sl *sl, ck_epoch_record_t *r, const void *key, size_t klen,
                 struct mt_sl_ver *v, struct mt_sl_pos *pos)
{
	assert(key != NULL && klen > 0 && v != NULL && pos != NULL);
	pos->hash = mt_slx_hash(key, klen);
	pos->fresh = NULL;
	pos->linked = 0;
	pos->hit = 0;
	/* An existing key, the short way. */
	pos->node = mt_slx_lookup(sl, key, klen, pos->hash);
	if (pos->node != NULL) {
		pos->hit = 1;
		/* Own the head's line before taking a seq: the CAS in
		 * mt_sl_link_at, inside the ordered window, then hits. */
		__builtin_prefetch(&pos->node->head, 1);
		return MANTIS_OK;
	}
	/* Not in the index: most likely a new key. Its node, with v as its
	 * first version, ready to insert, its index reference claimed already
	 * (it is not visible yet). No tree get first: the insert in
	 * mt_sl_link_slow finds a present node itself (one descent instead of
	 * two); a key that was present after all costs this node's allocation
	 * and free (mt_sl_link_finish). */
	pos->fresh = mt_sl_node_new(key, klen, v);
	if (pos->fresh == NULL)
		return MANTIS_ENOMEM;
	pos->fresh->state |= MT_SL_INDEXED;
	return MANTIS_OK;
}

/* The general case of mt_sl_link_at: link into the key's node, replace it
 * if it was removed, or insert pos->fresh (allocated here if locate found
 * a node). */
static int mt_sl_link_slow(struct mt_sl *sl, ck_epoch_record_t *r, const void *key, size_t klen,
                           struct mt_sl_ver *v, struct mt_sl_pos *pos, struct mt_sl_node **node_out,
                           int *shadowed)
{
	struct mt_sl_node *n = pos->node;

	for (;;) {
		void *existing = NULL;
		int removed = 0;

		if (n != NULL) {
			int l = mt_sl_link_ver(n, v);

			if (l != 1) {
				pos->node = n;
				*node_out = n;
				*shadowed = l == 2;
				return MANTIS_OK;
			}
			removed = mt_sl_wait_unsealed(n);
			if (!removed)
				continue; /* unsealed: link again */
		}
		if (pos->fresh == NULL) {
			pos->fresh = mt_sl_node_new(key, klen, v);
			if (pos->fresh == NULL)
				return MANTIS_ENOMEM;
			pos->fresh->state |= MT_SL_INDEXED; /* as in locate */
		}
		/* v is the new node's only version (I2, I5). */
		ck_pr_store_ptr(&v->next, NULL);
		ck_pr_store_ptr(&pos->fresh->head, v);
		if (removed) {
			/* n is removed and tagged (I3) but may still be in the
			 * tree: take its place. Fails if its remover (or another
			 * writer) took it out first; then look again. */
			if (mt_bpt_replace(&sl->tree, key, klen, n, pos->fresh)) {
				mt_epoch_call(r, &mt_sl_node_carrier(n)->epoch, mt_sl_carrier_cb);
				break;
			}
			n = mt_bpt_get(&sl->tree, key, klen);
			continue;
		}
		/* The leaf's unlock releases the node complete (I2); fails
		 * with the present node if another writer inserted first. */
		if (mt_bpt_insert(&sl->tree, key, klen, pos->fresh, &existing) != MANTIS_OK)
			return MANTIS_ENOMEM;
		if (existing == NULL) {
			mt_sl_tree_acct(sl);
			break;
		}
		n = existing;
	}
	pos->linked = 1;
	pos->node = pos->fresh;
	*node_out = pos->fresh;
	return MANTIS_OK;
}

int mt_sl_link_at(struct mt_sl *sl, ck_epoch_record_t *r, const void *key, size_t klen,
                  struct mt_sl_ver *v, struct mt_sl_pos *pos, struct mt_sl_node **node_out,
                  int *shadowed)
{
	/* Its seq is set (taken after locate), in the writer's section. */
	assert((v->seqf & MT_SL_SEQ_MASK) != 0 && mt_epoch_in_section());
	*shadowed = 0;
	if (pos->node != NULL) {
		int l = mt_sl_link_ver(pos->node, v);

		if (l != 1) {
			*node_out = pos->node;
			*shadowed = l == 2;
			return MANTIS_OK;
		}
	}
	pos->hit = 0;
	return mt_sl_link_slow(sl, r, key, klen, v, pos, node_out, shadowed);
}

void mt_sl_link_finish(struct mt_sl *sl, ck_epoch_record_t *r, const void *key, size_t klen,
                       struct mt_sl_pos *pos)
{
	struct mt_sl_node *fresh = pos->fresh;

	if (fresh != NULL && !pos->linked) {
		/* Not used: never visible (its head version is the caller's). */
		mt_sl_node_free_unlinked(fresh);
		pos->fresh = NULL;
	}
	if (!pos->linked) {
		if (pos->node != NULL && !pos->hit)
			mt_slx_install(sl, pos->node, pos->hash, MT_SLX_EVICT);
		return;
	}
	assert(fresh != NULL); /* linked: the new node is in the tree */
	/* Release: from now on the node may be removed (I2). */
	ck_pr_and_32(&fresh->state, ~MT_SL_INSERTING);
	mt_slx_install(sl, fresh, pos->hash, MT_SLX_EVICT | MT_SLX_CLAIMED);
}

void mt_sl_pos_drop(struct mt_sl_pos *pos)
{
	if (pos->fresh != NULL && !pos->linked)
		mt_sl_node_free_unlinked(pos->fresh);
	pos->fresh = NULL;
}

/* ------------------------------------------------------------ pruning */

/* Puts an unlinked version into carrier c (room was made) and counts it. */
static void mt_sl_carry(struct mt_sl_carrier *c, struct mt_sl_ver *v, size_t klen,
                        struct mt_sl_prune_stats *st)
{
	/* Room was made for a frozen chain: no writer links below a version
	 * at or below the decided bound, nor into a chain with no pending
	 * aborted head (see mt_sl_prune), so the count taken cannot grow. */
	assert(c->n < c->cap);
	c->v[c->n++] = v;
	st->versions++;
	st->bytes += klen + v->vlen;
}

/* The length of a frozen chain from v. */
static uint32_t mt_sl_chain_len(const struct mt_sl_ver *v)
{
	uint32_t k = 0;

	for (; v != NULL; v = mt_sl_ver_next(v))
		k++;
	return k;
}

/* Carries a cut-off chain (frozen: nothing links below a cut). */
static void mt_sl_carry_chain(struct mt_sl_carrier *c, struct mt_sl_ver *v, size_t klen,
                              struct mt_sl_prune_stats *st)
{
	while (v != NULL) {
		struct mt_sl_ver *next = mt_sl_ver_next(v);

		mt_sl_carry(c, v, klen, st);
		v = next;
	}
}

static void mt_sl_raise(uint64_t *p, uint64_t v)
{
	uint64_t cur;

	while ((cur = ck_pr_load_64(p)) < v && !ck_pr_cas_64(p, cur, v))
		;
}

/* Removes dead node n whose head was h when found dead (caller holds
 * PRUNING). Returns 1 if removed, 0 if it gave up (chain unchanged). */
static int mt_sl_remove(struct mt_sl *sl, ck_epoch_record_t *r, struct mt_sl_node *n,
                        struct mt_sl_ver *h, struct mt_sl_ver *newest, uint64_t *removed_seq,
                        struct mt_sl_prune_stats *st)
{
	struct mt_sl_carrier *c;
	struct mt_sl_ver *tail;
	uint32_t s;

	/* The caller holds n's PRUNING (the chain's old end is its alone). */
	assert(ck_pr_load_32(&n->state) & MT_SL_PRUNING);
	assert(mt_epoch_in_section());
	/* The node's carrier, before anything (no memory: no removal). The
	 * chain below h is decided and only this pruner changes it. */
	c = mt_sl_carrier_new(1 + mt_sl_chain_len(mt_sl_ver_next(h)));
	if (c == NULL)
		return 0;
	/* Seal: fails if a writer linked a newer version since we looked. */
	if (!ck_pr_cas_ptr(&n->head, h, (struct mt_sl_ver *)((uintptr_t)h | 1u))) {
		mt_sl_carrier_free(c);
		return 0;
	}
	for (;;) {
		s = ck_pr_load_32(&n->state);
		if ((s & MT_SL_INSERTING) || (s >> MT_SL_PIN_SHIFT) != 0 ||
		    ((s & MT_SL_INDEXED) && !mt_slx_unindex(sl, n))) {
			/* Pinned, not fully linked, or its index slot is in
			 * flux: give up. Only the sealer changes a sealed head,
			 * so a store unseals. */
			ck_pr_store_ptr(&n->head, h);
			mt_sl_carrier_free(c);
			return 0;
		}
		if (s & MT_SL_INDEXED)
			continue; /* unindexed now: read the state again */
		/* Commit point; fails if pins, snips or an install changed
		 * the state (never with INDEXED set: X1 in mt_slidx.c). */
		if (ck_pr_cas_32(&n->state, s, s | MT_SL_REMOVED))
			break;
	}
	/* Before any reader can find the history gone (the cut below is a
	 * store after this full-barrier CAS), publish that it was dropped. */
	if (newest != NULL) /* aborted versions are no history */
		mt_sl_raise(removed_seq, mt_sl_ver_seqf(newest) & MT_SL_SEQ_MASK);
	/* h and the chain below it go with the node, in its carrier, which
	 * h's link now holds (tagged: readers see the end of the chain). */
	tail = mt_sl_ver_next(h);
	c->node = n;
	mt_sl_carry(c, h, n->klen, st);
	mt_sl_carry_chain(c, tail, n->klen, st);
	/* Release: the carrier's fill before the tag, which a writer that
	 * replaces the node reads to retire it (I3). */
	ck_pr_fence_store();
	ck_pr_store_ptr(&h->next, (struct mt_sl_ver *)((uintptr_t)c | 1u));
	st->nodes++;
	if (newest != NULL && !(mt_sl_ver_seqf(newest) & MT_SL_V_TOMB))
		st->entries--;
	/* Out of the tree, unless a writer of the key already replaced it
	 * (then that writer retires the carrier: I1, I3). mt_epoch_call
	 * fences the tree's unlock before it reads the epoch. */
	if (mt_bpt_remove(&sl->tree, mt_sl_node_key(n), n->klen, n) == n)
		mt_epoch_call(r, &c->epoch, mt_sl_carrier_cb);
	return 1;
}

/* Does a registered view read the committed version with seq sq, whose
 * nearest newer committed version has seq newer? A view (lo, hi) may read
 * it iff sq <= hi and newer > lo (it sees sq, and newer is above lo, so it
 * may not see newer); b->snaps holds (lo, greatest hi so far) pairs sorted
 * by lo: the last pair with lo < newer answers. For a plain snapshot
 * (lo = hi = s) this is "sq <= s < newer". */
static int mt_sl_needed(const struct mt_sl_bound *b, uint64_t sq, uint64_t newer)
{
	size_t lo = 0, hi = b->nsnaps;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (b->snaps[2 * mid] < newer)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && b->snaps[2 * (lo - 1) + 1] >= sq;
}

void mt_sl_prune(struct mt_sl *sl, ck_epoch_record_t *r, struct mt_sl_node *n,
                 const struct mt_sl_bound *b, uint64_t *removed_seq, struct mt_sl_prune_stats *st)
{
	struct mt_sl_ver *h, *pred = NULL, *cur, *v = NULL;
	uint64_t decided = b->min_seq > b->aged ? b->min_seq : b->aged, newer = 0;
	struct mt_sl_carrier *c = NULL;
	int newer_live = 0, pending = 0;
	uint32_t s;

	assert(mt_epoch_in_section() && b->min_seq <= MT_SL_SEQ_MASK);
	for (;;) {
		s = ck_pr_load_32(&n->state);
		if (s & (MT_SL_PRUNING | MT_SL_REMOVED))
			return; /* another pruner owns it, or it is gone */
		/* Acquire the chain's old end; full barrier. */
		if (ck_pr_cas_32(&n->state, s, s | MT_SL_PRUNING))
			break;
	}
	/* Sealed heads are only seen by the PRUNING owner: none now. */
	h = ck_pr_load_ptr(&n->head);
	assert(!((uintptr_t)h & 1u));
	cur = h;
	while (cur != NULL) {
		uint64_t sf = mt_sl_ver_seqf(cur), sq = sf & MT_SL_SEQ_MASK;
		struct mt_sl_ver *nx = mt_sl_ver_next(cur);
		int drop = 0;

		if (sf & MT_SL_V_ABORTED) {
			/* Decided and invisible; no writer links below it (its
			 * seq is published). The last version of the chain
			 * stays (I5): it goes with the node. */
			drop = sq <= decided && (pred != NULL || nx != NULL);
			/* Above the decided bound, an aborted write may sit
			 * over a writer with a lower seq still in flight (an
			 * abort does not wait for lower seqs), which links
			 * below it: the chain is not frozen, so the node must
			 * not be removed (defect 4 of issue 8: the removal lost
			 * that writer's version, or overran its carrier). */
			if (sq > decided)
				pending = 1;
		} else if (sq > b->min_seq) {
			/* Middle versions (sweeps only): a committed version
			 * whose newer neighbour every unregistered reader
			 * already reads past (both <= aged) and that no
			 * registered snapshot reads. */
			drop = newer != 0 && newer <= b->aged && sq <= b->aged &&
			       !mt_sl_needed(b, sq, newer);
			if (!drop) {
				newer_live = 1;
				newer = sq;
			}
		} else {
			v = cur; /* the newest committed version <= min_seq */
			break;
		}
		if (drop && !mt_sl_carrier_room(r, &c, 1)) {
			drop = 0; /* no memory to carry it: leave it */
			if (!(sf & MT_SL_V_ABORTED)) {
				newer_live = 1;
				newer = sq;
			}
		}
		if (!drop) {
			pred = cur;
			cur = nx;
			continue;
		}
		/* Unlink cur. The CAS fails if a writer linked a newer version
		 * right above it (I4); then walk on from what is there now. */
		if (ck_pr_cas_ptr(pred != NULL ? &pred->next : &n->head, cur, nx)) {
			mt_sl_carry(c, cur, n->klen, st);
			if (pred == NULL)
				h = nx;
			cur = nx;
		} else {
			cur = pred != NULL ? mt_sl_ver_next(pred) : (h = ck_pr_load_ptr(&n->head));
		}
	}
	if (v != NULL && !(mt_sl_ver_seqf(v) & MT_SL_V_DONE)) {
		/* Its writer has not counted it yet (mt_db.c, STATS): it looks
		 * below v, so neither cut below it nor remove the node. */
		ck_pr_and_32(&n->state, ~MT_SL_PRUNING);
		mt_sl_carrier_retire(r, c);
		return;
	}
	if (v != NULL) {
		struct mt_sl_ver *tail = mt_sl_ver_next(v);

		/* Only this pruner changes links below min_seq: the tail is
		 * frozen, so counting it first is exact. */
		if (tail != NULL && mt_sl_carrier_room(r, &c, mt_sl_chain_len(tail))) {
			/* A plain store: mt_epoch_call (in the retire below)
			 * fences it before it reads the epoch. */
			ck_pr_store_ptr(&v->next, NULL);
			mt_sl_carry_chain(c, tail, n->klen, st);
		}
	}
	mt_sl_carrier_retire(r, c);
	if (!newer_live && !pending &&
	    (v == NULL || (mt_sl_ver_seqf(v) & MT_SL_V_TOMB) || mt_sl_ver_expired(v, b->now_ms))) {
		if (mt_sl_remove(sl, r, n, h, v, removed_seq, st))
			return; /* PRUNING stays set on a removed node */
	}
	/* Release the chain: every change above is visible first. */
	ck_pr_and_32(&n->state, ~MT_SL_PRUNING);
}

void mt_sl_walk(struct mt_sl *sl, ck_epoch_record_t *r, void (*fn)(struct mt_sl_node *n, void *arg),
                void *arg)
{
	struct mt_sl_cur c;
	struct mt_sl_node *n;

	/* fn may remove n: its key stays valid until the section ends, and
	 * the cursor resumes after it. */
	for (n = mt_sl_cur_seek(&c, sl, NULL, 0); n != NULL; n = mt_sl_cur_next(&c, sl, n))
		if (!(ck_pr_load_32(&n->state) & MT_SL_REMOVED))
			fn(n, arg);
}

/* ------------------------------------------------------------ pins */

int mt_sl_pin(struct mt_sl_node *n)
{
	for (;;) {
		uint32_t s = ck_pr_load_32(&n->state);

		if (s & MT_SL_REMOVED)
			return 0;
		if ((s >> MT_SL_PIN_SHIFT) == MT_SL_PIN_MAX)
			return -1;
		/* Full barrier; fails if the state changed (a removal's
		 * commit CAS and this one exclude each other). */
		if (ck_pr_cas_32(&n->state, s, s + MT_SL_PIN_ONE))
			return 1;
	}
}

void mt_sl_unpin(struct mt_sl_node *n)
{
	assert((ck_pr_load_32(&n->state) >> MT_SL_PIN_SHIFT) != 0);
	ck_pr_sub_32(&n->state, MT_SL_PIN_ONE);
}
