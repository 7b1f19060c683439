/* link.c: calls from one module into another's export (and from the host).
 *
 * Every cross-module import is defined as a C trampoline whose env is a
 * wm_link, so a guest-to-guest call never enters Python.  A call:
 *   1. under the lock, checks every declared handle parameter, reserves
 *      room in the callee's handle table, then passes them all
 *      (ownership.c) -- all or none;
 *   2. without the lock, calls the export (wasmtime_func_call_unchecked);
 *   3. under the lock, ends the borrows it lent (a borrow the callee left
 *      open is closed and counted, or in strict mode traps the callee) and
 *      passes declared own/share results back to the caller.
 * A trap records the module it began in (trap_origin) so the host can tear
 * that module down.
 */
#include <stdlib.h>
#include <string.h>

#include "link.h"

wm_link *wm_link_new(wm_module *caller, const char *label, uint32_t nparams, uint32_t nresults)
{
    wm_broker *b = caller->broker;
    wm_link *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->how = calloc((size_t)nparams + nresults + 1, 1);
    l->label = strdup(label);
    if (!l->how || !l->label) {
        free(l->how);
        free(l->label);
        free(l);
        return NULL;
    }
    l->b = b;
    l->caller = caller;
    l->nparams = nparams;
    l->nresults = nresults;
    wm_lock(b);
    l->id = ++b->next_link_id;
    l->next = b->links;
    b->links = l;
    wm_unlock(b);
    return l;
}

int wm_link_resolve(wm_link *l, wm_pool *pool, const void *funcs, const uint8_t *how)
{
    wt_func *copy = malloc((size_t)pool->n * sizeof *copy);
    if (!copy)
        return WM_QUOTA;
    memcpy(copy, funcs, (size_t)pool->n * sizeof *copy);
    wm_lock(l->b);
    free(l->funcs);
    l->funcs = copy;
    l->pool = pool;
    l->loading = NULL;
    memcpy(l->how, how, (size_t)l->nparams + l->nresults);
    l->has_handles = false;
    for (uint32_t i = 0; i < l->nparams + l->nresults; i++)
        l->has_handles |= (how[i] & WM_PASS_KIND) != WM_PASS_PLAIN;
    wm_unlock(l->b);
    return WM_OK;
}

uint32_t wm_link_id(wm_link *l) { return l->id; }

void wm_link_unresolve(wm_link *l)
{
    wm_lock(l->b);
    l->pool = NULL;
    wm_unlock(l->b);
}

int wm_link_set_func(wm_link *l, uint32_t i, const void *func)
{
    int err = WM_INVAL;
    wm_lock(l->b);
    if (l->pool && i < l->pool->n) {
        memcpy(&l->funcs[i], func, sizeof l->funcs[i]);
        err = WM_OK;
    }
    wm_unlock(l->b);
    return err;
}

void wm_link_free(wm_link *l)
{
    free(l->funcs);
    free(l->how);
    free(l->label);
    free(l);
}

void wm_links_free(wm_broker *b)
{
    for (wm_link *l = b->links, *next; l; l = next) {
        next = l->next;
        wm_link_free(l);
    }
    b->links = NULL;
}

/* Pass handles at `slots` (the `how` codes in `how`) from `from` to `to`,
 * all or none.  On failure returns the errno and sets *bad (link.h).
 *
 * `from` and `to` may be one module (a module calling its own export):
 * then reserving room may move the very table the handles live in, so
 * the check keeps handle numbers, never slot pointers, and each slot is
 * looked up again after the reserve, just before it passes. */
