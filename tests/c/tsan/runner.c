/*
 * runner.c - the in-process test runner of the TSan shim (see
 * criterion/criterion.h in this directory for why it exists).
 *
 * usage: mantis_tests [--filter PATTERN] [--jobs N (ignored)]
 * PATTERN is an fnmatch pattern over "suite/name", as in Criterion.
 */
#include "criterion/criterion.h"

#include <fnmatch.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>

static struct criterion_shim_test *shim_tests;
static jmp_buf shim_skip_jmp;
static int shim_expect_failed;

void criterion_shim_register(struct criterion_shim_test *t)
{
	t->next = shim_tests;
	shim_tests = t;
}

void criterion_shim_fail(const char *file, int line, int fatal, const char *expr, const char *fmt,
                         ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: assertion failed: %s", file, line, expr);
	if (fmt[0] != '\0') {
		fputs(": ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	fputc('\n', stderr);
	if (fatal) {
		fflush(NULL);
		_Exit(1);
	}
	shim_expect_failed = 1;
}

void criterion_shim_skip(const char *fmt, ...)
{
	(void)fmt;
	longjmp(shim_skip_jmp, 1);
}

void criterion_shim_log(const char *level, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "[%s] ", level);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Registration order is reversed by the list; sort by suite/name so runs
 * are reproducible. */
static int shim_cmp(const void *a, const void *b)
{
	const struct criterion_shim_test *x = *(struct criterion_shim_test *const *)a;
	const struct criterion_shim_test *y = *(struct criterion_shim_test *const *)b;
	int c = strcmp(x->suite, y->suite);

	return c != 0 ? c : strcmp(x->name, y->name);
}

/* Runs one test: 0 passed, 1 an expectation failed, 2 skipped. (A failed
 * assertion exits the process.) */
static int shim_run(struct criterion_shim_test *t)
{
	shim_expect_failed = 0;
	if (setjmp(shim_skip_jmp) != 0)
		return 2;
	if (t->init != NULL)
		t->init();
	t->fn();
	if (t->fini != NULL)
		t->fini();
	return shim_expect_failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *filter = "*";
	struct criterion_shim_test **all;
	size_t n = 0, i, passed = 0, failed = 0, skipped = 0;
	char full[512];

	for (int a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--filter") == 0 && a + 1 < argc)
			filter = argv[++a];
		else if (strncmp(argv[a], "--filter=", 9) == 0)
			filter = argv[a] + 9;
		else if (strcmp(argv[a], "--jobs") == 0 && a + 1 < argc)
			a++;
	}
	for (struct criterion_shim_test *t = shim_tests; t != NULL; t = t->next)
		n++;
	all = calloc(n ? n : 1, sizeof(*all));
	if (all == NULL)
		return 2;
	i = 0;
	for (struct criterion_shim_test *t = shim_tests; t != NULL; t = t->next)
		all[i++] = t;
	qsort(all, n, sizeof(*all), shim_cmp);
	for (i = 0; i < n; i++) {
		struct criterion_shim_test *t = all[i];

		snprintf(full, sizeof(full), "%s/%s", t->suite, t->name);
		if (t->disabled || fnmatch(filter, full, 0) != 0)
			continue;
		fprintf(stderr, "[RUN ] %s\n", full);
		switch (shim_run(t)) {
		case 0:
			passed++;
			break;
		case 1:
			failed++;
			fprintf(stderr, "[FAIL] %s\n", full);
			break;
		default:
			skipped++;
		}
	}
	free(all);
	printf("[====] Synthesis: Tested: %zu | Passing: %zu | Failing: %zu | Crashing: 0\n",
	       passed + failed, passed, failed);
	printf("%zu passed, %zu failed, %zu skipped\n", passed, failed, skipped);
	return failed != 0;
}
