/*
 * mt_bptree.c - B+tree with optimistic lock coupling (OLC).
 *
 * (About 1,100 lines, past the usual 800: the invariant checker at the end
 * reads the private node layout, and splitting the layout into a header
 * shared by two files would publish it to the rest of the library.)
 *
 * WHY A B+TREE
 *
 * At a million keys a skiplist search is about ten dependent cache (and TLB)
 * misses, and a scan of its level 0 one dependent miss per entry. Here the
 * inner levels of a 1M-key tree (about 2,300 nodes of 1 KiB) stay in the
 * last-level cache, so a search costs about one miss in the leaf, whose
 * prefix array (30 x 8 bytes, four lines) is read with independent loads
 * that the CPU overlaps; a scan reads leaves of 30 entries side by side.
 *
 * LAYOUT
 *
 * Leaf (512 B): header, right sibling, then pfx[30] and item[30] sorted by
 * key. Inner (1 KiB): header, pfx[40], sep[40] (immutable separator key
 * copies) and child[41]; child i holds the keys k with sep[i-1] <= k <
 * sep[i]. Every node has a "skip": the number of leading bytes every key of
 * its range shares, so pfx[i] is the big-endian integer of the eight key
 * bytes after them (zero-padded). A node's range [lo, hi) only shrinks (a
 * split gives its upper half to a new right node), and the keys of a range
 * share the longest common prefix of lo and hi, so a node's skip, fixed when
 * it is created as lcp(lo, hi), stays valid. pfx is monotone in the key:
 * pfx(a) < pfx(b) implies a < b; on equal prefixes the full keys decide
 * (the item's key through the caller's key function, or the separator).
 *
 * SYNCHRONISATION
 *
 * Each node has a version word: bit 0 LOCKED, bit 1 WAITERS (a thread
 * sleeps on the futex of its low half), the rest a counter bumped by every
 * unlock. A reader reads the version (waiting while LOCKED), reads what it
 * needs with atomic loads, and re-reads the version: any change means what
 * it read may be torn and it restarts. Descending, it reads the child's
 * version before validating the parent's (lock coupling), so a child found
 * through a validated parent was the right child when its version was read.
 * A writer upgrades its read version with one CAS (fails if anything changed
 * since it read the node: then it restarts), so everything it computed from
 * its optimistic read still holds while it has the lock.
 *
 * Splits are eager: a writer that descends through a full inner node splits
 * it first (locking it and its parent), so a child's split always finds
 * room in its parent; a full leaf is split the same way. Everything a split
 * needs that is slow is done before its locks: the new node(s) and the
 * separator copy are allocated, and a leaf's upper half is re-encoded for
 * the new node's skip (its keys read through the items), from an optimistic
 * read that the upgrade validates. So every critical section is a bounded
 * copy of at most 41 slots: no allocation, no search, no system call but
 * the futex wake at unlock. A thread that finds a node locked spins about a
 * microsecond, then sleeps (futex) until the holder unlocks: never a yield
 * loop on a descheduled holder (mt_wait_unlocked, mt_wait_version_unlock).
 *
 * INVARIANTS (checked by mt_bpt_check)
 *
 *  B1 In every node, keys (items' keys in leaves, separators in inner
 *     nodes) are strictly ascending and lie in the node's range [lo, hi),
 *     lo and hi being the separators around it in its parent (hi is also
 *     stored in the node); pfx[i] is the prefix of key i at the node's skip,
 *     and every key of the range shares the node's first skip bytes.
 *  B2 All leaves are at the same depth, and the leaf chain (next) visits
 *     every leaf in key order. A leaf's next is set, under its lock, only to
 *     a new node fully initialised before (store fence) or to its old next.
 *  B3 Slots at or past count hold NULL (and pfx 0). So a torn optimistic read
 *     sees only NULL or items that were in the tree when it read them: an
 *     item removed from the tree is overwritten in its slot before the
 *     removal returns, hence before the caller can retire it, and the
 *     caller's epoch section keeps it alive for a reader that read it
 *     before. Readers check every pointer they load for NULL.
 *  B4 The root pointer changes only while the old root is locked, before it
 *     is unlocked; a reader re-reads the root after reading its version, so
 *     a root it descends from was the root at that version.
 *  B5 Nodes and separators are never freed before mt_bpt_destroy (leaves are
 *     not merged; a leaf emptied by removals stays, and its range with it).
 */
#include "mt_bptree.h"

#include "mantis.h"
#include "mt_alloc.h"
#include "mt_pr.h"
#include "mt_wait.h"

#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define LEAF_CAP  30
#define INNER_CAP 40
#define V_LOCKED  MT_WAIT_V_LOCKED
#define V_WAITERS MT_WAIT_V_WAITERS

struct mt_bpt_sep {
	uint32_t len;
	unsigned char b[];
};

struct hdr {
	uint64_t ver;   /* LOCKED | WAITERS | counter */
	uint16_t count; /* keys (leaf) or separators (inner) */
	uint16_t skip;  /* immutable after creation */
	uint8_t leaf;   /* immutable */
	uint8_t pad[3];
	const struct mt_bpt_sep *hi; /* upper fence, NULL = +infinity */
};

