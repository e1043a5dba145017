/*
 * mt_skiplist.c - lock-free skiplist of key nodes with MVCC version chains.
 *
 * STRUCTURE
 *
 * A sentinel node of MT_SL_MAX_HEIGHT heads the list. Every other node holds
 * one key (copied after its links), a tower of height h links (h >= 1,
 * P(h > k) = 4^-k) and a chain of versions, newest (highest seq) first. A
 * version is a put (value bytes, maybe an expiry) or a tombstone, and has
 * the seq of the write that made it. The MVCC rules (which seqs a reader may
 * read) live in mt_db.c; here a "reader at seq S" reads the newest version
 * with seq <= S that is not aborted.
 *
 * Bit 0 of a link next[i] is MARK: the node is removed at level i and that
 * link is frozen. Bit 0 of node->head is SEALED: the chain is being removed
 * with its node and writers must not add to it. Bit 0 of a version's next is
 * set only in the newest version of a removed node, where it holds the
 * address of the node's carrier for the deferred free (readers see the end
 * of the chain).
 *
 * INVARIANTS
 *
 *  I1 At every level the unmarked-reachable nodes are in strictly ascending
 *     key order, and at most one node with a given key is unmarked at level
 *     0. Inserts CAS pred->next[i] from succ to the new node after checking
 *     pred < key <= succ; a find snips every marked node it meets, so a new
 *     node of a key whose old node is removed always lands after the old
 *     one has been unlinked at that level.
 *  I2 A node's levels are linked bottom-up and its removal marks them top
 *     down, and removal never starts while INSERTING is set (the inserter
 *     clears it after its last level). So marking level i implies level i
 *     was linked, and a reader that saw a node unmarked at level i+1 and
 *     descends from it sees its level-i link frozen no earlier than that.
 *  I3 A node is unlinked ("snipped") at level i exactly once, by the CAS on
 *     its unmarked predecessor's link (a marked link never changes, so a
 *     node whose predecessor is marked cannot be snipped before that
 *     predecessor is). Each snip adds one to the node's SNIP count; the CAS
 *     that makes the count equal to the height retires the node. Nothing
 *     can link a snipped node again: a link is only ever set to a value read
 *     from an unmarked link of a node in the list or from the frozen link of
 *     a marked node still in the list (whose successor, by I3, is too).
 *  I4 A chain is ordered by seq, newest first. A writer links its version
 *     (seq s, unpublished: s > every seq a reader may use) after the last
 *     version with seq > s; those versions are unpublished too. The only
 *     other changes to a chain are by the one pruner that holds PRUNING:
 *     it unlinks versions at or below min_seq (all decided: published or
 *     aborted), and writers never link below such a version, because their
 *     seq is above min_seq. So a writer's CAS and a pruner's CAS can meet
 *     on one link only when the pruner unlinks an aborted version right
 *     after a link a writer targets; one of the two CASes fails and retries.
 *  I5 A linked node always has a version (a new node is linked with its
 *     first version already in place), so a removed node always has a head
 *     version, whose link then holds the node's carrier (tagged).
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
 * no memory, no removal) and tags the head's next with the carrier's
 * address, marks the tower top-down and runs a find to snip it. Writers that meet a sealed head
 * wait for the seal to go or the node to be marked at level 0 and then search again.
 *
 * MEMORY RECLAMATION
 *
 * Nodes and versions are freed by the library's epoch domain (mt_epoch): a
 * version unlinked from its chain, or a node snipped at its last level, is
 * handed to mt_epoch_call, and its callback runs only when every section
 * active at that moment has ended. Readers (every search, chain walk and
 * iterator step) run inside a section. A reader reaches a node either
 * through an unmarked link of a node in the list (so the node was in the
 * list during the reader's section) or through the frozen link of a marked
 * node it reached the same way; by I3 the successor behind a frozen link
 * is still in the list while the marked node is, so by induction a node a
 * reader can reach was not retired before the reader's section began, and
 * is not freed until it ends. Versions: a version is only unlinked by the
 * cut below V or by unlinking an aborted version, both read-frozen links
 * (nothing is linked below V), so the same argument holds along a chain.
 * Versions and nodes carry no epoch entry: what a prune unlinks goes into a
 * carrier (allocated by the prune; if that fails, the prune leaves things
 * linked), and a carrier is handed to mt_epoch_call. Unlinked versions are
 * never written again, so readers still on them see intact fields.
 *
 * Iterators hold positions across calls (and across threads) outside any
 * section by pinning their node: a pinned node cannot be REMOVED, and the
 * version an iterator returned is the one visible at its live snapshot,
 * which no prune unlinks (it is V or newer for every min_seq).
 *
 * A removed node's carrier (node, its head version and the chain below) is
 * allocated before the removal commits and reached through the head's
 * tagged link (I5) by whoever snips the node's last level.
 *
 * READS NEVER BLOCK
 *
 * Searches only load links and skip marked nodes through their frozen
 * links; they never retry and never wait, and their only write is indexing
 * the node they found (mt_slidx.c: CASes into a free slot, given up on any
 * race). Writers' searches
 * snip marked nodes and restart from the top when a CAS fails (someone else
 * made progress). The only waits are a writer meeting a sealed head (the
 * remover's few steps) and the in-order publication in mt_db.c.
 */
