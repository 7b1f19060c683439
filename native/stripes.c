/* stripes.c: the locks that guard maps' entries (see wm_core.h).
 *
 * A guest's data operation holds its map's stripe for the few tens of
 * nanoseconds the work takes, so a thread that finds it held spins a
 * little, then yields: the holder may have been preempted.
 */
#include <sched.h>

#include "wm_core.h"

#define SPINS 128

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

void wm_stripe_wait(wm_stripe *s)
{
    for (unsigned tries = 0;; tries++) {
        if (tries < SPINS)
            relax();
        else
            sched_yield();
        if (!__atomic_load_n(&s->held, __ATOMIC_RELAXED) &&
            !__atomic_exchange_n(&s->held, 1, __ATOMIC_ACQUIRE))
            return;
    }
}

void wm_stripes_lock_all(wm_broker *b)
{
    for (uint32_t i = 0; i < WM_STRIPES; i++)
        if (i + 1 != b->held_stripe)
            wm_stripe_lock(&b->stripes[i]);
}

void wm_stripes_unlock_all(wm_broker *b)
{
    for (uint32_t i = 0; i < WM_STRIPES; i++)
        if (i + 1 != b->held_stripe)
            wm_stripe_unlock(&b->stripes[i]);
}
