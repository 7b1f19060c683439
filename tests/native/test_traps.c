/* test_traps.c: traps, where they begin, and unloading modules. */
#include "harness.h"
#include "xworld.h"

static wt_trap *body_own_lent_back(xexport *e, wt_val_raw *args);

typedef struct reenter_ctx {
    wm_link *own_to_c; /* a -> c, own */
    uint32_t lent;     /* a's handle, lent out further up */
} reenter_ctx;

static reenter_ctx reenter;

/* In a, re-entered while `reenter.lent` is lent: it can neither close nor
 * move it; the move traps (a's fault). */
static wt_trap *body_own_lent_back(xexport *e, wt_val_raw *args)
{
    EXPECT(wm_op_close(e->m, reenter.lent), WM_BUSY);
    wt_val_raw v[1] = {{.i32 = (int32_t)reenter.lent}};
    return guest_link_call(reenter.own_to_c, v, 1);
}

void test_traps(void)
{
    xworld_new(23);
    wm_module *host = xw.host, *a = xw.a, *c = xw.c;
    wm_broker *b = xw.b;
    wm_val_raw v[4] = {{0}};
    void *t;
    uint32_t bad;

    /* a trap in the callee's own code: the callee */
    xexport trapper = {.body = body_trap, .m = c};
    wm_link *host_c = xlink(host, &trapper, 1, 0, H_SHARE);
    uint32_t h = new_map(host);
    v[0].lo = h;
    OK(host_call(host_c, v, 1, NULL, &t, NULL));
    expect_trap(t, "unreachable", c);
    CHECK(wm_module_handle_count(c) == 1); /* torn down by the host, not by the core */
    wm_module_teardown(c);

    /* nested: host -> a -> c, c traps: c, the innermost */
    xexport c2 = {.body = body_trap, .m = xw.small};
    wm_link *a_small = xlink(a, &c2, 1, 0, H_BORROW);
    nest_ctx nc = {.link = a_small, .n = 1};
    xexport mid = {.body = body_nest, .m = a, .ctx = &nc};
    wm_link *host_a = xlink(host, &mid, 1, 0, H_BORROW);
    nc.args[0].i32 = -1; /* pass on what a was lent */
    OK(host_call(host_a, v, 1, NULL, &t, NULL));
    expect_trap(t, "unreachable", xw.small);
    CHECK(wm_module_handle_count(a) == 0 && wm_module_handle_count(xw.small) == 0);
    OK(wm_op_close(host, h)); /* both borrows ended on the way out */
    /* a wasmtime error from the callee (a host function's trap) becomes a trap */
    xexport failing = {.body = body_keep, .m = a, .fail = true};
    wm_link *host_fail = xlink(host, &failing, 1, 0, H_OWN);
    h = new_map(host);
    v[0].lo = h;
    OK(host_call(host_fail, v, 1, NULL, &t, NULL));
    expect_trap(t, "a host function trapped", a);
    CHECK(wm_module_handle_count(a) == 1); /* it got the handle before it failed */

    /* a guest caller's handles that cannot pass: the caller's fault */
    xexport keep_c = {.body = body_keep, .m = xw.c};
    xw.c = wm_module_new(b, &(wm_limits){4096, 1 << 20, 65536, 1 << 20, 1000, 100, 0, 0}, "c2");
    keep_c.m = xw.c;
    wm_link *a_c_own = xlink(a, &keep_c, 1, 0, H_OWN);
    wm_link *a_c_oo = xlink(a, &keep_c, 2, 0, (const uint8_t[]){WM_PASS_OWN, WM_PASS_OWN});
    uint32_t ah = new_map(a), adead = new_map(a);
    OK(wm_op_close(a, adead));
    wt_val_raw gv[2] = {{.i32 = (int32_t)adead}};
    expect_trap(guest_link_call(a_c_own, gv, 1), "parameter 0 (own): STALE", a);
    gv[0].i32 = gv[1].i32 = (int32_t)ah;
    expect_trap(guest_link_call(a_c_oo, gv, 2), "parameter 1 (own): BUSY", a);
    CHECK(keep_c.calls == 0 && wm_broker_map_id(b, a, ah) != 0);
    /* ... a full receiver's fault */
    xexport keep_small = {.body = body_keep, .m = wm_module_new(b, &(wm_limits){64, 64, 1, 1000, 10, 10, 0, 0}, "tiny")};
    wm_link *a_tiny = xlink(a, &keep_small, 1, 0, H_SHARE);
    new_map(keep_small.m);
    gv[0].i32 = (int32_t)ah;
    expect_trap(guest_link_call(a_tiny, gv, 1), "QUOTA", keep_small.m);
    /* ... own of a borrowed handle: the borrower's fault */
    nest_ctx pass_own = {.link = NULL, .n = 1};
    xexport borrower = {.body = body_nest, .m = xw.c, .ctx = &pass_own};
    xexport a_keep = {.body = body_keep, .m = a};
    pass_own.link = xlink(xw.c, &a_keep, 1, 0, H_OWN);
    pass_own.args[0].i32 = -1;
    wm_link *host_borrower = xlink(host, &borrower, 1, 0, H_BORROW);
    uint32_t hh = new_map(host);
    v[0].lo = hh;
    OK(host_call(host_borrower, v, 1, NULL, &t, NULL));
    expect_trap(t, "parameter 0 (own): ACCES", xw.c);
    CHECK(a_keep.calls == 0 && wm_broker_map_id(b, host, hh) != 0);

    /* the lender is BUSY for close and own while lent, also when the call
     * comes back into it: here the host, then a guest (whose move traps) */
    lend_ctx lc = {host, hh, 0};
    xexport checker = {.body = body_check_lent, .m = a, .ctx = &lc};
    v[0].lo = hh;
    OK(host_call(xlink(host, &checker, 1, 0, H_BORROW), v, 1, NULL, NULL, NULL));
    OK(wm_op_close(a, lc.clone));
    xexport keep_c2 = {.body = body_keep, .m = xw.c};
    reenter.own_to_c = xlink(a, &keep_c2, 1, 0, H_OWN);
    reenter.lent = ah;
    xexport back_in_a = {.body = body_own_lent_back, .m = a};
    nest_ctx to_a = {.link = xlink(xw.c, &back_in_a, 0, 0, (const uint8_t[]){0}), .n = 0};
    xexport in_c = {.body = body_nest, .m = xw.c, .ctx = &to_a};
    nest_ctx lend = {.link = xlink(a, &in_c, 1, 0, H_BORROW), .n = 1};
    lend.args[0].i32 = (int32_t)ah;
    xexport outer = {.body = body_nest, .m = a, .ctx = &lend};
    OK(host_call(xlink(host, &outer, 0, 0, (const uint8_t[]){0}), v, 1, NULL, &t, NULL));
    expect_trap(t, "parameter 0 (own): BUSY", a);
    CHECK(keep_c2.calls == 0 && back_in_a.calls == 1);
    OK(wm_op_close(a, ah)); /* the borrow ended on the way out */

    /* a plain link (no handles) into a torn-down module: the caller's fault */
    wm_module_teardown(xw.small);
    wm_link *a_small_plain = xlink(a, &c2, 0, 0, (const uint8_t[]){0});
    expect_trap(guest_link_call(a_small_plain, gv, 0), "torn down", a);
    wm_link_unresolve(a_small_plain);
    expect_trap(guest_link_call(a_small_plain, gv, 0), "not loaded", a);

    /* strict borrows: a callee that leaves a borrow open traps (the callee);
     * one that closes it does not */
    wm_broker_set_strict_borrows(b, 1);
    xexport lazy = {.body = body_keep, .m = a};
    xexport tidy = {.body = body_close_first, .m = a};
    h = new_map(host);
    v[0].lo = h;
    OK(host_call(xlink(host, &tidy, 1, 0, H_BORROW), v, 1, NULL, NULL, NULL));
    v[0].lo = h;
    uint64_t unreleased = stats(b).unreleased_borrows;
    OK(host_call(xlink(host, &lazy, 1, 0, H_BORROW), v, 1, NULL, &t, &bad));
    expect_trap(t, "strict", a);
    CHECK(stats(b).unreleased_borrows == unreleased + 1);
    OK(wm_op_close(host, h)); /* ended all the same */
    wm_broker_set_strict_borrows(b, 0);
    xworld_free();
}

