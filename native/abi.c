/* abi.c: the guest ABI as wasmtime host functions.
 *
 * Each callback is registered through wasmtime's unchecked C API, so a
 * guest call lands here directly (no Python, no boxing).  A callback's only
 * jobs are to turn guest pointer/length pairs into spans, call the
 * operation in ops.c, and write outputs back.  A bad argument is an errno,
 * never a trap; the one trap is a quota configured to trap.
 *
 * Where each argument is, and which arguments are pointers into guest
 * memory with what length, is not written here: broker/abi/ declares it
 * and native/abi_gen.h has it as WM_ARGS_<fn> (A_<param>, the positions;
 * SPANS_, the spans).  CHECK_SPANS() checks every span of a call in one
 * step, through span() -- the single bounds check -- before anything else.
 */
#include <string.h>

#include "guest.h"
#include "wm_core.h"

/* One span of a call: the position of its pointer, and the position of its
 * length or WM_FIXED_LEN and its size in bytes (abi_gen.h's SPANS_). */
typedef struct wm_span {
    uint8_t ptr;
    uint8_t len;
    uint8_t size;
} wm_span;

/* The positions and counts of every function, from the X-macro. */
#define NPARAMS(name, nparams) NPARAMS_##name = nparams,
enum { WM_ABI_FUNCTIONS(NPARAMS) };

static inline void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static wt_trap *done(wm_module *m, wt_val_raw *args, int err)
{
    args[0].i32 = err;
    if (err == WM_QUOTA && m->limits.trap_on_quota) {
        static const char msg[] = "wasi_map: module quota exceeded";
        return m->broker->api.trap_new(msg, sizeof msg - 1);
    }
    return NULL;
}

/* Every span of a call inside guest memory: the pointers in out[], in table
 * order.  Inlined with a constant table, the loop unrolls into the same
 * checks a hand-written callback made. */
static inline __attribute__((always_inline)) bool spans_ok(guest *g, const wt_val_raw *args,
                                                           const wm_span *t, size_t n,
                                                           uint8_t **out)
{
#pragma GCC unroll 8
    for (size_t i = 0; i < n; i++) {
        uint64_t len = t[i].len == WM_FIXED_LEN ? t[i].size : (uint32_t)args[t[i].len].i32;
        if (!span(g, (uint32_t)args[t[i].ptr].i32, len, &out[i]))
            return false;
    }
    return true;
}

static wt_trap *wrong_arity(wm_module *m, const char *name, size_t nargs, size_t nparams)
{
    return wm_trap(m->broker, "wasi_map: %s called with %zu arguments; its ABI has %zu", name,
                   nargs, nparams);
}

/* A callback's frame: its arguments by name (WM_ARGS_<name>), checked
 * against the number of parameters the X-macro declares and wasmtime
 * passes (the slots of params and results: one result, the errno). */
