/*
 * test_watchdog.h - makes a hang fail a test instead of stalling CI.
 *
 * A test that may hang (a lost wake-up, a wait on itself) starts a watchdog
 * with a deadline; a thread sleeps on a condition variable until the test
 * stops the watchdog or the deadline passes, and then prints what hung and
 * aborts the process (the test fails with SIGABRT under Criterion and the
 * TSan runner alike). Deadlines are generous: they catch hangs, they do not
 * time anything.
 */
#ifndef TEST_WATCHDOG_H
#define TEST_WATCHDOG_H

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct test_watchdog {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct timespec deadline;
	const char *what;
	int stopped;
};

static inline void *test_watchdog_main(void *p)
{
	struct test_watchdog *w = p;
	int rc = 0;

	pthread_mutex_lock(&w->mu);
	while (!w->stopped && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&w->cv, &w->mu, &w->deadline);
	if (!w->stopped) {
		fprintf(stderr, "watchdog: %s still running after its deadline: hung\n", w->what);
		fflush(stderr);
		abort();
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Arms a watchdog that aborts the process unless stopped within secs. */
static inline void test_watchdog_start(struct test_watchdog *w, const char *what, unsigned secs)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&w->mu, NULL);
	clock_gettime(CLOCK_MONOTONIC, &w->deadline);
	w->deadline.tv_sec += secs;
	w->what = what;
	w->stopped = 0;
	if (pthread_create(&w->thread, NULL, test_watchdog_main, w) != 0)
		abort();
}

static inline void test_watchdog_stop(struct test_watchdog *w)
{
	pthread_mutex_lock(&w->mu);
	w->stopped = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
}

#endif /* TEST_WATCHDOG_H */
