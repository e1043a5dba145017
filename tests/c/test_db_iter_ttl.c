/*
 * test_db_iter_ttl.c - mantis_iter_next_ttl: the same entries as
 * mantis_iter_next, with the remaining TTL of each (0 without one), which
 * shrinks as the clock advances; expired entries are skipped; bad arguments.
 */
#include "mantis.h"
#include "mt_clock.h"
#include "mt_db.h"
#include "test_db_util.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <string.h>

Test(db_iter_ttl, reports_remaining_ttl)
{
	uint64_t db = tdb_open(), it, ttl;
	const void *k, *v;
	size_t kl, vl;

	tdb_put(db, "a", "1");
	cr_assert_eq(mantis_db_put(db, "b", 1, "2", 1, 5000, NULL), MANTIS_OK);
	cr_assert_eq(mantis_db_put(db, "c", 1, "3", 1, 100, NULL), MANTIS_OK);
	mt_clock_advance_ms(40);
	cr_assert_eq(mantis_iter_open(db, 0, NULL, 0, &it), MANTIS_OK);
	cr_assert_eq(mantis_iter_next_ttl(it, &k, &kl, &v, &vl, &ttl), MANTIS_OK);
	cr_assert(kl == 1 && memcmp(k, "a", 1) == 0 && vl == 1 && memcmp(v, "1", 1) == 0);
	cr_assert_eq(ttl, 0);
	cr_assert_eq(mantis_iter_next_ttl(it, &k, &kl, NULL, NULL, &ttl), MANTIS_OK);
	cr_assert(kl == 1 && memcmp(k, "b", 1) == 0);
	cr_assert(ttl > 4900 && ttl <= 4960, "ttl %llu", (unsigned long long)ttl);
	mt_clock_advance_ms(70); /* c expires */
	cr_assert_eq(mantis_iter_next_ttl(it, &k, &kl, NULL, NULL, &ttl), MANTIS_DONE);
	cr_assert_eq(ttl, 0);
	cr_assert_eq(mantis_iter_next_ttl(it, NULL, NULL, NULL, NULL, NULL), MANTIS_EINVAL);
	cr_assert_eq(mantis_iter_close(it), MANTIS_OK);
	cr_assert_eq(mantis_iter_next_ttl(it, NULL, NULL, NULL, NULL, &ttl), MANTIS_CLOSED);
	cr_assert_eq(mantis_db_close(db), MANTIS_OK);
}
