/*
 * mt_timerwheel.h - a hierarchical timer wheel (the cache's TTL reclamation).
 *
 * Design. Time is counted in ticks (the cache uses 2^20 ns, about 1 ms).
 * The wheel has MT_TW_LEVELS levels of 64 slots; level L covers ticks in
 * units of 64^L. A timer due at tick t, added while the wheel's time is
 * now < t, goes to the level of the highest 6-bit digit in which t and now
 * differ, in the slot named by t's digit at that level:
 *
 *     L = (63 - clz(t ^ now)) / 6,   slot = (t >> 6L) & 63
 *
 * Invariant (I1): every timer at level L has the same digits above L as now
 * and a larger digit at L, so it is due no earlier than the start of its
 * slot, D_L(t) = t with the digits below L cleared, and now < D_L(t). When
 * the wheel reaches D_L(t) the slot is "cascaded": each timer is added again
 * relative to the new now, which puts it at a lower level (its digits down
 * to L now equal now's), or fires it if t <= now.
 *
 * Advancing never steps tick by tick: a 64-bit occupancy bitmap per level
 * gives the next non-empty slot above now's digit in O(1) (ctz), so the
 * next instant at which anything must happen is the minimum over levels;
 * the wheel jumps there directly. An advance costs O(levels) per step plus
 * O(1) per timer fired or cascaded; a timer is cascaded at most once per
 * level, so every timer costs O(levels) over its life whatever the gap
 * between advances.
 *
 * Bitmap bits are hints: removing a timer leaves its slot's bit set (a node
 * does not know its slot), and a set bit over an empty slot is cleared when
 * the wheel reaches it. The bits of slots at or below now's digit are never
 * consulted at that level (by I1 those slots are empty).
 *
 * Timers past the last level's range are clamped to the range's end.
 *
 * Concurrency: none inside; the owner (a cache shard) serialises every call
 * with its lock.
 */
#ifndef MT_TIMERWHEEL_H
#define MT_TIMERWHEEL_H

#include <stddef.h>
#include <stdint.h>

#define MT_TW_BITS   6
#define MT_TW_SLOTS  (1u << MT_TW_BITS)
#define MT_TW_LEVELS 8 /* 48 bits of ticks */
#define MT_TW_MAX    ((1ull << (MT_TW_BITS * MT_TW_LEVELS)) - 1)

/* A circular doubly linked list node; a list is a sentinel node. */
struct mt_tw_node {
	struct mt_tw_node *prev, *next;
	uint64_t tick; /* when the timer is due */
};

struct mt_tw {
	uint64_t now;   /* every timer due at or before now has fired */
	uint64_t count; /* timers in the wheel */
	uint64_t occupied[MT_TW_LEVELS];
	struct mt_tw_node slot[MT_TW_LEVELS][MT_TW_SLOTS];
};

/* Called for each timer that fires, after it left the wheel. */
typedef void mt_tw_fire_fn(struct mt_tw_node *n, void *arg);

/* Initialises an empty wheel whose time is now. */
void mt_tw_init(struct mt_tw *w, uint64_t now);

/* Adds n, due at tick (clamped to [w->now + 1, MT_TW_MAX]). n must not be in
 * a wheel. */
void mt_tw_add(struct mt_tw *w, struct mt_tw_node *n, uint64_t tick);

/* Removes n from the wheel it is in. */
void mt_tw_del(struct mt_tw *w, struct mt_tw_node *n);

/* Advances the wheel's time to `to` (no-op if to <= now), firing every timer
 * due at or before it. fire may call mt_tw_del on other timers but must not
 * add timers. Returns the number fired. */
uint64_t mt_tw_advance(struct mt_tw *w, uint64_t to, mt_tw_fire_fn *fire, void *arg);

/* As mt_tw_advance, but stops at the first step at or after which `max`
 * timers have fired (the wheel's time is then before `to`; a later advance
 * continues). One step fires the timers of one tick, so a call fires at most
 * max plus one tick's timers. */
uint64_t mt_tw_advance_max(struct mt_tw *w, uint64_t to, uint64_t max, mt_tw_fire_fn *fire,
                           void *arg);

/* The earliest tick at which mt_tw_advance would have work to do, or
 * UINT64_MAX if the wheel is empty (a lower bound: may be an empty slot). */
uint64_t mt_tw_next(const struct mt_tw *w);

/* Unlinks every timer without firing it (the owner frees them) and resets
 * the wheel to time now. */
void mt_tw_reset(struct mt_tw *w, uint64_t now);

#endif /* MT_TIMERWHEEL_H */
