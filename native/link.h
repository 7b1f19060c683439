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

#endif