#define CALLBACK(name)                                                                            \
    static wt_trap *cb_##name(void *env, wt_caller *caller, wt_val_raw *args, size_t nargs)       \
    {                                                                                             \
        WM_ARGS_##name                                                                            \
        _Static_assert((int)A_COUNT_ == (int)NPARAMS_##name, "WM_ARGS_" #name " and X agree");    \
        wm_module *m = env;                                                                       \
        if (__builtin_expect(nargs != (A_COUNT_ > 1 ? A_COUNT_ : 1), 0))                          \
            return wrong_arity(m, #name, nargs, A_COUNT_);
#define END_CALLBACK }
/* FAULT unless every span of the call is inside guest memory; then AT(p)
 * is pointer parameter p's host address. */
#define CHECK_SPANS()                                                                             \
    _Static_assert(S_COUNT_ > 0, "a function without spans checks none");                        \
    uint8_t *at_[S_COUNT_];                                                                       \
    {                                                                                             \
        guest g;                                                                                  \
        guest_view(m, caller, &g);                                                                \
        if (!spans_ok(&g, args, SPANS_, S_COUNT_, at_))                                           \
            return done(m, args, WM_FAULT);                                                       \
    }
#define AT(p) (at_[S_##p])
#define ARG(p) ((uint32_t)args[A_##p].i32)
#define I64(p) (args[A_##p].i64)

CALLBACK(open)
    CHECK_SPANS();
    uint32_t h;
    int err = wm_op_open(m, AT(name_ptr), ARG(name_len), ARG(rights), &h);
    if (!err)
        put_u32(AT(out_h), h);
    return done(m, args, err);
END_CALLBACK

CALLBACK(new)
    CHECK_SPANS();
    uint32_t h;
    int err = wm_op_new(m, &h);
    if (!err)
        put_u32(AT(out_h), h);
    return done(m, args, err);
END_CALLBACK

CALLBACK(close)
    (void)caller;
    return done(m, args, wm_op_close(m, ARG(h)));
END_CALLBACK

CALLBACK(clone)
    CHECK_SPANS();
    uint32_t h;
    int err = wm_op_clone(m, ARG(h), ARG(rights), &h);
    if (!err)
        put_u32(AT(out_h), h);
    return done(m, args, err);
END_CALLBACK

CALLBACK(get)
    CHECK_SPANS();
    uint32_t len;
    int err = wm_op_get(m, ARG(h), AT(key_ptr), ARG(key_len), AT(buf_ptr), ARG(buf_cap), &len);
    if (err == WM_OK || err == WM_RANGE)
        put_u32(AT(out_len), len);
    return done(m, args, err);
END_CALLBACK

CALLBACK(set)
    CHECK_SPANS();
    return done(m, args,
                wm_op_set(m, ARG(h), AT(key_ptr), ARG(key_len), AT(val_ptr), ARG(val_len)));
END_CALLBACK

CALLBACK(delete)
    CHECK_SPANS();
    return done(m, args, wm_op_delete(m, ARG(h), AT(key_ptr), ARG(key_len)));
END_CALLBACK

CALLBACK(exists)
    CHECK_SPANS();
    uint32_t v;
    int err = wm_op_exists(m, ARG(h), AT(key_ptr), ARG(key_len), &v);
    if (!err)
        put_u32(AT(out_u32), v);
    return done(m, args, err);
END_CALLBACK

CALLBACK(len)
    CHECK_SPANS();
    uint32_t v;
    int err = wm_op_len(m, ARG(h), &v);
    if (!err)
        put_u32(AT(out_u32), v);
    return done(m, args, err);
END_CALLBACK

CALLBACK(keys)
    CHECK_SPANS();
    uint64_t cursor;
    memcpy(&cursor, AT(cursor_ptr), 8);
    uint32_t used, count;
    int err = wm_op_keys(m, ARG(h), &cursor, AT(buf_ptr), ARG(buf_cap), &used, &count);
    if (err == WM_OK || err == WM_RANGE)
        put_u32(AT(out_used), used);
    if (!err) {
        put_u32(AT(out_count), count);
        put_u64(AT(cursor_ptr), cursor);
    }
    return done(m, args, err);
END_CALLBACK

CALLBACK(incr)
    CHECK_SPANS();
    int64_t v;
    int err = wm_op_incr(m, ARG(h), AT(key_ptr), ARG(key_len), I64(delta), &v);
    if (!err)
        put_u64(AT(out_i64), (uint64_t)v);
    return done(m, args, err);
END_CALLBACK

CALLBACK(version)
    CHECK_SPANS();
    uint64_t v;
    int err = wm_op_version(m, ARG(h), AT(key_ptr), ARG(key_len), &v);
    if (!err)
        put_u64(AT(out_u64), v);
    return done(m, args, err);
END_CALLBACK

CALLBACK(set_if)
    CHECK_SPANS();
    return done(m, args,
                wm_op_set_if(m, ARG(h), AT(key_ptr), ARG(key_len), AT(val_ptr), ARG(val_len),
                             I64(expected)));
END_CALLBACK

CALLBACK(get_many)
    CHECK_SPANS();
    uint32_t used;
    int err = wm_op_get_many(m, ARG(h), AT(keys_ptr), ARG(keys_len), AT(buf_ptr), ARG(buf_cap),
                             &used);
    if (err == WM_OK || err == WM_RANGE)
        put_u32(AT(out_used), used);
    return done(m, args, err);
END_CALLBACK

CALLBACK(set_many)
    CHECK_SPANS();
    return done(m, args, wm_op_set_many(m, ARG(h), AT(items_ptr), ARG(items_len)));
END_CALLBACK

CALLBACK(set_map)
    CHECK_SPANS();
    return done(m, args, wm_op_set_map(m, ARG(h), AT(key_ptr), ARG(key_len), ARG(child_h)));
END_CALLBACK

CALLBACK(get_map)
    CHECK_SPANS();
    uint32_t h;
    int err = wm_op_get_map(m, ARG(h), AT(key_ptr), ARG(key_len), &h);
    if (!err)
        put_u32(AT(out_h), h);
    return done(m, args, err);
END_CALLBACK

CALLBACK(watch_drop)
    (void)caller;
    return done(m, args, wm_op_watch_drop(m, ARG(h), I64(cookie)));
END_CALLBACK

/* --- registration --------------------------------------------------------- */

typedef struct abi_entry {
    const char *name;
    wt_unchecked_cb cb;
} abi_entry;

/* nparams is each callback's arity check (NPARAMS_ above). */
#define ABI_ENTRY(name, nparams) {#name, cb_##name},
static const abi_entry ABI[] = {WM_ABI_FUNCTIONS(ABI_ENTRY)};
_Static_assert(sizeof ABI / sizeof ABI[0] == WM_ABI_COUNT, "ABI table matches abi_gen.h");

size_t wm_abi_count(void) { return WM_ABI_COUNT; }

const char *wm_abi_name(size_t i) { return i < WM_ABI_COUNT ? ABI[i].name : NULL; }

void *wm_define_abi(wm_module *m, void *linker, void **functypes)
{
    const wt_api *api = &m->broker->api;
    for (size_t i = 0; i < WM_ABI_COUNT; i++) {
        wt_error *err = api->linker_define_func_unchecked(
            linker, "wasi_map", 8, ABI[i].name, strlen(ABI[i].name), functypes[i], ABI[i].cb, m,
            NULL);
        if (err)
            return err;
    }
    return NULL;
}
