/*
 * mt_coherent.c - cache-aside reads and cache-through writes of one db and
 * one cache that never serve a stale value (mantis_coherent_*).
 *
 * The guarantee. A mantis_coherent_get returns the value of the last write
 * (mantis_coherent_put, _delete, _write) that returned before it began, or
 * of a newer one, under any interleaving and with a cache of any size; and
 * once any storage read (multiget, iterator, snapshot) has seen a version, no
 * later coherent get returns an older one.
 *
 * The state. The cache carries an array of MT_COH_STRIPES 64-bit words
 * (allocated on the first coherent call, freed with the cache); a key maps
 * to one of them by its hash. A word is
 *
 *     generation << 24 | writers in flight (24 bits)
 *
 * A write adds 2^24 + 1 (one atomic RMW: a new generation and one more
 * writer) before touching anything, and subtracts 1 when it is done. No one
 * ever waits on a word: readers and writers only compare it, so there is no
 * lock held across a storage call and no thread depends on another's
 * progress.
 *
 * Write W of key k (put, delete):
 *  1. mine = (word += 2^24 + 1); alone = no writer was in flight before;
 *  2. write storage, getting the write's sequence number w;
 *  3. if alone, the write policy wants k cached (see below) and the value
 *     is small and has no TTL, put (k, value, w) guarded by "word == mine",
 *     i.e. no other writer of the stripe began since step 1 and none is in
 *     flight: it replaces an older entry in place;
 *  4. if step 3 did not publish, remove k from the cache (shard lock);
 *  5. word -= 1.
 * Read R of key k: stamp = word; look the cache up; a hit counts only if
 * stamp had no writer in flight and word still equals stamp after the copy
 * (a seqlock's read), else R reads storage as on a miss. On a miss, stamp
 * = word; read storage (value and its sequence number s); if stamp had no
 * writer in flight, put (k, value, s) guarded by "word == stamp".
 * A batch (mantis_coherent_write) does step 1 once per distinct stripe and
 * removes each key before its storage write (with hits validated, removing
 * before or after the storage write are both correct).
 *
 * The argument. A guarded put checks its word under the shard lock, in the
 * critical section that publishes the entry; a writer's step 1 precedes its
 * steps 3-4, which take the same shard lock. So for a guarded put P and a
 * writer W of the same stripe, either P's section precedes W's step 3 or 4
 * (which replaces or removes what P published), or P sees W's step 1 and
 * publishes nothing. Take a write W that returned, of version w:
 *  - a fill F that publishes after W's step 3/4 stamped before W's step 1
 *    (else it saw W in flight, or read storage after W's step 2: version
 *    >= w) and sees the word moved: it publishes nothing;
 *  - a writer W' that publishes after W's step 3/4 with w' < w overlapped
 *    W: if W' began first, W's step 1 moved W''s word; if W began first, W'
 *    was not alone. Either way W' publishes nothing.
 * So after W's step 3/4 every entry of k that appears has a version >= w,
 * and W's step 3/4 replaced or removed the older ones: a get that begins
 * after W returned hits a version >= w or misses and reads storage, which
 * holds w. Before W's step 3/4 the cache may still hold an older version
 * while storage holds w; a get that begins after some storage read saw w
 * (so after W's step 2, hence after its step 1) stamps the word while W is
 * in flight (busy: no hit counts) or after W's step 5 (its step 3/4 done):
 * no get returns a version older than a storage read that preceded it. A
 * hit whose stamp and re-read agree and show no writer read an entry that
 * no writer of the stripe was replacing: it is the newest version.
 *
 * TTL. mantis_db_get does not say when the version it read expires, so
 * values with a TTL are never cached: their write sets the key's bit in a
 * TTL bitmap of the same state (before step 5), and fills of a key whose bit
 * is set are skipped. The bit is tested after the storage read: a fill that
 * read a TTL version stamped after that write's step 5 (else it saw the
 * writer in flight), so it sees the bit. Bits are never cleared: such keys
 * are read from storage until the cache is closed, which is correct, only
 * slower.
 *
 * The write policy (measured in docs/performance/go-cengine.md): a write
 * inserts its new version only if the key is resident (a lock-free probe
 * after the storage write; write-through for cached keys, write-invalidate
 * for the others), so that writing a key no one reads costs the cache one
 * probe instead of an entry, and the policy's admission sees reads, not
 * writes. A resident key's write is one locked replacement in place; a
 * removal before the storage write and an insertion after it (the entry
 * taken out of the policy and put back) cost a cached key's Put about
 * twice its storage write (docs/performance/go-cengine.md). Batches only
 * invalidate.
 *
 * Large values. Values over MT_COH_CACHE_VMAX (4 KiB) are neither filled
 * nor written through: for them a cache hit saves only the storage lookup
 * (about a microsecond), while every fill and write-through costs an
 * allocation and a copy of the whole value, and every eviction an
 * epoch-deferred free of it, which on the memory-pressure suite (16-64 KiB
 * values) doubled the C core's allocation traffic and the page faults of
 * fresh memory that come with it. Writes still invalidate them.
 *
 * Lifetimes: every call runs inside one epoch section on the cache's handle
 * (mt_handle_enter), held across its storage calls, so the stripe words stay
 * valid until the call's step 5; mantis_cache_close frees them after a grace
 * period. A cache must be used with one db only (the words are per cache).
 * Holding a section across the db calls requires that those calls never wait
 * for a grace period themselves (ck_epoch_synchronize would wait for our own
 * section): true of mantis_db_get/_put/_delete/_write/_multiget with snap 0,
 * which peek their handle and never drop the db's last reference.
 */
