/* ops_handles.c: the ABI functions that make and drop handles: open, new,
 * close, clone, and watch_drop (a watch is held by a handle's map).
 *
 * Order of checks, as for every function (docs/abi.md "Order of checks"):
 * INVAL (argument values) -> BADF/STALE (handle) -> ACCES (rights) -> the
 * operation's own errnos.  These never reach the backing store: a handle
 * and its map live in the C data plane whatever holds the map's entries.
 */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

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
    WM_MAP(b, slot).name = b->names_len++;
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
    if (m->handles.live >= m->limits.handles || wm_used_bytes(m) + WM_MAP_COST > m->limits.bytes) {
        err = WM_QUOTA;
    } else if ((err = wm_maps_alloc(b, 0, &slot)) == WM_OK) {
        err = wm_handles_issue(&m->handles, m->limits.handles, WM_H_OWN, slot, WM_RIGHTS_ALL,
                               out_h);
        if (err) {
            wm_maps_release(b, slot);
        } else {
            WM_MAP(b, slot).account = m->id;
            wm_charge(m, WM_MAP_COST, 0);
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
    wm_lock(b);
    int err = wm_check_handle(m, h, rights, &hs);
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

/* --- drop notices ------------------------------------------------------------ */

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
        wm_mapslot *ms = &WM_MAP(b, hs->map);
        *w = (wm_watch){ms->watches, m->id, cookie};
        ms->watches = w;
        m->watches_used++;
    }
    wm_unlock(b);
    return err;
}