struct leaf {
	struct hdr h;
	struct leaf *next;
	uint64_t pfx[LEAF_CAP];
	void *item[LEAF_CAP];
};

struct inner {
	struct hdr h;
	uint64_t pfx[INNER_CAP];
	const struct mt_bpt_sep *sep[INNER_CAP];
	struct hdr *child[INNER_CAP + 1];
};

_Static_assert(sizeof(struct leaf) == 512, "a leaf is eight cache lines");
_Static_assert(sizeof(struct inner) <= 1024, "an inner node fits 1 KiB");
_Static_assert(offsetof(struct hdr, ver) == 0, "a spare's stack link overlays ver");

/* ------------------------------------------------------------ keys */

static inline uint64_t pfx_of(const unsigned char *k, size_t klen, unsigned skip)
{
	uint64_t x = 0;

	if (klen > skip)
		__builtin_memcpy(&x, k + skip, klen - skip >= 8 ? 8 : klen - skip);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	x = __builtin_bswap64(x);
#endif
	return x;
}

static unsigned lcp(const struct mt_bpt_sep *a, const struct mt_bpt_sep *b)
{
	unsigned n, i;

	if (a == NULL || b == NULL)
		return 0;
	n = a->len < b->len ? a->len : b->len;
	for (i = 0; i < n && a->b[i] == b->b[i]; i++)
		;
	return i > UINT16_MAX ? UINT16_MAX : i;
}

/* ------------------------------------------------------------ locks */

/* A reader's version of h (unlocked). */
static inline uint64_t olc_read(struct hdr *h)
{
	uint64_t v = ck_pr_load_64(&h->ver);

	if (v & V_LOCKED)
		v = mt_wait_unlocked(&h->ver); /* spins, then sleeps (mt_wait.h) */
	/* Acquire: the node's fields are read after its version. */
	ck_pr_fence_load();
	return v;
}

/* Is h still at version v (so everything read since is consistent)? */
static inline int olc_valid(struct hdr *h, uint64_t v)
{
	/* Load-load: the fields were read before the version is re-read. */
	ck_pr_fence_load();
	return ck_pr_load_64(&h->ver) == v;
}

/* Locks h if it is still at version v. */
static inline int olc_upgrade(struct hdr *h, uint64_t v)
{
	/* Full barrier (acquire): the writer's stores follow the lock. */
	return ck_pr_cas_64(&h->ver, v, v | V_LOCKED);
}

static void olc_unlock(struct hdr *h)
{
	assert(ck_pr_load_64(&h->ver) & V_LOCKED);
	mt_wait_version_unlock(&h->ver); /* release; wakes sleepers */
}

/* ------------------------------------------------------------ nodes */

/* The node arena: chunks of 64 KiB doubling up to 2 MiB, nodes carved by a
 * fetch-and-add of the chunk's offset (outside any lock). A full chunk is
 * replaced by a CAS on t->chunk (a loser frees its own). Unused spares go
 * to a per-size stack: pushes CAS, a taker takes the whole stack with one
 * exchange (no ABA) and pushes back what it does not use. */
#define CHUNK_MIN  (64u << 10)
#define CHUNK_HUGE (2u << 20)

struct chunk {
	struct chunk *older;
	uint64_t size, used; /* used: atomic, may run past size */
	char pad[64 - 3 * 8];
};

static size_t node_size(int leaf)
{
	return leaf ? sizeof(struct leaf) : 1024; /* inners padded: 64-aligned carving */
}

static void spare_push(struct mt_bpt *t, int leaf, struct hdr *first, struct hdr *last)
{
	void *top = ck_pr_load_ptr(&t->spare[leaf]);

	/* Release (full barrier): the chain's links are written first. */
	do
		ck_pr_store_ptr((void **)last, top);
	while (!ck_pr_cas_ptr_value(&t->spare[leaf], top, first, &top));
}

static struct hdr *spare_pop(struct mt_bpt *t, int leaf)
{
	struct hdr *h, *rest, *last;

	if (ck_pr_load_ptr(&t->spare[leaf]) == NULL)
		return NULL;
	h = ck_pr_fas_ptr(&t->spare[leaf], NULL);
	if (h == NULL)
		return NULL;
	rest = ck_pr_load_ptr((void **)h);
	if (rest != NULL) {
		for (last = rest; ck_pr_load_ptr((void **)last) != NULL;
		     last = ck_pr_load_ptr((void **)last))
			;
		spare_push(t, leaf, rest, last);
	}
	return h;
}

static void *node_new(struct mt_bpt *t, int leaf)
{
	size_t size = node_size(leaf);
	struct hdr *h = spare_pop(t, leaf);

	while (h == NULL) {
		struct chunk *c = ck_pr_load_ptr(&t->chunk), *nc;
		uint64_t off, csize;

		if (c != NULL) {
			off = ck_pr_faa_64(&c->used, size);
			if (off + size <= c->size) {
				h = (struct hdr *)((char *)c + off);
				break;
			}
		}
		csize = c == NULL ? CHUNK_MIN : c->size * 2 > CHUNK_HUGE ? CHUNK_HUGE : c->size * 2;
		nc = mt_malloc_aligned(csize, csize == CHUNK_HUGE ? CHUNK_HUGE : 64);
		if (nc == NULL)
			return NULL;
#ifdef MADV_HUGEPAGE
		if (csize == CHUNK_HUGE && (t->flags & MT_BPT_HUGE))
			(void)madvise(nc, csize, MADV_HUGEPAGE); /* advice: failure is harmless */
#endif
		nc->older = c;
		nc->size = csize;
		nc->used = sizeof(struct chunk);
		/* Release (full barrier): the chunk's header is set before it is
		 * seen. */
		if (!ck_pr_cas_ptr(&t->chunk, c, nc)) {
			mt_free(nc);
			continue;
		}
		ck_pr_add_64(&t->mem, csize);
	}
	memset(h, 0, size);
	h->leaf = (uint8_t)leaf;
	return h;
}

