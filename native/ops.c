/* ops.c: the semantics of every ABI function, on already-checked spans.
 *
 * abi.c turns guest pointers into spans (the FAULT check) and calls these;
 * the host API calls them with Python buffers.  Order of checks, after
 * FAULT: INVAL (argument values) -> BADF/STALE (handle) -> ACCES (rights)
 * -> TOOBIG (sizes) -> the operation's own errnos.  Nothing is written to
 * an output unless the result is OK (RANGE writes the needed size).
 */
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "wm_core.h"

/* --- small helpers ------------------------------------------------------ */

static int resolve(wm_module *m, uint32_t h, uint32_t needs, wm_handle **hs, wm_mapslot **ms)
{
    int err = wm_handles_lookup(&m->handles, h, hs);
    if (err)
        return err;
    if (((*hs)->rights & needs) != needs)
        return WM_ACCES;
    *ms = &m->broker->maps[(*hs)->map];
    return WM_OK;
}

static inline uint64_t key_hash(wm_module *m, const uint8_t *key, uint32_t key_len)
{
    return wm_hash(key, key_len, m->broker->seed);
}

static inline void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline uint32_t get_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Would writing `new_size` bytes of key and value over entry `e` (or a new
 * entry) exceed the writer's quota?  What is already charged to the writer
 * for `e` comes back first; an entry costs WM_ENTRY_COST on top. */
static bool over_quota(const wm_module *m, const wm_entry *e, uint64_t new_size)
{
    uint64_t bytes = m->bytes_used, entries = m->entries_used;
    if (e && e->account == m->id) {
        bytes -= wm_entry_size(e);
        entries -= 1;
    }
    return bytes + new_size + WM_ENTRY_COST > m->limits.bytes || entries + 1 > m->limits.entries;
}

/* Clear an entry of map `parent` (credit its account, forget a map
 * reference) so that it can be rewritten or removed; returns the map slot
 * to release + 1, or 0.  The caller releases it once the entry is done. */
static uint32_t clear_value(wm_module *m, uint32_t parent, wm_entry *e)
{
    wm_broker *b = m->broker;
    wm_account_credit(b, e);
    if (e->kind != WM_VAL_MAP)
        return 0;
    WM_TRACE(b, .kind = WM_EV_UNSET_MAP, .module = m->id, .map = WM_MAP_ID(b, parent),
             .other_map = WM_MAP_ID(b, e->child));
    wm_ref_forget(b, parent, e->child);
    return e->child + 1;
}

static void finish_write(wm_module *m, wm_entry *e, uint8_t kind)
{
    e->kind = kind;
    e->version = ++m->broker->version_clock;
    wm_account_charge(m, e);
}

/* Write bytes `val` under `key` (the shared body of set, set_if). */
static int write_bytes(wm_module *m, uint32_t parent, wm_map *map, const uint8_t *key, uint32_t key_len,
                       uint64_t hash, wm_entry *e, const uint8_t *val, uint32_t val_len)
{
    wm_broker *b = m->broker;
    if (over_quota(m, e, (uint64_t)key_len + val_len))
        return WM_QUOTA;
    if (e && e->kind == WM_VAL_BYTES && e->val_len == val_len) {
        wm_account_credit(b, e);
        memcpy(e->data + key_len, val, val_len); /* same size: rewrite in place */
        finish_write(m, e, WM_VAL_BYTES);
        return WM_OK;
    }
    uint8_t *data = malloc((size_t)key_len + val_len + 1);
    if (!data)
        return WM_QUOTA;
    memcpy(data, key, key_len);
    memcpy(data + key_len, val, val_len);
    uint32_t release = 0;
    if (e) {
        release = clear_value(m, parent, e);
        free(e->data);
        e->data = data;
    } else {
        e = wm_map_insert(map, hash, data, key_len);
    }
    e->val_len = val_len;
    finish_write(m, e, WM_VAL_BYTES);
    if (release)
        wm_maps_release(b, release - 1);
    return WM_OK;
}

/* --- handles and names -------------------------------------------------- */

