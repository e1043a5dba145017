/*
 * mt_handle.c - generation-checked, reference-counted handle slots.
 * The protocol and its invariants are in mt_handle.h.
 */
#include "mt_handle.h"

#include "mantis.h"
#include "mt_alloc.h"
#include "mt_pr.h"

#include <assert.h>
#include <pthread.h>
#include <stddef.h>

#define MT_HANDLE_CHUNK_BITS 12
#define MT_HANDLE_CHUNK      (1u << MT_HANDLE_CHUNK_BITS) /* slots per chunk */
#define MT_HANDLE_DIR        4096u                        /* chunks at most */

#define MT_HS_CLOSED (1ull << 31)
#define MT_HS_REFS   0x7fffffffull
#define MT_HS_GEN(w) ((uint32_t)((w) >> 32))

struct mt_handle_slot {
	uint64_t state; /* gen << 32 | CLOSED | refs */
	void *obj;
	mt_handle_destroy_fn *destroy;
	uint32_t kind;
	uint32_t next_free; /* free-list link, under mt_handle_lock */
};

static struct mt_handle_slot *mt_handle_dir[MT_HANDLE_DIR];
static uint32_t mt_handle_chunks;    /* chunks allocated, under the lock */
static uint32_t mt_handle_free_head; /* 0: empty; index 0 is never issued */
static uint64_t mt_handle_open;
static uint64_t mt_handle_retired; /* slots whose generation ran out */
static pthread_mutex_t mt_handle_lock = PTHREAD_MUTEX_INITIALIZER;

static struct mt_handle_slot *mt_handle_slot(uint32_t index)
{
	struct mt_handle_slot *chunk;

	if (index >> MT_HANDLE_CHUNK_BITS >= MT_HANDLE_DIR)
		return NULL;
	/* Pairs with the store in mt_handle_grow: a chunk is fully
	 * initialised before its pointer is visible. */
	chunk = ck_pr_load_ptr(&mt_handle_dir[index >> MT_HANDLE_CHUNK_BITS]);
	if (chunk == NULL)
		return NULL;
	return &chunk[index & (MT_HANDLE_CHUNK - 1)];
}

/* Adds a chunk of free slots. Called with mt_handle_lock held. */
static int mt_handle_grow(void)
{
	struct mt_handle_slot *chunk;
	uint32_t base, i;

	if (mt_handle_chunks == MT_HANDLE_DIR)
		return MANTIS_ENOMEM;
	chunk = mt_calloc(MT_HANDLE_CHUNK, sizeof(*chunk));
	if (chunk == NULL)
		return MANTIS_ENOMEM;
	base = mt_handle_chunks << MT_HANDLE_CHUNK_BITS;
	for (i = 0; i < MT_HANDLE_CHUNK; i++) {
		/* Free slots are CLOSED; generation 1 is the next to issue. */
		chunk[i].state = (1ull << 32) | MT_HS_CLOSED;
		chunk[i].next_free = base + i + 1;
	}
	chunk[MT_HANDLE_CHUNK - 1].next_free = mt_handle_free_head;
	/* Index 0 stays reserved so that handle 0 is never valid. */
	mt_handle_free_head = base == 0 ? 1 : base;
	ck_pr_fence_store(); /* chunk contents before the chunk pointer */
	ck_pr_store_ptr(&mt_handle_dir[mt_handle_chunks], chunk);
	mt_handle_chunks++;
	return MANTIS_OK;
}

