/* hostfn.c: host functions, the imports an app defines in Python.
 *
 * A host function is a link (link.c) whose target is the host module and
 * whose "export" is one Python function: the guest's declared handle
 * parameters pass into the host module exactly as into a callee (all or
 * none, borrows ending when the call returns), and then, without the lock,
 * the one `extern "Python"` dispatcher runs (broker/_native/hostfn_door.py).
 * It reads and writes the guest's memory through the bounds checks below
 * and passes its own/share results with wm_hostcall_results.  When it
 * fails, the guest traps with its words, blamed on the guest.
 */
#include <string.h>

#include "guest.h"
#include "link.h"

#define MESSAGE_CAP 512

static _Thread_local unsigned running WM_TLS; /* host functions running on this thread */

int wm_inside_host_function(void)
{
    return running > 0;
}

void wm_link_serve(wm_link *l, wm_hostfn fn, void *ctx, const uint8_t *how)
{
    wm_lock(l->b);
    l->target = l->b->host;
    l->host_fn = fn;
    l->host_ctx = ctx;
    memcpy(l->how, how, (size_t)l->nparams + l->nresults);
    l->has_handles = false;
    for (uint32_t i = 0; i < l->nparams + l->nresults; i++)
        l->has_handles |= (how[i] & WM_PASS_KIND) != WM_PASS_PLAIN;
    wm_unlock(l->b);
}

wt_trap *wm_hostfn_run(wm_link *l, wt_caller *caller, wt_val_raw *args)
{
    char message[MESSAGE_CAP] = "";
    wm_hostcall call = {.link = l,
                        .caller = caller,
                        .args = (wm_val_raw *)args,
                        .words = (int64_t *)args,
                        .message = message,
                        .message_cap = sizeof message,
                        .module = l->caller->id};
    running++;
    int failed = l->host_fn(l->host_ctx, &call);
    running--;
    if (!failed)
        return NULL;
    message[sizeof message - 1] = '\0';
    wm_lock(l->b);
    wm_mark_origin(l->b, l->caller);
    wm_unlock(l->b);
    return wm_trap(l->b, "wasi_map: %s: %s", l->label, message);
}

/* The span [ptr, ptr + len) of the caller's memory, or NULL. */
static uint8_t *guest_span(wm_hostcall *call, uint32_t ptr, uint32_t len)
{
    guest g;
    uint8_t *at;
    if (!call->caller)
        return NULL;
    guest_view(call->link->caller, call->caller, &g);
    return span(&g, ptr, len, &at) ? at : NULL;
}

int wm_hostcall_read(wm_hostcall *call, uint32_t ptr, uint8_t *out, uint32_t len)
{
    uint8_t *at = guest_span(call, ptr, len);
    if (!at)
        return WM_FAULT;
    memcpy(out, at, len);
    return WM_OK;
}

int wm_hostcall_write(wm_hostcall *call, uint32_t ptr, const uint8_t *data, uint32_t len)
{
    uint8_t *at = guest_span(call, ptr, len);
    if (!at)
        return WM_FAULT;
    memcpy(at, data, len);
    return WM_OK;
}

uint64_t wm_hostcall_memory_size(wm_hostcall *call)
{
    guest g;
    if (!call->caller)
        return 0;
    guest_view(call->link->caller, call->caller, &g);
    return g.size;
}

int wm_hostcall_results(wm_hostcall *call, uint32_t *bad, uint32_t *twice)
{
    wm_link *l = call->link;
    wm_broker *b = l->b;
    uint32_t none = 0;
    bool full, again = false;
    *bad = 0;
    wm_lock(b);
    int err = wm_pass_all((wt_val_raw *)call->args, l->how + l->nparams, l->nresults, NULL,
                          b->host, l->caller, NULL, &none, bad, &full, &again);
    wm_unlock(b);
    *twice = again;
    return err;
}
