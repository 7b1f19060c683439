/* test_pool.c: a module's instances (native/pool.c), also run under ThreadSanitizer.
 *
 * Threads take instances of one pool and write to a plain (not atomic)
 * counter of the instance they hold: two threads in one instance at once
 * would be a data race TSan reports, and a lost count the sum shows. */
#include "harness.h"

enum { POOL_THREADS = 6, POOL_ITERS = 20000, POOL_N = 2 };

typedef struct held {
    wm_pool *p;
    uint64_t counts[POOL_N]; /* per instance, written only by its holder */
    _Atomic uint64_t reentries;
} held;

static void *take_and_count(void *arg)
{
    held *h = arg;
    for (int i = 0; i < POOL_ITERS; i++) {
        int why = 0;
        uint32_t at = UINT32_MAX, again = UINT32_MAX;
        wm_module *m = wm_pool_take(h->p, UINT64_MAX, &why, &at);
        CHECK(m != NULL && at < POOL_N && wm_pool_mine(m));
        wm_enter(m);
        h->counts[at]++;
        if (i % 64 == 0) { /* a call back into the module re-enters this instance */
            wm_module *inner = wm_pool_take(h->p, 0, &why, &again);
            CHECK(inner == m && again == at);
            wm_enter(inner);
            h->reentries++;
            wm_leave(inner);
            wm_pool_give(inner); /* still held: the outer call is on */
            CHECK(wm_pool_mine(m));
        }
        wm_leave(m);
        wm_pool_give(m);
    }
    return NULL;
}

/* Another thread's try with a short wait, while the test holds the only instance. */
static void *try_briefly(void *arg)
{
    wm_pool *p = arg;
    int why = 0;
    uint32_t at;
    CHECK(wm_pool_take(p, 10, &why, &at) == NULL && why == WM_POOL_BUSY);
    CHECK(wm_pool_retire(p->inst[0], 10) == WM_BUSY); /* busy in the test's thread */
    CHECK(wm_module_hold(p->inst[0], 10) == WM_BUSY); /* nor may the host hold it */
    return NULL;
}

void test_pool(void)
{
    wm_broker *b = new_broker(1);
    wm_limits l = default_limits();
    CHECK(wm_pool_new(0) == NULL && wm_pool_new(WM_MAX_INSTANCES + 1) == NULL);

    /* many threads, two instances: never two in one, nothing lost */
    held h = {.p = wm_pool_new(POOL_N)};
    CHECK(h.p != NULL);
    for (uint32_t i = 0; i < POOL_N; i++)
        wm_pool_set(h.p, i, wm_module_new(b, &l, "m"));
    pthread_t t[POOL_THREADS];
    for (int i = 0; i < POOL_THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, take_and_count, &h) == 0);
    for (int i = 0; i < POOL_THREADS; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    CHECK(h.counts[0] + h.counts[1] == (uint64_t)POOL_THREADS * POOL_ITERS);
    CHECK(h.reentries == (uint64_t)POOL_THREADS * ((POOL_ITERS + 63) / 64));

    /* one instance held here: another thread's short wait ends BUSY, and it
     * cannot retire it; this thread cannot either (it runs in it) */
    wm_pool *one = wm_pool_new(1);
    wm_module *solo = wm_module_new(b, &l, "solo");
    wm_pool_set(one, 0, solo);
    int why = 0;
    uint32_t at;
    CHECK(wm_pool_take(one, 0, &why, &at) == solo);
    wm_enter(solo);
    pthread_t other;
    CHECK(pthread_create(&other, NULL, try_briefly, one) == 0);
    CHECK(pthread_join(other, NULL) == 0);
    CHECK(wm_pool_retire(solo, 10) == WM_BUSY);
    CHECK(wm_module_hold(solo, 10) == WM_HOLD_NONE); /* this thread's call runs in it */
    wm_leave(solo);
    wm_pool_give(solo);

    /* the host holds it between calls: no call takes it meanwhile; the
     * host's own module needs no holding */
    OK(wm_module_hold(solo, 0));
    CHECK(pthread_create(&other, NULL, try_briefly, one) == 0);
    CHECK(pthread_join(other, NULL) == 0);
    wm_module_unhold(solo);
    CHECK(wm_module_hold(b->host, 0) == WM_HOLD_NONE);

    /* marked dead: no new call takes it (a trap's teardown comes after) */
    wm_module_mark_dead(h.p->inst[0]);
    for (int i = 0; i < 4; i++) {
        wm_module *m = wm_pool_take(h.p, 0, &why, &at);
        CHECK(m == h.p->inst[1] && at == 1);
        wm_pool_give(m);
    }

    /* torn down: no call takes it; retired once free; every one down: DEAD */
    wm_module_teardown(h.p->inst[0]);
    for (int i = 0; i < 4; i++) {
        wm_module *m = wm_pool_take(h.p, 0, &why, &at);
        CHECK(m == h.p->inst[1] && at == 1);
        wm_pool_give(m);
    }
    OK(wm_pool_retire(h.p->inst[0], 10));
    wm_module_teardown(h.p->inst[1]);
    CHECK(wm_pool_take(h.p, UINT64_MAX, &why, &at) == NULL && why == WM_POOL_DEAD);

    wm_broker_free(b);
    wm_pool_free(h.p);
    wm_pool_free(one);
}
