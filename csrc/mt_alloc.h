/*
 * mt_alloc.h - every allocation of the library goes through here.
 *
 * Production builds allocate with mimalloc. Sanitizer builds (MT_LIBC_MALLOC)
 * use the C library's allocator so that ASan and TSan can track every block.
 *
 * Allocation-failure testing (SQLite's approach): mt_alloc_fail_after(n)
 * makes the n-th allocation from now fail, and every one after it until
 * mt_alloc_fail_after(0) disarms the fault. Tests call an API function with
 * n = 1, 2, ... until it succeeds and check that every failure returned
 * MANTIS_ENOMEM and left nothing half-written.
 */
#ifndef MT_ALLOC_H
#define MT_ALLOC_H

#include <stddef.h>
#include <stdint.h>

/* Returns size bytes aligned for any type, or NULL. */
void *mt_malloc(size_t size);
/* As mt_malloc, zero-filled. */
void *mt_calloc(size_t n, size_t size);
/* Returns size bytes aligned to align (a power of two), or NULL. */
void *mt_malloc_aligned(size_t size, size_t align);
/* Frees a block from any of the above; NULL is ignored. */
void mt_free(void *p);
/* Touches every page of the zero-filled block p (len bytes, from
 * mt_calloc) so that its page faults happen now, in the caller, and not
 * later inside a critical section that first writes it (the cache's tables
 * and ghosts are allocated before their shard lock is taken). */
void mt_calloc_prefault(void *p, size_t len);

/* Test hook: fail the n-th allocation from now and all later ones
 * (n = 0 disarms). Process-wide; not for production use. */
void mt_alloc_fail_after(uint64_t n);
/* Test hook: the number of allocations made since process start. */
uint64_t mt_alloc_count(void);

#endif /* MT_ALLOC_H */
