/* ops_memory.c: map operations on entries in memory (the map's table).
 *
 * ops.c has checked the arguments and holds the map's stripe (and, when
 * `locked`, the broker lock); these do the operation and give its own
 * errnos (see ops.h).  A write reserves room in the table first (QUOTA),
 * before the operation's other answers.  Without the broker lock a write
 * that would drop a map reference changes nothing and answers WM_SLOW:
 * ops.c does it again under the lock.
 */
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "ops.h"

static inline uint64_t key_hash(wm_module *m, const uint8_t *key, uint32_t key_len)
{
    return wm_hash(key, key_len, m->broker->seed);
}

static inline wm_map *table_of(wm_module *m, uint32_t map) { return &WM_MAP(m->broker, map).table; }

WM_INLINE wm_entry *find(wm_module *m, uint32_t map, const uint8_t *key, uint32_t key_len)
{
    return wm_map_find(table_of(m, map), key, key_len, key_hash(m, key, key_len));
}

/* The entry under `key`, which must hold a value of `kind` (NOENT, TYPE). */
static inline int find_kind(wm_module *m, uint32_t map, const uint8_t *key, uint32_t key_len,
                            uint8_t kind, const wm_entry **e)
{
    *e = find(m, map, key, key_len);
    if (!*e)
        return WM_NOENT;
    return (*e)->kind == kind ? WM_OK : WM_TYPE;
}

/* Clear an entry of map `parent` (credit its account, forget a map
 * reference) so that it can be rewritten or removed; returns the map slot
 * to release + 1, or 0.  The caller releases it once the entry is done. */
static uint32_t clear_value(wm_module *m, uint32_t parent, wm_entry *e)
{
    wm_broker *b = m->broker;
    wm_account_credit(b, e, m);
    if (e->kind != WM_VAL_MAP)
        return 0;
    WM_TRACE(b, .kind = WM_EV_UNSET_MAP, .module = m->id, .map = WM_MAP_ID(b, parent),
             .other_map = WM_MAP_ID(b, e->child));
    wm_ref_forget(b, parent, e->child);
    return e->child + 1;
}

/* Without the broker lock, a write must not drop a map reference. */
static inline bool needs_lock(bool locked, const wm_entry *e)
{
    return !locked && e && e->kind == WM_VAL_MAP;
}

static inline void finish_write(wm_module *m, uint32_t map, wm_entry *e, uint8_t kind)
{
    e->kind = kind;
    e->version = ++WM_MAP(m->broker, map).clock;
    wm_account_charge(m, e);
}

/* write_bytes into a new allocation: a new entry, or a value of another size or kind. */
static int write_fresh(wm_module *m, uint32_t map, const uint8_t *key, uint32_t key_len,
                       wm_entry *e, const uint8_t *val, uint32_t val_len)
{
    uint8_t *data = malloc((size_t)key_len + val_len + 1);
    if (!data)
        return WM_QUOTA;
    memcpy(data, key, key_len);
    memcpy(data + key_len, val, val_len);
    uint32_t release = 0;
    if (e) {
        release = clear_value(m, map, e);
        free(e->data);
        e->data = data;
    } else {
        e = wm_map_insert(table_of(m, map), key_hash(m, key, key_len), data, key_len);
    }
    e->val_len = val_len;
    finish_write(m, map, e, WM_VAL_BYTES);
    if (release)
        wm_maps_release(m->broker, release - 1);
    return WM_OK;
}

/* Write bytes `val` under `key`, over entry `e` or a new one (room reserved).
 * Inline for its common case, a value of the same size rewritten in place. */
WM_INLINE int write_bytes(wm_module *m, uint32_t map, const uint8_t *key, uint32_t key_len,
                          wm_entry *e, const uint8_t *val, uint32_t val_len)
{
    if (wm_over_quota(m, e, (uint64_t)key_len + val_len))
        return WM_QUOTA;
    if (!e || e->kind != WM_VAL_BYTES || e->val_len != val_len)
        return write_fresh(m, map, key, key_len, e, val, val_len);
    memcpy(e->data + key_len, val, val_len); /* same size: rewrite in place */
    if (e->account == m->id) {
        /* Charged to the writer already, for as many bytes: crediting and
         * charging it again would leave its counts as they are. */
        e->version = ++WM_MAP(m->broker, map).clock;
        return WM_OK;
    }
    wm_account_credit(m->broker, e, m);
    finish_write(m, map, e, WM_VAL_BYTES);
    return WM_OK;
}