static bool valid_utf8(const uint8_t *s, uint32_t n)
{
    uint32_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        uint32_t len, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        uint32_t cp = c & (0x7f >> len);
        for (uint32_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

static const wm_grant *find_grant(const wm_module *m, const uint8_t *name, uint32_t len)
{
    int64_t at = wm_names_find(&m->grant_index, m->grants, sizeof *m->grants, name, len,
                               m->broker->seed);
    return at < 0 ? NULL : &m->grants[at];
}

/* The named map's slot, created on first open (the name holds one ref). */
static int named_map(wm_broker *b, const uint8_t *name, uint32_t len, uint32_t *out)
{
    int64_t at = wm_names_find(&b->name_index, b->names, sizeof *b->names, name, len, b->seed);
    if (at >= 0) {
        *out = b->names[at].map;
        return WM_OK;
    }
    if (b->names_len == b->names_cap) {
        uint32_t cap = b->names_cap ? b->names_cap * 2 : 8;
        wm_named *names = realloc(b->names, (size_t)cap * sizeof *names);
        if (!names)
            return WM_QUOTA;
        b->names = names;
        b->names_cap = cap;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return WM_QUOTA;
    uint32_t slot;
    int err = wm_maps_alloc(b, WM_MAP_NAMED | (b->store_fn ? WM_MAP_STORE : 0), &slot);
    if (err) {
        free(copy);
        return err;
    }
    memcpy(copy, name, len);
    b->names[b->names_len] = (wm_named){copy, len, slot};
    if (wm_names_add(&b->name_index, b->names, sizeof *b->names, b->names_len, b->seed)) {
        free(copy);
        wm_maps_release(b, slot); /* not named after all: it goes again */
        return WM_QUOTA;
    }
    b->maps[slot].name = b->names_len++;
    *out = slot;
    return WM_OK;
}

int wm_op_open(wm_module *m, const uint8_t *name, uint32_t name_len, uint32_t rights,
               uint32_t *out_h)
{
    if (rights & ~(uint32_t)WM_RIGHTS_ALL || name_len == 0 || name_len > WM_MAX_NAME_LEN ||
        !valid_utf8(name, name_len))
        return WM_INVAL;
    wm_broker *b = m->broker;
    int err;
    wm_lock(b);
    if (m->id != WM_HOST_ID) {
        const wm_grant *g = find_grant(m, name, name_len);
        if (!g || (rights & ~g->rights)) {
            err = WM_ACCES;
            goto out;
        }
    }
    if (m->handles.live >= m->limits.handles) {
        err = WM_QUOTA;
        goto out;
    }
    uint32_t slot;
    if ((err = named_map(b, name, name_len, &slot)))
        goto out;
    if ((err = wm_handles_issue(&m->handles, m->limits.handles, WM_H_OWN, slot, (uint8_t)rights,
                                out_h)))
        goto out;
    wm_maps_incref(b, slot);
    WM_TRACE(b, .kind = WM_EV_OPEN, .module = m->id, .handle = *out_h, .map = WM_MAP_ID(b, slot));
out:
    wm_unlock(b);
    return err;
}

int wm_op_new(wm_module *m, uint32_t *out_h)
{
    wm_broker *b = m->broker;
    int err;
    uint32_t slot;
    wm_lock(b);
    if (m->handles.live >= m->limits.handles || m->bytes_used + WM_MAP_COST > m->limits.bytes) {
        err = WM_QUOTA;
    } else if ((err = wm_maps_alloc(b, 0, &slot)) == WM_OK) {
        err = wm_handles_issue(&m->handles, m->limits.handles, WM_H_OWN, slot, WM_RIGHTS_ALL,
                               out_h);
        if (err) {
            wm_maps_release(b, slot);
        } else {
            b->maps[slot].account = m->id;
            m->bytes_used += WM_MAP_COST;
            WM_TRACE(b, .kind = WM_EV_NEW, .module = m->id, .handle = *out_h,
                     .map = WM_MAP_ID(b, slot));
        }
    }
    wm_unlock(b);
    return err;
}

int wm_op_close(wm_module *m, uint32_t h)
{
    wm_broker *b = m->broker;
    wm_handle *hs;
    wm_lock(b);
    int err = wm_handles_lookup(&m->handles, h, &hs);
    if (!err && hs->busy)
        err = WM_BUSY;
    if (!err) {
        uint32_t map = hs->map;
        bool owning = hs->state == WM_H_OWN;
        WM_TRACE(b, .kind = WM_EV_CLOSE, .module = m->id, .handle = h, .map = WM_MAP_ID(b, map),
                 .flags = owning ? 0 : WM_EVF_BORROWED);
        wm_handles_release(&m->handles, hs);
        if (owning)
            wm_maps_release(b, map);
    }
    wm_unlock(b);
    return err;
}

int wm_op_clone(wm_module *m, uint32_t h, uint32_t rights, uint32_t *out_h)
{
    if (rights & ~(uint32_t)WM_RIGHTS_ALL)
        return WM_INVAL;
    wm_broker *b = m->broker;
    wm_handle *hs;
    wm_mapslot *ms;
    wm_lock(b);
    int err = resolve(m, h, rights, &hs, &ms);
    if (!err) {
        uint32_t map = hs->map; /* issuing may move the table: `hs` is not used after */
        err = wm_handles_issue(&m->handles, m->limits.handles, WM_H_OWN, map, (uint8_t)rights,
                               out_h);
        if (!err) {
            wm_maps_incref(b, map);
            WM_TRACE(b, .kind = WM_EV_CLONE, .module = m->id, .handle = *out_h, .other_handle = h,
                     .map = WM_MAP_ID(b, map));
        }
    }
    wm_unlock(b);
    return err;
}

/* --- single-key operations ---------------------------------------------- */

/* Lock, check the handle(s), rights and sizes; on OK the lock is held and
 * *map / *e (the key's entry or NULL) are set.  `child_h`, when not NULL, is
 * set_map's second handle, checked in the same steps (handles, then rights). */
static int begin_key_op(wm_module *m, uint32_t h, uint32_t needs, const uint8_t *key,
                        uint32_t key_len, uint32_t val_len, bool reserve, const uint32_t *child_h,
                        wm_handle **child, wm_handle **hs, wm_mapslot **slot, wm_map **map,
                        uint64_t *hash, wm_entry **e)
{
    wm_lock(m->broker);
    int err = wm_handles_lookup(&m->handles, h, hs);
    if (!err && child_h)
        err = wm_handles_lookup(&m->handles, *child_h, child);
    if (!err && ((*hs)->rights & needs) != needs)
        err = WM_ACCES;
    /* A stored reference gives whoever reads the parent the parent's rights
     * on the child, so only a handle with every right may be stored. */
    if (!err && child_h && (*child)->rights != WM_RIGHTS_ALL)
        err = WM_ACCES;
    if (!err && (key_len > m->limits.key_size || val_len > m->limits.value_size))
        err = WM_TOOBIG;
    wm_mapslot *ms = err ? NULL : &m->broker->maps[(*hs)->map];
    if (!err && reserve && !wm_is_store(ms) && wm_map_reserve(&ms->store, 1) != 0)
        err = WM_QUOTA;
    if (err) {
        wm_unlock(m->broker);
        return err;
    }
    *slot = ms;
    *map = &ms->store;
    *hash = 0;
    *e = NULL;
    if (!wm_is_store(ms)) {
        *hash = key_hash(m, key, key_len);
        *e = wm_map_find(*map, key, key_len, *hash);
    }
    return WM_OK;
}

/* Check and lock for a one-key operation.  A map in the backing store is
 * answered there (lock released) by a request with the key and the
 * fields given last; `store_out` then copies its outputs (OK, or RANGE
 * with the needed size). */
#define KEY_OP(needs, val_len, reserve, store_out, ...)                                     \
    wm_handle *hs;                                                                                \
    wm_mapslot *ms;                                                                               \
    wm_map *map;                                                                                  \
    wm_entry *e;                                                                                  \
    uint64_t hash;                                                                                \
    int err = begin_key_op(m, h, (needs), key, key_len, (val_len), (reserve), NULL, NULL, &hs,    \
                           &ms, &map, &hash, &e);                                                 \
    if (err)                                                                                      \
        return err;                                                                               \
    if (wm_is_store(ms)) {                                                                        \
        wm_store_req req = {.key = key, .key_len = key_len, __VA_ARGS__};                         \
        err = wm_store_call(m, ms, &req);                                                         \
        if (err == WM_OK || err == WM_RANGE)                                                      \
            store_out;                                                                            \
        return err;                                                                               \
    }                                                                                             \
    (void)hs;                                                                                     \
    (void)map;                                                                                    \
    (void)hash
#define NO_OUTPUT ((void)0)

#define R WM_RIGHT_READ
#define W WM_RIGHT_WRITE

int wm_op_get(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, uint8_t *buf,
              uint32_t buf_cap, uint32_t *out_len)
{
    KEY_OP(R, 0, false, *out_len = (uint32_t)req.out, .op = WM_SOP_GET, .buf = buf, .buf_cap = buf_cap);
    if (!e) {
        err = WM_NOENT;
    } else if (e->kind != WM_VAL_BYTES) {
        err = WM_TYPE;
    } else {
        *out_len = e->val_len;
        if (e->val_len > buf_cap)
            err = WM_RANGE;
        else
            memcpy(buf, e->data + e->key_len, e->val_len);
    }
    wm_unlock(m->broker);
    return err;
}

int wm_op_set(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, const uint8_t *val,
              uint32_t val_len)
{
    KEY_OP(W, val_len, true, NO_OUTPUT, .op = WM_SOP_SET, .val = val, .val_len = val_len);
    err = write_bytes(m, hs->map, map, key, key_len, hash, e, val, val_len);
    wm_unlock(m->broker);
    return err;
}

int wm_op_set_if(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len,
                 const uint8_t *val, uint32_t val_len, int64_t expected)
{
    KEY_OP(R | W, val_len, true, NO_OUTPUT, .op = WM_SOP_SET_IF, .val = val, .val_len = val_len,
           .num = expected);
    uint64_t current = e ? e->version : 0;
    if (current != (uint64_t)expected)
        err = WM_CONFLICT;
    else
        err = write_bytes(m, hs->map, map, key, key_len, hash, e, val, val_len);
    wm_unlock(m->broker);
    return err;
}

int wm_op_delete(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len)
{
    KEY_OP(W, 0, false, NO_OUTPUT, .op = WM_SOP_DELETE);
    uint32_t release = 0;
    if (e) {
        release = clear_value(m, hs->map, e);
        wm_map_remove(map, e);
        wm_map_trim(map); /* before the release: it may reclaim this very map */
    }
    if (release)
        wm_maps_release(m->broker, release - 1);
    wm_unlock(m->broker);
    return err;
}

int wm_op_exists(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, uint32_t *out)
{
    KEY_OP(R, 0, false, *out = (uint32_t)req.out, .op = WM_SOP_EXISTS);
    *out = e != NULL;
    wm_unlock(m->broker);
    return err;
}

int wm_op_version(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, uint64_t *out)
{
    KEY_OP(R, 0, false, *out = req.out, .op = WM_SOP_VERSION);
    *out = e ? e->version : 0;
    wm_unlock(m->broker);
    return err;
}

int wm_op_incr(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, int64_t delta,
               int64_t *out)
{
    KEY_OP(R | W, 8, true, *out = (int64_t)req.out, .op = WM_SOP_INCR, .num = delta);
    uint64_t value = (uint64_t)delta; /* absent key starts at 0 */
    if (e && (e->kind != WM_VAL_BYTES || e->val_len != 8)) {
        err = WM_TYPE;
    } else if (e) {
        uint64_t old;
        memcpy(&old, e->data + key_len, 8);
        value += old; /* wraps like i64.add */
        if (over_quota(m, e, (uint64_t)key_len + 8)) {
            err = WM_QUOTA;
        } else {
            wm_account_credit(m->broker, e);
            memcpy(e->data + key_len, &value, 8);
            finish_write(m, e, WM_VAL_BYTES);
        }
    } else {
        err = write_bytes(m, hs->map, map, key, key_len, hash, NULL, (const uint8_t *)&value, 8);
    }
    if (!err)
        *out = (int64_t)value;
    wm_unlock(m->broker);
    return err;
}

int wm_op_set_map(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len,
                  uint32_t child_h)
{
    wm_broker *b = m->broker;
    wm_handle *hs, *child;
    wm_map *map;
    wm_entry *e;
    uint64_t hash;
    wm_mapslot *ms;
    int err =
        begin_key_op(m, h, W, key, key_len, 0, true, &child_h, &child, &hs, &ms, &map, &hash, &e);
    if (err)
        return err;
    if (wm_is_store(ms)) { /* the backing store holds bytes only */
        wm_unlock(b);
        return WM_TYPE;
    }
    if (over_quota(m, e, (uint64_t)key_len + 8))
        err = WM_QUOTA;
    /* A new entry, or one that held bytes, gets a key-only allocation: the
     * old value's bytes go now (they are no longer charged). */
    bool fresh_data = !e || (e->kind == WM_VAL_BYTES && e->val_len > 0);
    uint8_t *data = NULL;
    if (!err && fresh_data && !(data = malloc(key_len ? key_len : 1)))
        err = WM_QUOTA;
    if (!err) {
        uint32_t release = 0;
        wm_ref_add(b, hs->map, child->map); /* before the old value goes: it may be the same */
        if (e) {
            release = clear_value(m, hs->map, e); /* the key prefix of e->data stays valid */
            if (data) {
                memcpy(data, e->data, key_len);
                free(e->data);
                e->data = data;
            }
        } else {
            memcpy(data, key, key_len);
            e = wm_map_insert(map, hash, data, key_len);
        }
        e->child = child->map;
        e->val_len = 0;
        finish_write(m, e, WM_VAL_MAP);
        WM_TRACE(b, .kind = WM_EV_SET_MAP, .module = m->id, .handle = h,
                 .map = WM_MAP_ID(b, hs->map), .other_map = WM_MAP_ID(b, child->map));
        if (release)
            wm_maps_release(b, release - 1);
    }
    wm_unlock(b);
    return err;
}

int wm_op_get_map(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len,
                  uint32_t *out_h)
{
    /* A map in the backing store holds bytes only: a present key is TYPE. */
    KEY_OP(R, 0, false, err = req.out ? WM_TYPE : WM_NOENT, .op = WM_SOP_EXISTS);
    if (!e) {
        err = WM_NOENT;
    } else if (e->kind != WM_VAL_MAP) {
        err = WM_TYPE;
    } else {
        uint32_t child = e->child, parent = hs->map;
        uint8_t rights = hs->rights; /* a read-only view stays read-only all the way down */
        /* Issuing may move the handle table: `hs` is not used after it. */
        err = wm_handles_issue(&m->handles, m->limits.handles, WM_H_OWN, child, rights, out_h);
        if (!err) {
            wm_maps_incref(m->broker, child);
            WM_TRACE(m->broker, .kind = WM_EV_GET_MAP, .module = m->id, .handle = *out_h,
                     .map = WM_MAP_ID(m->broker, child), .other_map = WM_MAP_ID(m->broker, parent));
            (void)parent;
        }
    }
    wm_unlock(m->broker);
    return err;
}

/* --- whole-map operations ----------------------------------------------- */

int wm_op_len(wm_module *m, uint32_t h, uint32_t *out)
{
    wm_handle *hs;
    wm_mapslot *ms;
    wm_lock(m->broker);
    int err = resolve(m, h, R, &hs, &ms);
    if (!err && wm_is_store(ms)) {
        wm_store_req req = {.op = WM_SOP_LEN};
        if ((err = wm_store_call(m, ms, &req)) == WM_OK)
            *out = req.out > UINT32_MAX ? UINT32_MAX : (uint32_t)req.out;
        return err;
    }
    if (!err)
        *out = ms->store.live;
    wm_unlock(m->broker);
    return err;
}

int wm_op_keys(wm_module *m, uint32_t h, uint64_t *cursor, uint8_t *buf, uint32_t buf_cap,
               uint32_t *out_used, uint32_t *out_count)
{
    wm_handle *hs;
    wm_mapslot *ms;
    wm_lock(m->broker);
    int err = resolve(m, h, R, &hs, &ms);
    if (!err && wm_is_store(ms)) {
        wm_store_req req = {.op = WM_SOP_KEYS, .cursor = *cursor, .buf = buf, .buf_cap = buf_cap};
        err = wm_store_call(m, ms, &req);
        if (err == WM_OK || err == WM_RANGE)
            *out_used = (uint32_t)req.out;
        if (err == WM_OK) {
            *cursor = req.cursor;
            *out_count = req.count;
        }
        return err;
    }
    if (err)
        goto out;
    const wm_map *map = &ms->store;
    uint32_t i = wm_map_seek(map, *cursor), count = 0;
    uint64_t used = 0;
    for (; i < map->used; i++) {
        const wm_entry *e = &map->entries[i];
        if (e->kind == WM_VAL_NONE)
            continue;
        uint64_t need = 4ull + e->key_len;
        if (used + need > buf_cap) {
            if (count == 0) { /* not even one key fits */
                *out_used = (uint32_t)need;
                err = WM_RANGE;
                goto out;
            }
            break;
        }
        put_u32(buf + used, e->key_len);
        memcpy(buf + used + 4, e->data, e->key_len);
        used += need;
        count++;
    }
    *cursor = i < map->used ? map->entries[i].seq : 0;
    *out_used = (uint32_t)used;
    *out_count = count;
out:
    wm_unlock(m->broker);
    return err;
}

/* Walk a batch of (u32 length, bytes) records, `fields` records per item.
 * Returns the number of items, or -1 when malformed.  *max_len[k] is the
 * longest field k. */
static int64_t walk_batch(const uint8_t *p, uint32_t len, int fields, uint32_t *max_len)
{
    uint64_t off = 0;
    int64_t items = 0;
    for (int k = 0; k < fields; k++)
        max_len[k] = 0;
    while (off < len) {
        for (int k = 0; k < fields; k++) {
            if (len - off < 4)
                return -1;
            uint32_t n = get_u32(p + off);
            off += 4;
            if (len - off < n)
                return -1;
            off += n;
            if (n > max_len[k])
                max_len[k] = n;
        }
        items++;
    }
    return items;
}

static bool overlap(const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen)
{
    return alen && blen && a < b + blen && b < a + alen;
}

int wm_op_get_many(wm_module *m, uint32_t h, const uint8_t *keys, uint32_t keys_len,
                   uint8_t *buf, uint32_t buf_cap, uint32_t *out_used)
{
    uint32_t max_key;
    int64_t n = walk_batch(keys, keys_len, 1, &max_key);
    if (n < 0 || overlap(keys, keys_len, buf, buf_cap))
        return WM_INVAL;
    wm_handle *hs;
    wm_mapslot *ms;
    wm_lock(m->broker);
    int err = resolve(m, h, R, &hs, &ms);
    if (!err && max_key > m->limits.key_size)
        err = WM_TOOBIG;
    if (err)
        goto out;
    if (wm_is_store(ms)) {
        wm_store_req req = {.op = WM_SOP_GET_MANY, .val = keys, .val_len = keys_len, .buf = buf,
                            .buf_cap = buf_cap, .count = (uint32_t)n};
        err = wm_store_call(m, ms, &req);
        if (err == WM_OK || err == WM_RANGE)
            *out_used = req.out > UINT32_MAX ? UINT32_MAX : (uint32_t)req.out;
        return err;
    }
    /* Pass 1: the size of the answer; pass 2: write it. */
    uint64_t need = 0;
    for (int pass = 0; pass < 2; pass++) {
        uint64_t off = 0;
        for (uint32_t at = 0; at < keys_len;) {
            uint32_t klen = get_u32(keys + at);
            const uint8_t *key = keys + at + 4;
            at += 4 + klen;
            const wm_entry *e = wm_map_find(&ms->store, key, klen, key_hash(m, key, klen));
            if (e && e->kind != WM_VAL_BYTES) {
                err = WM_TYPE;
                goto out;
            }
            if (pass == 1) {
                put_u32(buf + off, e ? e->val_len : UINT32_MAX);
                if (e)
                    memcpy(buf + off + 4, e->data + e->key_len, e->val_len);
            }
            off += 4 + (e ? e->val_len : 0);
        }
        need = off;
        if (need > buf_cap) {
            *out_used = need > UINT32_MAX ? UINT32_MAX : (uint32_t)need;
            err = WM_RANGE;
            goto out;
        }
    }
    *out_used = (uint32_t)need;
out:
    wm_unlock(m->broker);
    return err;
}

typedef struct staged_item {
    uint8_t *data; /* key bytes, then value bytes */
    uint32_t key_len, val_len;
} staged_item;

int wm_op_set_many(wm_module *m, uint32_t h, const uint8_t *items, uint32_t items_len)
{
    uint32_t max_len[2];
    int64_t n = walk_batch(items, items_len, 2, max_len);
    if (n < 0)
        return WM_INVAL;
    wm_broker *b = m->broker;
    wm_handle *hs;
    wm_mapslot *ms;
    staged_item *staged = NULL;
    int64_t made = 0;
    wm_lock(b);
    int err = resolve(m, h, W, &hs, &ms);
    if (!err && (max_len[0] > m->limits.key_size || max_len[1] > m->limits.value_size))
        err = WM_TOOBIG;
    if (!err && wm_is_store(ms)) { /* all or nothing is the store's to keep */
        wm_store_req req = {.op = WM_SOP_SET_MANY, .val = items, .val_len = items_len,
                            .count = (uint32_t)n};
        return wm_store_call(m, ms, &req);
    }
    /* All or nothing: every check and every allocation happens before the
     * first change, and the items are copied out of guest memory once.
     * The quota check counts every item as a new entry (documented). */
    uint64_t bytes = (uint64_t)items_len - 8ull * (uint64_t)n + WM_ENTRY_COST * (uint64_t)n;
    if (!err && (m->bytes_used + bytes > m->limits.bytes ||
                 m->entries_used + (uint64_t)n > m->limits.entries))
        err = WM_QUOTA;
    if (!err && n > 0 &&
        (n >= (int64_t)1 << 30 || wm_map_reserve(&ms->store, (uint32_t)n) != 0 ||
         !(staged = malloc((size_t)n * sizeof *staged))))
        err = WM_QUOTA;
    for (uint32_t at = 0; !err && at < items_len; made++) {
        uint32_t klen = get_u32(items + at), vlen = get_u32(items + at + 4 + klen);
        uint8_t *data = malloc((size_t)klen + vlen + 1);
        if (!data) {
            err = WM_QUOTA;
            break;
        }
        memcpy(data, items + at + 4, klen);
        memcpy(data + klen, items + at + 8 + klen, vlen);
        staged[made] = (staged_item){data, klen, vlen};
        at += 8 + klen + vlen;
    }
    if (err) {
        for (int64_t i = 0; i < made; i++)
            free(staged[i].data);
        goto out;
    }
    for (int64_t i = 0; i < n; i++) {
        staged_item *it = &staged[i];
        uint64_t hash = key_hash(m, it->data, it->key_len);
        wm_entry *e = wm_map_find(&ms->store, it->data, it->key_len, hash);
        uint32_t release = 0;
        if (e) {
            release = clear_value(m, hs->map, e);
            free(e->data);
            e->data = it->data;
        } else {
            e = wm_map_insert(&ms->store, hash, it->data, it->key_len);
        }
        e->val_len = it->val_len;
        finish_write(m, e, WM_VAL_BYTES);
        if (release)
            wm_maps_release(b, release - 1);
    }
    wm_map_trim(&ms->store); /* the room reserved for repeated keys goes back */
out:
    free(staged);
    wm_unlock(b);
    return err;
}

int wm_op_watch_drop(wm_module *m, uint32_t h, int64_t cookie)
{
    wm_broker *b = m->broker;
    wm_handle *hs;
    wm_lock(b);
    int err = wm_handles_lookup(&m->handles, h, &hs);
    wm_watch *w = NULL;
    if (!err && (m->watches_used >= m->limits.watches || !(w = malloc(sizeof *w))))
        err = WM_QUOTA;
    if (!err) {
        wm_mapslot *ms = &b->maps[hs->map];
        *w = (wm_watch){ms->watches, m->id, cookie};
        ms->watches = w;
        m->watches_used++;
    }
    wm_unlock(b);
    return err;
}
