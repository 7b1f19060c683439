/* ops_store.c: map operations on a named map whose entries are in the
 * backing store (sqlite or Redis, through broker/_native/store_door.py;
 * LevelDB, in C: leveldb_store.c).
 *
 * ops.c has checked the arguments exactly as for a map in memory, prepared
 * `c` under the lock (wm_store_begin) and released it: each function here
 * fills in the operation's request, makes the one call (wm_store_run, no
 * lock held) and copies its outputs -- on OK, and on RANGE the size needed.
 */
#include "ops.h"

/* The request's operation and key (the fields of every one-key operation). */
static void keyed(wm_store_call *c, uint32_t op, const uint8_t *key, uint32_t key_len)
{
    c->req.op = op;
    c->req.key = key;
    c->req.key_len = key_len;
}

/* Its bytes in: a value, or a batch of `count` records. */
static void given(wm_store_call *c, const uint8_t *val, uint32_t val_len, uint32_t count)
{
    c->req.val = val;
    c->req.val_len = val_len;
    c->req.count = count;
}

/* Its bytes out: the caller's buffer. */
static void into(wm_store_call *c, uint8_t *buf, uint32_t buf_cap)
{
    c->req.buf = buf;
    c->req.buf_cap = buf_cap;
}

int wm_store_get(wm_store_call *c, const uint8_t *key, uint32_t key_len, uint8_t *buf,
                 uint32_t buf_cap, uint32_t *out_len)
{
    keyed(c, WM_SOP_GET, key, key_len);
    into(c, buf, buf_cap);
    int err = wm_store_run(c);
    if (err == WM_OK || err == WM_RANGE)
        *out_len = (uint32_t)c->req.out;
    return err;
}

int wm_store_set(wm_store_call *c, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                 uint32_t val_len)
{
    keyed(c, WM_SOP_SET, key, key_len);
    given(c, val, val_len, 0);
    return wm_store_run(c);
}

int wm_store_set_if(wm_store_call *c, const uint8_t *key, uint32_t key_len, const uint8_t *val,
                    uint32_t val_len, int64_t expected)
{
    keyed(c, WM_SOP_SET_IF, key, key_len);
    given(c, val, val_len, 0);
    c->req.num = expected;
    return wm_store_run(c);
}

int wm_store_delete(wm_store_call *c, const uint8_t *key, uint32_t key_len)
{
    keyed(c, WM_SOP_DELETE, key, key_len);
    return wm_store_run(c);
}

int wm_store_exists(wm_store_call *c, const uint8_t *key, uint32_t key_len, uint32_t *out)
{
    keyed(c, WM_SOP_EXISTS, key, key_len);
    int err = wm_store_run(c);
    if (err == WM_OK)
        *out = (uint32_t)c->req.out;
    return err;
}

int wm_store_version(wm_store_call *c, const uint8_t *key, uint32_t key_len, uint64_t *out)
{
    keyed(c, WM_SOP_VERSION, key, key_len);
    int err = wm_store_run(c);
    if (err == WM_OK)
        *out = c->req.out;
    return err;
}

int wm_store_incr(wm_store_call *c, const uint8_t *key, uint32_t key_len, int64_t delta,
                  int64_t *out)
{
    keyed(c, WM_SOP_INCR, key, key_len);
    c->req.num = delta;
    int err = wm_store_run(c);
    if (err == WM_OK)
        *out = (int64_t)c->req.out;
    return err;
}

/* The store holds bytes only: a present key is TYPE, an absent one NOENT. */
int wm_store_get_map(wm_store_call *c, const uint8_t *key, uint32_t key_len)
{
    keyed(c, WM_SOP_EXISTS, key, key_len);
    int err = wm_store_run(c);
    if (err == WM_OK)
        err = c->req.out ? WM_TYPE : WM_NOENT;
    return err;
}

int wm_store_len(wm_store_call *c, uint32_t *out)
{
    c->req.op = WM_SOP_LEN;
    int err = wm_store_run(c);
    if (err == WM_OK)
        *out = c->req.out > UINT32_MAX ? UINT32_MAX : (uint32_t)c->req.out;
    return err;
}

int wm_store_keys(wm_store_call *c, uint64_t *cursor, uint8_t *buf, uint32_t buf_cap,
                  uint32_t *out_used, uint32_t *out_count)
{
    c->req.op = WM_SOP_KEYS;
    c->req.cursor = *cursor;
    into(c, buf, buf_cap);
    int err = wm_store_run(c);
    if (err == WM_OK || err == WM_RANGE)
        *out_used = (uint32_t)c->req.out;
    if (err == WM_OK) {
        *cursor = c->req.cursor;
        *out_count = c->req.count;
    }
    return err;
}

int wm_store_get_many(wm_store_call *c, const uint8_t *keys, uint32_t keys_len, uint32_t n,
                      uint8_t *buf, uint32_t buf_cap, uint32_t *out_used)
{
    c->req.op = WM_SOP_GET_MANY;
    given(c, keys, keys_len, n);
    into(c, buf, buf_cap);
    int err = wm_store_run(c);
    if (err == WM_OK || err == WM_RANGE)
        *out_used = c->req.out > UINT32_MAX ? UINT32_MAX : (uint32_t)c->req.out;
    return err;
}

/* All or nothing is the store's to keep. */
int wm_store_set_many(wm_store_call *c, const uint8_t *items, uint32_t items_len, uint32_t n)
{
    c->req.op = WM_SOP_SET_MANY;
    given(c, items, items_len, n);
    return wm_store_run(c);
}
