/* ops.h: the two routes of a map operation, shared by the ops*.c units.
 *
 * ops.c checks an operation's arguments once, in the ABI's order, and then
 * routes it once, by where the map's entries are:
 *   - in memory (an anonymous map, or a named map without a backing
 *     store): ops_memory.c, with the map's stripe held -- and the broker
 *     lock too, unless a guest instance's thread makes the operation (see
 *     wm_core.h for why it may go without);
 *   - in the backing store (a named map while a store is set: sqlite,
 *     LevelDB, Redis):
 *     ops.c prepares a wm_store_call under the lock (wm_store_begin), then
 *     releases the lock, and ops_store.c makes the call without it.
 * Every operation locks and unlocks in ops.c (op_begin, op_end).
 * "store" means the backing store and nothing else; a map's in-memory
 * entries are its `table`.
 */
#ifndef WM_OPS_H
#define WM_OPS_H

#include <string.h>

#include "wm_core.h"

/* Not an errno: an operation made without the broker lock must be made
 * again with it (ops_memory.c: it would drop a map reference). */
#define WM_SLOW (-1)

static inline void wm_put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline uint32_t wm_get_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The handle's checks: BADF/STALE (wm_handles_lookup), then ACCES. */
static inline int wm_check_handle(wm_module *m, uint32_t h, uint32_t needs, wm_handle **hs)
{
    int err = wm_handles_lookup(&m->handles, h, hs);
    if (!err && ((*hs)->rights & needs) != needs)
        err = WM_ACCES;
    return err;
}

/* Step 1 of an operation on one key: the handle's checks, then TOOBIG for a
 * key or value over the module's sizes. */
static inline int wm_check_key(wm_module *m, uint32_t h, uint32_t needs, uint32_t key_len,
                               uint32_t val_len, wm_handle **hs)
{
    int err = wm_check_handle(m, h, needs, hs);
    if (!err && (key_len > m->limits.key_size || val_len > m->limits.value_size))
        err = WM_TOOBIG;
    return err;
}

/* Would writing `new_size` bytes of key and value over entry `e` (or a new
 * entry) exceed the writer's quota?  What is already charged to the writer
 * for `e` comes back first; an entry costs WM_ENTRY_COST on top. */
static inline bool wm_over_quota(const wm_module *m, const wm_entry *e, uint64_t new_size)
{
    uint64_t bytes = wm_used_bytes(m), entries = wm_used_entries(m);
    if (e && e->account == m->id) {
        bytes -= wm_entry_size(e);
        entries -= 1;
    }
    return bytes + new_size + WM_ENTRY_COST > m->limits.bytes || entries + 1 > m->limits.entries;
}

/* --- in memory (ops_memory.c): stripe held, arguments checked -------------
 * `map` is the map's slot; each returns the operation's own errnos, in the
 * order docs/abi.md gives them.  Nothing is written to an output unless the
 * result is OK (RANGE writes the needed size). */
int wm_mem_get(wm_module *m, uint32_t map, const uint8_t *key, uint32_t key_len, uint8_t *buf,
               uint32_t buf_cap, uint32_t *out_len);
/* `locked`: the broker lock is held too (else a write that would drop a map
 * reference answers WM_SLOW, having changed nothing). */
int wm_mem_set(wm_module *m, uint32_t map, bool locked, const uint8_t *key, uint32_t key_len,
               const uint8_t *val, uint32_t val_len);
int wm_mem_set_if(wm_module *m, uint32_t map, bool locked, const uint8_t *key, uint32_t key_len,
                  const uint8_t *val, uint32_t val_len, int64_t expected);
int wm_mem_delete(wm_module *m, uint32_t map, bool locked, const uint8_t *key, uint32_t key_len);
void wm_mem_exists(wm_module *m, uint32_t map, const uint8_t *key, uint32_t key_len,
                   uint32_t *out);
void wm_mem_version(wm_module *m, uint32_t map, const uint8_t *key, uint32_t key_len,
                    uint64_t *out);
int wm_mem_incr(wm_module *m, uint32_t map, const uint8_t *key, uint32_t key_len, int64_t delta,
                int64_t *out);
/* `child` is the slot of the map to reference, `h` the parent's handle (for the tracer). */
int wm_mem_set_map(wm_module *m, uint32_t map, uint32_t h, const uint8_t *key, uint32_t key_len,
                   uint32_t child);
/* The new handle gets `rights`, the parent handle's. */
int wm_mem_get_map(wm_module *m, uint32_t map, uint8_t rights, const uint8_t *key,
                   uint32_t key_len, uint32_t *out_h);
int wm_mem_keys(wm_module *m, uint32_t map, uint64_t *cursor, uint8_t *buf, uint32_t buf_cap,
                uint32_t *out_used, uint32_t *out_count);
/* The batches are well formed (ops.c walked them): `n` items. */
int wm_mem_get_many(wm_module *m, uint32_t map, const uint8_t *keys, uint32_t keys_len,
                    uint8_t *buf, uint32_t buf_cap, uint32_t *out_used);
int wm_mem_set_many(wm_module *m, uint32_t map, bool locked, const uint8_t *items,
                    uint32_t items_len, int64_t n);

/* --- in the backing store ---------------------------------------------------
 * A call to the store function, prepared under the lock and made after it
 * is released.  The map's name is copied: wm_broker_close (another thread)
 * may free the names once the lock is released. */
typedef struct wm_store_call {
    wm_store_fn fn; /* NULL: the store was taken away (the call answers IO) */
    void *ctx;
    wm_store_req req;
    uint8_t name[WM_MAX_NAME_LEN];
} wm_store_call;

/* store.c: fill `c` for map `ms` (lock held). */
void wm_store_begin(wm_module *m, const wm_mapslot *ms, wm_store_call *c);
/* store.c: make the call (lock not held); the store's errno, or IO for one
 * the operation cannot give or outputs that do not fit the buffer. */
int wm_store_run(wm_store_call *c);

/* ops_store.c: one request per operation, and its outputs (lock not held). */
int wm_store_get(wm_store_call *c, const uint8_t *key, uint32_t key_len, uint8_t *buf,
                 uint32_t buf_cap, uint32_t *out_len);
int wm_store_set(wm_store_call *c, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                 uint32_t val_len);
int wm_store_set_if(wm_store_call *c, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                    uint32_t val_len, int64_t expected);
int wm_store_delete(wm_store_call *c, const uint8_t *key, uint32_t key_len);
int wm_store_exists(wm_store_call *c, const uint8_t *key, uint32_t key_len, uint32_t *out);
int wm_store_version(wm_store_call *c, const uint8_t *key, uint32_t key_len, uint64_t *out);
int wm_store_incr(wm_store_call *c, const uint8_t *key, uint32_t key_len, int64_t delta,
                  int64_t *out);
int wm_store_get_map(wm_store_call *c, const uint8_t *key, uint32_t key_len);
int wm_store_len(wm_store_call *c, uint32_t *out);
int wm_store_keys(wm_store_call *c, uint64_t *cursor, uint8_t *buf, uint32_t buf_cap,
                  uint32_t *out_used, uint32_t *out_count);
int wm_store_get_many(wm_store_call *c, const uint8_t *keys, uint32_t keys_len, uint32_t n,
                      uint8_t *buf, uint32_t buf_cap, uint32_t *out_used);
int wm_store_set_many(wm_store_call *c, const uint8_t *items, uint32_t items_len, uint32_t n);

#endif