/* Hands back a node that was never linked. */
static void node_free(struct mt_bpt *t, void *n)
{
	struct hdr *h = n;

	if (h != NULL)
		spare_push(t, h->leaf, h, h);
}

static struct mt_bpt_sep *sep_new(struct mt_bpt *t, const unsigned char *k, size_t klen)
{
	struct mt_bpt_sep *s = mt_malloc(sizeof(*s) + klen);

	if (s == NULL)
		return NULL;
	s->len = (uint32_t)klen;
	memcpy(s->b, k, klen);
	ck_pr_add_64(&t->mem, sizeof(*s) + klen);
	return s;
}

static void sep_free(struct mt_bpt *t, struct mt_bpt_sep *s)
{
	if (s == NULL)
		return;
	ck_pr_sub_64(&t->mem, sizeof(*s) + s->len);
	mt_free(s);
}

static inline unsigned load_count(const struct hdr *h, unsigned cap)
{
	unsigned n = ck_pr_load_16(&h->count);

	return n > cap ? cap : n; /* a torn read never indexes past the arrays */
}

/* The child of in to follow for key: the number of separators <= key. May
 * be wrong on a torn read (the caller validates). Separators whose prefix
 * equals the key's are compared in full, by binary search (a node whose
 * range spans many keys with one prefix, such as the root, has long runs). */