int wm_pass_all(wt_val_raw *vals, const uint8_t *how, uint32_t count,
                    const uint8_t *masks, wm_module *from, wm_module *to, lent *lends,
                    uint32_t *nlends, uint32_t *bad, bool *receiver_full, bool *twice)
{
    *receiver_full = false;
    *twice = false;
    uint32_t which[MAX_HANDLE_ARGS], k = 0;
    for (uint32_t i = 0; i < count; i++) {
        if ((how[i] & WM_PASS_KIND) == WM_PASS_PLAIN)
            continue;
        *bad = i;
        if (k == MAX_HANDLE_ARGS)
            return WM_INVAL;
        uint32_t h = (uint32_t)vals[i].i32;
        wm_handle *slot;
        int err = wm_pass_check(from, h, how[i], &slot);
        if (err)
            return err;
        /* A handle that moves may not be passed twice in one call. */
        for (uint32_t j = 0; j < k; j++) {
            uint32_t other = which[j];
            if ((uint32_t)vals[other].i32 == h &&
                ((how[i] & WM_PASS_KIND) == WM_PASS_OWN ||
                 (how[other] & WM_PASS_KIND) == WM_PASS_OWN)) {
                *twice = true;
                return WM_BUSY;
            }
        }
        which[k++] = i;
    }
    int err = wm_handles_reserve(&to->handles, to->limits.handles, k);
    if (err) {
        *bad = k ? which[0] : 0;
        *receiver_full = true; /* the receiver's table, not the giver's handles */
        return err;
    }
    for (uint32_t j = 0; j < k; j++) {
        uint32_t i = which[j];
        uint32_t from_h = (uint32_t)vals[i].i32;
        wm_handle *slot = NULL;
        /* Checked above and nothing has closed it since (lock held; the
         * handles are distinct where one moves): this lookup succeeds. */
        wm_handles_lookup(&from->handles, from_h, &slot);
        uint32_t out =
            wm_pass_apply(from, from_h, slot, how[i], masks ? masks[i] : WM_RIGHTS_ALL, to);
        vals[i].i32 = (int32_t)out;
        if ((how[i] & WM_PASS_KIND) == WM_PASS_BORROW)
            lends[(*nlends)++] = (lent){from_h, out};
    }
    return WM_OK;
}

static inline uint32_t slots_of(const wm_link *l)
{
    return l->nparams > l->nresults ? l->nparams : l->nresults;
}

/* A link without handle kinds: no table to touch, so no lock.  The link
 * and its target change only between host calls, under the Broker's lock,
 * never while a guest runs. */
static void trace_call(wm_link *l, wm_module *target, uint32_t kind, uint32_t flags)
{
    wm_lock(l->b);
    WM_TRACE(l->b, .kind = kind, .module = l->caller->id, .other_module = target->id,
             .link = l->id, .flags = flags);
    wm_unlock(l->b);
}

/* Run the export in the target's wasmtime store, its time limit counting;
 * or, for a host function, the app's Python function (hostfn.c). */
static inline void run_export(wm_link *l, wm_module *target, uint32_t index,
                              wt_caller *caller, wt_val_raw *args, wt_trap **trap)
{
    wm_broker *b = l->b;
    if (l->host_fn) {
        *trap = wm_hostfn_run(l, caller, args);
        return;
    }
    wm_enter(target);
    wt_error *error =
        b->api.func_call_unchecked(target->context, &l->funcs[index], args, slots_of(l), trap);
    wm_leave(target);
    if (error)
        *trap = wm_error_to_trap(b, error);
}

/* The instance a call through `l` runs in (see pool.c), or NULL with *why
 * set; a host function's is the host.  Lock not held.  The common case --
 * a free live instance of a one-instance pool -- is inline; the rest is
 * take_target_slow, out of line, so that a call's path stays short. */
static __attribute__((noinline)) wm_module *take_target_slow(wm_link *l, uint32_t *index,
                                                             int *why)
{
    *index = 0;
    if (l->host_fn)
        return l->target;
    wm_pool *pool = l->pool;
    if (!pool) {
        *why = 0;
        return NULL;
    }
    bool live;
    wm_module *m = wm_pool_try(pool, &live, index);
    if (m)
        return m;
    return wm_pool_take(pool, wm_time_left(l->caller), why, index); /* waits */
}

