/*
 * criterion.h (TSan shim) - runs the Criterion test sources under
 * ThreadSanitizer, where Criterion itself cannot start.
 *
 * Criterion's sandbox maps an "inheritable arena" at an address that
 * ThreadSanitizer reserves for its shadow memory, so a TSan-built Criterion
 * binary aborts before any test runs ("Could not initialize inheritable
 * arena", Criterion issue #274). The TSan build therefore puts this
 * directory first on the include path: the same tests/c sources compile
 * against this header, which implements the subset of Criterion's API the
 * tests use, and tests/c/tsan/runner.c runs every test in one process, one
 * after the other. A failed assertion prints its location and exits
 * non-zero; the run stops there.
 *
 * Supported: Test(suite, name, .init/.fini/.timeout/.disabled/
 * .description), TestSuite (ignored), cr_assert*, cr_expect* (recorded, the
 * test fails at its end), cr_skip_test, cr_log_*. Not supported: .signal,
 * .exit_code, parameterized and theory tests, suite-level fixtures.
 */
#ifndef MT_CRITERION_SHIM_H
#define MT_CRITERION_SHIM_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Assertions without a message pass "" as their format. */
#pragma GCC diagnostic ignored "-Wformat-zero-length"

struct criterion_shim_test {
	const char *suite;
	const char *name;
	void (*fn)(void);
	void (*init)(void);
	void (*fini)(void);
	double timeout;
	bool disabled;
	const char *description;
	struct criterion_shim_test *next;
};

void criterion_shim_register(struct criterion_shim_test *t);
void criterion_shim_fail(const char *file, int line, int fatal, const char *expr, const char *fmt,
                         ...) __attribute__((format(printf, 5, 6)));
void criterion_shim_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void criterion_shim_log(const char *level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

#define Test(S, N, ...)                                                                            \
	static void S##_##N##_impl(void);                                                          \
	static struct criterion_shim_test S##_##N##_rec = {                                        \
	        .suite = #S, .name = #N, .fn = S##_##N##_impl, ##__VA_ARGS__};                     \
	__attribute__((constructor)) static void S##_##N##_reg(void)                               \
	{                                                                                          \
		criterion_shim_register(&S##_##N##_rec);                                           \
	}                                                                                          \
	static void S##_##N##_impl(void)

#define TestSuite(...) struct criterion_shim_unused_suite

#define CR_SHIM_CHECK(fatal, cond, expr, ...)                                                      \
	do {                                                                                       \
		if (!(cond))                                                                       \
			criterion_shim_fail(__FILE__, __LINE__, fatal, expr, "" __VA_ARGS__);      \
	} while (0)

#define cr_assert(cond, ...)     CR_SHIM_CHECK(1, (cond), #cond, __VA_ARGS__)
#define cr_expect(cond, ...)     CR_SHIM_CHECK(0, (cond), #cond, __VA_ARGS__)
#define cr_assert_not(cond, ...) CR_SHIM_CHECK(1, !(cond), "!(" #cond ")", __VA_ARGS__)
#define cr_expect_not(cond, ...) CR_SHIM_CHECK(0, !(cond), "!(" #cond ")", __VA_ARGS__)
#define cr_assert_fail(...)      criterion_shim_fail(__FILE__, __LINE__, 1, "fail", "" __VA_ARGS__)
#define cr_expect_fail(...)      criterion_shim_fail(__FILE__, __LINE__, 0, "fail", "" __VA_ARGS__)
#define cr_skip_test(...)        criterion_shim_skip("" __VA_ARGS__)

#define CR_SHIM_CMP(fatal, a, op, b, ...)                                                          \
	CR_SHIM_CHECK(fatal, (a)op(b), #a " " #op " " #b, __VA_ARGS__)
#define cr_assert_eq(a, b, ...)    CR_SHIM_CMP(1, a, ==, b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...)   CR_SHIM_CMP(1, a, !=, b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...)    CR_SHIM_CMP(1, a, <, b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...)   CR_SHIM_CMP(1, a, <=, b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...)    CR_SHIM_CMP(1, a, >, b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...)   CR_SHIM_CMP(1, a, >=, b, __VA_ARGS__)
#define cr_expect_eq(a, b, ...)    CR_SHIM_CMP(0, a, ==, b, __VA_ARGS__)
#define cr_expect_neq(a, b, ...)   CR_SHIM_CMP(0, a, !=, b, __VA_ARGS__)
#define cr_expect_lt(a, b, ...)    CR_SHIM_CMP(0, a, <, b, __VA_ARGS__)
#define cr_expect_leq(a, b, ...)   CR_SHIM_CMP(0, a, <=, b, __VA_ARGS__)
#define cr_expect_gt(a, b, ...)    CR_SHIM_CMP(0, a, >, b, __VA_ARGS__)
#define cr_expect_geq(a, b, ...)   CR_SHIM_CMP(0, a, >=, b, __VA_ARGS__)
#define cr_assert_null(p, ...)     CR_SHIM_CHECK(1, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...) CR_SHIM_CHECK(1, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_expect_null(p, ...)     CR_SHIM_CHECK(0, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_expect_not_null(p, ...) CR_SHIM_CHECK(0, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...)                                                                \
	CR_SHIM_CHECK(1, strcmp((a), (b)) == 0, #a " == " #b, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...)                                                               \
	CR_SHIM_CHECK(1, strcmp((a), (b)) != 0, #a " != " #b, __VA_ARGS__)
#define cr_expect_str_eq(a, b, ...)                                                                \
	CR_SHIM_CHECK(0, strcmp((a), (b)) == 0, #a " == " #b, __VA_ARGS__)
#define cr_assert_str_empty(a, ...) CR_SHIM_CHECK(1, (a)[0] == '\0', #a " empty", __VA_ARGS__)
#define cr_assert_arr_eq(a, b, n, ...)                                                             \
	CR_SHIM_CHECK(1, memcmp((a), (b), (n)) == 0, #a " == " #b, __VA_ARGS__)
#define cr_assert_arr_neq(a, b, n, ...)                                                            \
	CR_SHIM_CHECK(1, memcmp((a), (b), (n)) != 0, #a " != " #b, __VA_ARGS__)
#define cr_expect_arr_eq(a, b, n, ...)                                                             \
	CR_SHIM_CHECK(0, memcmp((a), (b), (n)) == 0, #a " == " #b, __VA_ARGS__)
#define cr_assert_float_eq(a, b, eps, ...)                                                         \
	CR_SHIM_CHECK(1, fabs((double)(a) - (double)(b)) <= (eps), #a " ~= " #b, __VA_ARGS__)
#define cr_expect_float_eq(a, b, eps, ...)                                                         \
	CR_SHIM_CHECK(0, fabs((double)(a) - (double)(b)) <= (eps), #a " ~= " #b, __VA_ARGS__)

#define cr_log_info(...)   criterion_shim_log("info", __VA_ARGS__)
#define cr_log_warn(...)   criterion_shim_log("warn", __VA_ARGS__)
#define cr_log_error(...)  criterion_shim_log("error", __VA_ARGS__)
#define cr_log(level, ...) criterion_shim_log("log", __VA_ARGS__)

#endif /* MT_CRITERION_SHIM_H */
