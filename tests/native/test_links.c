/* test_links.c: calls between modules through links: passing handles, results. */
#include "harness.h"
#include "xworld.h"

void test_links(void)
{
    xworld_new(21);
    wm_module *host = xw.host, *a = xw.a, *c = xw.c;
    wm_broker *b = xw.b;
    uint32_t n, bad;
    xexport keep = {.body = body_keep, .m = a};
    static const uint8_t OWN[] = {WM_PASS_OWN}, BORROW[] = {WM_PASS_BORROW},
                         SHARE[] = {WM_PASS_SHARE};

    /* own: the handle moves; the map and its rights go with it */
    uint32_t h = new_map(host);
    set_str(host, h, "k", "v");
    uint64_t id = wm_broker_map_id(b, host, h);
    wm_link *own = xlink(host, &keep, 1, 0, OWN);
    wm_val_raw v[4] = {{h, 0}};
    OK(host_call(own, v, 1, NULL, NULL, NULL));
    uint32_t ah = keep.got[0];
    CHECK(keep.calls == 1 && (uint32_t)v[0].lo == keep.got[0]); /* the callee's number */
    CHECK(wm_broker_map_id(b, a, ah) == id && rights_of(a, ah) == RW && !is_borrowed(a, ah));
    EXPECT(wm_op_len(host, h, &n), WM_STALE);
    CHECK(wm_broker_map_id(b, host, h) == 0);
    CHECK(wm_module_handle_count(host) == 0 && wm_module_handle_count(a) == 1);
    CHECK(stats(b).maps == 1);
    expect_value(a, ah, "k", "v");
    /* a moved handle cannot move again: STALE, nothing called */
    v[0].lo = h;
    EXPECT(host_call(own, v, 1, NULL, NULL, &bad), WM_STALE);
    CHECK(bad == 0 && keep.calls == 1 && wm_module_handle_count(a) == 1);
    v[0].lo = 0;
    EXPECT(host_call(own, v, 1, NULL, NULL, &bad), WM_BADF);
    v[0].lo = 0x7FFFFFFF;
    EXPECT(host_call(own, v, 1, NULL, NULL, &bad), WM_BADF);
    /* own with the host's mask: the receiver keeps only READ */
    h = new_map(host);
    v[0].lo = h;
    OK(host_call(own, v, 1, (const uint8_t[]){R}, NULL, NULL));
    CHECK(rights_of(a, keep.got[0]) == R);
    OK(wm_op_close(a, keep.got[0]));
    /* own:r */
    static const uint8_t OWN_R[] = {WM_PASS_OWN | WM_PASS_READONLY};
    wm_link *own_r = xlink(host, &keep, 1, 0, OWN_R);
    h = new_map(host);
    uint32_t hw;
    OK(wm_op_clone(host, h, W, &hw));
    v[0].lo = hw; /* write-only, passed :r: nothing left */
    OK(host_call(own_r, v, 1, NULL, NULL, NULL));
    CHECK(rights_of(a, keep.got[0]) == 0);
    OK(wm_op_close(a, keep.got[0]));
    v[0].lo = h;
    OK(host_call(own_r, v, 1, NULL, NULL, NULL));
    CHECK(rights_of(a, keep.got[0]) == R);
    EXPECT(wm_op_set(a, keep.got[0], KEY("k"), S("v"), 1), WM_ACCES);
    OK(wm_op_close(a, keep.got[0]));
    CHECK(stats(b).maps == 1 && wm_module_handle_count(a) == 1);

    /* share: a second owning handle; the map lives while either does */
    h = new_map(host);
    wm_link *share = xlink(host, &keep, 1, 0, SHARE);
    v[0].lo = h;
    OK(host_call(share, v, 1, NULL, NULL, NULL));
    uint32_t sh = keep.got[0];
    CHECK(wm_broker_map_id(b, a, sh) == wm_broker_map_id(b, host, h) && rights_of(a, sh) == RW);
    OK(wm_op_close(host, h));
    CHECK(stats(b).maps == 2);
    set_str(a, sh, "still", "here");
    OK(wm_op_close(a, sh));
    CHECK(stats(b).maps == 1);
    /* share:r, and the mask */
    static const uint8_t SHARE_R[] = {WM_PASS_SHARE | WM_PASS_READONLY};
    wm_link *share_r = xlink(host, &keep, 1, 0, SHARE_R);
    h = new_map(host);
    v[0].lo = h;
    OK(host_call(share_r, v, 1, NULL, NULL, NULL));
    CHECK(rights_of(a, keep.got[0]) == R && rights_of(host, h) == RW);
    v[0].lo = h; /* (a call leaves the callee's numbers in the slots) */
    OK(host_call(share, v, 1, (const uint8_t[]){W}, NULL, NULL));
    CHECK(rights_of(a, keep.got[0]) == W);
    v[0].lo = h;
    OK(host_call(share, v, 1, (const uint8_t[]){0}, NULL, NULL));
    CHECK(rights_of(a, keep.got[0]) == 0);
    CHECK(wm_module_handle_count(a) == 4);

    /* borrow: the callee's handle is borrowed, the lender's BUSY until the
     * call returns; then the broker ends it (counted as left open) */
    lend_ctx lc = {host, h, 0};
    xexport lent = {.body = body_check_lent, .m = c, .ctx = &lc};
    wm_link *borrow = xlink(host, &lent, 1, 0, BORROW);
    uint64_t unreleased = stats(b).unreleased_borrows;
    v[0].lo = h;
    OK(host_call(borrow, v, 1, NULL, NULL, NULL));
    uint32_t bh = lent.got[0];
    CHECK(lent.calls == 1 && wm_broker_map_id(b, c, bh) == 0); /* ended */
    EXPECT(wm_op_close(c, bh), WM_STALE);
    CHECK(stats(b).unreleased_borrows == unreleased + 1);
    CHECK(wm_module_handle_count(c) == 1); /* the clone it made stays */
    expect_value(c, lc.clone, "borrower", "wrote");
    CHECK(rights_of(c, lc.clone) == R);
    OK(wm_op_close(c, lc.clone));
    /* closed by the callee: not counted */
    xexport closer = {.body = body_close_first, .m = c};
    wm_link *borrow_close = xlink(host, &closer, 1, 0, BORROW);
    v[0].lo = h;
    OK(host_call(borrow_close, v, 1, NULL, NULL, NULL));
    CHECK(stats(b).unreleased_borrows == unreleased + 1);
    OK(wm_op_close(host, h)); /* free again: the borrow is over */
    /* borrow:r */
    static const uint8_t BORROW_R[] = {WM_PASS_BORROW | WM_PASS_READONLY};
    xexport reader = {.body = NULL, .m = c};
    wm_link *borrow_r = xlink(host, &reader, 1, 0, BORROW_R);
    h = new_map(host);
    v[0].lo = h;
    OK(host_call(borrow_r, v, 1, NULL, NULL, NULL));
    CHECK(reader.calls == 1 && wm_module_handle_count(c) == 0);
    /* a handle may be lent twice in one call (but not moved and lent) */
    static const uint8_t TWO_BORROWS[] = {WM_PASS_BORROW, WM_PASS_BORROW};
    xexport two = {.body = body_keep, .m = c};
    wm_link *borrow2 = xlink(host, &two, 2, 0, TWO_BORROWS);
    v[0].lo = v[1].lo = h;
    OK(host_call(borrow2, v, 2, NULL, NULL, NULL));
    CHECK(two.got[0] != two.got[1] && wm_module_handle_count(c) == 0);
    CHECK(stats(b).unreleased_borrows == unreleased + 4);

    /* all or none: every handle checked, room reserved, then all pass */
    static const uint8_t OWN_OWN[] = {WM_PASS_OWN, WM_PASS_OWN},
                         SHARE_OWN[] = {WM_PASS_SHARE, WM_PASS_OWN},
                         OWN_BORROW[] = {WM_PASS_OWN, WM_PASS_BORROW};
    xexport pair = {.body = body_keep, .m = c};
    wm_link *oo = xlink(host, &pair, 2, 0, OWN_OWN), *so = xlink(host, &pair, 2, 0, SHARE_OWN),
            *ob = xlink(host, &pair, 2, 0, OWN_BORROW);
    uint32_t h2 = new_map(host), dead = new_map(host);
    OK(wm_op_close(host, dead));
    uint64_t maps = stats(b).maps;
    v[0].lo = h, v[1].lo = h;
    EXPECT(host_call(oo, v, 2, NULL, NULL, &bad), WM_BUSY); /* moved twice */
    CHECK(bad == 1);
    EXPECT(host_call(ob, v, 2, NULL, NULL, &bad), WM_BUSY); /* moved and lent */
    CHECK(bad == 1);
    v[1].lo = dead;
    EXPECT(host_call(so, v, 2, NULL, NULL, &bad), WM_STALE);
    CHECK(bad == 1);
    v[0].lo = dead, v[1].lo = h;
    EXPECT(host_call(so, v, 2, NULL, NULL, &bad), WM_STALE);
    CHECK(bad == 0);
    CHECK(pair.calls == 0 && wm_module_handle_count(c) == 0 && stats(b).maps == maps);
    CHECK(wm_broker_map_id(b, host, h) != 0); /* the first of a failed pair did not move */
    v[0].lo = h, v[1].lo = h2;
    OK(host_call(oo, v, 2, NULL, NULL, NULL));
    CHECK(pair.calls == 1 && wm_module_handle_count(c) == 2);
    CHECK(wm_broker_map_id(b, host, h) == 0 && wm_broker_map_id(b, host, h2) == 0);
    OK(wm_op_close(c, pair.got[0]));
    OK(wm_op_close(c, pair.got[1]));
    /* the receiver's table full: QUOTA, nothing moved */
    xexport into_small = {.body = body_keep, .m = xw.small};
    wm_link *small_oo = xlink(host, &into_small, 2, 0, OWN_OWN);
    h = new_map(host), h2 = new_map(host);
    uint32_t taken = new_map(xw.small); /* one of its two slots */
    v[0].lo = h, v[1].lo = h2;
    EXPECT(host_call(small_oo, v, 2, NULL, NULL, &bad), WM_QUOTA);
    CHECK(into_small.calls == 0 && wm_broker_map_id(b, host, h) != 0);
    CHECK(wm_module_handle_count(xw.small) == 1);
    OK(wm_op_close(xw.small, taken));
    OK(host_call(small_oo, v, 2, NULL, NULL, NULL)); /* room again */
    CHECK(wm_module_handle_count(xw.small) == 2);
    /* a torn-down module: its handles closed, and calls into it trap (the
     * caller's fault: here the host's, which Python never lets happen) */
    maps = stats(b).maps;
    wm_module_teardown(xw.small);
    CHECK(wm_module_handle_count(xw.small) == 0 && stats(b).maps == maps - 2);
    void *t;
    h = new_map(host);
    v[0].lo = h, v[1].lo = h;
    OK(host_call(small_oo, v, 2, NULL, &t, NULL));
    expect_trap(t, "torn down", host);
    CHECK(into_small.calls == 1 && wm_broker_map_id(b, host, h) != 0); /* nothing passed */
    /* and an unresolved link: "not loaded" */
    wm_link_unresolve(own);
    v[0].lo = h;
    OK(host_call(own, v, 1, NULL, &t, NULL));
    expect_trap(t, "not loaded", host);
    CHECK(wm_broker_map_id(b, host, h) != 0);
    xworld_free();
}