static inline wm_module *take_target(wm_link *l, uint32_t *index, int *why)
{
    wm_pool *pool = l->pool;
    if (__builtin_expect(pool && pool->n == 1 && !l->host_fn, 1)) {
        wm_module *m = __atomic_load_n(&pool->inst[0], __ATOMIC_ACQUIRE);
        bool mine = false; /* a call back into it on this thread re-enters it */
        if (m && wm_pool_claim(m, &mine)) {
            *index = 0;
            return m;
        }
        /* busy, dead or being replaced: the full look */
    }
    return take_target_slow(l, index, why);
}

static inline void give_target(wm_link *l, wm_module *target)
{
    if (!l->host_fn)
        wm_pool_give(target);
}

/* A call through a link whose target cannot be called (lock held; `why`
 * from take_target): the trap, blamed on the caller -- unless the target
 * is still loading and its own start function led here, which is the
 * loading module's doing. */
static wt_trap *unreachable_target(wm_link *l, int why)
{
    wm_broker *b = l->b;
    if (!l->pool && l->loading) {
        wm_mark_origin(b, l->loading);
        return wm_trap(b,
                       "wasi_map: %s: the module is still loading (its start function called "
                       "back into it through another module): do that work in an export "
                       "called after the load",
                       l->label);
    }
    wm_mark_origin(b, l->caller);
    if (why == WM_POOL_BUSY)
        return wm_trap(b,
                       "wasi_map: %s: no instance of the module came free within the "
                       "caller's time limit (every one is running a call)",
                       l->label);
    return wm_trap(b, "wasi_map: %s: the module is %s", l->label,
                   l->pool ? "torn down (it trapped earlier): load it again"
                           : "not loaded: load it before calling it");
}

void wm_link_set_loading(wm_link *l, wm_module *loading)
{
    wm_lock(l->b);
    l->loading = loading;
    wm_unlock(l->b);
}

static inline void plain_call(wm_link *l, wt_caller *caller, wt_val_raw *args, wt_trap **trap)
{
    wm_broker *b = l->b;
    uint32_t index;
    int why;
    wm_module *target = take_target(l, &index, &why);
    if (!target) {
        wm_lock(b);
        *trap = unreachable_target(l, why);
        wm_unlock(b);
        return;
    }
    if (__atomic_load_n(&b->tracing, __ATOMIC_RELAXED))
        trace_call(l, target, WM_EV_CALL, 0);
    run_export(l, target, index, caller, args, trap);
    if (*trap) {
        wm_lock(b);
        wm_mark_origin(b, target);
        wm_unlock(b);
    }
    if (__atomic_load_n(&b->tracing, __ATOMIC_RELAXED))
        trace_call(l, target, WM_EV_RETURN, *trap ? WM_EVF_TRAPPED : 0);
    give_target(l, target);
}

/* The body of a call through a link; the lock is not held on entry.
 * Returns OK or the errno of a parameter that could not pass (*bad; then
 * nothing was called, and *blame_callee is the callee instance when its
 * full handle table was the reason, else NULL).  *trap is set when the call trapped. */
