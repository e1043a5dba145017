/*
 * mt_handle.h - the FFI handle table: 64-bit handles for library objects.
 *
 * A host (Go) never holds a C pointer; it holds a handle
 *
 *     handle = generation << 32 | slot index
 *
 * Each slot has one 64-bit state word: generation (high 32 bits), a CLOSED
 * bit and a reference count (low 31 bits). Acquiring a handle is one CAS
 * that checks the generation and the CLOSED bit and increments the count,
 * so lookup takes no lock and a stale generation can never reach a reused
 * slot's object. A slot's open state holds one reference of its own; close
 * sets CLOSED and drops it, and whoever drops the last reference destroys
 * the object, so close concurrent with calls in flight is safe: the object
 * outlives every call that acquired it.
 *
 * Slots live in fixed chunks reached through a directory that only grows,
 * so a slot's address never changes and lookups need no epoch. Allocation
 * and slot recycling take a mutex (handle creation is not a hot path).
 * Handle 0 is never issued (index 0 is reserved). Generations never wrap:
 * a slot whose generation reaches 2^32 - 1 is retired when that handle
 * closes, never reused.
 */
#ifndef MT_HANDLE_H
#define MT_HANDLE_H

#include "mantis.h"
#include "mt_epoch.h"

#include <stdint.h>

enum mt_handle_kind {
	MT_HANDLE_DB = 1,
	MT_HANDLE_SNAPSHOT = 2,
	MT_HANDLE_ITER = 3,
	MT_HANDLE_CACHE = 4,
};

/* Destroys obj once its handle is closed and its last user has left. */
typedef void mt_handle_destroy_fn(void *obj);

/* Issues a handle for obj. Takes ownership of obj: destroy(obj) runs when
 * the handle is closed and released by every user. Returns MANTIS_OK or
 * MANTIS_ENOMEM (then obj is still the caller's). */
int mt_handle_alloc(enum mt_handle_kind kind, void *obj, mt_handle_destroy_fn *destroy,
                    uint64_t *h_out);

/* Takes a reference on h and writes its object to *obj_out. The object
 * stays alive until the matching mt_handle_release. Returns MANTIS_OK,
 * MANTIS_EBADHANDLE (never issued, or another kind) or MANTIS_CLOSED. */
int mt_handle_acquire(uint64_t h, enum mt_handle_kind kind, void **obj_out);

/* Looks h up without taking a reference: no shared write, for hot paths
 * that many threads call at once. Valid only inside an epoch section, and
 * only for kinds whose destroy function waits for a grace period before
 * freeing (ck_epoch_synchronize): the object then stays alive until the
 * section ends. Same results as mt_handle_acquire; no release. */
int mt_handle_peek(uint64_t h, enum mt_handle_kind kind, void **obj_out);

/* Drops a reference taken by mt_handle_acquire; may destroy the object. */
void mt_handle_release(uint64_t h);

/* Closes h: later acquires fail with MANTIS_CLOSED and the object is
 * destroyed when the last user releases it. Returns MANTIS_OK,
 * MANTIS_EBADHANDLE or MANTIS_CLOSED (already closed). */
int mt_handle_close(uint64_t h, enum mt_handle_kind kind);

/* Enters an epoch section of the calling thread and looks h up with
 * mt_handle_peek (no reference: no shared write per call). The object stays
 * alive until the matching mt_handle_leave(*r_out), provided its destroy
 * function defers the free through the epoch. Returns MANTIS_OK,
 * MANTIS_ENOMEM (no epoch record), MANTIS_EBADHANDLE or MANTIS_CLOSED; on an
 * error no section is left open. */
static inline int mt_handle_enter(uint64_t h, enum mt_handle_kind kind, ck_epoch_record_t **r_out,
                                  void **obj_out)
{
	ck_epoch_record_t *r = mt_epoch_record();
	int rc;

	if (r == NULL)
		return MANTIS_ENOMEM;
	mt_epoch_begin(r, NULL);
	rc = mt_handle_peek(h, kind, obj_out);
	if (rc != MANTIS_OK) {
		mt_epoch_end(r, NULL);
		return rc;
	}
	*r_out = r;
	return MANTIS_OK;
}

/* Ends the section mt_handle_enter began. */
static inline void mt_handle_leave(ck_epoch_record_t *r)
{
	mt_epoch_end(r, NULL);
}

/* The number of handles open now (for tests and leak checks). */
uint64_t mt_handle_open_count(void);
/* The number of slots retired because their generation ran out. */
uint64_t mt_handle_retired_count(void);

/* Test hook: sets the generation of free slot index (closed, no holder) to
 * gen, so that tests reach the wrap-around of a slot's generation without
 * 2^32 opens. Returns MANTIS_OK, or MANTIS_EINVAL if the slot is not free. */
int mt_handle_test_set_gen(uint32_t index, uint32_t gen);

#endif /* MT_HANDLE_H */