#include "mantis.h"
#include "mt_args.h"
#include "mt_cache.h"
#include "mt_coherent.h"
#include "mt_handle.h"
#include "mt_pr.h"

#include <string.h>
#include <time.h>

#define MT_COH_STRIPES   8192u
#define MT_COH_TTL_BITS  65536u
#define MT_COH_WORDS     (MT_COH_STRIPES + MT_COH_TTL_BITS / 64)
#define MT_COH_BUSY      ((1ull << 24) - 1)
#define MT_COH_START     ((1ull << 24) + 1)
#define MT_COH_BATCH_HDR MANTIS_BATCH_HDR
/* Values over this many bytes are not cached (see "Large values" above). */
#define MT_COH_CACHE_VMAX (4u << 10)

/* A key's stripe and TTL bit, from different bits of its cache hash. */
static inline uint64_t mt_coh_stripe_of(uint64_t hash)
{
	return (hash >> 20) % MT_COH_STRIPES;
}

static inline uint64_t mt_coh_ttl_bit_of(uint64_t hash)
{
	return hash % MT_COH_TTL_BITS;
}

static unsigned mt_coh_breaks;   /* test hook: MT_COH_BREAK_* */
static uint64_t mt_coh_delay_ns; /* test hook: sleep before guarded puts */
static int mt_coh_policy;        /* test hook: MT_COH_POLICY_* */

void mt_coherent_test_hooks(unsigned breaks, uint64_t delay_ns, int policy)
{
	ck_pr_store_uint(&mt_coh_breaks, breaks);
	ck_pr_store_64(&mt_coh_delay_ns, delay_ns);
	ck_pr_store_int(&mt_coh_policy, policy);
}

static void mt_coh_test_delay(void)
{
	uint64_t ns = ck_pr_load_64(&mt_coh_delay_ns);
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
	                      .tv_nsec = (long)(ns % 1000000000ull)};

	if (ns != 0)
		nanosleep(&ts, NULL);
}

static inline int mt_coh_broken(unsigned what)
{
	return (ck_pr_load_uint(&mt_coh_breaks) & what) != 0;
}

struct mt_coh {
	ck_epoch_record_t *r;
	struct mt_cache *c;
	uint64_t *words; /* MT_COH_STRIPES stripe words, then the TTL bitmap */
};

/* Enters the cache's handle; on success the caller must mt_handle_leave. */
static int mt_coh_enter(uint64_t cache, struct mt_coh *h)
{
	int rc = mt_handle_enter(cache, MT_HANDLE_CACHE, &h->r, (void **)&h->c);

	if (rc != MANTIS_OK)
		return rc;
	h->words = mt_cache_coherent_state(h->c, MT_COH_WORDS);
	if (h->words == NULL) {
		mt_handle_leave(h->r);
		return MANTIS_ENOMEM;
	}
	return MANTIS_OK;
}

static inline uint64_t *mt_coh_word(const struct mt_coh *h, uint64_t hash)
{
	return &h->words[mt_coh_stripe_of(hash)];
}

/* Step 1 of a write: returns the word's new value; *alone says whether no
 * other writer of the stripe was in flight. */
