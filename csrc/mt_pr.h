/*
 * mt_pr.h - Concurrency Kit's ck_pr atomics, made visible to ThreadSanitizer.
 *
 * The library's code calls ck_pr_* directly and includes this header instead
 * of <ck_pr.h>. In production builds this header is exactly <ck_pr.h>.
 *
 * ThreadSanitizer cannot see ck_pr's x86-64 inline assembly and volatile
 * accesses, so under TSan every lock-free publication would be reported as
 * a race. Under TSan only, the ck_pr operations the library uses are
 * redefined as macros on the compiler's __atomic builtins with sequentially
 * consistent ordering, which is at least as strong as every ck_pr operation
 * (ck_pr loads and stores are atomic; its CAS and FAA are full barriers on
 * x86-64). Macros defined after <ck_pr.h> shadow its inline functions at
 * every later call site, including those inside <ck_epoch.h>.
 */
#ifndef MT_PR_H
#define MT_PR_H

#include <ck_pr.h>

#if defined(__SANITIZE_THREAD__)
#define MT_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MT_TSAN 1
#endif
#endif

#ifdef MT_TSAN
#define MT_SC __ATOMIC_SEQ_CST

#define MT_PR_LOAD(p)     __atomic_load_n((p), MT_SC)
#define MT_PR_STORE(p, v) __atomic_store_n((p), (v), MT_SC)
#define MT_PR_CAS(p, c, s)                                                                         \
	({                                                                                         \
		__typeof__(*(p)) mt_c_ = (c);                                                      \
		__atomic_compare_exchange_n((p), &mt_c_, (s), 0, MT_SC, MT_SC);                    \
	})
#define MT_PR_CAS_VALUE(p, c, s, o)                                                                \
	({                                                                                         \
		__typeof__(*(p)) mt_c_ = (c);                                                      \
		_Bool mt_r_ = __atomic_compare_exchange_n((p), &mt_c_, (s), 0, MT_SC, MT_SC);      \
		*(o) = mt_c_;                                                                      \
		mt_r_;                                                                             \
	})

/* Every atomic below is sequentially consistent, so fences only need to stop
 * the compiler (GCC rejects atomic_thread_fence under TSan). */
#undef ck_pr_fence_load
#undef ck_pr_fence_store
#undef ck_pr_fence_memory
#undef ck_pr_fence_acquire
#undef ck_pr_fence_release
#undef ck_pr_fence_atomic
#undef ck_pr_fence_store_load
#undef ck_pr_fence_load_store
#define ck_pr_fence_load()       __asm__ __volatile__("" ::: "memory")
#define ck_pr_fence_store()      __asm__ __volatile__("" ::: "memory")
#define ck_pr_fence_memory()     __asm__ __volatile__("" ::: "memory")
#define ck_pr_fence_acquire()    __asm__ __volatile__("" ::: "memory")
#define ck_pr_fence_release()    __asm__ __volatile__("" ::: "memory")
#define ck_pr_fence_atomic()     __asm__ __volatile__("" ::: "memory")
#define ck_pr_fence_store_load() __asm__ __volatile__("" ::: "memory")
#define ck_pr_fence_load_store() __asm__ __volatile__("" ::: "memory")

#undef ck_pr_load_ptr
#define ck_pr_load_ptr(p) MT_PR_LOAD((void *const *)(p))
#undef ck_pr_store_ptr
#define ck_pr_store_ptr(p, v) MT_PR_STORE((void **)(p), (void *)(v))
#undef ck_pr_cas_ptr
#define ck_pr_cas_ptr(p, c, s) MT_PR_CAS((void **)(p), (void *)(c), (void *)(s))
#undef ck_pr_cas_ptr_value
#define ck_pr_cas_ptr_value(p, c, s, o)                                                            \
	MT_PR_CAS_VALUE((void **)(p), (void *)(c), (void *)(s), (void **)(o))
#undef ck_pr_fas_ptr
#define ck_pr_fas_ptr(p, v) __atomic_exchange_n((void **)(p), (void *)(v), MT_SC)