int mt_handle_alloc(enum mt_handle_kind kind, void *obj, mt_handle_destroy_fn *destroy,
                    uint64_t *h_out)
{
	struct mt_handle_slot *s;
	uint32_t index, gen;
	int rc = MANTIS_OK;

	assert(obj != NULL && destroy != NULL && h_out != NULL);
	pthread_mutex_lock(&mt_handle_lock);
	if (mt_handle_free_head == 0)
		rc = mt_handle_grow();
	if (rc != MANTIS_OK) {
		pthread_mutex_unlock(&mt_handle_lock);
		return rc;
	}
	index = mt_handle_free_head;
	s = mt_handle_slot(index);
	mt_handle_free_head = s->next_free;
	pthread_mutex_unlock(&mt_handle_lock);

	ck_pr_store_ptr(&s->obj, obj); /* atomic: mt_handle_peek reads it */
	s->destroy = destroy;
	ck_pr_store_32(&s->kind, (uint32_t)kind);
	gen = MT_HS_GEN(ck_pr_load_64(&s->state));
	/* Publish: obj, destroy and kind are written before the state word
	 * that lets an acquirer in (its CAS then reads them). */
	ck_pr_fence_store();
	ck_pr_store_64(&s->state, (uint64_t)gen << 32 | 1u);
	ck_pr_inc_64(&mt_handle_open);
	*h_out = (uint64_t)gen << 32 | index;
	return MANTIS_OK;
}

static int mt_handle_check(uint64_t w, uint32_t gen)
{
	if (MT_HS_GEN(w) != gen)
		/* A past generation was closed; a future one is forged. */
		return gen < MT_HS_GEN(w) ? MANTIS_CLOSED : MANTIS_EBADHANDLE;
	if (w & MT_HS_CLOSED)
		return MANTIS_CLOSED;
	return MANTIS_OK;
}

int mt_handle_acquire(uint64_t h, enum mt_handle_kind kind, void **obj_out)
{
	uint32_t gen = (uint32_t)(h >> 32);
	struct mt_handle_slot *s;
	uint64_t w;
	int rc;

	if (gen == 0 || (uint32_t)h == 0 || (s = mt_handle_slot((uint32_t)h)) == NULL)
		return MANTIS_EBADHANDLE;
	w = ck_pr_load_64(&s->state);
	for (;;) {
		rc = mt_handle_check(w, gen);
		if (rc != MANTIS_OK)
			return rc;
		if ((w & MT_HS_REFS) == MT_HS_REFS)
			return MANTIS_EBADHANDLE; /* 2^31 concurrent users */
		/* Acquire: on success the slot's fields are those published
		 * with this generation (full barrier on x86-64). */
		if (ck_pr_cas_64_value(&s->state, w, w + 1, &w))
			break;
	}
	ck_pr_fence_load();
	if (ck_pr_load_32(&s->kind) != (uint32_t)kind) {
		mt_handle_release(h);
		return MANTIS_EBADHANDLE;
	}
	*obj_out = ck_pr_load_ptr(&s->obj);
	return MANTIS_OK;
}

int mt_handle_peek(uint64_t h, enum mt_handle_kind kind, void **obj_out)
{
	uint32_t gen = (uint32_t)(h >> 32);
	struct mt_handle_slot *s;
	uint64_t w;
	uint32_t k;
	void *obj;
	int rc;

	if (gen == 0 || (uint32_t)h == 0 || (s = mt_handle_slot((uint32_t)h)) == NULL)
		return MANTIS_EBADHANDLE;
	w = ck_pr_load_64(&s->state);
	rc = mt_handle_check(w, gen);
	if (rc != MANTIS_OK)
		return rc;
	/* The fields were published before the state word (mt_handle_alloc);
	 * re-reading the state after them proves they belong to this
	 * generation and that it was still open then. The caller's epoch
	 * section, begun before, keeps the object alive from that point. */
	ck_pr_fence_load();
	k = ck_pr_load_32(&s->kind);
	obj = ck_pr_load_ptr(&s->obj);
	ck_pr_fence_load();
	w = ck_pr_load_64(&s->state);
	rc = mt_handle_check(w, gen);
	if (rc != MANTIS_OK)
		return rc;
	if (k != (uint32_t)kind || obj == NULL)
		return MANTIS_EBADHANDLE;
	*obj_out = obj;
	return MANTIS_OK;
}