#include "mt_skiplist.h"

#include "mantis.h"
#include "mt_alloc.h"
#include "mt_slidx.h"
#include "mt_wait.h"

#include <assert.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#define MT_SL_MARK ((uintptr_t)1)

static inline int mt_sl_marked(const void *p)
{
	return ((uintptr_t)p & MT_SL_MARK) != 0;
}

static inline struct mt_sl_node *mt_sl_strip(const struct mt_sl_node *p)
{
	return (struct mt_sl_node *)((uintptr_t)p & ~MT_SL_MARK);
}

static inline struct mt_sl_node *mt_sl_with_mark(const struct mt_sl_node *p)
{
	return (struct mt_sl_node *)((uintptr_t)p | MT_SL_MARK);
}

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

static size_t mt_sl_node_size(unsigned height, size_t klen)
{
	return sizeof(struct mt_sl_node) + height * sizeof(struct mt_sl_node *) + klen;
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

static struct mt_sl_node *mt_sl_node_new(const void *key, size_t klen, unsigned height,
                                         struct mt_sl_ver *head)
{
	struct mt_sl_node *n;
	size_t size = mt_sl_node_size(height, klen);

	assert(height >= 1 && height <= MT_SL_MAX_HEIGHT);
	n = mt_malloc(size);
	if (n == NULL)
		return NULL;
	n->head = head;
	n->state = MT_SL_INSERTING;
	n->klen = (uint16_t)klen;
	n->height = (uint8_t)height;
	n->reserved = 0;
	for (unsigned i = 0; i < height; i++)
		n->next[i] = NULL;
	if (klen > 0)
		memcpy((unsigned char *)&n->next[height], key, klen);
	mt_sl_mem_add((int64_t)size);
	return n;
}

/* Frees a node that was never linked (its head version stays the caller's). */
static void mt_sl_node_free_unlinked(struct mt_sl_node *n)
{
	mt_sl_mem_add(-(int64_t)mt_sl_node_size(n->height, n->klen));
	mt_free(n);
}

/*
 * A carrier hands unlinked memory to the epoch: versions carry no epoch
 * entry of their own (16 bytes per version saved), so a prune allocates one
 * carrier for what it unlinks, and skips what it cannot carry (pruning is
 * always optional). A removed node's carrier is allocated before the
 * removal commits and holds the node and its last versions; the node's head
 * version points to it (tagged) so that whoever snips the node's last level
 * can hand it to the epoch.
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

	assert(((uintptr_t)ck_pr_load_ptr(&h->next) & 1u) != 0);
	return (struct mt_sl_carrier *)((uintptr_t)ck_pr_load_ptr(&h->next) & ~(uintptr_t)1);
}

/* Per-thread xorshift for tower heights. */
static __thread uint64_t mt_sl_rng;

static unsigned mt_sl_random_height(void)
{
	uint64_t x = mt_sl_rng;
	unsigned h = 1;

	if (x == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		x = ((uint64_t)(uintptr_t)&mt_sl_rng * 0x9E3779B97F4A7C15ull) ^
		    (uint64_t)ts.tv_nsec ^ ((uint64_t)mt_sl_thread_stripe() << 32) ^ 1u;
	}
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	mt_sl_rng = x;
	/* Two bits per level: P(h > k) = 4^-k. */
	while (h < MT_SL_MAX_HEIGHT && (x & 3u) == 0) {
		h++;
		x >>= 2;
	}
	return h;
}

/* ------------------------------------------------------------ init/destroy */

int mt_sl_init(struct mt_sl *sl)
{
	sl->head = mt_sl_node_new(NULL, 0, MT_SL_MAX_HEIGHT, NULL);
	if (sl->head == NULL)
		return MANTIS_ENOMEM;
	sl->head->state = 0;
	sl->level = 1;
	if (mt_slx_init(sl) != MANTIS_OK) {
		mt_sl_node_free_unlinked(sl->head);
		sl->head = NULL;
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

/* Destroy-time snip: counts the level and frees the node at its last. */
static void mt_sl_destroy_snipped(struct mt_sl_node *n)
{
	uint32_t old = ck_pr_faa_32(&n->state, MT_SL_SNIP_ONE);

	if (((old & MT_SL_SNIP_MASK) >> MT_SL_SNIP_SHIFT) + 1 == n->height)
		mt_sl_carrier_free(mt_sl_node_carrier(n));
}

void mt_sl_destroy(struct mt_sl *sl)
{
	struct mt_sl_node *pred, *cur, *nx;

	if (sl->head == NULL)
		return;
	/* Upper levels: unlink the removed nodes still linked there (a node
	 * is freed at the level where its last link goes). */
	for (int i = MT_SL_MAX_HEIGHT - 1; i >= 1; i--) {
		pred = sl->head;
		cur = pred->next[i];
		while (cur != NULL) {
			nx = cur->next[i];
			if (mt_sl_marked(nx)) {
				pred->next[i] = mt_sl_strip(nx);
				mt_sl_destroy_snipped(cur);
			} else {
				pred = cur;
			}
			cur = mt_sl_strip(nx);
		}
	}
	/* Level 0: live nodes with their chains, and the last removed ones. */
	cur = sl->head->next[0];
	while (cur != NULL) {
		nx = cur->next[0];
		if (mt_sl_marked(nx)) {
			mt_sl_destroy_snipped(cur);
		} else {
			assert((ck_pr_load_32(&cur->state) >> MT_SL_PIN_SHIFT) == 0);
			mt_sl_free_chain(mt_sl_node_head(cur));
			mt_sl_node_free_unlinked(cur);
		}
		cur = mt_sl_strip(nx);
	}
	mt_sl_node_free_unlinked(sl->head);
	sl->head = NULL;
	mt_slx_destroy(sl);
}

/* ------------------------------------------------------------ searches */

struct mt_sl_node *mt_sl_seek(const struct mt_sl *sl, const void *key, size_t klen)
{
	struct mt_sl_node *pred = sl->head, *cur = NULL, *nx;
	int i = (int)ck_pr_load_32(&sl->level) - 1;

	for (; i >= 0; i--) {
		/* pred was seen unmarked at level i+1 (or is the sentinel): its
		 * level-i link is live or was frozen during this section (I2). */
		cur = mt_sl_strip(ck_pr_load_ptr(&pred->next[i]));
		while (cur != NULL) {
			nx = ck_pr_load_ptr(&cur->next[i]);
			if (mt_sl_marked(nx)) {
				/* Removed: step over it through its frozen link. */
				cur = mt_sl_strip(nx);
				continue;
			}
			/* Start loading the next node while comparing this one. */
			__builtin_prefetch(nx);
			if (key == NULL ||
			    mt_sl_cmp(mt_sl_node_key(cur), cur->klen, key, klen) >= 0)
				break;
			pred = cur;
			cur = nx;
		}
	}
	return cur;
}

struct mt_sl_node *mt_sl_find(struct mt_sl *sl, const void *key, size_t klen)
{
	uint64_t h = mt_slx_hash(key, klen);
	struct mt_sl_node *n = mt_slx_lookup(sl, key, klen, h);

	if (n != NULL)
		return n;
	n = mt_sl_seek(sl, key, klen);
	if (n != NULL && n->klen == klen && memcmp(mt_sl_node_key(n), key, klen) == 0) {
		mt_slx_install(sl, n, h, 0); /* next time, the short way */
		return n;
	}
	return NULL;
}

struct mt_sl_node *mt_sl_succ(const struct mt_sl_node *n)
{
	struct mt_sl_node *cur = mt_sl_strip(ck_pr_load_ptr(&n->next[0]));

	while (cur != NULL) {
		struct mt_sl_node *nx = ck_pr_load_ptr(&cur->next[0]);

		if (!mt_sl_marked(nx))
			break;
		cur = mt_sl_strip(nx);
	}
	return cur;
}

/* A snip of n succeeded at one level: the one that completes the tower
 * retires the node (I3) with the carrier its remover prepared (I5). */
static void mt_sl_snipped(ck_epoch_record_t *r, struct mt_sl_node *n)
{
	/* Full barrier (x86 lock xadd): orders the count after the CAS. */
	uint32_t old = ck_pr_faa_32(&n->state, MT_SL_SNIP_ONE);

	if (((old & MT_SL_SNIP_MASK) >> MT_SL_SNIP_SHIFT) + 1 == n->height)
		mt_epoch_call(r, &mt_sl_node_carrier(n)->epoch, mt_sl_carrier_cb);
}

/*
 * Writer's search: fills preds[i]/succs[i] (if not NULL) with the last node
 * < key and the first unmarked node >= key at every level, snipping every
 * marked node met. Returns the level-0 node with exactly key, or NULL.
 */
static struct mt_sl_node *mt_sl_search_w(struct mt_sl *sl, ck_epoch_record_t *r, const void *key,
                                         size_t klen, struct mt_sl_node **preds,
                                         struct mt_sl_node **succs)
{
	struct mt_sl_node *pred, *cur, *nx;
	int lvl, i;

retry:
	lvl = (int)ck_pr_load_32(&sl->level);
	pred = sl->head;
	cur = NULL;
	if (preds != NULL) {
		for (i = MT_SL_MAX_HEIGHT - 1; i >= lvl; i--) {
			preds[i] = sl->head;
			succs[i] = NULL;
		}
	}
	for (i = lvl - 1; i >= 0; i--) {
		cur = ck_pr_load_ptr(&pred->next[i]);
		if (mt_sl_marked(cur))
			goto retry; /* pred was removed meanwhile */
		while (cur != NULL) {
			nx = ck_pr_load_ptr(&cur->next[i]);
			if (mt_sl_marked(nx)) {
				/* Snip cur at level i. The CAS succeeds only if
				 * pred is unmarked and still points at cur (I3);
				 * full barrier, so the count below follows it. */
				if (!ck_pr_cas_ptr(&pred->next[i], cur, mt_sl_strip(nx)))
					goto retry;
				mt_sl_snipped(r, cur);
				cur = mt_sl_strip(nx);
				continue;
			}
			if (mt_sl_cmp(mt_sl_node_key(cur), cur->klen, key, klen) >= 0)
				break;
			pred = cur;
			cur = nx;
		}
		if (preds != NULL) {
			preds[i] = pred;
			succs[i] = cur;
		}
	}
	if (cur != NULL && cur->klen == klen && memcmp(mt_sl_node_key(cur), key, klen) == 0)
		return cur;
	return NULL;
}

/* ------------------------------------------------------------ linking */

/* Links v into n's chain at its seq's place (I4). Returns 0, or 1 if the
 * chain is sealed (the node is being removed). */
static int mt_sl_link_ver(struct mt_sl_node *n, struct mt_sl_ver *v)
{
	uint64_t s = v->seqf & MT_SL_SEQ_MASK;

	for (;;) {
		struct mt_sl_ver *h = ck_pr_load_ptr(&n->head), *pred, *cur;

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
		/* Newer versions are unpublished writes still in flight: go
		 * below them (they cannot be unlinked: seq > min_seq). */
		pred = h;
		cur = ck_pr_load_ptr(&h->next);
		while (cur != NULL && !((uintptr_t)cur & 1u) &&
		       (mt_sl_ver_seqf(cur) & MT_SL_SEQ_MASK) > s) {
			pred = cur;
			cur = ck_pr_load_ptr(&cur->next);
		}
		if ((uintptr_t)cur & 1u)
			continue; /* the head was sealed and tagged: re-read */
		ck_pr_store_ptr(&v->next, cur);
		/* Release as above; fails if a writer or the pruner changed
		 * this link (I4), then we walk again. */
		if (ck_pr_cas_ptr(&pred->next, cur, v))
			return 0;
	}
}

/* A writer met a sealed chain: wait until the seal is dropped (the prune
 * gave up) or the node is marked at level 0 (a search then snips it). The
 * remover's window is a few CASes and its carrier's fill, so a brief spin
 * nearly always ends it; a remover descheduled inside it costs waiters a
 * sleep (mt_wait_backoff), never a busy wait. */
static void mt_sl_wait_unsealed(struct mt_sl_node *n)
{
	unsigned spins = 0;

	for (;;) {
		if (!((uintptr_t)ck_pr_load_ptr(&n->head) & 1u))
			return;
		if (mt_sl_marked(ck_pr_load_ptr(&n->next[0])))
			return;
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
	pos->node = mt_sl_search_w(sl, r, key, klen, pos->preds, pos->succs);
	if (pos->node != NULL) {
		__builtin_prefetch(&pos->node->head, 1);
		return MANTIS_OK;
	}
	__builtin_prefetch(&pos->preds[0]->next[0], 1);
	/* A new key: its node, with v as its first version, ready to link,
	 * its index reference claimed already (it is not visible yet). */
	pos->fresh = mt_sl_node_new(key, klen, mt_sl_random_height(), v);
	if (pos->fresh == NULL)
		return MANTIS_ENOMEM;
	pos->fresh->state |= MT_SL_INDEXED;
	return MANTIS_OK;
}

/* Publishes pos->fresh (with v as its first version) at level 0 between
 * pos->preds[0] and pos->succs[0]. Returns 1 and sets the position linked,
 * or 0 if preds[0] no longer points at succs[0] (the caller searches
 * again: maybe the key appeared). */
static inline int mt_sl_publish_fresh(struct mt_sl_pos *pos, struct mt_sl_ver *v,
                                      struct mt_sl_node **node_out)
{
	assert(pos->fresh != NULL);
	ck_pr_store_ptr(&v->next, NULL);
	ck_pr_store_ptr(&pos->fresh->next[0], pos->succs[0]);
	/* Release: the node, its key and its first version are complete
	 * before it is reachable at level 0. */
	if (!ck_pr_cas_ptr(&pos->preds[0]->next[0], pos->succs[0], pos->fresh))
		return 0;
	pos->linked = 1;
	pos->node = pos->fresh;
	*node_out = pos->fresh;
	return 1;
}

/* The general case of mt_sl_link_at: search, link into the key's node or
 * link a new node at level 0 (allocating one if locate did not). */
static int mt_sl_link_slow(struct mt_sl *sl, ck_epoch_record_t *r, const void *key, size_t klen,
                           struct mt_sl_ver *v, struct mt_sl_pos *pos, struct mt_sl_node **node_out)
{
	struct mt_sl_node *n;

	for (;;) {
		n = mt_sl_search_w(sl, r, key, klen, pos->preds, pos->succs);
		if (n != NULL) {
			if (mt_sl_link_ver(n, v) == 0) {
				pos->node = n;
				*node_out = n;
				return MANTIS_OK;
			}
			mt_sl_wait_unsealed(n);
			continue;
		}
		if (pos->fresh == NULL) {
			pos->fresh = mt_sl_node_new(key, klen, mt_sl_random_height(), v);
			if (pos->fresh == NULL)
				return MANTIS_ENOMEM;
			pos->fresh->state |= MT_SL_INDEXED; /* as in locate */
		}
		/* Fails if preds[0] changed: then search again. */
		if (mt_sl_publish_fresh(pos, v, node_out))
			return MANTIS_OK;
	}
}

int mt_sl_link_at(struct mt_sl *sl, ck_epoch_record_t *r, const void *key, size_t klen,
                  struct mt_sl_ver *v, struct mt_sl_pos *pos, struct mt_sl_node **node_out)
{
	/* Its seq is set (taken after locate), in the writer's section. */
	assert((v->seqf & MT_SL_SEQ_MASK) != 0 && mt_epoch_in_section());
	if (pos->node != NULL && mt_sl_link_ver(pos->node, v) == 0) {
		*node_out = pos->node;
		return MANTIS_OK;
	}
	if (pos->node == NULL && pos->fresh != NULL) {
		/* With the position found by locate; fails if the list
		 * changed there since. */
		if (mt_sl_publish_fresh(pos, v, node_out))
			return MANTIS_OK;
	}
	pos->hit = 0;
	return mt_sl_link_slow(sl, r, key, klen, v, pos, node_out);
}

void mt_sl_link_finish(struct mt_sl *sl, ck_epoch_record_t *r, const void *key, size_t klen,
                       struct mt_sl_pos *pos)
{
	struct mt_sl_node *fresh = pos->fresh;
	unsigned h, i;
	uint32_t lvl;

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
	assert(fresh != NULL); /* linked: the new node is in the list */
	h = fresh->height;
	while ((lvl = ck_pr_load_32(&sl->level)) < h && !ck_pr_cas_32(&sl->level, lvl, h))
		;
	for (i = 1; i < h; i++) {
		for (;;) {
			struct mt_sl_node *succ = pos->succs[i];

			/* Not yet linked at level i: nobody reads this link. */
			ck_pr_store_ptr(&fresh->next[i], succ);
			if (ck_pr_cas_ptr(&pos->preds[i]->next[i], succ, fresh))
				break;
			(void)mt_sl_search_w(sl, r, key, klen, pos->preds, pos->succs);
		}
	}
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
	ck_pr_store_ptr(&h->next, (struct mt_sl_ver *)((uintptr_t)c | 1u));
	st->nodes++;
	if (newest != NULL && !(mt_sl_ver_seqf(newest) & MT_SL_V_TOMB))
		st->entries--;
	/* Mark the tower top-down (I2); each CAS fails only if an inserter
	 * changed the link meanwhile, and then it will fail its own CAS on
	 * this now-marked link. */
	for (int i = n->height - 1; i >= 0; i--) {
		for (;;) {
			struct mt_sl_node *nx = ck_pr_load_ptr(&n->next[i]);

			if (mt_sl_marked(nx) || ck_pr_cas_ptr(&n->next[i], nx, mt_sl_with_mark(nx)))
				break;
		}
	}
	/* Snip it at every level where this search meets it. */
	(void)mt_sl_search_w(sl, r, mt_sl_node_key(n), n->klen, NULL, NULL);
	return 1;
}

/* Does a registered snapshot read the committed version with seq sq, whose
 * nearest newer committed version has seq newer? (b->snaps is sorted.) */
static int mt_sl_needed(const struct mt_sl_bound *b, uint64_t sq, uint64_t newer)
{
	size_t lo = 0, hi = b->nsnaps;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (b->snaps[mid] < sq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < b->nsnaps && b->snaps[lo] < newer;
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
	struct mt_sl_node *pred = sl->head, *cur, *nx;

	cur = mt_sl_strip(ck_pr_load_ptr(&pred->next[0]));
	while (cur != NULL) {
		nx = ck_pr_load_ptr(&cur->next[0]);
		if (mt_sl_marked(nx)) {
			/* Snip at level 0 if pred still points at cur; if the
			 * CAS fails, someone else did or pred was removed: just
			 * step over (frozen link). */
			if (ck_pr_cas_ptr(&pred->next[0], cur, mt_sl_strip(nx)))
				mt_sl_snipped(r, cur);
			cur = mt_sl_strip(nx);
			continue;
		}
		fn(cur, arg);
		nx = ck_pr_load_ptr(&cur->next[0]);
		if (!mt_sl_marked(nx))
			pred = cur; /* fn may have removed cur: then keep pred */
		cur = mt_sl_strip(nx);
	}
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
