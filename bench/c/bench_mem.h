/*
 * bench_mem.h - the memory anchor and readings the suites share
 * (bench_index.c, bench_storage.c): one dependent load over a footprint
 * (the pointer chase), the process's counters in /proc, and a thread's CPU
 * time (the machine is shared, so per-operation costs that are compared
 * with the chase are taken in CPU time, as the chase is).
 */
#ifndef BENCH_MEM_H
#define BENCH_MEM_H

#include <stddef.h>
#include <stdint.h>

/* The calling thread's CPU time in nanoseconds. */
uint64_t bench_cpu_ns(void);

/* A "Field:  N kB" line of a /proc file of this process (status,
 * smaps_rollup), in kB; 0 if absent. */
uint64_t bench_proc_kb(const char *file, const char *field);

/* CPU nanoseconds per dependent random load over bytes of memory: one
 * pointer per 64-byte line, the lines in one random cycle, the buffer
 * advised MADV_HUGEPAGE if huge, else MADV_NOHUGEPAGE (so that it has the
 * page size of the store it is compared with). 0 on failure. */
double bench_chase_ns(size_t bytes, int huge);

#endif /* BENCH_MEM_H */
