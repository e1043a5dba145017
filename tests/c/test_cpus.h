/*
 * test_cpus.h - thread attributes that put a test's threads on two CPUs, so
 * that a stress test runs more threads than cores whatever the machine.
 */
#ifndef TEST_CPUS_H
#define TEST_CPUS_H

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

/* Initialises attr for threads pinned to CPUs 0 and 1 (CPU 0 alone on a
 * one-CPU machine). The caller destroys it. */
static inline void test_attr_two_cpus(pthread_attr_t *attr)
{
	cpu_set_t cpus;

	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	CPU_SET(sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 1 : 0, &cpus);
	pthread_attr_init(attr);
	pthread_attr_setaffinity_np(attr, sizeof(cpus), &cpus);
}

#endif /* TEST_CPUS_H */
