/*
 * mt_coherent.h - test hooks of the coherence protocol (mt_coherent.c; the
 * API is mantis_coherent_* in bindings/mantis.h).
 */
#ifndef MT_COHERENT_H
#define MT_COHERENT_H

#include <stdint.h>

/* Parts of the protocol a test can remove, to show that its stress test
 * notices (never set outside tests). */
enum {
	MT_COH_BREAK_GUARD = 1u,      /* fills ignore the stripe word */
	MT_COH_BREAK_INVALIDATE = 2u, /* writes leave the older version cached */
	MT_COH_BREAK_ALONE = 4u,      /* writes insert even when not alone */
	MT_COH_BREAK_VALIDATE = 8u,   /* cache hits ignore the stripe word */
};

/* Write policies (step 4 of a write), for the benchmark that chose the
 * default. */
enum {
	MT_COH_POLICY_RESIDENT = 0, /* insert only if the key was resident */
	MT_COH_POLICY_ALWAYS = 1,   /* always insert (classic write-through) */
	MT_COH_POLICY_NEVER = 2,    /* never insert (write-invalidate) */
};

/* Test hook (process-wide): removes the parts in `breaks`, sleeps delay_ns
 * before every guarded put (standing in for a preemption there) and sets
 * the write policy. mt_coherent_test_hooks(0, 0, 0) restores the defaults. */
void mt_coherent_test_hooks(unsigned breaks, uint64_t delay_ns, int policy);

#endif /* MT_COHERENT_H */