#undef ck_pr_load_64
#define ck_pr_load_64(p) MT_PR_LOAD((const uint64_t *)(p))
#undef ck_pr_load_32
#define ck_pr_load_32(p) MT_PR_LOAD((const uint32_t *)(p))
#undef ck_pr_load_16
#define ck_pr_load_16(p) MT_PR_LOAD((const uint16_t *)(p))
#undef ck_pr_load_8
#define ck_pr_load_8(p) MT_PR_LOAD((const uint8_t *)(p))
#undef ck_pr_load_uint
#define ck_pr_load_uint(p) MT_PR_LOAD((const unsigned int *)(p))
#undef ck_pr_load_int
#define ck_pr_load_int(p) MT_PR_LOAD((const int *)(p))
#undef ck_pr_store_64
#define ck_pr_store_64(p, v) MT_PR_STORE((uint64_t *)(p), (uint64_t)(v))
#undef ck_pr_store_32
#define ck_pr_store_32(p, v) MT_PR_STORE((uint32_t *)(p), (uint32_t)(v))
#undef ck_pr_store_16
#define ck_pr_store_16(p, v) MT_PR_STORE((uint16_t *)(p), (uint16_t)(v))
#undef ck_pr_store_8
#define ck_pr_store_8(p, v) MT_PR_STORE((uint8_t *)(p), (uint8_t)(v))
#undef ck_pr_store_uint
#define ck_pr_store_uint(p, v) MT_PR_STORE((unsigned int *)(p), (unsigned int)(v))
#undef ck_pr_store_int
#define ck_pr_store_int(p, v) MT_PR_STORE((int *)(p), (int)(v))
#undef ck_pr_cas_64
#define ck_pr_cas_64(p, c, s) MT_PR_CAS((uint64_t *)(p), (uint64_t)(c), (uint64_t)(s))
#undef ck_pr_cas_32
#define ck_pr_cas_32(p, c, s) MT_PR_CAS((uint32_t *)(p), (uint32_t)(c), (uint32_t)(s))
#undef ck_pr_cas_8
#define ck_pr_cas_8(p, c, s) MT_PR_CAS((uint8_t *)(p), (uint8_t)(c), (uint8_t)(s))
#undef ck_pr_cas_uint
#define ck_pr_cas_uint(p, c, s) MT_PR_CAS((unsigned int *)(p), (unsigned int)(c), (unsigned int)(s))
#undef ck_pr_cas_int
#define ck_pr_cas_int(p, c, s) MT_PR_CAS((int *)(p), (int)(c), (int)(s))
#undef ck_pr_cas_64_value
#define ck_pr_cas_64_value(p, c, s, o)                                                             \
	MT_PR_CAS_VALUE((uint64_t *)(p), (uint64_t)(c), (uint64_t)(s), (uint64_t *)(o))
#undef ck_pr_cas_32_value
#define ck_pr_cas_32_value(p, c, s, o)                                                             \
	MT_PR_CAS_VALUE((uint32_t *)(p), (uint32_t)(c), (uint32_t)(s), (uint32_t *)(o))
#undef ck_pr_cas_uint_value
#define ck_pr_cas_uint_value(p, c, s, o)                                                           \
	MT_PR_CAS_VALUE((unsigned int *)(p), (unsigned int)(c), (unsigned int)(s),                 \
	                (unsigned int *)(o))
