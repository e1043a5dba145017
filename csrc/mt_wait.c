/*
 * mt_wait.c - spin-then-futex lock and sleeping backoff (see mt_wait.h for
 * when each is allowed).
 *
 * The lock is Drepper's third futex mutex: a free lock is taken by one CAS
 * 0 -> 1; a contender that finds it held marks it 2 ("maybe sleepers") and
 * sleeps on the word while it reads 2; unlock stores 0 and wakes one sleeper
 * only if the word was 2, so an uncontended lock and unlock are a CAS and a
 * swap with no system call. A woken thread takes the lock as 2 (others may
 * still sleep), so no wake-up is lost.
 *
 * Event counts (mt_wait_ec_*): no wake-up is lost because a waiter's CAS
 * that sets WAITERS precedes its re-check of the condition, and a
 * notifier's update of the condition precedes its load of the word (both
 * full barriers, one total order): if the re-check missed the update, the
 * load sees WAITERS set by that waiter, or a later value, which only a
 * notifier can have made (it clears WAITERS and wakes all after its CAS).
 * The sleeper's futex value is the word with WAITERS set, so a notifier
 * that changed it before the sleeper reached the kernel makes the wait
 * return at once, and one that changes it later wakes it.
 */
#include "mt_wait.h"

#include "mt_pr.h"

#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void mt_wait_futex_wait(uint32_t *addr, uint32_t val)
{
	/* Returns at once if *addr != val (no lost wake-up); spurious
	 * returns are fine, the caller re-checks. */
	(void)syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void mt_wait_futex_wake(uint32_t *addr)
{
	(void)syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void mt_wait_futex_wake_all(uint32_t *addr)
{
	(void)syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

int mt_wait_trylock(uint32_t *l)
{
	/* Acquire (full barrier): the holder's critical section follows. */
	return ck_pr_load_32(l) == 0 && ck_pr_cas_32(l, 0, 1);
}

void mt_wait_lock(uint32_t *l)
{
	for (unsigned i = 0; i < MT_WAIT_SPINS; i++) {
		if (mt_wait_trylock(l))
			return;
		ck_pr_stall();
	}
	/* Announce a sleeper; the swap (full barrier) takes the lock if the
	 * holder left meanwhile (it read 0). */
	while (ck_pr_fas_32(l, 2) != 0)
		mt_wait_futex_wait(l, 2);
}

void mt_wait_unlock(uint32_t *l)
{
	/* Release (full barrier): the critical section precedes the store
	 * that frees the lock. */
	if (ck_pr_fas_32(l, 0) == 2)
		mt_wait_futex_wake(l);
}

/* The half of a version word that holds LOCKED, WAITERS and the counter's
 * low bits: any change of state changes it. */
static uint32_t *mt_wait_version_futex(uint64_t *ver)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (uint32_t *)ver;
#else
	return (uint32_t *)ver + 1;
#endif
}

uint64_t mt_wait_unlocked(uint64_t *ver)
{
	for (unsigned i = 0;; i++) {
		uint64_t v = ck_pr_load_64(ver);

		if (!(v & MT_WAIT_V_LOCKED))
			return v;
		if (i < MT_WAIT_SPINS) {
			ck_pr_stall();
			continue;
		}
		/* Full barrier: WAITERS is set before we sleep, so the holder's
		 * unlock (a CAS on the same word) sees it and wakes us. */
		if (!(v & MT_WAIT_V_WAITERS) && !ck_pr_cas_64(ver, v, v | MT_WAIT_V_WAITERS))
			continue;
		mt_wait_futex_wait(mt_wait_version_futex(ver), (uint32_t)(v | MT_WAIT_V_WAITERS));
	}
}

void mt_wait_version_unlock(uint64_t *ver)
{
	uint64_t o = ck_pr_load_64(ver);

	/* Full barrier (release): the critical section's stores are visible
	 * before the new version. Only WAITERS can change under us. */
	while (!ck_pr_cas_64_value(
	        ver, o, (o & ~(MT_WAIT_V_LOCKED | MT_WAIT_V_WAITERS)) + MT_WAIT_V_STEP, &o))
		;
	if (o & MT_WAIT_V_WAITERS)
		mt_wait_futex_wake_all(mt_wait_version_futex(ver));
}

uint32_t mt_wait_ec_prepare(uint32_t *ec)
{
	uint32_t v = ck_pr_load_32(ec);

	/* Full barrier (the CAS): WAITERS is set before the caller re-checks
	 * its condition. Only notifiers clear it, so the loop ends as soon as
	 * the bit is seen set. */
	while (!(v & MT_WAIT_EC_WAITERS) && !ck_pr_cas_32_value(ec, v, v | MT_WAIT_EC_WAITERS, &v))
		;
	if (!(v & MT_WAIT_EC_WAITERS))
		v |= MT_WAIT_EC_WAITERS; /* our CAS succeeded: v was the old value */
	/* Already set by another waiter: a plain load is not a barrier. */
	ck_pr_fence_memory();
	return v;
}

void mt_wait_ec_sleep(uint32_t *ec, uint32_t val)
{
	mt_wait_futex_wait(ec, val);
}

void mt_wait_ec_notify(uint32_t *ec)
{
	uint32_t v = ck_pr_load_32(ec);

	/* The caller's update of the condition was a full barrier: this load
	 * follows it. A failed CAS means another notifier cleared WAITERS
	 * and wakes the sleepers itself. */
	if ((v & MT_WAIT_EC_WAITERS) &&
	    ck_pr_cas_32(ec, v, (v + MT_WAIT_EC_STEP) & ~MT_WAIT_EC_WAITERS))
		mt_wait_futex_wake_all(ec);
}

void mt_wait_backoff(unsigned *n)
{
	struct timespec ts = {0, 1000};

	if (*n < MT_WAIT_SPINS) {
		(*n)++;
		ck_pr_stall();
		return;
	}
	/* 1 us doubling up to 1 ms (2^10 us). */
	if (*n - MT_WAIT_SPINS < 10)
		ts.tv_nsec <<= *n - MT_WAIT_SPINS;
	else
		ts.tv_nsec = 1000000;
	(*n)++;
	nanosleep(&ts, NULL);
}