/* Room for one more entry, before any entry pointer is taken. */
static inline int reserve_one(wm_module *m, uint32_t map)
{
    return wm_map_reserve(table_of(m, map), 1) != 0 ? WM_QUOTA : WM_OK;
}

/* --- one key ----------------------------------------------------------------- */

int wm_mem_get(wm_module *m, uint32_t map, const uint8_t *key, uint32_t key_len, uint8_t *buf,
               uint32_t buf_cap, uint32_t *out_len)
{
    const wm_entry *e;
    int err = find_kind(m, map, key, key_len, WM_VAL_BYTES, &e);
    if (err)
        return err;
    *out_len = e->val_len;
    if (e->val_len > buf_cap)
        return WM_RANGE;
    memcpy(buf, e->data + e->key_len, e->val_len);
    return WM_OK;
}

int wm_mem_set(wm_module *m, uint32_t map, bool locked, const uint8_t *key, uint32_t key_len,
               const uint8_t *val, uint32_t val_len)
{
    int err = reserve_one(m, map);
    if (err)
        return err;
    wm_entry *e = find(m, map, key, key_len);
    if (needs_lock(locked, e))
        return WM_SLOW;
    return write_bytes(m, map, key, key_len, e, val, val_len);
}

int wm_mem_set_if(wm_module *m, uint32_t map, bool locked, const uint8_t *key, uint32_t key_len,
                  const uint8_t *val, uint32_t val_len, int64_t expected)
{
    int err = reserve_one(m, map);
    if (err)
        return err;
    wm_entry *e = find(m, map, key, key_len);
    if ((e ? e->version : 0) != (uint64_t)expected)
        return WM_CONFLICT;
    if (needs_lock(locked, e))
        return WM_SLOW;
    return write_bytes(m, map, key, key_len, e, val, val_len);
}

int wm_mem_delete(wm_module *m, uint32_t map, bool locked, const uint8_t *key, uint32_t key_len)
{
    wm_entry *e = find(m, map, key, key_len);
    if (!e)
        return WM_OK;
    if (needs_lock(locked, e))
        return WM_SLOW;
    wm_map *table = table_of(m, map);
    uint32_t release = clear_value(m, map, e);
    wm_map_remove(table, e);
    wm_map_trim(table); /* before the release: it may reclaim this very map */
    if (release)
        wm_maps_release(m->broker, release - 1);
    return WM_OK;
}

void wm_mem_exists(wm_module *m, uint32_t map, const uint8_t *key, uint32_t key_len,
                   uint32_t *out)
{
    *out = find(m, map, key, key_len) != NULL;
}

void wm_mem_version(wm_module *m, uint32_t map, const uint8_t *key, uint32_t key_len,
                    uint64_t *out)
{
    const wm_entry *e = find(m, map, key, key_len);
    *out = e ? e->version : 0;
}

int wm_mem_incr(wm_module *m, uint32_t map, const uint8_t *key, uint32_t key_len, int64_t delta,
                int64_t *out)
{
    int err = reserve_one(m, map);
    if (err)
        return err;
    wm_entry *e = find(m, map, key, key_len);
    uint64_t value = (uint64_t)delta; /* absent key starts at 0 */
    if (e && (e->kind != WM_VAL_BYTES || e->val_len != 8))
        return WM_TYPE;
    if (e) {
        uint64_t old;
        memcpy(&old, e->data + key_len, 8);
        value += old; /* wraps like i64.add */
        if (wm_over_quota(m, e, (uint64_t)key_len + 8))
            return WM_QUOTA;
        wm_account_credit(m->broker, e, m);
        memcpy(e->data + key_len, &value, 8);
        finish_write(m, map, e, WM_VAL_BYTES);
    } else if ((err = write_bytes(m, map, key, key_len, NULL, (const uint8_t *)&value, 8))) {
        return err;
    }
    *out = (int64_t)value;
    return WM_OK;
}

