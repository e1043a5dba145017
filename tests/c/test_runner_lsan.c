/*
 * test_runner_lsan.c - LeakSanitizer checks the test workers, not the runner.
 *
 * Criterion runs every test in a worker process it executes afresh, and
 * the runner itself runs none of the library's code. The runner does leak
 * one 48-byte timeout record of its own now and then (BoxFort's
 * bxfi_push_timeout: the record of the last test with a .timeout is freed
 * by a detached thread that may not run before the runner exits), which
 * failed `make test-asan` at random. So `make test-asan` starts the runner
 * with detect_leaks=0 and MANTIS_WORKER_ASAN_OPTIONS set; before any worker
 * starts, this hook makes the latter the workers' ASAN_OPTIONS, so every
 * worker, where all of the library's allocations happen, is checked for
 * leaks at its exit as before (a leak there fails the run).
 */
#include <criterion/criterion.h>

#ifndef MT_CRITERION_SHIM_H /* the TSan shim runs tests in-process: nothing to do */
#include <criterion/hooks.h>
#include <stdlib.h>

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	const char *w = getenv("MANTIS_WORKER_ASAN_OPTIONS");

	(void)set;
	if (w != NULL)
		setenv("ASAN_OPTIONS", w, 1);
}
#endif