/*
 * Frees a slot whose object was destroyed: bump the generation so every
 * outstanding copy of the handle goes stale, and put it on the free list.
 *
 * A slot whose generation would wrap is retired instead: it stays CLOSED
 * at the last generation for ever and never returns to the free list.
 * Reusing it would issue generation 1 again, and a stale copy of that
 * handle (2^32 opens ago: about 70 minutes at a million opens a second on
 * one slot, which the LIFO free list makes the common case) would validate
 * against the new object (defect 5 of issue 8). A retired slot costs its 32
 * bytes once per 2^32 opens.
 */
static void mt_handle_recycle(struct mt_handle_slot *s, uint32_t index, uint32_t gen)
{
	ck_pr_store_ptr(&s->obj, NULL);
	s->destroy = NULL;
	if (gen == UINT32_MAX) {
		ck_pr_store_64(&s->state, (uint64_t)gen << 32 | MT_HS_CLOSED);
		ck_pr_inc_64(&mt_handle_retired);
		return;
	}
	ck_pr_store_64(&s->state, (uint64_t)(gen + 1) << 32 | MT_HS_CLOSED);
	pthread_mutex_lock(&mt_handle_lock);
	s->next_free = mt_handle_free_head;
	mt_handle_free_head = index;
	pthread_mutex_unlock(&mt_handle_lock);
}

static void mt_handle_unref(struct mt_handle_slot *s, uint32_t index)
{
	uint64_t w = ck_pr_faa_64(&s->state, (uint64_t)-1) - 1;

	assert(((w + 1) & MT_HS_REFS) != 0);
	if ((w & (MT_HS_CLOSED | MT_HS_REFS)) == MT_HS_CLOSED) {
		/* Last reference of a closed handle: no one else can acquire
		 * (CLOSED) and no one holds it (refs 0). */
		ck_pr_fence_load();
		s->destroy(s->obj);
		ck_pr_dec_64(&mt_handle_open);
		mt_handle_recycle(s, index, MT_HS_GEN(w));
	}
}

void mt_handle_release(uint64_t h)
{
	struct mt_handle_slot *s = mt_handle_slot((uint32_t)h);

	assert(s != NULL);
	mt_handle_unref(s, (uint32_t)h);
}

int mt_handle_close(uint64_t h, enum mt_handle_kind kind)
{
	uint32_t gen = (uint32_t)(h >> 32);
	struct mt_handle_slot *s;
	uint64_t w;
	int rc;

	if (gen == 0 || (uint32_t)h == 0 || (s = mt_handle_slot((uint32_t)h)) == NULL)
		return MANTIS_EBADHANDLE;
	w = ck_pr_load_64(&s->state);
	for (;;) {
		rc = mt_handle_check(w, gen);
		if (rc != MANTIS_OK)
			return rc;
		if (ck_pr_load_32(&s->kind) != (uint32_t)kind)
			return MANTIS_EBADHANDLE;
		/* Exactly one closer wins this CAS; others see CLOSED. */
		if (ck_pr_cas_64_value(&s->state, w, w | MT_HS_CLOSED, &w))
			break;
	}
	/* Drop the reference the open state held. */
	mt_handle_unref(s, (uint32_t)h);
	return MANTIS_OK;
}

uint64_t mt_handle_open_count(void)
{
	return ck_pr_load_64(&mt_handle_open);
}

uint64_t mt_handle_retired_count(void)
{
	return ck_pr_load_64(&mt_handle_retired);
}

int mt_handle_test_set_gen(uint32_t index, uint32_t gen)
{
	struct mt_handle_slot *s = mt_handle_slot(index);
	uint64_t w;

	if (s == NULL || gen == 0)
		return MANTIS_EINVAL;
	pthread_mutex_lock(&mt_handle_lock);
	w = ck_pr_load_64(&s->state);
	/* Only a free slot: an open one's holders know its generation. */
	if (!(w & MT_HS_CLOSED) || (w & MT_HS_REFS) != 0) {
		pthread_mutex_unlock(&mt_handle_lock);
		return MANTIS_EINVAL;
	}
	ck_pr_store_64(&s->state, (uint64_t)gen << 32 | (w & 0xffffffffull));
	pthread_mutex_unlock(&mt_handle_lock);
	return MANTIS_OK;
}
