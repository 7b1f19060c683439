/* xworld.h: a broker whose modules call each other, for the C tests.
 *
 * A link's export is an xexport: fake_call runs its C body in place of the
 * guest code.  A guest caller goes through the link's trampoline (what
 * wm_link_define registers), as a Wasm import would; the host through
 * wm_link_call.  Traps are malloc'd (fake_msg): every one must reach the
 * test, which frees it.
 */
#ifndef WM_TEST_XWORLD_H
#define WM_TEST_XWORLD_H

#include "fake_wasmtime.h"

typedef struct xworld {
    wm_broker *b;
    wm_module *host, *a, *c, *small;
} xworld;
extern xworld xw; /* the bodies reach the modules through it */
extern const uint8_t H_OWN[1], H_BORROW[1], H_SHARE[1]; /* one-parameter links */

/* A fresh world: the host and modules a, c and small (two handles). */
void xworld_new(uint64_t seed);
/* Every trap came back and was freed, every origin taken; the recount agrees. */
void xworld_free(void);
/* A link from `caller` to export `e` of `e->m`; `how` has np + nr codes. */
wm_link *xlink(wm_module *caller, xexport *e, uint32_t np, uint32_t nr, const uint8_t *how);
/* The host calls through a link: the errno (nothing passed unless OK);
 * *trap gets the trap, if any (NULL: none allowed). */
int host_call(wm_link *l, wm_val_raw *args, size_t n, const uint8_t *masks, void **trap,
              uint32_t *bad);
/* A guest module calls through a link: its trampoline's trap, or NULL. */
wt_trap *guest_link_call(wm_link *l, wt_val_raw *args, size_t n);
/* `t` is a trap whose text has `words`, begun in `origin`; frees it. */
void expect_trap(void *t, const char *words, wm_module *origin);
/* The rights handle h has, found by trying them. */
uint8_t rights_of(wm_module *m, uint32_t h);
bool is_borrowed(wm_module *m, uint32_t h);

/* Bodies: what the stand-in exports do. */
wt_trap *body_keep(xexport *e, wt_val_raw *args);
wt_trap *body_close_first(xexport *e, wt_val_raw *args);
/* A borrow in progress: the lender is BUSY for close; reads and writes
 * go through both handles; the borrowed handle clones into an owning one. */
typedef struct lend_ctx {
    wm_module *lender;
    uint32_t lender_h, clone;
} lend_ctx;
wt_trap *body_check_lent(xexport *e, wt_val_raw *args);
wt_trap *body_trap(xexport *e, wt_val_raw *args);
/* Results: the body puts the handle `ctx` points at into slot 0. */
wt_trap *body_return(xexport *e, wt_val_raw *args);
/* Returns what it was lent (params: one borrow). */
wt_trap *body_return_lent(xexport *e, wt_val_raw *args);

/* Calls link `link` with `args` (-1: the handle this call got there). */
typedef struct nest_ctx {
    wm_link *link;
    wt_val_raw args[4];
    size_t n;
    wt_trap *seen;   /* the nested call's trap, when `swallow` */
    bool swallow;    /* keep the trap here (C can; Wasm cannot) */
} nest_ctx;

wt_trap *body_nest(xexport *e, wt_val_raw *args);

#endif