#undef ck_pr_faa_64
#define ck_pr_faa_64(p, d) __atomic_fetch_add((uint64_t *)(p), (uint64_t)(d), MT_SC)
#undef ck_pr_faa_32
#define ck_pr_faa_32(p, d) __atomic_fetch_add((uint32_t *)(p), (uint32_t)(d), MT_SC)
#undef ck_pr_faa_uint
#define ck_pr_faa_uint(p, d) __atomic_fetch_add((unsigned int *)(p), (unsigned int)(d), MT_SC)
#undef ck_pr_faa_int
#define ck_pr_faa_int(p, d) __atomic_fetch_add((int *)(p), (int)(d), MT_SC)
#undef ck_pr_fas_64
#define ck_pr_fas_64(p, v) __atomic_exchange_n((uint64_t *)(p), (uint64_t)(v), MT_SC)
#undef ck_pr_fas_32
#define ck_pr_fas_32(p, v) __atomic_exchange_n((uint32_t *)(p), (uint32_t)(v), MT_SC)
#undef ck_pr_fas_uint
#define ck_pr_fas_uint(p, v) __atomic_exchange_n((unsigned int *)(p), (unsigned int)(v), MT_SC)
#undef ck_pr_add_64
#define ck_pr_add_64(p, d) ((void)__atomic_fetch_add((uint64_t *)(p), (uint64_t)(d), MT_SC))
#undef ck_pr_sub_64
#define ck_pr_sub_64(p, d) ((void)__atomic_fetch_sub((uint64_t *)(p), (uint64_t)(d), MT_SC))
#undef ck_pr_add_32
#define ck_pr_add_32(p, d) ((void)__atomic_fetch_add((uint32_t *)(p), (uint32_t)(d), MT_SC))
#undef ck_pr_sub_32
#define ck_pr_sub_32(p, d) ((void)__atomic_fetch_sub((uint32_t *)(p), (uint32_t)(d), MT_SC))
#undef ck_pr_add_uint
#define ck_pr_add_uint(p, d)                                                                       \
	((void)__atomic_fetch_add((unsigned int *)(p), (unsigned int)(d), MT_SC))
#undef ck_pr_sub_uint
#define ck_pr_sub_uint(p, d)                                                                       \
	((void)__atomic_fetch_sub((unsigned int *)(p), (unsigned int)(d), MT_SC))
#undef ck_pr_inc_64
#define ck_pr_inc_64(p) ck_pr_add_64((p), 1)
#undef ck_pr_dec_64
#define ck_pr_dec_64(p) ck_pr_sub_64((p), 1)
#undef ck_pr_inc_32
#define ck_pr_inc_32(p) ck_pr_add_32((p), 1)
#undef ck_pr_dec_32
#define ck_pr_dec_32(p) ck_pr_sub_32((p), 1)
#undef ck_pr_inc_uint
#define ck_pr_inc_uint(p) ck_pr_add_uint((p), 1)
#undef ck_pr_dec_uint
#define ck_pr_dec_uint(p) ck_pr_sub_uint((p), 1)
#undef ck_pr_dec_64_zero
#define ck_pr_dec_64_zero(p, z)                                                                    \
	((void)(*(z) = (__atomic_sub_fetch((uint64_t *)(p), 1, MT_SC) == 0)))
#undef ck_pr_dec_32_zero
#define ck_pr_dec_32_zero(p, z)                                                                    \
	((void)(*(z) = (__atomic_sub_fetch((uint32_t *)(p), 1, MT_SC) == 0)))
#undef ck_pr_dec_uint_zero
#define ck_pr_dec_uint_zero(p, z)                                                                  \
	((void)(*(z) = (__atomic_sub_fetch((unsigned int *)(p), 1, MT_SC) == 0)))
#undef ck_pr_or_8
#define ck_pr_or_8(p, v) ((void)__atomic_fetch_or((uint8_t *)(p), (uint8_t)(v), MT_SC))
#undef ck_pr_or_32
#define ck_pr_or_32(p, v) ((void)__atomic_fetch_or((uint32_t *)(p), (uint32_t)(v), MT_SC))
#undef ck_pr_and_32
#define ck_pr_and_32(p, v) ((void)__atomic_fetch_and((uint32_t *)(p), (uint32_t)(v), MT_SC))
#undef ck_pr_or_64
#define ck_pr_or_64(p, v) ((void)__atomic_fetch_or((uint64_t *)(p), (uint64_t)(v), MT_SC))
#undef ck_pr_and_64
#define ck_pr_and_64(p, v) ((void)__atomic_fetch_and((uint64_t *)(p), (uint64_t)(v), MT_SC))
#endif /* MT_TSAN */

#endif /* MT_PR_H */
