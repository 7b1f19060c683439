/* test_threads.c: the broker lock under threads (also run under ThreadSanitizer). */
#include "harness.h"
#include "xworld.h"

/* --- threads ------------------------------------------------------------ */

enum { THREADS = 8, ITERS = 20000 };

/* A callee for the threads: writes through what it was passed, and closes
 * it (an owning or a borrowed handle alike). */
static wt_trap *body_touch_close(xexport *e, wt_val_raw *args)
{
    uint32_t h = (uint32_t)args[0].i32;
    int64_t v;
    OK(wm_op_incr(e->m, h, KEY("touched"), 1, &v));
    OK(wm_op_close(e->m, h));
    return NULL;
}

typedef struct worker {
    wm_broker *b;
    wm_module *host;
    int id;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    wm_module *host = w->host;
    wm_limits l = default_limits();
    wm_module *m = wm_module_new(w->b, &l, "m"); /* modules made while others run */
    CHECK(m != NULL);
    OK(wm_module_grant(m, KEY("counters"), RW));
    uint32_t hc, mc, mine = new_map(m);
    OK(wm_op_open(host, KEY("counters"), RW, &hc));
    OK(wm_op_open(m, KEY("counters"), RW, &mc));
    char own[16];
    snprintf(own, sizeof own, "t%d", w->id);
    int64_t v;
    /* calls from the host into this thread's module, passing host handles
     * while the other threads use the same host table */
    xexport callee = {.body = body_touch_close, .m = m};
    wm_link *pass[3];
    for (int k = 0; k < 3; k++) {
        const uint8_t how[] = {(uint8_t)(WM_PASS_OWN + k)}; /* own, borrow, share */
        pass[k] = wm_link_new(host, "host -> m.touch", 1, 0);
        CHECK(pass[k] != NULL);
        wt_func f = xfunc(&callee);
        callee.nparams = 1;
        resolve(pass[k], m, &f, how);
    }
    for (int i = 0; i < ITERS; i++) {
        if (i % 4 == 0) {
            uint32_t h = new_map(host), bad;
            uint64_t id = wm_broker_map_id(w->b, host, h);
            wm_val_raw args[1] = {{h, 0}};
            void *trap = NULL;
            OK(wm_link_call(pass[(i / 4) % 3], args, 1, NULL, &trap, &bad));
            CHECK(trap == NULL);
            /* own: moved, and closed by the callee: h no longer reaches that map.
             * (Not "reaches nothing": the host table wraps generations, so under
             * the other threads' churn the same number can be issued again.) */
            if ((i / 4) % 3 == 0)
                CHECK(wm_broker_map_id(w->b, host, h) != id);
            else /* lent or shared: still the host's */
                OK(wm_op_close(host, h));
        }
        OK(wm_op_incr(host, hc, KEY("total"), 1, &v)); /* the host module, shared by all */
        OK(wm_op_incr(m, mc, KEY("total-m"), 2, &v));
        OK(wm_op_incr(m, mc, KEY(own), 1, &v));
        CHECK(v == i + 1);
        if (i % 8 == 0) { /* handles, maps and cascades on the shared host table */
            uint32_t a = new_map(host), c = new_map(host), d;
            set_str(host, c, "k", own);
            OK(wm_op_set_map(host, a, KEY("c"), c));
            OK(wm_op_close(host, c));
            OK(wm_op_clone(host, a, R, &d));
            OK(wm_op_get_map(host, d, KEY("c"), &c));
            expect_value(host, c, "k", own);
            OK(wm_op_close(host, c));
            OK(wm_op_close(host, d));
            OK(wm_op_close(host, a));
        }
        if (i % 16 == 0) { /* batches and listings on the shared named map */
            bytes items = {0};
            char k[32];
            snprintf(k, sizeof k, "b%d-%d", w->id, i % 64);
            put_rec_str(&items, k);
            put_rec_str(&items, own);
            OK(wm_op_set_many(m, mc, items.p, (uint32_t)items.len));
            uint8_t out[64];
            uint32_t used;
            OK(wm_op_get_many(host, hc, items.p, 4 + (uint32_t)strlen(k), out, sizeof out, &used));
            CHECK(used == 4 + strlen(own) && memcmp(out + 4, own, strlen(own)) == 0);
            free(items.p);
            uint64_t cursor = 0;
            uint8_t buf[128];
            uint32_t count;
            do {
                OK(wm_op_keys(m, mc, &cursor, buf, sizeof buf, &used, &count));
            } while (cursor != 0);
            OK(wm_op_delete(host, hc, KEY(k)));
            wm_stats s;
            wm_broker_stats(w->b, &s);
            CHECK(s.named == 1);
            (void)wm_module_handle_count(host);
            (void)wm_module_bytes_used(m);
            (void)wm_broker_map_id(w->b, host, hc);
        }
        if (i % 32 == 0) { /* a map reference in the shared map, written over by a set:
                            * the set needs the broker lock (WM_SLOW), and its
                            * release may run the collector while the stripe is held */
            char k[32];
            snprintf(k, sizeof k, "ref%d", w->id);
            uint32_t child = new_map(m), cycle = new_map(m);
            OK(wm_op_set_map(m, child, KEY("cycle"), cycle));
            OK(wm_op_set_map(m, cycle, KEY("child"), child));
            OK(wm_op_set_map(m, mc, KEY(k), child));
            OK(wm_op_close(m, cycle));
            OK(wm_op_close(m, child));
            set_str(m, mc, k, own); /* the cycle is garbage now */
            wm_map_info maps[4];
            (void)wm_snapshot_maps(w->b, maps, 4);
            if (i % 64 == 0)
                (void)wm_broker_collect(w->b);
        }
        if (i % 1000 == 0) { /* a short-lived module, torn down */
            wm_module *t = wm_module_new(w->b, &l, "m");
            CHECK(t != NULL);
            OK(wm_module_grant(t, KEY("counters"), R));
            uint32_t th, n;
            OK(wm_op_open(t, KEY("counters"), R, &th));
            OK(wm_op_len(t, th, &n));
            new_map(t);
            wm_module_teardown(t);
        }
        set_str(m, mine, own, "x");
    }
    OK(wm_op_close(host, hc));
    return NULL;
}

