/* leveldb_db.c: the LevelDB store's database -- opened once (leveldb_open,
 * the layout key checked or written), shared by every store of the
 * process on that directory, closed when the last goes -- and the way in
 * for each call, counted so that closing waits for the calls in flight.
 * leveldb_store.c answers the operations themselves.
 *
 * Lifetime: wm_ldb_close may come from another thread while calls are in
 * flight (a broker still answering a guest while the store is closed).
 * Each call counts itself in `calls` on the way in (enter) and out
 * (leave); close sets `closing`, so no new call gets in, and waits until
 * `calls` is 0 before leveldb_close.  The structs themselves are counted
 * (`refs`), so a caller freed late by Python's collector still finds
 * them: a closed store or database only answers "the store is closed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leveldb_store.h"

static const char LAYOUT_KEY[] = "!wasi-map";
static const char LAYOUT[] = "1";

/* --- calls in flight, and the way in --------------------------------------- */

static void leave(wm_ldb *d)
{
    if (__atomic_sub_fetch(&d->calls, 1, __ATOMIC_SEQ_CST) == 0 &&
        __atomic_load_n(&d->closing, __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&d->life);
        pthread_cond_broadcast(&d->idle);
        pthread_mutex_unlock(&d->life);
    }
}

/* Count the call in, unless the store or the database is closed.  Either
 * close sees this call in `calls`, or this call sees `closing`. */
static bool enter(wm_ldb_caller *c)
{
    wm_ldb *d = c->store->db;
    if (__atomic_load_n(&c->store->closed, __ATOMIC_ACQUIRE))
        return false;
    __atomic_add_fetch(&d->calls, 1, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&d->closing, __ATOMIC_SEQ_CST))
        return true;
    leave(d);
    return false;
}

static int call(void *ctx, wm_store_req *req, bool numbered)
{
    wm_ldb_caller *c = ctx;
    fault f = {NULL, NULL};
    int rc = WM_IO;
    if (enter(c)) {
        rc = wm_ldb_run(c, req, numbered, &f);
        leave(c->store->db);
    } else {
        f.what = "the store is closed";
    }
    if (faulty(&f)) {
        const char *message = f.leveldb ? f.leveldb : f.what;
        rc = c->failed ? c->failed(c->failed_ctx, req, message) : WM_IO;
        c->store->db->api.free(f.leveldb);
    }
    return rc;
}

int wm_ldb_call(void *ctx, wm_store_req *req) { return call(ctx, req, false); }

int wm_ldb_keys_numbered(void *ctx, wm_store_req *req) { return call(ctx, req, true); }

/* --- lifetime ------------------------------------------------------------------ */

static void say(char *out, size_t cap, const char *what)
{
    if (cap)
        snprintf(out, cap, "%s", what);
}

/* The layout key: present and ours, or written into an empty database. */
static bool check_layout(wm_ldb *d, char *err, size_t cap)
{
    char *why = NULL;
    size_t n = 0;
    char *found = d->api.get(d->db, d->read, LAYOUT_KEY, sizeof LAYOUT_KEY - 1, &n, &why);
    bool ok = !why;
    if (found) {
        ok = n == sizeof LAYOUT - 1 && memcmp(found, LAYOUT, n) == 0;
        if (!ok && cap)
            snprintf(err, cap, "its layout is version %.*s, this wasi-map reads %s",
                     (int)(n < 32 ? n : 32), found, LAYOUT);
        d->api.free(found);
        return ok;
    }
    if (ok) {
        ldb_iterator *it = d->api.create_iterator(d->db, d->read);
        d->api.iter_seek_to_first(it);
        bool empty = !d->api.iter_valid(it);
        d->api.iter_get_error(it, &why);
        d->api.iter_destroy(it);
        if (!why && !empty) {
            say(err, cap, "it holds another program's data (no wasi-map layout key)");
            return false;
        }
    }
    if (!why) {
        ldb_writeoptions *sync = d->api.writeoptions_create();
        d->api.writeoptions_set_sync(sync, 1);
        d->api.writebatch_put(d->batch, LAYOUT_KEY, sizeof LAYOUT_KEY - 1, LAYOUT,
                              sizeof LAYOUT - 1);
        d->api.write(d->db, sync, d->batch, &why);
        d->api.writebatch_clear(d->batch);
        d->api.writeoptions_destroy(sync);
    }
    if (why)
        say(err, cap, why);
    d->api.free(why);
    return !why;
}