/* --- results, traps and where they begin ------------------------------------- */

void test_results(void)
{
    xworld_new(22);
    wm_module *host = xw.host, *a = xw.a, *c = xw.c;
    wm_broker *b = xw.b;
    uint32_t n, give = 0;
    wm_val_raw v[2] = {{0}};
    void *t;

    /* own: the result moves from the callee to the caller */
    xexport giver = {.body = body_return, .m = a, .ctx = &give};
    wm_link *give_own = xlink(host, &giver, 0, 1, (const uint8_t[]){WM_PASS_OWN});
    give = new_map(a);
    set_str(a, give, "k", "from a");
    uint64_t id = wm_broker_map_id(b, a, give);
    OK(host_call(give_own, v, 1, NULL, NULL, NULL));
    uint32_t got = (uint32_t)v[0].lo;
    CHECK(wm_broker_map_id(b, host, got) == id && rights_of(host, got) == RW);
    EXPECT(wm_op_len(a, give, &n), WM_STALE);
    expect_value(host, got, "k", "from a");
    /* share and share:r: both keep one */
    wm_link *give_share = xlink(host, &giver, 0, 1, (const uint8_t[]){WM_PASS_SHARE});
    wm_link *give_share_r =
        xlink(host, &giver, 0, 1, (const uint8_t[]){WM_PASS_SHARE | WM_PASS_READONLY});
    give = new_map(a);
    OK(host_call(give_share, v, 1, NULL, NULL, NULL));
    uint32_t s1 = (uint32_t)v[0].lo;
    OK(host_call(give_share_r, v, 1, NULL, NULL, NULL));
    uint32_t s2 = (uint32_t)v[0].lo;
    CHECK(rights_of(host, s1) == RW && rights_of(host, s2) == R && rights_of(a, give) == RW);
    CHECK(wm_broker_map_id(b, host, s1) == wm_broker_map_id(b, a, give));
    OK(wm_op_close(a, give));
    OK(wm_op_close(host, s1));
    set_str(host, got, "s2", "alive");
    OK(wm_op_close(host, s2));
    CHECK(stats(b).maps == 1);

    /* a result that is not a handle the callee may pass: the callee traps */
    uint32_t dead = new_map(a);
    OK(wm_op_close(a, dead));
    give = dead;
    OK(host_call(give_own, v, 1, NULL, &t, NULL));
    expect_trap(t, "STALE", a);
    give = 0;
    OK(host_call(give_share, v, 1, NULL, &t, NULL));
    expect_trap(t, "BADF", a);
    CHECK(wm_module_handle_count(host) == 1);

    /* a lent handle goes back as share (results pass before borrows end),
     * never as own */
    xexport lent_back = {.body = body_return_lent, .m = c};
    wm_link *borrow_share =
        xlink(host, &lent_back, 1, 1, (const uint8_t[]){WM_PASS_BORROW, WM_PASS_SHARE});
    wm_link *borrow_own =
        xlink(host, &lent_back, 1, 1, (const uint8_t[]){WM_PASS_BORROW, WM_PASS_OWN});
    v[0].lo = got;
    OK(host_call(borrow_share, v, 1, NULL, NULL, NULL));
    uint32_t back = (uint32_t)v[0].lo;
    CHECK(back != got && wm_broker_map_id(b, host, back) == id && !is_borrowed(host, back));
    CHECK(wm_module_handle_count(c) == 0); /* its borrowed handle ended after the result */
    OK(wm_op_close(host, back));
    v[0].lo = got;
    OK(host_call(borrow_own, v, 1, NULL, &t, NULL));
    expect_trap(t, "ACCES", c);
    CHECK(wm_module_handle_count(c) == 0 && wm_broker_map_id(b, host, got) == id);
    OK(wm_op_close(host, got)); /* not busy: the borrow ended with the trap */

    /* a caller whose table is full cannot take a result: the caller traps */
    give = new_map(a);
    wm_link *small_give = xlink(xw.small, &giver, 0, 1, (const uint8_t[]){WM_PASS_OWN});
    new_map(xw.small);
    new_map(xw.small);
    wt_val_raw gv[1] = {{0}};
    t = guest_link_call(small_give, gv, 1);
    expect_trap(t, "QUOTA", xw.small);
    CHECK(wm_broker_map_id(b, a, give) != 0); /* still a's: nothing moved */
    xworld_free();
}

/* A guest's view of a nested call: `ctx` holds the link to call and its
 * arguments; the trap, if any, goes up as the guest's own. */
