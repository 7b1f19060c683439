/* store.c: the one call out to the backing store, for named maps in it.
 *
 * ops.c checks an operation on such a map exactly as on any other (the
 * errno order is the same), prepares the call under the lock
 * (wm_store_begin), releases the lock, and ops_store.c makes it
 * (wm_store_run).  The store function runs without the broker lock -- it
 * may wait on a disk or a network -- and is trusted no further than its
 * errno: an answer that is not one the operation can give, or outputs that
 * do not fit the caller's buffer, become IO.
 */
#include <string.h>

#include "ops.h"

void wm_broker_set_store(wm_broker *b, wm_store_fn fn, void *ctx)
{
    wm_lock(b);
    b->store_fn = fn;
    b->store_ctx = ctx;
    wm_unlock(b);
}

/* The errnos each store operation may answer besides OK and IO. */
static bool allowed(uint32_t op, int err)
{
    switch (err) {
    case WM_OK:
    case WM_IO:
        return true;
    case WM_NOENT:
        return op == WM_SOP_GET;
    case WM_RANGE:
        return op == WM_SOP_GET || op == WM_SOP_KEYS || op == WM_SOP_GET_MANY;
    case WM_TYPE:
        return op == WM_SOP_INCR;
    case WM_CONFLICT:
        return op == WM_SOP_SET_IF;
    default:
        return false;
    }
}

/* Outputs that claim more than the caller's buffer holds are a fault of
 * the store, never a reason to read or write past it. */
static bool sane(const wm_store_req *req, int err)
{
    switch (req->op) {
    case WM_SOP_GET:
    case WM_SOP_GET_MANY:
    case WM_SOP_KEYS:
        return err != WM_OK || req->out <= req->buf_cap;
    case WM_SOP_EXISTS:
        return err != WM_OK || req->out <= 1;
    default:
        return true;
    }
}

void wm_store_begin(wm_module *m, const wm_mapslot *ms, wm_store_call *c)
{
    wm_broker *b = m->broker;
    const wm_named *named = &b->names[ms->name];
    c->fn = b->store_fn;
    c->ctx = b->store_ctx;
    memcpy(c->name, named->name, named->len);
    c->req = (wm_store_req){
        .map = ms->name, .name = c->name, .name_len = named->len, .module = m->id};
}

int wm_store_run(wm_store_call *c)
{
    wm_store_req *req = &c->req;
    req->out = 0;
    if (!c->fn) /* the store was taken away (wm_broker_set_store(NULL)) */
        return WM_IO;
    int err = c->fn(c->ctx, req);
    if (err < 0 || !allowed(req->op, err) || !sane(req, err))
        return WM_IO;
    return err;
}

int wm_store_answer(wm_store_req *req, const uint8_t *data, uint64_t len)
{
    req->out = len;
    if (len > req->buf_cap)
        return WM_RANGE;
    if (len)
        memcpy(req->buf, data, len);
    return WM_OK;
}

int wm_records_split(const wm_store_req *req, uint32_t count, uint32_t *pairs)
{
    uint64_t at = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t n;
        if (req->val_len - at < 4)
            return WM_INVAL;
        memcpy(&n, req->val + at, 4);
        if (req->val_len - at - 4 < n)
            return WM_INVAL;
        pairs[2 * i] = (uint32_t)(at + 4);
        pairs[2 * i + 1] = n;
        at += 4ull + n;
    }
    return WM_OK;
}

int wm_records_pack(wm_store_req *req, const uint32_t *lens, uint32_t count, const uint8_t *blob,
                    uint64_t blob_len)
{
    uint64_t need = 0, bytes = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t n = lens[i] == UINT32_MAX ? 0 : lens[i];
        need += 4 + n;
        bytes += n;
    }
    if (bytes != blob_len)
        return WM_INVAL;
    req->out = need;
    if (need > req->buf_cap)
        return WM_RANGE;
    uint64_t at = 0, from = 0;
    for (uint32_t i = 0; i < count; i++) {
        memcpy(req->buf + at, &lens[i], 4);
        at += 4;
        if (lens[i] != UINT32_MAX && lens[i]) { /* blob may be NULL when every value is empty */
            memcpy(req->buf + at, blob + from, lens[i]);
            at += lens[i];
            from += lens[i];
        }
    }
    return WM_OK;
}
