/* abi.c: the guest ABI as wasmtime host functions.
 *
 * Each callback is registered through wasmtime's unchecked C API, so a
 * guest call lands here directly (no Python, no boxing).  A callback's only
 * jobs are to turn guest pointer/length pairs into spans -- every one
 * through span(), the single bounds check -- call the operation in ops.c,
 * and write outputs back.  A bad argument is an errno, never a trap; the
 * one trap is a quota configured to trap.
 */
#include <string.h>

#include "guest.h"
#include "wm_core.h"

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

#define CALLBACK(name)                                                                            \
    static wt_trap *cb_##name(void *env, wt_caller *caller, wt_val_raw *args, size_t nargs)       \
    {                                                                                             \
        (void)nargs;                                                                              \
        wm_module *m = env;                                                                       \
        guest g;                                                                                  \
        guest_view(m, caller, &g);
#define END_CALLBACK }
#define U32(i) ((uint32_t)args[i].i32)
#define FAULT_UNLESS(cond)                                                                        \
    if (!(cond))                                                                                  \
    return done(m, args, WM_FAULT)

CALLBACK(open)
    uint8_t *name, *out;
    FAULT_UNLESS(span(&g, U32(0), U32(1), &name) && span(&g, U32(3), 4, &out));
    uint32_t h;
    int err = wm_op_open(m, name, U32(1), U32(2), &h);
    if (!err)
        put_u32(out, h);
    return done(m, args, err);
END_CALLBACK

CALLBACK(new)
    uint8_t *out;
    FAULT_UNLESS(span(&g, U32(0), 4, &out));
    uint32_t h;
    int err = wm_op_new(m, &h);
    if (!err)
        put_u32(out, h);
    return done(m, args, err);
END_CALLBACK

CALLBACK(close)
    return done(m, args, wm_op_close(m, U32(0)));
END_CALLBACK

CALLBACK(clone)
    uint8_t *out;
    FAULT_UNLESS(span(&g, U32(2), 4, &out));
    uint32_t h;
    int err = wm_op_clone(m, U32(0), U32(1), &h);
    if (!err)
        put_u32(out, h);
    return done(m, args, err);
END_CALLBACK

CALLBACK(get)
    uint8_t *key, *buf, *out;
    FAULT_UNLESS(span(&g, U32(1), U32(2), &key) && span(&g, U32(3), U32(4), &buf) &&
                 span(&g, U32(5), 4, &out));
    uint32_t len;
    int err = wm_op_get(m, U32(0), key, U32(2), buf, U32(4), &len);
    if (err == WM_OK || err == WM_RANGE)
        put_u32(out, len);
    return done(m, args, err);
END_CALLBACK

CALLBACK(set)
    uint8_t *key, *val;
    FAULT_UNLESS(span(&g, U32(1), U32(2), &key) && span(&g, U32(3), U32(4), &val));
    return done(m, args, wm_op_set(m, U32(0), key, U32(2), val, U32(4)));
END_CALLBACK

CALLBACK(delete)
    uint8_t *key;
    FAULT_UNLESS(span(&g, U32(1), U32(2), &key));
    return done(m, args, wm_op_delete(m, U32(0), key, U32(2)));
END_CALLBACK

CALLBACK(exists)
    uint8_t *key, *out;
    FAULT_UNLESS(span(&g, U32(1), U32(2), &key) && span(&g, U32(3), 4, &out));
    uint32_t v;
    int err = wm_op_exists(m, U32(0), key, U32(2), &v);
    if (!err)
        put_u32(out, v);
    return done(m, args, err);
END_CALLBACK

CALLBACK(len)
    uint8_t *out;
    FAULT_UNLESS(span(&g, U32(1), 4, &out));
    uint32_t v;
    int err = wm_op_len(m, U32(0), &v);
    if (!err)
        put_u32(out, v);
    return done(m, args, err);
END_CALLBACK

CALLBACK(keys)
    uint8_t *cursor_p, *buf, *used_p, *count_p;
    FAULT_UNLESS(span(&g, U32(1), 8, &cursor_p) && span(&g, U32(2), U32(3), &buf) &&
                 span(&g, U32(4), 4, &used_p) && span(&g, U32(5), 4, &count_p));
    uint64_t cursor;
    memcpy(&cursor, cursor_p, 8);
    uint32_t used, count;
    int err = wm_op_keys(m, U32(0), &cursor, buf, U32(3), &used, &count);
    if (err == WM_OK || err == WM_RANGE)
        put_u32(used_p, used);
    if (!err) {
        put_u32(count_p, count);
        put_u64(cursor_p, cursor);
    }
    return done(m, args, err);
END_CALLBACK

CALLBACK(incr)
    uint8_t *key, *out;
    FAULT_UNLESS(span(&g, U32(1), U32(2), &key) && span(&g, U32(4), 8, &out));
    int64_t v;
    int err = wm_op_incr(m, U32(0), key, U32(2), args[3].i64, &v);
    if (!err)
        put_u64(out, (uint64_t)v);
    return done(m, args, err);
END_CALLBACK

CALLBACK(version)
    uint8_t *key, *out;
    FAULT_UNLESS(span(&g, U32(1), U32(2), &key) && span(&g, U32(3), 8, &out));
    uint64_t v;
    int err = wm_op_version(m, U32(0), key, U32(2), &v);
    if (!err)
        put_u64(out, v);
    return done(m, args, err);
END_CALLBACK

CALLBACK(set_if)
    uint8_t *key, *val;
    FAULT_UNLESS(span(&g, U32(1), U32(2), &key) && span(&g, U32(3), U32(4), &val));
    return done(m, args, wm_op_set_if(m, U32(0), key, U32(2), val, U32(4), args[5].i64));
END_CALLBACK

CALLBACK(get_many)
    uint8_t *keys, *buf, *out;
    FAULT_UNLESS(span(&g, U32(1), U32(2), &keys) && span(&g, U32(3), U32(4), &buf) &&
                 span(&g, U32(5), 4, &out));
    uint32_t used;
    int err = wm_op_get_many(m, U32(0), keys, U32(2), buf, U32(4), &used);
    if (err == WM_OK || err == WM_RANGE)
        put_u32(out, used);
    return done(m, args, err);
END_CALLBACK

CALLBACK(set_many)
    uint8_t *items;
    FAULT_UNLESS(span(&g, U32(1), U32(2), &items));
    return done(m, args, wm_op_set_many(m, U32(0), items, U32(2)));
END_CALLBACK

CALLBACK(set_map)
    uint8_t *key;
    FAULT_UNLESS(span(&g, U32(1), U32(2), &key));
    return done(m, args, wm_op_set_map(m, U32(0), key, U32(2), U32(3)));
END_CALLBACK

CALLBACK(get_map)
    uint8_t *key, *out;
    FAULT_UNLESS(span(&g, U32(1), U32(2), &key) && span(&g, U32(3), 4, &out));
    uint32_t h;
    int err = wm_op_get_map(m, U32(0), key, U32(2), &h);
    if (!err)
        put_u32(out, h);
    return done(m, args, err);
END_CALLBACK

CALLBACK(watch_drop)
    return done(m, args, wm_op_watch_drop(m, U32(0), args[1].i64));
END_CALLBACK

/* --- registration --------------------------------------------------------- */

typedef struct abi_entry {
    const char *name;
    wt_unchecked_cb cb;
} abi_entry;

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
