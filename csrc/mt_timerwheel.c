/*
 * mt_timerwheel.c - hierarchical timer wheel with bitmap skipping.
 *
 * The design and its invariant (I1) are in mt_timerwheel.h. In short: a
 * timer lives at the level of the highest digit (6 bits) in which its due
 * tick differs from the wheel's time; reaching the start of its slot moves
 * it down a level or fires it. mt_tw_next finds the earliest slot start over
 * all levels from the occupancy bitmaps, so advancing over an idle hour is
 * as cheap as advancing over one tick.
 *
 * Reclamation: the wheel owns no memory; nodes are embedded in their owners'
 * objects and fired nodes are handed back through the callback.
 */
#include "mt_timerwheel.h"

#include <assert.h>

static void mt_tw_list_init(struct mt_tw_node *h)
{
	h->prev = h;
	h->next = h;
}

static void mt_tw_list_add(struct mt_tw_node *h, struct mt_tw_node *n)
{
	n->next = h->next;
	n->prev = h;
	h->next->prev = n;
	h->next = n;
}

void mt_tw_init(struct mt_tw *w, uint64_t now)
{
	w->now = now > MT_TW_MAX ? MT_TW_MAX : now;
	w->count = 0;
	for (unsigned l = 0; l < MT_TW_LEVELS; l++) {
		w->occupied[l] = 0;
		for (unsigned s = 0; s < MT_TW_SLOTS; s++)
			mt_tw_list_init(&w->slot[l][s]);
	}
}

/* Places n (n->tick > w->now) by invariant I1. */
static void mt_tw_place(struct mt_tw *w, struct mt_tw_node *n)
{
	uint64_t diff = n->tick ^ w->now;
	unsigned level, slot;

	assert(n->tick > w->now && n->tick <= MT_TW_MAX);
	level = (63u - (unsigned)__builtin_clzll(diff)) / MT_TW_BITS;
	slot = (unsigned)(n->tick >> (level * MT_TW_BITS)) & (MT_TW_SLOTS - 1);
	mt_tw_list_add(&w->slot[level][slot], n);
	w->occupied[level] |= 1ull << slot;
}

void mt_tw_add(struct mt_tw *w, struct mt_tw_node *n, uint64_t tick)
{
	assert(n != NULL);
	if (tick > MT_TW_MAX)
		tick = MT_TW_MAX;
	if (tick <= w->now)
		tick = w->now + 1; /* already due: fires at the next advance */
	n->tick = tick;
	mt_tw_place(w, n);
	w->count++;
}

void mt_tw_del(struct mt_tw *w, struct mt_tw_node *n)
{
	assert(n->next != NULL && n->prev != NULL && w->count > 0);
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = NULL;
	n->prev = NULL;
	w->count--;
}

uint64_t mt_tw_next(const struct mt_tw *w)
{
	uint64_t best = UINT64_MAX;

	if (w->count == 0)
		return UINT64_MAX;
	for (unsigned l = 0; l < MT_TW_LEVELS; l++) {
		unsigned shift = l * MT_TW_BITS;
		unsigned cur = (unsigned)(w->now >> shift) & (MT_TW_SLOTS - 1);
		uint64_t above, base, due;

		/* Slots after now's digit at this level (I1: no others hold
		 * timers). cur == 63 leaves none. */
		above = cur == MT_TW_SLOTS - 1 ? 0 : w->occupied[l] & (~0ull << (cur + 1));
		if (above == 0)
			continue;
		base = shift + MT_TW_BITS >= 64
		               ? 0
		               : (w->now >> (shift + MT_TW_BITS)) << (shift + MT_TW_BITS);
		due = base | ((uint64_t)__builtin_ctzll(above) << shift);
		if (due < best)
			best = due;
	}
	return best;
}

/* Cascades or fires the slot of level l that starts at w->now. */
static uint64_t mt_tw_run_slot(struct mt_tw *w, unsigned l, mt_tw_fire_fn *fire, void *arg)
{
	unsigned slot = (unsigned)(w->now >> (l * MT_TW_BITS)) & (MT_TW_SLOTS - 1);
	struct mt_tw_node *h = &w->slot[l][slot];
	struct mt_tw_node list;
	uint64_t fired = 0;

	if ((w->occupied[l] & (1ull << slot)) == 0)
		return 0;
	w->occupied[l] &= ~(1ull << slot);
	if (h->next == h)
		return 0; /* a stale hint */
	/* Move the slot's timers to a private list first, so that fire may
	 * delete other timers and re-placed timers never meet this loop. */
	list.next = h->next;
	list.prev = h->prev;
	list.next->prev = &list;
	list.prev->next = &list;
	mt_tw_list_init(h);
	while (list.next != &list) {
		struct mt_tw_node *n = list.next;

		n->prev->next = n->next;
		n->next->prev = n->prev;
		if (n->tick <= w->now) {
			n->next = NULL;
			n->prev = NULL;
			w->count--;
			fire(n, arg);
			fired++;
		} else {
			mt_tw_place(w, n);
		}
	}
	return fired;
}

uint64_t mt_tw_advance(struct mt_tw *w, uint64_t to, mt_tw_fire_fn *fire, void *arg)
{
	return mt_tw_advance_max(w, to, UINT64_MAX, fire, arg);
}

uint64_t mt_tw_advance_max(struct mt_tw *w, uint64_t to, uint64_t max, mt_tw_fire_fn *fire,
                           void *arg)
{
	uint64_t fired = 0;

	if (to > MT_TW_MAX)
		to = MT_TW_MAX;
	/* Stops only between steps, where the wheel is consistent: every timer
	 * due at or before the new now has fired. */
	while (w->now < to && fired < max) {
		uint64_t next = mt_tw_next(w);

		if (next > to) {
			w->now = to;
			break;
		}
		assert(next > w->now);
		w->now = next;
		/* Every level whose slot boundary is now, highest first, so that
		 * cascaded timers land in lower slots still to be run. */
		for (unsigned l = MT_TW_LEVELS; l-- > 0;) {
			uint64_t low = l == 0 ? 0 : w->now & ((1ull << (l * MT_TW_BITS)) - 1);

			if (low == 0)
				fired += mt_tw_run_slot(w, l, fire, arg);
		}
	}
	return fired;
}

void mt_tw_reset(struct mt_tw *w, uint64_t now)
{
	mt_tw_init(w, now);
}