/* Teardown while a call is in progress (the C API allows it; the Python
 * host never does it): the borrow's end finds the handles gone and must not
 * touch them twice. */
static wt_trap *body_teardown_self(xexport *e, wt_val_raw *args)
{
    set_str(e->m, (uint32_t)args[0].i32, "seen", "yes");
    wm_module_teardown(e->m);
    return NULL;
}

static wm_module *teardown_target;

static wt_trap *body_teardown_other(xexport *e, wt_val_raw *args)
{
    wm_module_teardown(teardown_target);
    return NULL;
}

void test_unload(void)
{
    xworld_new(24);
    wm_module *host = xw.host, *a = xw.a, *c = xw.c;
    wm_broker *b = xw.b;
    wm_val_raw v[2] = {{0}};
    uint32_t n;

    /* the callee tears itself down during a borrow */
    uint32_t h = new_map(host);
    xexport self = {.body = body_teardown_self, .m = a};
    v[0].lo = h;
    uint64_t unreleased = stats(b).unreleased_borrows;
    OK(host_call(xlink(host, &self, 1, 0, H_BORROW), v, 1, NULL, NULL, NULL));
    CHECK(stats(b).unreleased_borrows == unreleased); /* nothing left open to end */
    expect_value(host, h, "seen", "yes");
    OK(wm_op_close(host, h)); /* not busy any more */
    CHECK(stats(b).maps == 0);

    /* the lender is torn down during its own borrow: c lends to the host-called... */
    uint32_t ch = new_map(c), keep_ch;
    OK(wm_op_clone(c, ch, RW, &keep_ch));
    teardown_target = c;
    xexport killer = {.body = body_teardown_other, .m = xw.small};
    wt_val_raw gv[1] = {{.i32 = (int32_t)ch}};
    CHECK(guest_link_call(xlink(c, &killer, 1, 0, H_BORROW), gv, 1) == NULL);
    CHECK(wm_module_handle_count(c) == 0 && wm_module_handle_count(xw.small) == 0);
    CHECK(stats(b).maps == 0 && stats(b).unreleased_borrows == unreleased + 1);
    EXPECT(wm_op_len(xw.small, (uint32_t)killer.got[0], &n), WM_STALE);

    /* data outlives the module that wrote it, when referenced elsewhere */
    OK(wm_module_grant(a, KEY("keep"), RW));
    uint32_t ak, am = new_map(a), hk;
    OK(wm_op_open(a, KEY("keep"), RW, &ak));
    set_str(a, am, "by", "a");
    OK(wm_op_set_map(a, ak, KEY("m"), am));
    wm_module_teardown(a);
    wm_module_teardown(a); /* twice: nothing more */
    OK(wm_op_open(host, KEY("keep"), R, &hk));
    uint32_t got;
    OK(wm_op_get_map(host, hk, KEY("m"), &got));
    expect_value(host, got, "by", "a");
    CHECK(wm_module_entries_used(a) == 2); /* still charged to their writer */

    /* unload gives everything back: links, watches, charges, the id */
    uint64_t host_entries = wm_module_entries_used(host);
    wm_module *u = wm_module_new(b, &(wm_limits){4096, 1 << 20, 100, 1 << 20, 100, 10, 0, 0}, "u");
    CHECK(u != NULL);
    uint32_t uid = wm_module_id(u);
    xexport in_u = {.body = body_keep, .m = u}, in_c = {.body = body_keep, .m = c};
    static const uint8_t NONE[1] = {0}; /* no parameters, no results */
    uint64_t links = stats(b).links;
    wm_link *into_u = xlink(c, &in_u, 0, 0, NONE);       /* c's import of u: waits after */
    xlink(u, &in_c, 0, 0, NONE);                          /* u's own import: freed */
    xlink(host, &in_u, 0, 0, NONE);                       /* the host's way in: freed */
    CHECK(stats(b).links == links + 3 && stats(b).modules >= 4);
    uint32_t hm = new_map(host), uh;
    OK(wm_op_clone(host, hm, RW, &uh));
    uint32_t watched = new_map(u);
    OK(wm_op_watch_drop(u, watched, 5));
    OK(wm_op_close(u, watched)); /* a notice queued for u */
    uint32_t watched2 = new_map(host), for_u;
    OK(wm_op_clone(host, watched2, RW, &for_u));
    /* u writes into the host's map (charged to u), and watches one */
    {
        wm_link *share = xlink(host, &in_u, 1, 0, H_SHARE);
        wm_val_raw sv[1] = {{hm, 0}};
        OK(host_call(share, sv, 1, NULL, NULL, NULL));
        set_str(u, (uint32_t)in_u.got[0], "from", "u");
        sv[0].lo = watched2;
        OK(host_call(share, sv, 1, NULL, NULL, NULL));
        OK(wm_op_watch_drop(u, (uint32_t)in_u.got[0], 6));
    }
    CHECK(wm_module_entries_used(u) == 1 && wm_broker_has_notices(b));
    wm_broker_take_trap_origin(b);
    wm_module_unload(u);
    CHECK(stats(b).links == links + 1); /* c's import stays, unresolved */
    wt_val_raw none[1] = {{0}};
    expect_trap(guest_link_call(into_u, none, 1), "not loaded", c);
    wm_link_set_loading(into_u, a); /* a module of its name is loading: its fault */
    expect_trap(guest_link_call(into_u, none, 1), "still loading", a);
    wm_link_set_loading(into_u, NULL);
    CHECK(!wm_broker_has_notices(b)); /* its queued notice is gone */
    CHECK(wm_module_entries_used(host) == host_entries + 1); /* its write, charged to the host */
    expect_value(host, hm, "from", "u");
    OK(wm_op_close(host, watched2));
    OK(wm_op_close(host, for_u)); /* reclaimed: its watch was forgotten, no notice */
    CHECK(!wm_broker_has_notices(b));
    wm_module *again = wm_module_new(b, &(wm_limits){4096, 1 << 20, 100, 1 << 20, 100, 10, 0, 0}, "again");
    CHECK(again != NULL && wm_module_id(again) == uid); /* the id is reused */
    CHECK(wm_module_entries_used(again) == 0 && wm_module_handle_count(again) == 0);
    OK(wm_op_close(host, hm));
    OK(wm_op_close(host, uh));
    CHECK(wm_broker_check(b) == 0);
    wm_module_unload(host); /* never the host */
    CHECK(wm_module_id(host) == 0 && wm_module_handle_count(host) > 0);
    xworld_free();
}

