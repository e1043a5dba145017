/*
 * bench_store.h - the interface the storage benchmark (bench_storage.c)
 * drives: one table of functions per implementation, so that mantis and the
 * anchors run the very same workload code.
 *
 * Every implementation stores copies of keys and values and copies the
 * value out on get, as mantis_db_get does. A store is used by several
 * threads at once; each thread calls thread_enter before its first call
 * and thread_exit after its last (liburcu needs its readers registered).
 */
#ifndef BENCH_STORE_H
#define BENCH_STORE_H

#include <stddef.h>
#include <stdint.h>

struct bench_store_ops {
	const char *name; /* the "impl" of the results */
	/* A new empty store sized for about nkeys keys; NULL on failure. */
	void *(*open)(size_t nkeys);
	void (*close)(void *s);
	/* 0 on success. */
	int (*put)(void *s, const void *k, size_t klen, const void *v, size_t vlen);
	/* 0 and the value copied to buf, 1 if absent, -1 on error. */
	int (*get)(void *s, const void *k, size_t klen, void *buf, size_t cap, size_t *vlen);
	int (*del)(void *s, const void *k, size_t klen);
	/* Ordered stores only (NULL otherwise): visits every entry whose key
	 * starts with prefix, copying it out; returns the entries, -1 on
	 * error. */
	long (*scan)(void *s, const void *prefix, size_t plen, void *buf, size_t cap);
	void (*thread_enter)(void);
	void (*thread_exit)(void);
};

extern const struct bench_store_ops bench_store_rwlock; /* anchor_rwlock.c */
extern const struct bench_store_ops bench_store_lfht;   /* anchor_lfht.c */

/* The anchors' hash of a key (both use the same one). */
static inline uint64_t bench_store_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 0x9E3779B97F4A7C15ull ^ len;

	while (len >= 8) {
		uint64_t w;

		__builtin_memcpy(&w, p, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		h = (h ^ *p++) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

#endif /* BENCH_STORE_H */
