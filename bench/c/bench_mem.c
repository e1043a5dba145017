/*
 * bench_mem.c - the pointer-chase anchor and process memory readings
 * (see bench_mem.h).
 *
 * The chase is the floor of any structure that reaches its data through
 * dependent pointers: each step's address is the previous step's load, so
 * the CPU cannot overlap the misses, and at footprints far beyond the last
 * level cache each step costs a DRAM access plus, on 4 KiB pages, a page
 * walk (itself mostly cache misses under nested paging). A random cycle
 * over every line (a shuffled order, each line pointing to the next) keeps
 * the hardware prefetchers from guessing the next address.
 */
#include "bench_mem.h"

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

uint64_t bench_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t bench_proc_kb(const char *file, const char *field)
{
	char line[256];
	uint64_t v = 0;
	size_t fl = strlen(field);
	FILE *f = fopen(file, "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, fl) == 0) {
			v = strtoull(line + fl, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

double bench_chase_ns(size_t bytes, int huge)
{
	size_t lines = bytes / 64, steps = 20000000;
	char *mem;
	uint32_t *order;
	uint64_t rng = 99, t0;
	void **p;
	double ns;

	if (lines < 2)
		return 0;
	mem = mmap(NULL, lines * 64, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 0;
	(void)madvise(mem, lines * 64, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	order = malloc(lines * sizeof(*order));
	if (order == NULL) {
		munmap(mem, lines * 64);
		return 0;
	}
	bench_shuffle(order, lines, &rng);
	for (size_t i = 0; i < lines; i++)
		*(void **)(mem + (size_t)order[i] * 64) = mem + (size_t)order[(i + 1) % lines] * 64;
	free(order);
	p = (void **)mem;
	for (size_t i = 0; i < steps / 4; i++) /* warm the TLB and caches */
		p = *p;
	t0 = bench_cpu_ns(); /* CPU time: the machine is shared */
	for (size_t i = 0; i < steps; i++)
		p = *p;
	ns = (double)(bench_cpu_ns() - t0) / (double)steps;
	__asm__ __volatile__("" ::"r"(p));
	munmap(mem, lines * 64);
	return ns;
}