int wm_mem_set_map(wm_module *m, uint32_t map, uint32_t h, const uint8_t *key, uint32_t key_len,
                   uint32_t child)
{
    wm_broker *b = m->broker;
    int err = reserve_one(m, map);
    if (err)
        return err;
    wm_entry *e = find(m, map, key, key_len);
    if (wm_over_quota(m, e, (uint64_t)key_len + 8))
        return WM_QUOTA;
    /* A new entry, or one that held bytes, gets a key-only allocation: the
     * old value's bytes go now (they are no longer charged). */
    bool fresh_data = !e || (e->kind == WM_VAL_BYTES && e->val_len > 0);
    uint8_t *data = NULL;
    if (fresh_data && !(data = malloc(key_len ? key_len : 1)))
        return WM_QUOTA;
    uint32_t release = 0;
    wm_ref_add(b, map, child); /* before the old value goes: it may be the same */
    if (e) {
        release = clear_value(m, map, e); /* the key prefix of e->data stays valid */
        if (data) {
            memcpy(data, e->data, key_len);
            free(e->data);
            e->data = data;
        }
    } else {
        memcpy(data, key, key_len);
        e = wm_map_insert(table_of(m, map), key_hash(m, key, key_len), data, key_len);
    }
    e->child = child;
    e->val_len = 0;
    finish_write(m, map, e, WM_VAL_MAP);
    WM_TRACE(b, .kind = WM_EV_SET_MAP, .module = m->id, .handle = h, .map = WM_MAP_ID(b, map),
             .other_map = WM_MAP_ID(b, child));
    if (release)
        wm_maps_release(b, release - 1);
    return WM_OK;
}

int wm_mem_get_map(wm_module *m, uint32_t map, uint8_t rights, const uint8_t *key,
                   uint32_t key_len, uint32_t *out_h)
{
    const wm_entry *e;
    int err = find_kind(m, map, key, key_len, WM_VAL_MAP, &e);
    if (err)
        return err;
    uint32_t child = e->child;
    /* A read-only view stays read-only all the way down. */
    err = wm_handles_issue(&m->handles, m->limits.handles, WM_H_OWN, child, rights, out_h);
    if (err)
        return err;
    wm_maps_incref(m->broker, child);
    WM_TRACE(m->broker, .kind = WM_EV_GET_MAP, .module = m->id, .handle = *out_h,
             .map = WM_MAP_ID(m->broker, child), .other_map = WM_MAP_ID(m->broker, map));
    return WM_OK;
}

/* --- the whole map ------------------------------------------------------------ */

int wm_mem_keys(wm_module *m, uint32_t map, uint64_t *cursor, uint8_t *buf, uint32_t buf_cap,
                uint32_t *out_used, uint32_t *out_count)
{
    const wm_map *table = table_of(m, map);
    uint32_t i = wm_map_seek(table, *cursor), count = 0;
    uint64_t used = 0;
    for (; i < table->used; i++) {
        const wm_entry *e = &table->entries[i];
        if (e->kind == WM_VAL_NONE)
            continue;
        uint64_t need = 4ull + e->key_len;
        if (used + need > buf_cap) {
            if (count == 0) { /* not even one key fits */
                *out_used = (uint32_t)need;
                return WM_RANGE;
            }
            break;
        }
        wm_put_u32(buf + used, e->key_len);
        memcpy(buf + used + 4, e->data, e->key_len);
        used += need;
        count++;
    }
    *cursor = i < table->used ? table->entries[i].seq : 0;
    *out_used = (uint32_t)used;
    *out_count = count;
    return WM_OK;
}

