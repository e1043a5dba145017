/*
 * anchor_rwlock_sort.h - the benchmark's "before" anchor: the cache design
 * this project replaces, rebuilt from its description (issue 3): one
 * pthread_rwlock over a hash map; a get takes the read lock and stamps the
 * entry with a global access clock; a put takes the write lock and, when the
 * cache is full, sorts every entry by last access to evict the oldest:
 * O(n log n) under the write lock. Bench only; 16-byte keys at most.
 */
#ifndef ANCHOR_RWLOCK_SORT_H
#define ANCHOR_RWLOCK_SORT_H

#include <stddef.h>
#include <stdint.h>

struct anchor_rs;

/* A cache of at most capacity entries, or NULL. */
struct anchor_rs *anchor_rs_open(size_t capacity);
void anchor_rs_close(struct anchor_rs *c);
/* 0 on a hit (value copied, *vlen set; -2 if cap is too small), -1 on a
 * miss. */
int anchor_rs_get(struct anchor_rs *c, const void *key, size_t klen, void *buf, size_t cap,
                  size_t *vlen);
/* 0, or -1 if out of memory. */
int anchor_rs_put(struct anchor_rs *c, const void *key, size_t klen, const void *value,
                  size_t vlen);

#endif /* ANCHOR_RWLOCK_SORT_H */