static unsigned inner_index(const struct inner *in, unsigned n, uint64_t kp, const void *key,
                            size_t klen)
{
	unsigned lo = 0, hi = 0;

	for (unsigned j = 0; j < n; j++) {
		uint64_t p = ck_pr_load_64(&in->pfx[j]);

		lo += p < kp;
		hi += p <= kp;
	}
	/* Separators below lo are < key, at or past hi are > key. */
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct mt_bpt_sep *s = ck_pr_load_ptr(&in->sep[mid]);

		if (s == NULL)
			return lo; /* torn */
		if (mt_bpt_cmp(s->b, s->len, key, klen) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The position of the first key >= key in l; *hit: the item there if its
 * key equals key, else NULL. Returns LEAF_CAP + 1 on a NULL slot (torn). */
static unsigned leaf_lower(const struct mt_bpt *t, const struct leaf *l, unsigned n, uint64_t kp,
                           const void *key, size_t klen, void **hit)
{
	unsigned lo = 0, hi = 0;

	*hit = NULL;
	for (unsigned j = 0; j < n; j++) {
		uint64_t p = ck_pr_load_64(&l->pfx[j]);

		lo += p < kp;
		hi += p <= kp;
	}
	/* Keys below lo are < key, at or past hi are > key: binary search
	 * the run of equal prefixes (usually one entry, or none). */
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		void *it = ck_pr_load_ptr(&l->item[mid]);
		const unsigned char *ik;
		size_t il;
		int c;

		if (it == NULL)
			return LEAF_CAP + 1;
		ik = t->key(it, &il);
		c = mt_bpt_cmp(ik, il, key, klen);
		if (c == 0) {
			*hit = it;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The current root, read-locked (B4). */
static struct hdr *root_read(const struct mt_bpt *t, uint64_t *v)
{
	for (;;) {
		struct hdr *r = ck_pr_load_ptr(&t->root);

		*v = olc_read(r);
		if (ck_pr_load_ptr(&t->root) == r)
			return r;
	}
}

/* Descends to the leaf whose range holds key; returns it with its version,
 * and if parent is not NULL the inner node it was found in (NULL: the root
 * is a leaf) with its child index (hints for a scan: the parent is not
 * validated after the child's version was read). Reader. */
static struct leaf *descend(const struct mt_bpt *t, const void *key, size_t klen, uint64_t *vout,
                            const struct inner **parent, unsigned *ci)
{
restart:;
	uint64_t v;
	struct hdr *h = root_read(t, &v);

	if (parent != NULL)
		*parent = NULL;
	while (!h->leaf) {
		const struct inner *in = (const struct inner *)h;
		unsigned n = load_count(h, INNER_CAP);
		unsigned i = inner_index(in, n, pfx_of(key, klen, h->skip), key, klen);
		struct hdr *c = ck_pr_load_ptr(&in->child[i]);
		uint64_t cv;

		if (c == NULL)
			goto restart; /* torn; a consistent read never has one */
		cv = olc_read(c);
		if (!olc_valid(h, v))
			goto restart;
		if (parent != NULL) {
			*parent = in;
			*ci = i;
		}
		h = c;
		v = cv;
	}
	*vout = v;
	return (struct leaf *)h;
}

/* ------------------------------------------------------------ API */

int mt_bpt_init(struct mt_bpt *t, mt_bpt_key_fn key, unsigned flags)
{
	assert(t != NULL && key != NULL && (flags & ~MT_BPT_HUGE) == 0);
	memset(t, 0, sizeof(*t));
	t->key = key;
	t->flags = flags;
	t->root = node_new(t, 1);
	return t->root != NULL ? MANTIS_OK : MANTIS_ENOMEM;
}

static void destroy_node(struct mt_bpt *t, struct hdr *h)
{
	if (!h->leaf) {
		struct inner *in = (struct inner *)h;

		for (unsigned i = 0; i <= h->count; i++)
			destroy_node(t, in->child[i]);
		/* Each separator sits in exactly one inner node (a split moves
		 * the middle one up); fences only borrow them. */
		for (unsigned i = 0; i < h->count; i++)
			sep_free(t, (struct mt_bpt_sep *)in->sep[i]);
	}
}

void mt_bpt_destroy(struct mt_bpt *t)
{
	struct chunk *c = t->chunk;

	if (t->root != NULL)
		destroy_node(t, t->root);
	while (c != NULL) {
		struct chunk *older = c->older;

		t->mem -= c->size;
		mt_free(c);
		c = older;
	}
	t->root = NULL;
	t->chunk = NULL;
}

uint64_t mt_bpt_mem_bytes(const struct mt_bpt *t)
{
	return ck_pr_load_64(&t->mem);
}

void *mt_bpt_get(const struct mt_bpt *t, const void *key, size_t klen)
{
	for (;;) {
		uint64_t v;
		struct leaf *l = descend(t, key, klen, &v, NULL, NULL);
		unsigned n = load_count(&l->h, LEAF_CAP);
		void *hit;
		unsigned i = leaf_lower(t, l, n, pfx_of(key, klen, l->h.skip), key, klen, &hit);

		if (i <= LEAF_CAP && olc_valid(&l->h, v))
			return hit;
	}
}

/* The position in l of the first key >= end. end need not lie in l's range:
 * if it does not share the leaf's skip bytes (those of its upper fence), it
 * is below or above every key of the range. LEAF_CAP + 1: torn. */
static unsigned leaf_end(const struct mt_bpt *t, const struct leaf *l, unsigned n, const void *end,
                         size_t elen)
{
	unsigned skip = l->h.skip;
	void *hit;

	if (skip > 0) {
		const struct mt_bpt_sep *hi = ck_pr_load_ptr(&l->h.hi);
		size_t m = elen < skip ? elen : skip;
		int c;

		if (hi == NULL || hi->len < skip)
			return LEAF_CAP + 1; /* a consistent leaf with a skip has its fence */
		c = memcmp(end, hi->b, m);
		if (c < 0 || (c == 0 && elen < skip))
			return 0;
		if (c > 0)
			return n;
	}
	return leaf_lower(t, l, n, pfx_of(end, elen, skip), end, elen, &hit);
}

/*
 * A scan's leaf chain is a dependent miss per leaf (its line 0 holds the
 * version, count, fence and next pointer), and with an end bound the
 * leaf's upper fence, a separate allocation, is a second one. On reaching
 * a leaf that cannot hold the rest of what it wants (short scans, such as
 * an iterator's step, prefetch nothing), a scan starts the next leaf's
 * first line and this leaf's fence together, so that a leaf costs about
 * one miss; once it knows it goes on, the rest of the next leaf (prefixes,
 * items). Hints only: the pointers are
 * read without validation, and a torn one is harmless to prefetch (nodes
 * are never freed before the tree, B5; a prefetch never faults).
 */
static inline void scan_prefetch(const struct leaf *l, int fence)
{
	__builtin_prefetch(ck_pr_load_ptr(&l->next));
	if (fence)
		__builtin_prefetch(ck_pr_load_ptr(&l->h.hi));
}

static inline void scan_prefetch_rest(const struct leaf *nx)
{
	if (nx == NULL)
		return;
	for (size_t off = 64; off < sizeof(*nx); off += 64)
		__builtin_prefetch((const char *)nx + off);
}

/*
 * The leaf chain is still one miss per leaf after that, since each leaf's
 * address is in the one before. The leaf's parent lists the next leaves
 * and their fences (child[j]'s upper fence is sep[j]) side by side, so a
 * scan prefetches up to SCAN_AHEAD of them from the parent it descended
 * through (in the cache: it was just read), as many as its remaining items
 * may need at half-full leaves. Hints: the parent is not validated (a
 * split moves its children; then a prefetch is wasted) and a scan that
 * leaves the parent's last child goes on along the chain alone.
 */
#define SCAN_AHEAD 8

struct scan_ahead {
	const struct inner *p; /* the parent of the first leaf, or NULL */
	unsigned ci;           /* the index in p of the current leaf */
	unsigned next;         /* the next child index to prefetch */
};

static inline void scan_siblings(struct scan_ahead *a, size_t leaves)
{
	unsigned cnt, upto;

	if (a->p == NULL)
		return;
	cnt = load_count(&a->p->h, INNER_CAP);
	upto = a->ci + (leaves < SCAN_AHEAD ? (unsigned)leaves : SCAN_AHEAD);
	for (; a->next <= upto && a->next <= cnt; a->next++) {
		__builtin_prefetch(ck_pr_load_ptr(&a->p->child[a->next]));
		if (a->next < cnt)
			__builtin_prefetch(ck_pr_load_ptr(&a->p->sep[a->next]));
	}
}

size_t mt_bpt_scan(const struct mt_bpt *t, const void *key, size_t klen, int after, const void *end,
                   size_t elen, void **out, size_t max)
{
	size_t got = 0;

	if (max == 0)
		return 0;
	for (;;) {
		uint64_t v;
		struct scan_ahead a = {NULL, 0, 0};
		struct leaf *l = descend(t, key, klen, &v, &a.p, &a.ci);
		unsigned n = load_count(&l->h, LEAF_CAP);
		void *hit;
		unsigned i = leaf_lower(t, l, n, pfx_of(key, klen, l->h.skip), key, klen, &hit);

		if (i > LEAF_CAP || !olc_valid(&l->h, v))
			continue;
		if (after && hit != NULL)
			i++;
		a.next = a.ci + 1;
		for (;;) {
			unsigned stop;
			size_t take;
			struct leaf *nx;
			int torn;

			if (max - got > n - i) { /* the scan goes past this leaf */
				scan_prefetch(l, end != NULL);
				scan_siblings(&a, (max - got) / (LEAF_CAP / 2) + 1);
			}
			stop = end != NULL ? leaf_end(t, l, n, end, elen) : n;
			take = stop > i && stop <= n ? stop - i : 0;
			torn = stop > LEAF_CAP;
			if (take > max - got)
				take = max - got;
			if (stop == n && got + take < max)
				scan_prefetch_rest(ck_pr_load_ptr(&l->next));
			for (size_t j = 0; j < take; j++) {
				out[got + j] = ck_pr_load_ptr(&l->item[i + j]);
				torn |= out[got + j] == NULL;
			}
			nx = ck_pr_load_ptr(&l->next);
			if (torn || !olc_valid(&l->h, v))
				break; /* resume from the last item returned */
			got += take;
			if (got == max || nx == NULL || stop < n)
				return got;
			l = nx;
			v = olc_read(&l->h);
			n = load_count(&l->h, LEAF_CAP);
			i = 0;
			a.ci++;
		}
		if (got > 0) {
			key = t->key(out[got - 1], &klen);
			after = 1;
		}
	}
}

/* Locks for a split: the node h at v and its parent p at pv (NULL: h is the
 * root). Returns 0, holding nothing, if either changed. */
static int lock_pair(struct mt_bpt *t, struct hdr *p, uint64_t pv, struct hdr *h, uint64_t v)
{
	if (p != NULL && !olc_upgrade(p, pv))
		return 0;
	if (!olc_upgrade(h, v)) {
		if (p != NULL)
			olc_unlock(p);
		return 0;
	}
	if (p == NULL && ck_pr_load_ptr(&t->root) != h) {
		olc_unlock(h);
		return 0;
	}
	return 1;
}

/* Inserts (s, right) after child ci of p (locked, not full), or makes a new
 * root nr over left and right. */
static void parent_insert(struct mt_bpt *t, struct inner *p, unsigned ci,
                          const struct mt_bpt_sep *s, struct hdr *left, struct hdr *right,
                          struct inner *nr)
{
	if (p == NULL) {
		nr->h.count = 1;
		nr->pfx[0] = pfx_of(s->b, s->len, 0);
		nr->sep[0] = s;
		nr->child[0] = left;
		nr->child[1] = right;
		/* Store-store: the new root is initialised before it is seen. */
		ck_pr_fence_store();
		ck_pr_store_ptr(&t->root, nr);
		return;
	}
	unsigned n = p->h.count;

	assert(n < INNER_CAP && ci <= n);
	for (unsigned j = n; j > ci; j--) {
		ck_pr_store_64(&p->pfx[j], p->pfx[j - 1]);
		ck_pr_store_ptr(&p->sep[j], p->sep[j - 1]);
		ck_pr_store_ptr(&p->child[j + 1], p->child[j]);
	}
	ck_pr_store_64(&p->pfx[ci], pfx_of(s->b, s->len, p->h.skip));
	ck_pr_store_ptr(&p->sep[ci], s);
	ck_pr_store_ptr(&p->child[ci + 1], right);
	ck_pr_store_16(&p->h.count, (uint16_t)(n + 1));
}

/* Splits the full inner node in (locked) into itself and r (new), pushing
 * its middle separator into p (locked) or a new root nr. */
static void inner_split(struct mt_bpt *t, struct inner *p, unsigned ci, struct inner *in,
                        struct inner *r, struct inner *nr)
{
	unsigned n = in->h.count, mid = n / 2;
	const struct mt_bpt_sep *up = in->sep[mid];

	r->h.hi = in->h.hi;
	r->h.skip = (uint16_t)lcp(up, in->h.hi);
	r->h.count = (uint16_t)(n - mid - 1);
	for (unsigned j = 0; j < n - mid - 1; j++) {
		r->sep[j] = in->sep[mid + 1 + j];
		r->pfx[j] = pfx_of(r->sep[j]->b, r->sep[j]->len, r->h.skip);
	}
	for (unsigned j = 0; j <= n - mid - 1; j++)
		r->child[j] = in->child[mid + 1 + j];
	/* Store-store: r is complete before the parent links it. */
	ck_pr_fence_store();
	for (unsigned j = mid; j < n; j++) {
		ck_pr_store_64(&in->pfx[j], 0);
		ck_pr_store_ptr(&in->sep[j], NULL);
		ck_pr_store_ptr(&in->child[j + 1], NULL);
	}
	ck_pr_store_ptr(&in->h.hi, up);
	ck_pr_store_16(&in->h.count, (uint16_t)mid);
	parent_insert(t, p, ci, up, &in->h, &r->h, nr);
}

/* A leaf split prepared outside the locks: the separator and the upper half
 * re-encoded for the new leaf's skip. */
struct leaf_prep {
	struct mt_bpt_sep *sep;
	unsigned skip;
	uint64_t pfx[LEAF_CAP];
	void *item[LEAF_CAP];
};

/* Prepares the split of full leaf l read at version v. 1: ready (valid if
 * l is still at v), 0: torn read (restart), -1: no memory. */
static int leaf_prepare(struct mt_bpt *t, struct leaf *l, struct leaf_prep *lp)
{
	unsigned mid = LEAF_CAP / 2;
	const struct mt_bpt_sep *hi = ck_pr_load_ptr(&l->h.hi);
	const unsigned char *k;
	size_t kl;

	for (unsigned j = mid; j < LEAF_CAP; j++)
		if ((lp->item[j - mid] = ck_pr_load_ptr(&l->item[j])) == NULL)
			return 0;
	k = t->key(lp->item[0], &kl);
	lp->sep = sep_new(t, k, kl);
	if (lp->sep == NULL)
		return -1;
	lp->skip = lcp(lp->sep, hi);
	for (unsigned j = 0; j < LEAF_CAP - mid; j++) {
		k = t->key(lp->item[j], &kl);
		lp->pfx[j] = pfx_of(k, kl, lp->skip);
	}
	return 1;
}

static void leaf_split(struct mt_bpt *t, struct inner *p, unsigned ci, struct leaf *l,
                       struct leaf *r, struct inner *nr, const struct leaf_prep *lp)
{
	unsigned mid = LEAF_CAP / 2;

	assert(l->h.count == LEAF_CAP);
	r->h.hi = l->h.hi;
	r->h.skip = (uint16_t)lp->skip;
	r->h.count = LEAF_CAP - mid;
	r->next = l->next;
	memcpy(r->pfx, lp->pfx, sizeof(r->pfx[0]) * (LEAF_CAP - mid));
	memcpy(r->item, lp->item, sizeof(r->item[0]) * (LEAF_CAP - mid));
	/* Store-store: r is complete before l's next or the parent links it
	 * (B2). */
	ck_pr_fence_store();
	ck_pr_store_ptr(&l->next, r);
	for (unsigned j = mid; j < LEAF_CAP; j++) {
		ck_pr_store_64(&l->pfx[j], 0);
		ck_pr_store_ptr(&l->item[j], NULL);
	}
	ck_pr_store_ptr(&l->h.hi, lp->sep);
	ck_pr_store_16(&l->h.count, (uint16_t)mid);
	parent_insert(t, p, ci, lp->sep, &l->h, &r->h, nr);
}

/* New nodes a split may need, allocated before any lock. */
struct spares {
	void *node; /* a leaf or an inner node, as the split needs */
	int leaf;
	struct inner *root;
};

static int spares_get(struct mt_bpt *t, struct spares *s, int leaf, int need_root)
{
	if (s->node != NULL && s->leaf != leaf) {
		node_free(t, s->node);
		s->node = NULL;
	}
	if (s->node == NULL) {
		s->node = node_new(t, leaf);
		s->leaf = leaf;
	}
	if (need_root && s->root == NULL)
		s->root = node_new(t, 0);
	return s->node != NULL && (!need_root || s->root != NULL);
}

static void spares_put(struct mt_bpt *t, struct spares *s)
{
	node_free(t, s->node);
	node_free(t, s->root);
}

int mt_bpt_insert(struct mt_bpt *t, const void *key, size_t klen, void *item, void **existing)
{
	struct spares sp = {NULL, 0, NULL};
	struct leaf_prep lp;

	assert(item != NULL && klen > 0);
	*existing = NULL;
restart:;
	struct hdr *p = NULL, *h;
	uint64_t pv = 0, v;
	unsigned pci = 0;

	h = root_read(t, &v);
	while (!h->leaf) {
		struct inner *in = (struct inner *)h;
		unsigned n = load_count(h, INNER_CAP), i;
		struct hdr *c;
		uint64_t cv;

		if (n == INNER_CAP) {
			if (!spares_get(t, &sp, 0, p == NULL)) {
				spares_put(t, &sp);
				return MANTIS_ENOMEM;
			}
			if (!lock_pair(t, p, pv, h, v))
				goto restart;
			inner_split(t, (struct inner *)p, pci, in, sp.node,
			            p == NULL ? sp.root : NULL);
			sp.node = NULL;
			if (p == NULL)
				sp.root = NULL;
			olc_unlock(h);
			if (p != NULL)
				olc_unlock(p);
			goto restart;
		}
		i = inner_index(in, n, pfx_of(key, klen, h->skip), key, klen);
		c = ck_pr_load_ptr(&in->child[i]);
		if (c == NULL)
			goto restart;
		cv = olc_read(c);
		if (!olc_valid(h, v))
			goto restart;
		p = h;
		pv = v;
		pci = i;
		h = c;
		v = cv;
	}

	struct leaf *l = (struct leaf *)h;
	unsigned n = load_count(h, LEAF_CAP);
	uint64_t kp = pfx_of(key, klen, h->skip);
	void *hit;
	unsigned i = leaf_lower(t, l, n, kp, key, klen, &hit);

	if (i > LEAF_CAP || !olc_valid(h, v))
		goto restart;
	if (hit != NULL) {
		spares_put(t, &sp);
		*existing = hit;
		return MANTIS_OK;
	}
	if (n == LEAF_CAP) {
		int rc;

		if (!spares_get(t, &sp, 1, p == NULL)) {
			spares_put(t, &sp);
			return MANTIS_ENOMEM;
		}
		rc = leaf_prepare(t, l, &lp);
		if (rc < 0) {
			spares_put(t, &sp);
			return MANTIS_ENOMEM;
		}
		if (rc == 0)
			goto restart;
		if (!lock_pair(t, p, pv, h, v)) {
			sep_free(t, lp.sep);
			goto restart;
		}
		leaf_split(t, (struct inner *)p, pci, l, sp.node, p == NULL ? sp.root : NULL, &lp);
		sp.node = NULL;
		if (p == NULL)
			sp.root = NULL;
		olc_unlock(h);
		if (p != NULL)
			olc_unlock(p);
		goto restart;
	}
	if (!olc_upgrade(h, v))
		goto restart;
	for (unsigned j = n; j > i; j--) {
		ck_pr_store_64(&l->pfx[j], l->pfx[j - 1]);
		ck_pr_store_ptr(&l->item[j], l->item[j - 1]);
	}
	ck_pr_store_64(&l->pfx[i], kp);
	ck_pr_store_ptr(&l->item[i], item);
	ck_pr_store_16(&l->h.count, (uint16_t)(n + 1));
	olc_unlock(h);
	spares_put(t, &sp);
	return MANTIS_OK;
}

/* Finds key's leaf and position and locks the leaf, if the key is present
 * and maps to item (NULL: any). Returns the leaf (locked) or NULL. */
static struct leaf *lock_key(const struct mt_bpt *t, const void *key, size_t klen, const void *item,
                             unsigned *pos, void **found)
{
	for (;;) {
		uint64_t v;
		struct leaf *l = descend(t, key, klen, &v, NULL, NULL);
		unsigned n = load_count(&l->h, LEAF_CAP);
		void *hit;
		unsigned i = leaf_lower(t, l, n, pfx_of(key, klen, l->h.skip), key, klen, &hit);

		if (i > LEAF_CAP)
			continue;
		if (hit == NULL || (item != NULL && hit != item)) {
			if (olc_valid(&l->h, v))
				return NULL;
			continue;
		}
		if (!olc_upgrade(&l->h, v))
			continue;
		*pos = i;
		*found = hit;
		return l;
	}
}

int mt_bpt_replace(struct mt_bpt *t, const void *key, size_t klen, const void *old, void *item)
{
	unsigned i;
	void *hit;
	struct leaf *l;

	assert(old != NULL && item != NULL);
	l = lock_key(t, key, klen, old, &i, &hit);
	if (l == NULL)
		return 0;
	ck_pr_store_ptr(&l->item[i], item);
	olc_unlock(&l->h);
	return 1;
}

void *mt_bpt_remove(struct mt_bpt *t, const void *key, size_t klen, const void *item)
{
	unsigned i, n;
	void *hit;
	struct leaf *l = lock_key(t, key, klen, item, &i, &hit);

	if (l == NULL)
		return NULL;
	n = l->h.count;
	for (unsigned j = i; j + 1 < n; j++) {
		ck_pr_store_64(&l->pfx[j], l->pfx[j + 1]);
		ck_pr_store_ptr(&l->item[j], l->item[j + 1]);
	}
	/* B3: the vacated slot no longer names any item. */
	ck_pr_store_64(&l->pfx[n - 1], 0);
	ck_pr_store_ptr(&l->item[n - 1], NULL);
	ck_pr_store_16(&l->h.count, (uint16_t)(n - 1));
	olc_unlock(&l->h);
	return hit;
}

/* ------------------------------------------------------------ checker */

struct chk {
	const struct mt_bpt *t;
	char *err;
	size_t errlen;
	int leaf_depth;
	const struct leaf *prev_leaf; /* the last leaf in key order so far */
	long items;
};

static int chk_fail(struct chk *c, const char *what, const void *node)
{
	if (c->err != NULL && c->errlen > 0)
		snprintf(c->err, c->errlen, "%s (node %p)", what, node);
	return -1;
}

/* Key k of node h: in range [lo, hi), sharing h's skip bytes, with pfx. */
static int chk_key(struct chk *c, const struct hdr *h, const unsigned char *k, size_t kl,
                   uint64_t pfx, const struct mt_bpt_sep *lo, const struct mt_bpt_sep *hi)
{
	if (lo != NULL && mt_bpt_cmp(k, kl, lo->b, lo->len) < 0)
		return chk_fail(c, "key below the node's lower fence", h);
	if (hi != NULL && mt_bpt_cmp(k, kl, hi->b, hi->len) >= 0)
		return chk_fail(c, "key at or above the node's upper fence", h);
	if (kl < h->skip || (h->skip > 0 && lo == NULL && hi == NULL))
		return chk_fail(c, "key shorter than the node's skip", h);
	if (h->skip > 0) {
		const struct mt_bpt_sep *f = lo != NULL ? lo : hi;

		if (f->len < h->skip || memcmp(f->b, k, h->skip) != 0)
			return chk_fail(c, "key does not share the node's skip bytes", h);
	}
	if (pfx != pfx_of(k, kl, h->skip))
		return chk_fail(c, "prefix does not match the key", h);
	return 0;
}

static int chk_node(struct chk *c, const struct hdr *h, int depth, const struct mt_bpt_sep *lo,
                    const struct mt_bpt_sep *hi)
{
	const unsigned char *pk = NULL;
	size_t pkl = 0;

	if (h->ver & (V_LOCKED | V_WAITERS))
		return chk_fail(c, "node left locked", h);
	if (h->hi != hi &&
	    (h->hi == NULL || hi == NULL || mt_bpt_cmp(h->hi->b, h->hi->len, hi->b, hi->len) != 0))
		return chk_fail(c, "stored upper fence differs from the parent's", h);
	if (h->leaf) {
		const struct leaf *l = (const struct leaf *)h;

		if (h->count > LEAF_CAP)
			return chk_fail(c, "leaf count past capacity", h);
		if (c->leaf_depth < 0)
			c->leaf_depth = depth;
		else if (c->leaf_depth != depth)
			return chk_fail(c, "leaves at different depths", h);
		if (c->prev_leaf != NULL && c->prev_leaf->next != l)
			return chk_fail(c, "leaf chain does not follow key order", h);
		c->prev_leaf = l;
		for (unsigned i = 0; i < h->count; i++) {
			size_t kl;
			const unsigned char *k;

			if (l->item[i] == NULL)
				return chk_fail(c, "NULL item in a used slot", h);
			k = c->t->key(l->item[i], &kl);
			if (chk_key(c, h, k, kl, l->pfx[i], lo, hi) != 0)
				return -1;
			if (pk != NULL && mt_bpt_cmp(pk, pkl, k, kl) >= 0)
				return chk_fail(c, "leaf keys not strictly ascending", h);
			pk = k;
			pkl = kl;
		}
		for (unsigned i = h->count; i < LEAF_CAP; i++)
			if (l->item[i] != NULL || l->pfx[i] != 0)
				return chk_fail(c, "unused leaf slot not cleared", h);
		c->items += h->count;
		return 0;
	}
	const struct inner *in = (const struct inner *)h;

	if (h->count == 0 || h->count > INNER_CAP)
		return chk_fail(c, "inner count out of range", h);
	for (unsigned i = 0; i < h->count; i++) {
		const struct mt_bpt_sep *s = in->sep[i];

		if (s == NULL || in->child[i] == NULL)
			return chk_fail(c, "NULL separator or child", h);
		if (chk_key(c, h, s->b, s->len, in->pfx[i], lo, hi) != 0)
			return -1;
		if (pk != NULL && mt_bpt_cmp(pk, pkl, s->b, s->len) >= 0)
			return chk_fail(c, "separators not strictly ascending", h);
		pk = s->b;
		pkl = s->len;
	}
	if (in->child[h->count] == NULL)
		return chk_fail(c, "NULL last child", h);
	for (unsigned i = h->count; i < INNER_CAP; i++)
		if (in->sep[i] != NULL || in->pfx[i] != 0 || in->child[i + 1] != NULL)
			return chk_fail(c, "unused inner slot not cleared", h);
	for (unsigned i = 0; i <= h->count; i++) {
		const struct mt_bpt_sep *clo = i == 0 ? lo : in->sep[i - 1];
		const struct mt_bpt_sep *chi = i == h->count ? hi : in->sep[i];

		if (in->child[i]->skip > lcp(clo, chi) ||
		    (clo == NULL && chi == NULL && in->child[i]->skip != 0))
			return chk_fail(c, "child's skip exceeds its range's common prefix", h);
		if (chk_node(c, in->child[i], depth + 1, clo, chi) != 0)
			return -1;
	}
	return 0;
}

long mt_bpt_check(const struct mt_bpt *t, char *err, size_t errlen)
{
	struct chk c = {t, err, errlen, -1, NULL, 0};
	const struct hdr *r = t->root;

	if (r->skip != 0 || r->hi != NULL)
		return chk_fail(&c, "root has a skip or a fence", r);
	if (chk_node(&c, r, 0, NULL, NULL) != 0)
		return -1;
	if (c.prev_leaf == NULL || c.prev_leaf->next != NULL)
		return chk_fail(&c, "leaf chain does not end at the last leaf", c.prev_leaf);
	return c.items;
}