void test_threads(void)
{
    wm_wasmtime_api api = fake_api(); /* the link calls' exports are C bodies */
    wm_limits hl = default_limits();
    wm_broker *b = wm_broker_new(&api, 12, &hl);
    CHECK(b != NULL);
    wm_broker_set_gc_threshold(b, 3);
    worker w[THREADS];
    pthread_t t[THREADS];
    wm_module *host = wm_broker_host(b); /* read once, before the threads start */
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){b, host, i};
        CHECK(pthread_create(&t[i], NULL, work, &w[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    uint32_t h, len;
    int64_t v;
    uint8_t buf[8];
    OK(wm_op_open(host, KEY("counters"), RW, &h));
    OK(wm_op_get(host, h, KEY("total"), buf, sizeof buf, &len));
    memcpy(&v, buf, 8);
    CHECK(len == 8 && v == (int64_t)THREADS * ITERS);
    OK(wm_op_get(host, h, KEY("total-m"), buf, sizeof buf, &len));
    memcpy(&v, buf, 8);
    CHECK(v == 2 * (int64_t)THREADS * ITERS);
    for (int i = 0; i < THREADS; i++) {
        char own[16];
        snprintf(own, sizeof own, "t%d", i);
        OK(wm_op_get(host, h, KEY(own), buf, sizeof buf, &len));
        memcpy(&v, buf, 8);
        CHECK(v == ITERS);
    }
    CHECK(map_len(host, h) == 2 + 2 * THREADS); /* and each worker's ref key */
    CHECK(wm_module_handle_count(host) == 1);
    (void)wm_broker_collect(b); /* cycles the threshold left */
    CHECK(stats(b).maps == THREADS); /* each worker's `mine` */
    CHECK(wm_broker_check(b) == 0);
    wm_broker_free(b);
}