wm_ldb *wm_ldb_open(void *const *fns, const char *path, char *err, size_t err_cap)
{
    wm_ldb *d = calloc(1, sizeof *d);
    if (!d) {
        say(err, err_cap, NO_MEMORY);
        return NULL;
    }
    /* A data pointer to a function pointer: what POSIX's dlsym promises. */
    memcpy(&d->api, fns, sizeof d->api);
    ldb_options *options = d->api.options_create();
    d->api.options_set_create_if_missing(options, 1);
    char *why = NULL;
    d->db = d->api.open(options, path, &why);
    d->api.options_destroy(options);
    if (why || !d->db) {
        say(err, err_cap, why ? why : "leveldb_open failed");
        d->api.free(why);
        if (d->db)
            d->api.close(d->db);
        free(d);
        return NULL;
    }
    d->read = d->api.readoptions_create();
    d->batch = d->api.writebatch_create();
    pthread_mutex_init(&d->lock, NULL);
    pthread_mutex_init(&d->life, NULL);
    pthread_cond_init(&d->idle, NULL);
    d->refs = 1;
    if (!check_layout(d, err, err_cap)) {
        wm_ldb_close(d);
        return NULL;
    }
    return d;
}

static void release_db(wm_ldb *d)
{
    if (__atomic_sub_fetch(&d->refs, 1, __ATOMIC_ACQ_REL))
        return;
    d->api.readoptions_destroy(d->read);
    d->api.writebatch_destroy(d->batch);
    pthread_mutex_destroy(&d->lock);
    pthread_mutex_destroy(&d->life);
    pthread_cond_destroy(&d->idle);
    free(d);
}

void wm_ldb_close(wm_ldb *d)
{
    if (!d || __atomic_exchange_n(&d->closing, 1, __ATOMIC_SEQ_CST))
        return;
    pthread_mutex_lock(&d->life);
    while (__atomic_load_n(&d->calls, __ATOMIC_SEQ_CST))
        pthread_cond_wait(&d->idle, &d->life);
    pthread_mutex_unlock(&d->life);
    d->api.close(d->db);
    d->db = NULL;
    release_db(d);
}

wm_ldb_store *wm_ldb_store_new(wm_ldb *d, uint32_t sync)
{
    wm_ldb_store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->db = d;
    s->write = d->api.writeoptions_create();
    d->api.writeoptions_set_sync(s->write, sync ? 1 : 0);
    s->refs = 1;
    __atomic_add_fetch(&d->refs, 1, __ATOMIC_ACQ_REL);
    return s;
}

void wm_ldb_store_close(wm_ldb_store *s) { __atomic_store_n(&s->closed, 1, __ATOMIC_RELEASE); }

void wm_ldb_store_free(wm_ldb_store *s)
{
    if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL))
        return;
    s->db->api.writeoptions_destroy(s->write);
    release_db(s->db);
    free(s);
}

wm_ldb_caller *wm_ldb_caller_new(wm_ldb_store *s, wm_store_failed_fn failed, void *failed_ctx)
{
    wm_ldb_caller *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    *c = (wm_ldb_caller){s, failed, failed_ctx};
    __atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
    return c;
}

void wm_ldb_caller_free(wm_ldb_caller *c)
{
    if (!c)
        return;
    wm_ldb_store_free(c->store);
    free(c);
}
