/* link.h: what link.c (the calls) and traps.c (their traps in words) share. */
#ifndef WM_LINK_H
#define WM_LINK_H

#include "wm_core.h"

#define MAX_HANDLE_ARGS WM_MAX_HANDLE_ARGS /* handle parameters or results per export */

/* A wasmtime_error_t from a nested call (a host function's trap comes back
 * as one) turned into a trap that can go on unwinding; frees `error`. */
wt_trap *wm_error_to_trap(wm_broker *b, wt_error *error);
/* The trap of a handle that could not pass: the link, which parameter or
 * result (`flags`: WM_WHY_*), the errno, and why in words. */
wt_trap *wm_pass_trap(wm_link *l, int err, uint32_t index, uint32_t flags, uint32_t handle);

/* Pass the handles among vals[0..count) whose `how` code is not PLAIN from
 * `from` to `to`, all or none (lock held); each borrow is recorded in
 * lends[*nlends].  On failure the errno, *bad the index, *receiver_full
 * whether `to`'s table was the reason, *twice whether a moving handle came
 * twice. */
typedef struct lent {
    uint32_t lender_h; /* the caller's handle, busy during the call */
    uint32_t callee_h; /* the borrowed handle the callee got */
} lent;
int wm_pass_all(wt_val_raw *vals, const uint8_t *how, uint32_t count, const uint8_t *masks,
                wm_module *from, wm_module *to, lent *lends, uint32_t *nlends, uint32_t *bad,
                bool *receiver_full, bool *twice);
/* hostfn.c: call a host function's Python side; its trap or NULL. */
wt_trap *wm_hostfn_run(wm_link *l, wt_caller *caller, wt_val_raw *args);

#endif
