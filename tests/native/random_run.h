/* random_run.h: what the two halves of the one-module random run share.
 *
 * random_ops.c holds the operations: r_random_op picks a module, a handle
 * and an operation and checks the core's answer against the model.
 * test_random.c holds the run: its modules, the listing and invariant
 * checks, and test_random itself.  Private to those two files.
 */
#ifndef WM_TEST_RANDOM_RUN_H
#define WM_TEST_RANDOM_RUN_H

#include "harness.h"
#include "model.h"

#define NMODS 4

/* A module as the run knows it: the model's holder, and its limits. */
typedef struct pmod {
    holder x;
    wm_limits limits;
    bool limited; /* bytes/entries quotas may be hit */
} pmod;

extern uint64_t r_tally[WM_ERRNO_MAX + 1]; /* answers seen, by errno: the run's coverage */

/* An answer that must be `want` exactly (counted in r_tally). */
#define EXPECT_R(what, got, want)                                                                 \
    do {                                                                                          \
        int g_ = (got), w_ = (want);                                                              \
        r_tally[g_ >= 0 && g_ <= WM_ERRNO_MAX ? g_ : 0]++;                                        \
        if (g_ != w_) {                                                                           \
            char msg_[256];                                                                       \
            snprintf(msg_, sizeof msg_, "random op %s returned %s, expected %s", what,            \
                     errname(g_), errname(w_));                                                   \
            fail(__FILE__, __LINE__, msg_);                                                       \
        }                                                                                         \
    } while (0)

/* random_ops.c: one random operation by one of the modules, checked. */
void r_random_op(pmod *mods, wm_broker *b);
/* test_random.c: a full listing of ph's map, in pages, against the model. */
void r_check_listing(pmod *pm, mhandle *ph);

#endif