static inline uint64_t mt_coh_begin(uint64_t *w, int *alone)
{
	/* Full barrier (seq_cst RMW): ordered before the invalidation's lock
	 * and the storage write that follow. */
	uint64_t prev = ck_pr_faa_64(w, MT_COH_START);

	*alone = (prev & MT_COH_BUSY) == 0;
	return prev + MT_COH_START;
}

/* Step 5 of a write. */
static inline void mt_coh_end(uint64_t *w)
{
	/* Release (seq_cst RMW): the write's storage and cache steps and its
	 * TTL bit before a filler can see the stripe idle. */
	ck_pr_sub_64(w, 1);
}

static inline void mt_coh_ttl_set(const struct mt_coh *h, uint64_t hash)
{
	uint64_t b = mt_coh_ttl_bit_of(hash);

	/* Ordered before step 5's RMW (both seq_cst). */
	ck_pr_or_64(&h->words[MT_COH_STRIPES + b / 64], 1ull << (b % 64));
}

static inline int mt_coh_ttl_test(const struct mt_coh *h, uint64_t hash)
{
	uint64_t b = mt_coh_ttl_bit_of(hash);

	return (ck_pr_load_64(&h->words[MT_COH_STRIPES + b / 64]) >> (b % 64)) & 1;
}

/* Whether the write policy asks whether the key is resident. */
static inline int mt_coh_policy_needs_resident(void)
{
	return ck_pr_load_int(&mt_coh_policy) == MT_COH_POLICY_RESIDENT;
}

/* Whether a write inserts its new version (step 4). */
static inline int mt_coh_insert(int alone, int resident)
{
	int policy = ck_pr_load_int(&mt_coh_policy);

	if (mt_coh_broken(MT_COH_BREAK_ALONE))
		return policy == MT_COH_POLICY_ALWAYS || resident;
	if (!alone || policy == MT_COH_POLICY_NEVER)
		return 0;
	return policy == MT_COH_POLICY_ALWAYS || resident;
}

int mantis_coherent_get(uint64_t db, uint64_t cache, const void *key, size_t klen, void *buf,
                        size_t cap, size_t *vlen_out, uint64_t *seq_out)
{
	struct mt_cache_guard g;
	uint64_t hash, seq = 0, stamp;
	struct mt_coh h;
	int rc;

	if (vlen_out == NULL || (buf == NULL && cap > 0))
		return MANTIS_EINVAL;
	rc = mt_args_check_key(key, klen);
	if (rc != MANTIS_OK)
		return rc;
	rc = mt_coh_enter(cache, &h);
	if (rc != MANTIS_OK)
		return rc;
	hash = mt_cache_key_hash(key, klen);
	g.word = mt_coh_word(&h, hash);
	/* The hit's stamp (seq_cst load), before the lookup. */
	stamp = ck_pr_load_64(g.word);
	rc = mt_cache_get_in(h.c, h.r, hash, key, klen, buf, cap, vlen_out, &seq, 1);
	if (rc == MANTIS_OK && !mt_coh_broken(MT_COH_BREAK_VALIDATE)) {
		/* Acquire: the copy above before the re-read. A hit counts only
		 * if no writer of the stripe was in flight at the stamp and none
		 * began since (a seqlock's read): a writer replaces or removes
		 * its key's entry after its storage write, so the entry may be
		 * older than storage while the writer is in flight. */
		ck_pr_fence_load();
		if ((stamp & MT_COH_BUSY) != 0 || ck_pr_load_64(g.word) != stamp)
			rc = MANTIS_NOTFOUND;
	}
	if (rc == MANTIS_NOTFOUND) {
		/* The fill's stamp: loaded before the storage read (seq_cst). */
		g.want = ck_pr_load_64(g.word);
		rc = mantis_db_get(db, 0, key, klen, buf, cap, vlen_out, &seq);
		if (rc == MANTIS_OK && *vlen_out <= MT_COH_CACHE_VMAX &&
		    !mt_coh_ttl_test(&h, hash) &&
		    ((g.want & MT_COH_BUSY) == 0 || mt_coh_broken(MT_COH_BREAK_GUARD))) {
			mt_coh_test_delay();
			/* A failed fill (ENOMEM, declined) only costs a later miss. */
			(void)mt_cache_put_in(h.c, h.r, hash, key, klen, buf, *vlen_out, 0, 0, seq,
			                      mt_coh_broken(MT_COH_BREAK_GUARD) ? NULL : &g, NULL);
		}
	}
	mt_handle_leave(h.r);
	if (rc == MANTIS_OK && seq_out != NULL)
		*seq_out = seq;
	return rc;
}

