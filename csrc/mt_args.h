/*
 * mt_args.h - argument checks shared by the public key/value entry points.
 *
 * Every call that takes a key (cache, db, iterator seek) and every batch
 * parser must reject a bad key or value with the same MANTIS_* code, so the
 * rule lives here once:
 *
 *   key pointer NULL                      -> MANTIS_EINVAL
 *   key length 0                          -> MANTIS_EKEY
 *   key length over MANTIS_KEY_MAX        -> MANTIS_ETOOLARGE
 *   value NULL with a non-zero length     -> MANTIS_EINVAL
 *   value length over MANTIS_VALUE_MAX    -> MANTIS_ETOOLARGE
 *
 * The helpers are static inline: they sit on the get/put hot paths and must
 * cost no call. They only classify; which check runs first (and so which
 * code wins when several arguments are bad) stays with the caller.
 */
#ifndef MT_ARGS_H
#define MT_ARGS_H

#include "mantis.h"

#include <stddef.h>
#include <stdint.h>

/* Stored versions, cache entries and batch records keep lengths in u32, and
 * a batch must hold one value of the largest size with its record. */
_Static_assert(MANTIS_VALUE_MAX <= UINT32_MAX - 1, "value lengths are u32 (and not MANTIS_ABSENT)");
_Static_assert((uint64_t)MANTIS_BATCH_MAX >=
                       (uint64_t)MANTIS_BATCH_HDR + MANTIS_KEY_MAX + MANTIS_VALUE_MAX,
               "a batch holds one largest record");

/* A key length: 1..MANTIS_KEY_MAX. */
static inline int mt_args_check_klen(size_t klen)
{
	if (klen == 0)
		return MANTIS_EKEY;
	if (klen > MANTIS_KEY_MAX)
		return MANTIS_ETOOLARGE;
	return MANTIS_OK;
}

/* A key: a non-NULL pointer, then a valid length. */
static inline int mt_args_check_key(const void *key, size_t klen)
{
	if (key == NULL)
		return MANTIS_EINVAL;
	return mt_args_check_klen(klen);
}

/* A value: NULL only when empty, at most MANTIS_VALUE_MAX bytes. */
static inline int mt_args_check_value(const void *value, size_t vlen)
{
	if (value == NULL && vlen > 0)
		return MANTIS_EINVAL;
	if (vlen > MANTIS_VALUE_MAX)
		return MANTIS_ETOOLARGE;
	return MANTIS_OK;
}

#endif /* MT_ARGS_H */
