/* test_notices.c: drop notices. */
#include "harness.h"
#include "xworld.h"

/* --- drop notices ---------------------------------------------------------------- */

static size_t take_all(wm_broker *b, uint32_t *mods, int64_t *cookies, size_t cap)
{
    size_t n = 0, got;
    while ((got = wm_broker_take_notices(b, mods + n, cookies + n, n < cap ? 1 : 0)) > 0)
        n += got; /* one at a time: order survives partial takes */
    CHECK(n <= cap && !wm_broker_has_notices(b));
    return n;
}

void test_notices(void)
{
    wm_broker *b = new_broker(25);
    wm_module *host = wm_broker_host(b);
    wm_limits l = default_limits();
    l.watches = 3;
    wm_module *m = wm_module_new(b, &l, "m"), *w = wm_module_new(b, &l, "w");
    uint32_t mods[16];
    int64_t cookies[16];
    uint32_t n;

    CHECK(!wm_broker_has_notices(b) && wm_broker_take_notices(b, mods, cookies, 16) == 0);
    /* one map, three registrations: registration order, the module's id */
    uint32_t h = new_map(m), hw;
    OK(wm_op_clone(m, h, 0, &hw)); /* rights 0 is enough to watch */
    OK(wm_op_watch_drop(m, hw, 30));
    OK(wm_op_watch_drop(m, h, -1));
    OK(wm_op_watch_drop(m, h, 30)); /* twice: two notices */
    EXPECT(wm_op_watch_drop(m, h, 4), WM_QUOTA); /* the watches limit */
    OK(wm_op_close(m, hw));
    CHECK(!wm_broker_has_notices(b));
    OK(wm_op_close(m, h));
    CHECK(wm_broker_has_notices(b));
    CHECK(take_all(b, mods, cookies, 16) == 3);
    CHECK(cookies[0] == 30 && cookies[1] == -1 && cookies[2] == 30);
    CHECK(mods[0] == wm_module_id(m) && mods[2] == wm_module_id(m));
    h = new_map(m);
    OK(wm_op_watch_drop(m, h, 5)); /* taken notices free the quota */
    EXPECT(wm_op_watch_drop(m, 12345, 5), WM_BADF);
    OK(wm_op_close(m, h));
    EXPECT(wm_op_watch_drop(m, h, 5), WM_STALE);
    CHECK(take_all(b, mods, cookies, 16) == 1 && cookies[0] == 5);

    /* a cascade: maps in the order they were reclaimed (parent, then the
     * child it alone kept), whoever watched and whoever closed */
    uint32_t p = new_map(host), cmid = new_map(host), leaf = new_map(host), wp, wl;
    OK(wm_op_set_map(host, p, KEY("c"), cmid));
    OK(wm_op_set_map(host, cmid, KEY("c"), leaf));
    OK(wm_op_close(host, cmid));
    OK(wm_op_clone(host, leaf, RW, &wl));
    OK(wm_op_close(host, leaf));
    OK(wm_op_watch_drop(host, p, 1));
    OK(wm_op_watch_drop(host, wl, 3)); /* the host has no watches limit */
    /* the watcher w watches through a handle of its own, then lets go */
    OK(wm_op_get_map(host, p, KEY("c"), &wp)); /* the middle map, via the host */
    OK(wm_op_watch_drop(host, wp, 2));
    OK(wm_op_close(host, wp));
    OK(wm_op_close(host, wl));
    CHECK(!wm_broker_has_notices(b)); /* all still reachable from p */
    OK(wm_op_close(host, p));
    CHECK(take_all(b, mods, cookies, 16) == 3);
    CHECK(cookies[0] == 1 && cookies[1] == 2 && cookies[2] == 3 && mods[0] == 0);

    /* a teardown reclaims, and the notices name the watcher */
    uint32_t x = new_map(w);
    OK(wm_op_watch_drop(w, x, 77));
    wm_module_teardown(w);
    CHECK(take_all(b, mods, cookies, 16) == 1 && mods[0] == wm_module_id(w) && cookies[0] == 77);
    /* pending registrations of a torn-down module still count until taken */
    wm_module *q = wm_module_new(b, &l, "q");
    uint32_t qh = new_map(q), hq;
    OK(wm_op_open(host, KEY("named"), RW, &hq));
    uint32_t qmap = new_map(host);
    OK(wm_op_set_map(host, hq, KEY("q"), qmap));
    OK(wm_op_close(host, qmap));
    uint32_t qchild;
    OK(wm_module_grant(q, KEY("named"), RW));
    uint32_t qn;
    OK(wm_op_open(q, KEY("named"), RW, &qn));
    OK(wm_op_get_map(q, qn, KEY("q"), &qchild));
    OK(wm_op_watch_drop(q, qchild, 8));
    OK(wm_op_watch_drop(q, qh, 9));
    wm_module_teardown(q); /* qh's map goes (notice 9); qchild's lives on */
    CHECK(take_all(b, mods, cookies, 16) == 1 && cookies[0] == 9);
    OK(wm_op_delete(host, hq, KEY("q"))); /* now it goes too: notice 8 for q */
    CHECK(take_all(b, mods, cookies, 16) == 1 && cookies[0] == 8 && mods[0] == wm_module_id(q));

    /* a cycle: its notices come with the collector */
    uint32_t c1 = new_map(host), c2 = new_map(host);
    OK(wm_op_set_map(host, c1, KEY("c2"), c2));
    OK(wm_op_set_map(host, c2, KEY("c1"), c1));
    OK(wm_op_watch_drop(host, c1, 11));
    OK(wm_op_watch_drop(host, c2, 12));
    OK(wm_op_close(host, c1));
    OK(wm_op_close(host, c2));
    CHECK(!wm_broker_has_notices(b));
    uint64_t maps = stats(b).maps;
    CHECK(wm_broker_collect(b) == 2 && stats(b).maps == maps - 2);
    CHECK(take_all(b, mods, cookies, 16) == 2);
    CHECK((cookies[0] == 11 && cookies[1] == 12) || (cookies[0] == 12 && cookies[1] == 11));
    CHECK(wm_broker_collect(b) == 0);

    /* pending notices and live registrations are freed with the broker */
    uint32_t left = new_map(host), gone = new_map(host);
    OK(wm_op_watch_drop(host, left, 1));
    OK(wm_op_watch_drop(host, gone, 2));
    OK(wm_op_close(host, gone));
    CHECK(wm_broker_has_notices(b));
    OK(wm_op_len(host, left, &n));
    CHECK(wm_broker_check(b) == 0);
    wm_broker_free(b);
}