/* Whether key is in the cache now: a lock-free probe that counts no hit or
 * miss (it does mark the entry accessed for the eviction policy: a cached
 * key that is written counts as used). */
static inline int mt_coh_resident(const struct mt_coh *h, uint64_t hash, const void *key,
                                  size_t klen)
{
	size_t n;

	return mt_cache_get_in(h->c, h->r, hash, key, klen, NULL, 0, &n, NULL, 0) !=
	       MANTIS_NOTFOUND;
}

/* put and delete: steps 1-4 for one key; value NULL for a delete. */
static int mt_coh_write1(uint64_t db, uint64_t cache, const void *key, size_t klen,
                         const void *value, size_t vlen, uint64_t ttl_ms, int is_delete,
                         uint64_t *seq_out)
{
	struct mt_cache_guard g;
	uint64_t hash, seq = 0;
	int rc, alone, admitted = 0;
	struct mt_coh h;

	rc = mt_coh_enter(cache, &h);
	if (rc != MANTIS_OK)
		return rc;
	hash = mt_cache_key_hash(key, klen);
	g.word = mt_coh_word(&h, hash);
	g.want = mt_coh_begin((uint64_t *)g.word, &alone);
	if (is_delete)
		rc = mantis_db_delete(db, key, klen, &seq);
	else
		rc = mantis_db_put(db, key, klen, value, vlen, ttl_ms, &seq);
	if (rc == MANTIS_OK) {
		if (!is_delete && ttl_ms != 0)
			mt_coh_ttl_set(&h, hash);
		/* mt_coh_insert(alone, 1) is whether a resident key would be
		 * inserted; only then is it worth probing for residency. */
		if (!is_delete && ttl_ms == 0 && vlen <= MT_COH_CACHE_VMAX &&
		    mt_coh_insert(alone, 1) &&
		    (!mt_coh_policy_needs_resident() || mt_coh_resident(&h, hash, key, klen))) {
			mt_coh_test_delay();
			if (mt_cache_put_in(h.c, h.r, hash, key, klen, value, vlen, 0, 0, seq,
			                    mt_coh_broken(MT_COH_BREAK_ALONE) ? NULL : &g,
			                    &admitted) != MANTIS_OK)
				admitted = 0;
		}
		/* Not replaced: remove the older version (under the shard
		 * lock, so that a fill publishing concurrently is either seen
		 * and removed or saw our step 1 and published nothing). */
		if (!admitted && !mt_coh_broken(MT_COH_BREAK_INVALIDATE))
			(void)mt_cache_delete_in(h.c, h.r, hash, key, klen, UINT64_MAX);
	}
	mt_coh_end((uint64_t *)g.word);
	mt_handle_leave(h.r);
	if (rc == MANTIS_OK && seq_out != NULL)
		*seq_out = seq;
	return rc;
}

int mantis_coherent_put(uint64_t db, uint64_t cache, const void *key, size_t klen,
                        const void *value, size_t vlen, uint64_t ttl_ms, uint64_t *seq_out)
{
	int rc = mt_args_check_key(key, klen);

	/* Bad arguments are refused before the cache is touched (a pointer
	 * error first, as mantis_db_put does). */
	if (rc == MANTIS_EINVAL || (value == NULL && vlen > 0))
		return MANTIS_EINVAL;
	if (rc == MANTIS_OK)
		rc = mt_args_check_value(value, vlen);
	if (rc != MANTIS_OK)
		return rc;
	return mt_coh_write1(db, cache, key, klen, value, vlen, ttl_ms, 0, seq_out);
}

int mantis_coherent_delete(uint64_t db, uint64_t cache, const void *key, size_t klen,
                           uint64_t *seq_out)
{
	int rc = mt_args_check_key(key, klen);

	if (rc != MANTIS_OK)
		return rc;
	return mt_coh_write1(db, cache, key, klen, NULL, 0, 0, 1, seq_out);
}

/* One record of a batch (mantis.h's encoding). */
struct mt_coh_rec {
	int op;
	uint32_t klen, vlen;
	uint64_t ttl_ms;
	const unsigned char *key, *val;
};

