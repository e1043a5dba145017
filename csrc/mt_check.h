/*
 * mt_check.h - an invariant checker of a db's storage structures, for tests
 * (SQLite's integrity_check, bbolt's Tx.Check): run after every stress test
 * and fuzz program, on a quiescent db. Module prefix mt_check_.
 */
#ifndef MT_CHECK_H
#define MT_CHECK_H

#include <stddef.h>
#include <stdint.h>

/*
 * Checks db handle dbh, which no other thread may be using (no call in
 * flight, no iterator open): key order at every level, towers, version
 * chains (order, flags, publication), agreement of the point index with
 * the list, and the counters (entries, versions, bytes) against what is
 * reachable. Returns MANTIS_OK, a handle error, or MANTIS_EINVAL with the
 * first violation described in msg (cap bytes, NUL-terminated).
 */
int mt_check_db(uint64_t dbh, char *msg, size_t cap);

#endif /* MT_CHECK_H */
