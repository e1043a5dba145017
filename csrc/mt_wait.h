/*
 * mt_wait.h - the library's only ways to wait for another thread: a lock
 * that spins briefly and then sleeps on a futex, and a backoff that sleeps.
 *
 * The progress rule (DEVELOPERS.md): Go calls in from more OS threads than
 * cores and the OS deschedules any of them at any instruction, so a thread
 * must never spin or yield for long waiting for another. Every wait of the
 * library goes through here:
 *
 *  - mt_wait_lock guards short critical sections of bounded length (no
 *    allocation, no search, no I/O, no system call inside). It spins
 *    MT_WAIT_SPINS times (the holder is usually running and about to
 *    leave), then sleeps on a futex until the holder's unlock wakes it, so
 *    a descheduled holder costs waiters no CPU.
 *  - mt_wait_backoff paces a wait for a condition nobody signals (a grace
 *    period of ck_epoch, whose records have no futex): a few spins, then
 *    nanosleep from 1 us doubling to 1 ms. Only maintenance calls (sweep,
 *    thread exit, a barrier a test asks for) wait this way, never a point
 *    operation.
 *
 * The lock word: 0 free, 1 held, 2 held with (maybe) sleepers (Drepper,
 * "Futexes Are Tricky", mutex #3).
 */
#ifndef MT_WAIT_H
#define MT_WAIT_H

#include <stdint.h>

#define MT_WAIT_SPINS 128u

/* Takes *l; returns 1 if it was free, else 0 without waiting. */
int mt_wait_trylock(uint32_t *l);
/* Takes *l, spinning then sleeping while another thread holds it. */
void mt_wait_lock(uint32_t *l);
/* Releases *l (held by the caller) and wakes one sleeper if any. */
void mt_wait_unlock(uint32_t *l);

/* Version locks (optimistic lock coupling, mt_bptree.c): a 64-bit word
 * whose bit 0 is LOCKED and bit 1 WAITERS, a counter above. Readers never
 * take it; they wait while it is LOCKED. mt_wait_unlocked returns the word
 * once it is not LOCKED: it spins MT_WAIT_SPINS polls, then sets WAITERS
 * and sleeps on the futex of the word's low half. The holder releases with
 * mt_wait_version_unlock, which clears both bits, adds MT_WAIT_V_STEP and
 * wakes every sleeper if WAITERS was set. */
#define MT_WAIT_V_LOCKED  1ull
#define MT_WAIT_V_WAITERS 2ull
#define MT_WAIT_V_STEP    4ull
uint64_t mt_wait_unlocked(uint64_t *ver);
void mt_wait_version_unlock(uint64_t *ver);

/* Event counts: a 32-bit word, bit 0 WAITERS and a counter above, for a
 * condition that many threads make true in turn (mt_db.c: published moving
 * past a writer's seq). A waiter calls mt_wait_ec_prepare (sets WAITERS,
 * full barrier), re-checks its condition, and if it is still false calls
 * mt_wait_ec_sleep with the value prepare returned. A thread that advances
 * the condition does so with a full barrier, then calls mt_wait_ec_notify:
 * a plain load while no one waits; otherwise it clears WAITERS, steps the
 * counter (so every sleeper's futex value is stale) and wakes them all.
 * One system call per episode of sleeping, not one per notification: a
 * bare "sleepers != 0" test would wake on every advance until the woken
 * threads got a CPU back to say they were awake. */
#define MT_WAIT_EC_WAITERS 1u
#define MT_WAIT_EC_STEP    2u
uint32_t mt_wait_ec_prepare(uint32_t *ec);
void mt_wait_ec_sleep(uint32_t *ec, uint32_t val);
void mt_wait_ec_notify(uint32_t *ec);

/* One step of a paced wait: call with *n = 0 first, then again each time
 * the condition is still false. */
void mt_wait_backoff(unsigned *n);

#endif /* MT_WAIT_H */
