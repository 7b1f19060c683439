/* test_selfcalls.c: a module calling itself, at every handle-table boundary. */
#include "harness.h"
#include "xworld.h"

/* --- a module calling itself, at every handle-table boundary ------------------ */

/* A module may import its own exports.  Then the giver's and the
 * receiver's handle tables are one table, and making room for the
 * receiver may move it: nothing may hold a slot pointer across that.  Each
 * case runs with the table holding exactly n live handles, for n around
 * every size the table grows at (64, 128, 256), so that the pass is the
 * one that grows it.  Under ASan a stale pointer is a report. */

typedef struct self_ctx {
    uint32_t given;   /* the caller's handle, as it passed */
    uint32_t kind;    /* WM_PASS_* of parameter 0 */
    uint64_t map;     /* the map it reaches */
    int checked;
} self_ctx;

/* The callee's view, in the same module: the right handles are live,
 * the lender is BUSY while lent, and a moved handle is STALE. */
static wt_trap *body_self(xexport *e, wt_val_raw *args)
{
    self_ctx *c = e->ctx;
    uint32_t got = (uint32_t)args[0].i32, n;
    CHECK(wm_broker_map_id(xw.b, e->m, got) == c->map);
    switch (c->kind) {
    case WM_PASS_OWN:
        EXPECT(wm_op_len(e->m, c->given, &n), WM_STALE);
        CHECK(!is_borrowed(e->m, got));
        break;
    case WM_PASS_BORROW:
        EXPECT(wm_op_close(e->m, c->given), WM_BUSY);
        CHECK(is_borrowed(e->m, got));
        break;
    case WM_PASS_SHARE:
        CHECK(wm_broker_map_id(xw.b, e->m, c->given) == c->map && !is_borrowed(e->m, got));
        break;
    }
    set_str(e->m, got, "seen", "yes");
    c->checked++;
    return NULL;
}

/* Fill `m` with new maps until it holds exactly `n` live handles. */
static void fill_to(wm_module *m, uint32_t n)
{
    while (wm_module_handle_count(m) < n)
        new_map(m);
    CHECK(wm_module_handle_count(m) == n);
}

static void close_all(wm_module *m)
{
    static wm_handle_info info[2048];
    size_t k = wm_snapshot_handles(xw.b, info, 2048);
    CHECK(k <= 2048);
    for (size_t i = 0; i < k; i++)
        if (info[i].module == wm_module_id(m))
            OK(wm_op_close(m, info[i].handle));
    CHECK(wm_module_handle_count(m) == 0);
}

