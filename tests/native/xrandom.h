/* xrandom.h: what the two halves of the cross-module random run share.
 *
 * test_xrandom.c keeps the run: the modules as the model has them, the
 * helpers that snapshot, hold and pick handles, loading and links, the
 * quiet-state check and test_xrandom itself.  xrandom_calls.c makes the
 * calls: body_xrandom (what a callee's stand-in code does) and xcall (one
 * call, checked against the model).  Private to those two files.
 */
#ifndef WM_TEST_XRANDOM_H
#define WM_TEST_XRANDOM_H

#include "harness.h"
#include "model.h"
#include "xworld.h"

enum { XM = 5, XPOOL = 24, XSHAPES = 13, XDEPTH = 3, XSNAP = 8192 };

/* An export's shape: np handle parameters, nr results, each passed as how[i]. */
struct xshape {
    uint8_t np, nr;
    uint8_t how[4];
};
extern const struct xshape XSHAPE[XSHAPES];

typedef struct xkey {
    int mod, shape;
} xkey;

typedef struct xrmod {
    holder held; /* its handles, as the model has them (model.h) */
    xexport ex[XSHAPES];
    xkey keys[XSHAPES];
    wm_link *links[XM][XSHAPES]; /* its way to each module's each export */
    int generation;
    bool dead;       /* torn down, not loaded again yet */
    uint64_t entered; /* calls into it so far */
} xrmod;

/* One call in progress: what its callee received and returned. */
typedef struct xframe {
    int caller, target, shape;
    uint32_t got[4]; /* the callee's numbers */
    uint32_t result; /* the number it returns, 0 if none */
    uint64_t result_map;
    uint8_t result_rights; /* what the model says that handle has */
    uint8_t want_rights[4]; /* what each handle parameter must arrive with */
} xframe;

extern xrmod xr[XM];
extern xframe xframes[XDEPTH + 1];
extern int xdepth;
extern wm_handle_info xsnap[XSNAP];
extern uint32_t xfirst_origin; /* module id + 1 where the run expects the trap began */
extern uint64_t xtally[9]; /* calls ok, errno, trap, nested; own, borrow, share, results; orphans */

/* test_xrandom.c: the state's helpers. */
bool xsnap_find(size_t n, uint32_t module, uint32_t h, wm_handle_info *out);
size_t xsnapshot(void);
void xhold(xrmod *x, uint32_t h, uint8_t rights);
bool xrights(xrmod *x, uint32_t h, uint8_t *rights);
uint32_t xpick(const xrmod *x, const uint32_t *extra, size_t nextra);
void xexpect_origin_at(wm_module *m);

/* xrandom_calls.c: the calls. */
wt_trap *body_xrandom(xexport *e, wt_val_raw *args);
wt_trap *xcall(int caller, int target, int shape, const uint32_t *extra, size_t nextra);

#endif
