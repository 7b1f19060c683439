/* traps.c: the traps of calls between modules, in words.
 *
 * wm_trap formats a trap; a handle that could not pass (link.c's pass_all)
 * becomes a trap that names the link, the parameter or result, the errno
 * and what the module can do instead (wm_pass_explain, also the host's
 * message for the same refusal); the module a trap began in is noted for
 * the host to tear down (wm_mark_origin).
 */
#include <stdarg.h>
#include <stdio.h>

#include "link.h"

static const char *const ERRNO_NAMES[] = WM_ERRNO_NAMES;
static const char *const KIND_NAMES[] = {"plain", "own", "borrow", "share"};

wt_trap *wm_trap(wm_broker *b, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof msg)
        n = sizeof msg - 1;
    return b->api.trap_new(msg, (size_t)n);
}

wt_trap *wm_error_to_trap(wm_broker *b, wt_error *error)
{
    wt_byte_vec msg = {0, NULL};
    b->api.error_message(error, &msg);
    wt_trap *trap = b->api.trap_new(msg.data ? msg.data : "error", msg.data ? msg.size : 5);
    b->api.byte_vec_delete(&msg);
    b->api.error_delete(error);
    return trap;
}

/* --- why a handle could not pass ----------------------------------------------
 *
 * Every errno a pass can fail with, in words: what is wrong with the handle
 * and what the module can do instead.  The "giver" is the caller for a
 * parameter and the callee for a result. */

static const char NEW_HANDLE[] = "a handle it got from open, new, clone, get_map or a call";
static const char NO_ROOM[] =
    "has no room for another handle (its `handles` limit, or every handle number it may be "
    "issued is spent): raise its limit, have it close handles it no longer needs, or reload it";

int wm_pass_explain(char *out, size_t cap, int err, uint32_t how, uint32_t flags, uint32_t handle)
{
    bool result = flags & WM_WHY_RESULT, own = (how & WM_PASS_KIND) == WM_PASS_OWN;
    const char *giver = result ? "the callee" : "the caller";
    const char *pass = result ? "returned" : "passed";
    switch (err) {
    case WM_BADF:
        return snprintf(out, cap, "%u is not a handle %s was issued: %s %s", handle, giver,
                        result ? "return" : "pass", NEW_HANDLE);
    case WM_STALE:
        return snprintf(out, cap,
                        "handle %u was closed, or moved away as own, before it was %s: %s a "
                        "live handle",
                        handle, pass, result ? "return" : "pass");
    case WM_ACCES:
        if (own && result)
            return snprintf(out, cap,
                            "handle %u is borrowed (lent to the callee for this call), and a "
                            "borrowed handle cannot be returned as own: declare the result "
                            "share, or return an owned handle (clone makes one)",
                            handle);
        if (own)
            return snprintf(out, cap,
                            "handle %u is borrowed (lent to the caller for the call it is in), "
                            "and a borrowed handle cannot be passed as own: pass it as borrow "
                            "or share, or pass an owned handle (clone makes one)",
                            handle);
        break;
    case WM_BUSY:
        if (flags & WM_WHY_TWICE)
            return snprintf(out, cap,
                            "handle %u is %s twice, once as own: a handle that moves can go "
                            "only once; %s a clone for the other",
                            handle, pass, result ? "return" : "pass");
        if (own)
            return snprintf(out, cap,
                            "handle %u is lent to a call that has not returned (passed as "
                            "borrow), and cannot move until it does: %s a clone as own%s",
                            handle, result ? "return" : "pass",
                            result ? "" : ", or pass it as borrow or share");
        return snprintf(out, cap,
                        "handle %u is lent to %u calls at once, the most there can be: let "
                        "one return first",
                        handle, (unsigned)UINT16_MAX);
    case WM_QUOTA:
        return snprintf(out, cap, "%s %s", result ? "the caller" : "the callee", NO_ROOM);
    case WM_INVAL:
        return snprintf(out, cap, "more than %d handles in one call", MAX_HANDLE_ARGS);
    default:
        break;
    }
    return snprintf(out, cap, "handle %u cannot be %s as %s", handle, pass,
                    KIND_NAMES[how & WM_PASS_KIND]);
}

wt_trap *wm_pass_trap(wm_link *l, int err, uint32_t index, uint32_t flags, uint32_t handle)
{
    char why[512];
    uint32_t how = l->how[(flags & WM_WHY_RESULT ? l->nparams : 0) + index];
    wm_pass_explain(why, sizeof why, err, how, flags, handle);
    return wm_trap(l->b, "wasi_map: %s: %s %u (%s): %s: %s", l->label,
                   flags & WM_WHY_RESULT ? "result" : "parameter", index,
                   KIND_NAMES[how & WM_PASS_KIND], ERRNO_NAMES[err], why);
}

/* Where the trap now unwinding on this thread began: module id + 1 (0:
 * none).  Per thread, since instances trap in parallel; the host takes it
 * on the same thread, right after the call. */
static _Thread_local uint32_t trap_origin WM_TLS;

void wm_mark_origin(wm_broker *b, wm_module *m)
{
    (void)b;
    if (!trap_origin)
        trap_origin = m->id + 1;
}

void wm_forget_origin(wm_module *m)
{
    if (trap_origin == m->id + 1)
        trap_origin = 0;
}

uint32_t wm_broker_take_trap_origin(wm_broker *b)
{
    (void)b;
    uint32_t origin = trap_origin;
    trap_origin = 0;
    return origin;
}