int wm_mem_get_many(wm_module *m, uint32_t map, const uint8_t *keys, uint32_t keys_len,
                    uint8_t *buf, uint32_t buf_cap, uint32_t *out_used)
{
    /* Pass 1: the size of the answer; pass 2: write it. */
    uint64_t need = 0;
    for (int pass = 0; pass < 2; pass++) {
        uint64_t off = 0;
        for (uint32_t at = 0; at < keys_len;) {
            uint32_t klen = wm_get_u32(keys + at);
            const uint8_t *key = keys + at + 4;
            at += 4 + klen;
            const wm_entry *e = find(m, map, key, klen);
            if (e && e->kind != WM_VAL_BYTES)
                return WM_TYPE;
            if (pass == 1) {
                wm_put_u32(buf + off, e ? e->val_len : UINT32_MAX);
                if (e)
                    memcpy(buf + off + 4, e->data + e->key_len, e->val_len);
            }
            off += 4 + (e ? e->val_len : 0);
        }
        need = off;
        if (need > buf_cap) {
            *out_used = need > UINT32_MAX ? UINT32_MAX : (uint32_t)need;
            return WM_RANGE;
        }
    }
    *out_used = (uint32_t)need;
    return WM_OK;
}

typedef struct staged_item {
    uint8_t *data; /* key bytes, then value bytes */
    uint32_t key_len, val_len;
} staged_item;

/* Copy the items out of the caller's buffer; false (nothing left
 * allocated) when out of memory. */
static bool stage(const uint8_t *items, uint32_t items_len, staged_item *staged)
{
    int64_t made = 0;
    for (uint32_t at = 0; at < items_len; made++) {
        uint32_t klen = wm_get_u32(items + at), vlen = wm_get_u32(items + at + 4 + klen);
        uint8_t *data = malloc((size_t)klen + vlen + 1);
        if (!data) {
            while (made > 0)
                free(staged[--made].data);
            return false;
        }
        memcpy(data, items + at + 4, klen);
        memcpy(data + klen, items + at + 8 + klen, vlen);
        staged[made] = (staged_item){data, klen, vlen};
        at += 8 + klen + vlen;
    }
    return true;
}

/* Whether any item would write over a map reference. */
static bool over_a_map(wm_module *m, uint32_t map, const uint8_t *items, uint32_t items_len)
{
    for (uint32_t at = 0; at < items_len;) {
        uint32_t klen = wm_get_u32(items + at), vlen = wm_get_u32(items + at + 4 + klen);
        const wm_entry *e = find(m, map, items + at + 4, klen);
        if (e && e->kind == WM_VAL_MAP)
            return true;
        at += 8 + klen + vlen;
    }
    return false;
}

int wm_mem_set_many(wm_module *m, uint32_t map, bool locked, const uint8_t *items,
                    uint32_t items_len, int64_t n)
{
    /* All or nothing: every check and every allocation happens before the
     * first change, and the items are copied out of guest memory once.
     * The quota check counts every item as a new entry (documented). */
    uint64_t bytes = (uint64_t)items_len - 8ull * (uint64_t)n + WM_ENTRY_COST * (uint64_t)n;
    if (wm_used_bytes(m) + bytes > m->limits.bytes ||
        wm_used_entries(m) + (uint64_t)n > m->limits.entries)
        return WM_QUOTA;
    if (!locked && over_a_map(m, map, items, items_len))
        return WM_SLOW;
    wm_map *table = table_of(m, map);
    staged_item *staged = NULL;
    if (n > 0 && (n >= (int64_t)1 << 30 || wm_map_reserve(table, (uint32_t)n) != 0 ||
                  !(staged = malloc((size_t)n * sizeof *staged)) ||
                  !stage(items, items_len, staged))) {
        free(staged);
        return WM_QUOTA;
    }
    for (int64_t i = 0; i < n; i++) {
        staged_item *it = &staged[i];
        uint64_t hash = key_hash(m, it->data, it->key_len);
        wm_entry *e = wm_map_find(table, it->data, it->key_len, hash);
        uint32_t release = 0;
        if (e) {
            release = clear_value(m, map, e);
            free(e->data);
            e->data = it->data;
        } else {
            e = wm_map_insert(table, hash, it->data, it->key_len);
        }
        e->val_len = it->val_len;
        finish_write(m, map, e, WM_VAL_BYTES);
        if (release)
            wm_maps_release(m->broker, release - 1);
    }
    wm_map_trim(table); /* the room reserved for repeated keys goes back */
    free(staged);
    return WM_OK;
}