void test_selfcalls(void)
{
    static const uint32_t SIZES[] = {1, 62, 63, 64, 65, 126, 127, 128, 129, 255, 256, 257};
    static const uint8_t KINDS[] = {WM_PASS_OWN, WM_PASS_BORROW, WM_PASS_SHARE};
    xworld_new(31);
    wm_module *a = xw.a, *c = xw.c, *host = xw.host;
    wm_broker *b = xw.b;
    uint32_t n;
    for (size_t k = 0; k < sizeof KINDS; k++) {
        for (size_t s = 0; s < sizeof SIZES / sizeof SIZES[0]; s++) {
            /* one handle parameter: a -> a */
            self_ctx ctx = {.kind = KINDS[k]};
            xexport self = {.body = body_self, .m = a, .ctx = &ctx};
            const uint8_t how[] = {KINDS[k]};
            wm_link *l = xlink(a, &self, 1, 0, how);
            fill_to(a, SIZES[s]);
            ctx.given = new_map(a); /* the (n+1)th: the pass needs the (n+2)th slot */
            ctx.map = wm_broker_map_id(b, a, ctx.given);
            uint64_t maps = stats(b).maps;
            wt_val_raw v[1] = {{.i32 = (int32_t)ctx.given}};
            CHECK(guest_link_call(l, v, 1) == NULL);
            CHECK(ctx.checked == 1);
            uint32_t got = self.got[0];
            CHECK(stats(b).maps == maps && wm_broker_check(b) == 0);
            switch (KINDS[k]) {
            case WM_PASS_OWN: /* moved: the old number is STALE, the new one lives */
                EXPECT(wm_op_len(a, ctx.given, &n), WM_STALE);
                EXPECT(wm_op_close(a, ctx.given), WM_STALE);
                CHECK(wm_broker_map_id(b, a, got) == ctx.map);
                expect_value(a, got, "seen", "yes");
                CHECK(wm_module_handle_count(a) == SIZES[s] + 1);
                break;
            case WM_PASS_BORROW: /* ended: the lender may close again */
                CHECK(wm_broker_map_id(b, a, got) == 0);
                expect_value(a, ctx.given, "seen", "yes");
                CHECK(wm_module_handle_count(a) == SIZES[s] + 1);
                break;
            case WM_PASS_SHARE: /* both own one */
                CHECK(wm_broker_map_id(b, a, got) == ctx.map);
                CHECK(wm_broker_map_id(b, a, ctx.given) == ctx.map);
                CHECK(wm_module_handle_count(a) == SIZES[s] + 2);
                break;
            }
            close_all(a);
            CHECK(stats(b).maps == 0 && wm_broker_check(b) == 0);

            /* own and share results: a -> a, the result into the same table */
            uint32_t give = 0;
            xexport giver = {.body = body_return, .m = a, .ctx = &give};
            if (KINDS[k] != WM_PASS_BORROW) {
                wm_link *r = xlink(a, &giver, 0, 1, how);
                fill_to(a, SIZES[s]);
                give = new_map(a);
                uint64_t id = wm_broker_map_id(b, a, give);
                wt_val_raw rv[1] = {{0}};
                CHECK(guest_link_call(r, rv, 1) == NULL);
                uint32_t back = (uint32_t)rv[0].i32;
                CHECK(wm_broker_map_id(b, a, back) == id);
                if (KINDS[k] == WM_PASS_OWN)
                    EXPECT(wm_op_len(a, give, &n), WM_STALE);
                else
                    CHECK(wm_broker_map_id(b, a, give) == id);
                CHECK(wm_broker_check(b) == 0);
                close_all(a);
            }

            /* the host: its own table at the boundary takes a result */
            if (KINDS[k] != WM_PASS_BORROW) {
                wm_link *r = xlink(host, &giver, 0, 1, how);
                fill_to(host, SIZES[s]);
                give = new_map(a);
                uint64_t id = wm_broker_map_id(b, a, give);
                wm_val_raw hv[1] = {{0}};
                OK(host_call(r, hv, 1, NULL, NULL, NULL));
                CHECK(wm_broker_map_id(b, host, (uint32_t)hv[0].lo) == id);
                CHECK(wm_broker_check(b) == 0);
                close_all(host);
                close_all(a);
            }
        }
    }

    /* several handles at once, lent and moved and shared, into the same
     * table at each boundary; then a mutual pair a -> c -> a */
    static const uint8_t MIXED[] = {WM_PASS_BORROW, WM_PASS_OWN, WM_PASS_SHARE, WM_PASS_BORROW};
    for (size_t s = 0; s < sizeof SIZES / sizeof SIZES[0]; s++) {
        xexport keep = {.body = body_keep, .m = a};
        wm_link *l = xlink(a, &keep, 4, 0, MIXED);
        fill_to(a, SIZES[s]);
        uint32_t lent = new_map(a), moved = new_map(a), shared = new_map(a);
        uint64_t ids[3] = {wm_broker_map_id(b, a, lent), wm_broker_map_id(b, a, moved),
                           wm_broker_map_id(b, a, shared)};
        wt_val_raw v[4] = {{.i32 = (int32_t)lent}, {.i32 = (int32_t)moved},
                           {.i32 = (int32_t)shared}, {.i32 = (int32_t)lent}};
        CHECK(guest_link_call(l, v, 4) == NULL);
        CHECK(wm_broker_map_id(b, a, keep.got[1]) == ids[1]);
        CHECK(wm_broker_map_id(b, a, keep.got[2]) == ids[2]);
        EXPECT(wm_op_len(a, moved, &n), WM_STALE);
        OK(wm_op_len(a, lent, &n)); /* both borrows ended */
        CHECK(wm_broker_map_id(b, a, keep.got[0]) == 0 && wm_broker_map_id(b, a, keep.got[3]) == 0);
        CHECK(wm_broker_map_id(b, a, lent) == ids[0] && wm_broker_check(b) == 0);
        close_all(a);

        /* a lends to c, whose export lends it straight back to a */
        fill_to(a, SIZES[s]);
        fill_to(c, SIZES[s]);
        self_ctx inner = {.kind = WM_PASS_BORROW};
        xexport back_in_a = {.body = body_self, .m = a, .ctx = &inner};
        nest_ctx nest = {.n = 1, .args = {{.i32 = -1}}}; /* passes on what it got */
        xexport via_c = {.body = body_nest, .m = c, .ctx = &nest};
        wm_link *c_to_a = xlink(c, &back_in_a, 1, 0, (const uint8_t[]){WM_PASS_BORROW});
        wm_link *a_to_c = xlink(a, &via_c, 1, 0, (const uint8_t[]){WM_PASS_BORROW});
        nest.link = c_to_a;
        uint32_t h = new_map(a);
        inner.given = h; /* a's own handle: BUSY while the chain runs */
        inner.map = wm_broker_map_id(b, a, h);
        wt_val_raw mv[1] = {{.i32 = (int32_t)h}};
        CHECK(guest_link_call(a_to_c, mv, 1) == NULL);
        CHECK(inner.checked == 1 && wm_broker_check(b) == 0);
        expect_value(a, h, "seen", "yes");
        OK(wm_op_close(a, h)); /* every borrow ended */
        close_all(a);
        close_all(c);
    }
    CHECK(stats(b).maps == 0);

    /* get_map and clone issue into the table they read from: traced, so
     * the event names the parent after the table may have moved */
    OK(wm_broker_trace(b, 1u << 20));
    wm_limits fresh_limits = default_limits();
    for (size_t s = 0; s < sizeof SIZES / sizeof SIZES[0]; s++) {
        a = wm_module_new(b, &fresh_limits, "fresh"); /* a table that has not grown yet */
        CHECK(a != NULL);
        fill_to(a, SIZES[s]);
        uint32_t parent = new_map(a), child = new_map(a), got, twin;
        OK(wm_op_set_map(a, parent, KEY("c"), child));
        OK(wm_op_get_map(a, parent, KEY("c"), &got));
        CHECK(wm_broker_map_id(b, a, got) == wm_broker_map_id(b, a, child));
        OK(wm_op_clone(a, parent, R, &twin));
        CHECK(rights_of(a, twin) == R && wm_broker_check(b) == 0);
        static wm_event ev[4096];
        size_t k = wm_broker_take_events(b, ev, 4096);
        CHECK(k < 4096 && k > 0 && ev[k - 1].kind == WM_EV_CLONE && ev[k - 2].kind == WM_EV_GET_MAP);
        CHECK(ev[k - 2].other_map == wm_broker_map_id(b, a, parent));
        close_all(a);
        wm_broker_take_events(b, ev, 4096);
    }
    OK(wm_broker_trace(b, 0));
    xworld_free();
}