static int link_call(wm_link *l, wt_caller *wcaller, wt_val_raw *args, const uint8_t *masks,
                     wt_trap **trap, uint32_t *bad, wm_module **blame_callee, bool *twice)
{
    wm_broker *b = l->b;
    wm_module *caller = l->caller, *target;
    lent lends[MAX_HANDLE_ARGS];
    uint32_t nlends = 0, index;
    int why;
    bool callee_full = false;
    *trap = NULL;
    *blame_callee = NULL;
    if (!l->has_handles) {
        plain_call(l, wcaller, args, trap);
        return WM_OK;
    }
    target = take_target(l, &index, &why);
    wm_lock(b);
    if (!target) {
        *trap = unreachable_target(l, why);
        wm_unlock(b);
        return WM_OK;
    }
    WM_TRACE(b, .kind = WM_EV_CALL, .module = caller->id, .other_module = target->id,
             .link = l->id);
    int err = wm_pass_all(args, l->how, l->nparams, masks, caller, target, lends, &nlends, bad,
                       &callee_full, twice);
    if (callee_full)
        *blame_callee = target;
    if (err)
        WM_TRACE(b, .kind = WM_EV_RETURN, .module = caller->id, .other_module = target->id,
                 .link = l->id, .flags = WM_EVF_TRAPPED);
    wm_unlock(b);
    if (err) {
        give_target(l, target);
        return err;
    }

    run_export(l, target, index, wcaller, args, trap);

    wm_lock(b);
    /* Strict borrows: a callee that left a borrow open traps before any
     * result passes (a result the caller's code never sees would leak). */
    if (!*trap && b->strict_borrows && !l->host_fn) {
        uint32_t open = 0;
        wm_handle *slot;
        for (uint32_t i = 0; i < nlends; i++)
            open += wm_handles_lookup(&target->handles, lends[i].callee_h, &slot) == WM_OK &&
                    slot->state == WM_H_BORROW;
        if (open) {
            wm_mark_origin(b, target);
            *trap = wm_trap(b,
                            "wasi_map: %s: returned with %u borrow(s) still open (strict "
                            "borrows): close each borrowed handle before returning; to keep "
                            "the map, clone the handle or pass it on as share",
                            l->label, open);
        }
    }
    /* Results before the borrows end: a callee may return a handle it was
     * lent as `share`.  A host function passed its own (hostfn.c). */
    if (!*trap && !l->host_fn) {
        uint32_t result, none = 0;
        bool caller_full, again;
        int rerr = wm_pass_all(args, l->how + l->nparams, l->nresults, NULL, target, caller,
                            NULL, &none, &result, &caller_full, &again);
        if (rerr) {
            wm_mark_origin(b, caller_full ? caller : target);
            *trap = wm_pass_trap(l, rerr, result, WM_WHY_RESULT | (again ? WM_WHY_TWICE : 0),
                              (uint32_t)args[result].i32);
        }
    }
    uint32_t left_open = 0;
    for (uint32_t i = 0; i < nlends; i++)
        left_open += wm_borrow_end(caller, lends[i].lender_h, target, lends[i].callee_h);
    b->unreleased_borrows += left_open;
    if (*trap)
        wm_mark_origin(b, target);
    WM_TRACE(b, .kind = WM_EV_RETURN, .module = caller->id, .other_module = target->id,
             .link = l->id, .flags = *trap ? WM_EVF_TRAPPED : 0);
    wm_unlock(b);
    give_target(l, target);
    return WM_OK;
}

static wt_trap *trampoline(void *env, wt_caller *caller, wt_val_raw *args, size_t n)
{
    (void)n;
    wm_link *l = env;
    wt_trap *trap;
    uint32_t bad = 0;
    wm_module *blame_callee;
    bool twice;
    int err = link_call(l, caller, args, NULL, &trap, &bad, &blame_callee, &twice);
    if (err) {
        wm_lock(l->b);
        wm_mark_origin(l->b, blame_callee ? blame_callee : l->caller);
        wm_unlock(l->b);
        trap = wm_pass_trap(l, err, bad, twice ? WM_WHY_TWICE : 0, (uint32_t)args[bad].i32);
    }
    return trap;
}

void *wm_link_define(wm_link *l, void *linker, const char *module, const char *name, void *functype)
{
    return l->b->api.linker_define_func_unchecked(linker, module, strlen(module), name,
                                                  strlen(name), functype, trampoline, l, NULL);
}

int wm_link_call(wm_link *l, wm_val_raw *args, size_t n, const uint8_t *masks, void **trap,
                 uint32_t *bad_param)
{
    (void)n;
    wm_module *blame_callee;
    bool twice;
    wm_tick_begin(); /* a top-level call: time must flow while it runs */
    int err = link_call(l, NULL, (wt_val_raw *)args, masks, (wt_trap **)trap, bad_param, &blame_callee,
                        &twice);
    wm_tick_end();
    return err;
}
