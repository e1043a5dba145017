/*
 * test_db_util.h - helpers for the storage engine's tests (test_db_*.c):
 * a batch builder, string put/get, and key formatting.
 */
#ifndef TEST_DB_UTIL_H
#define TEST_DB_UTIL_H

#include "mantis.h"
#include "mt_check.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growable batch buffer in the mantis_db_write encoding. */
struct tdb_batch {
	unsigned char *buf;
	size_t len, cap;
};

static inline void tdb_batch_raw(struct tdb_batch *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->buf = realloc(b->buf, b->cap);
		cr_assert_not_null(b->buf);
	}
	if (n > 0)
		memcpy(b->buf + b->len, p, n);
	b->len += n;
}

static inline void tdb_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline void tdb_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline void tdb_batch_rec(struct tdb_batch *b, uint8_t op, const void *k, uint32_t klen,
                                 const void *v, uint32_t vlen, uint64_t ttl)
{
	unsigned char hdr[MANTIS_BATCH_HDR];

	hdr[0] = op;
	tdb_le32(hdr + 1, klen);
	tdb_le32(hdr + 5, vlen);
	tdb_le64(hdr + 9, ttl);
	tdb_batch_raw(b, hdr, sizeof(hdr));
	tdb_batch_raw(b, k, klen);
	tdb_batch_raw(b, v, vlen);
}

static inline void tdb_batch_put(struct tdb_batch *b, const char *k, const char *v)
{
	tdb_batch_rec(b, MANTIS_OP_PUT, k, (uint32_t)strlen(k), v, (uint32_t)strlen(v), 0);
}

static inline void tdb_batch_del(struct tdb_batch *b, const char *k)
{
	tdb_batch_rec(b, MANTIS_OP_DELETE, k, (uint32_t)strlen(k), NULL, 0, 0);
}

static inline void tdb_batch_check(struct tdb_batch *b, const char *k)
{
	tdb_batch_rec(b, MANTIS_OP_CHECK, k, (uint32_t)strlen(k), NULL, 0, 0);
}

static inline void tdb_batch_free(struct tdb_batch *b)
{
	free(b->buf);
	memset(b, 0, sizeof(*b));
}

static inline uint64_t tdb_open(void)
{
	uint64_t db = 0;

	cr_assert_eq(mantis_db_open(NULL, &db), MANTIS_OK);
	cr_assert_neq(db, 0);
	return db;
}

static inline void tdb_put(uint64_t db, const char *k, const char *v)
{
	cr_assert_eq(mantis_db_put(db, k, strlen(k), v, strlen(v), 0, NULL), MANTIS_OK, "put %s",
	             k);
}

static inline void tdb_del(uint64_t db, const char *k)
{
	cr_assert_eq(mantis_db_delete(db, k, strlen(k), NULL), MANTIS_OK, "delete %s", k);
}

/* Gets k at snap into a static buffer: returns the code; *out the value
 * (NUL-terminated) on MANTIS_OK. */
static inline int tdb_get(uint64_t db, uint64_t snap, const char *k, const char **out)
{
	static __thread char buf[4096];
	size_t vlen = 0;
	int rc = mantis_db_get(db, snap, k, strlen(k), buf, sizeof(buf) - 1, &vlen, NULL);

	if (rc == MANTIS_OK) {
		buf[vlen] = '\0';
		if (out != NULL)
			*out = buf;
	}
	return rc;
}

/* Asserts that k reads as v at snap (v NULL: not found). */
static inline void tdb_expect_at(uint64_t db, uint64_t snap, const char *k, const char *v,
                                 const char *file, int line)
{
	const char *got = NULL;
	int rc = tdb_get(db, snap, k, &got);

	if (v == NULL) {
		cr_assert_eq(rc, MANTIS_NOTFOUND, "%s:%d: %s: expected absent, got %s", file, line,
		             k, mantis_strerror(rc));
		return;
	}
	cr_assert_eq(rc, MANTIS_OK, "%s:%d: %s: %s", file, line, k, mantis_strerror(rc));
	cr_assert(strcmp(got, v) == 0, "%s:%d: %s is \"%s\", expected \"%s\"", file, line, k, got,
	          v);
}

#define tdb_expect(db, snap, k, v) tdb_expect_at((db), (snap), (k), (v), __FILE__, __LINE__)

static inline mantis_db_stats_t tdb_stats(uint64_t db)
{
	mantis_db_stats_t s;

	cr_assert_eq(mantis_db_stats(db, &s), MANTIS_OK);
	return s;
}

/* Reads every entry of an iterator with mantis_iter_next into a
 * "k=v;k=v;" string (static buffer). */
static inline const char *tdb_iter_all(uint64_t it)
{
	static __thread char out[1 << 16];
	size_t o = 0;
	const void *k, *v;
	size_t kl, vl;
	int rc;

	out[0] = '\0';
	while ((rc = mantis_iter_next(it, &k, &kl, &v, &vl)) == MANTIS_OK) {
		cr_assert_lt(o + kl + vl + 3, sizeof(out));
		memcpy(out + o, k, kl);
		o += kl;
		out[o++] = '=';
		memcpy(out + o, v, vl);
		o += vl;
		out[o++] = ';';
		out[o] = '\0';
	}
	cr_assert_eq(rc, MANTIS_DONE, "iter_next: %s", mantis_strerror(rc));
	return out;
}

/* Key of index i in a fixed-width decimal form ("k00000042") so that key
 * order is index order. */
static inline void tdb_key(char *out, size_t cap, const char *prefix, uint64_t i)
{
	snprintf(out, cap, "%s%08llu", prefix, (unsigned long long)i);
}

/* Runs the invariant checker on a db no thread is using (after every stress
 * test): order, chains, index agreement, counters (csrc/mt_check.c). */
static inline void tdb_check(uint64_t db)
{
	char msg[256];
	int rc = mt_check_db(db, msg, sizeof(msg));

	cr_assert_eq(rc, MANTIS_OK, "invariant check: %s (%s)", msg, mantis_strerror(rc));
}

#endif /* TEST_DB_UTIL_H */