/* Decodes the record at p (end e) into *r and returns the next one, or NULL
 * at the end or at a malformed tail (mantis_db_write then refuses the batch
 * with MANTIS_EINVAL: the keys invalidated before only cost misses). */
static const unsigned char *mt_coh_rec_next(const unsigned char *p, const unsigned char *e,
                                            struct mt_coh_rec *r)
{
	if (p == NULL || (size_t)(e - p) < MT_COH_BATCH_HDR)
		return NULL;
	r->op = p[0];
	memcpy(&r->klen, p + 1, 4);
	memcpy(&r->vlen, p + 5, 4);
	memcpy(&r->ttl_ms, p + 9, 8);
	r->key = p + MT_COH_BATCH_HDR;
	r->val = r->key + r->klen;
	if ((size_t)(e - r->key) < (size_t)r->klen + r->vlen)
		return NULL;
	return r->val + r->vlen;
}

static inline int mt_coh_rec_writes(const struct mt_coh_rec *r)
{
	return (r->op == MANTIS_OP_PUT || r->op == MANTIS_OP_DELETE) &&
	       mt_args_check_klen(r->klen) == MANTIS_OK;
}

/* mantis_coherent_write (check_seq) and mantis_coherent_commit (check_snap). */
static int mt_coh_write(uint64_t db, uint64_t cache, const void *batch, size_t len,
                        uint64_t check_seq, uint64_t check_snap, uint64_t *seq_out)
{
	const unsigned char *b = batch, *e, *p, *q;
	uint64_t begun[MT_COH_STRIPES / 64], hash, s;
	struct mt_coh_rec rec;
	struct mt_coh h;
	int rc, alone;

	if (batch == NULL && len > 0)
		return MANTIS_EINVAL;
	rc = mt_coh_enter(cache, &h);
	if (rc != MANTIS_OK)
		return rc;
	e = b + len;
	/* Step 1 once per distinct stripe (so a stripe's writer count stays
	 * bounded by the threads in flight), then step 2 per key. */
	memset(begun, 0, sizeof(begun));
	for (p = b; (q = mt_coh_rec_next(p, e, &rec)) != NULL; p = q) {
		if (!mt_coh_rec_writes(&rec))
			continue;
		hash = mt_cache_key_hash(rec.key, rec.klen);
		s = mt_coh_stripe_of(hash);
		if (!(begun[s / 64] >> (s % 64) & 1)) {
			begun[s / 64] |= 1ull << (s % 64);
			(void)mt_coh_begin(&h.words[s], &alone);
		}
		if (!mt_coh_broken(MT_COH_BREAK_INVALIDATE))
			(void)mt_cache_delete_in(h.c, h.r, hash, rec.key, rec.klen, UINT64_MAX);
	}
	rc = check_snap != 0 ? mantis_db_commit(db, check_snap, batch, len, seq_out)
	                     : mantis_db_write(db, batch, len, check_seq, seq_out);
	if (rc == MANTIS_OK)
		for (p = b; (q = mt_coh_rec_next(p, e, &rec)) != NULL; p = q)
			if (rec.op == MANTIS_OP_PUT && rec.ttl_ms != 0 && mt_coh_rec_writes(&rec))
				mt_coh_ttl_set(&h, mt_cache_key_hash(rec.key, rec.klen));
	for (s = 0; s < MT_COH_STRIPES / 64; s++)
		for (uint64_t m = begun[s]; m != 0; m &= m - 1)
			mt_coh_end(&h.words[s * 64 + (uint64_t)__builtin_ctzll(m)]);
	mt_handle_leave(h.r);
	return rc;
}

int mantis_coherent_write(uint64_t db, uint64_t cache, const void *batch, size_t len,
                          uint64_t check_seq, uint64_t *seq_out)
{
	return mt_coh_write(db, cache, batch, len, check_seq, 0, seq_out);
}

int mantis_coherent_commit(uint64_t db, uint64_t cache, uint64_t snap, const void *batch,
                           size_t len, uint64_t *seq_out)
{
	void *obj;
	int rc;

	if (snap == 0)
		return MANTIS_EINVAL; /* as mantis_db_commit, before any cache work */
	/* A reference of our own across the cache's epoch section, dropped
	 * after it: if the snapshot's and its db's handles are closed
	 * meanwhile, mantis_db_commit's release inside the section is then
	 * never the last one, whose destruction of the db waits for a grace
	 * period that the section itself holds back (for ever). */
	rc = mt_handle_acquire(snap, MT_HANDLE_SNAPSHOT, &obj);
	if (rc != MANTIS_OK)
		return rc;
	rc = mt_coh_write(db, cache, batch, len, 0, snap, seq_out);
	mt_handle_release(snap);
	return rc;
}

/* The most keys a multiget serves from the cache (stack arrays); larger
 * ones go to storage. */
#define MT_COH_MGET_MAX 256u

/* Serves a multiget from the cache if every key is resident and no writer
 * of their stripes began or was in flight between the first stamp and the
 * last check. Returns MANTIS_OK with *out_len set, or MANTIS_NOTFOUND to
 * fall back to storage (also for anything malformed or too small: storage
 * answers with the right code or size). */
static int mt_coh_mget_cached(const struct mt_coh *h, const unsigned char *keys, size_t keys_len,
                              uint32_t nkeys, unsigned char *out, size_t out_cap, size_t *out_len)
{
	uint64_t hash[MT_COH_MGET_MAX], stamp[MT_COH_MGET_MAX];
	uint32_t koff[MT_COH_MGET_MAX], klen[MT_COH_MGET_MAX];
	size_t off = 0, o = 0, vlen;
	uint32_t i;

	/* Pass 1: parse, hash, start loading each key's home slot. */
	for (i = 0; i < nkeys; i++) {
		if (keys_len - off < 4)
			return MANTIS_NOTFOUND;
		memcpy(&klen[i], keys + off, 4);
		if (mt_args_check_klen(klen[i]) != MANTIS_OK || keys_len - off - 4 < klen[i])
			return MANTIS_NOTFOUND;
		koff[i] = (uint32_t)(off + 4);
		hash[i] = mt_cache_key_hash(keys + off + 4, klen[i]);
		mt_cache_prefetch_in(h->c, hash[i], 0);
		off += 4 + (size_t)klen[i];
	}
	if (off != keys_len)
		return MANTIS_NOTFOUND;
	/* Pass 2: every stamp (seq_cst loads), all before any lookup; start
	 * loading the entries. */
	for (i = 0; i < nkeys; i++) {
		stamp[i] = ck_pr_load_64(mt_coh_word(h, hash[i]));
		if ((stamp[i] & MT_COH_BUSY) != 0)
			return MANTIS_NOTFOUND;
		mt_cache_prefetch_in(h->c, hash[i], 1);
	}
	/* Pass 3: the lookups, each value copied after its length. */
	for (i = 0; i < nkeys; i++) {
		uint32_t v32;

		if (out_cap - o < 4)
			return MANTIS_NOTFOUND;
		if (mt_cache_get_in(h->c, h->r, hash[i], keys + koff[i], klen[i], out + o + 4,
		                    out_cap - o - 4, &vlen, NULL, 0) != MANTIS_OK)
			return MANTIS_NOTFOUND;
		v32 = (uint32_t)vlen;
		memcpy(out + o, &v32, 4);
		o += 4 + vlen;
	}
	/* Pass 4: no stripe moved. Then at any instant between the last stamp
	 * and the first check, no writer of these keys was in flight, so every
	 * value read is its key's newest committed version at that instant:
	 * the result is a snapshot, as a storage multiget's. */
	for (i = 0; i < nkeys; i++)
		if (ck_pr_load_64(mt_coh_word(h, hash[i])) != stamp[i])
			return MANTIS_NOTFOUND;
	*out_len = o;
	return MANTIS_OK;
}

int mantis_coherent_multiget(uint64_t db, uint64_t cache, const void *keys, size_t keys_len,
                             uint32_t nkeys, void *out, size_t out_cap, size_t *out_len)
{
	struct mt_coh h;
	int rc;

	if (out_len == NULL || (keys == NULL && keys_len > 0) || (out == NULL && out_cap > 0))
		return MANTIS_EINVAL;
	if (nkeys > 0 && nkeys <= MT_COH_MGET_MAX) {
		rc = mt_coh_enter(cache, &h);
		if (rc != MANTIS_OK)
			return rc;
		rc = mt_coh_mget_cached(&h, keys, keys_len, nkeys, out, out_cap, out_len);
		mt_handle_leave(h.r);
		if (rc == MANTIS_OK)
			return rc;
	}
	return mantis_db_multiget(db, 0, keys, keys_len, nkeys, out, out_cap, out_len);
}
