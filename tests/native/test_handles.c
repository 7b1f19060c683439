/* test_handles.c: the broker and module lifecycle, handles, names and grants,
 * handle generations, modules. */
#include "harness.h"

/* --- lifecycle ---------------------------------------------------------- */

void test_lifecycle(void)
{
    wm_broker_free(NULL);
    CHECK(wm_sizeof_wasmtime_val_raw() == 16);
    CHECK(wm_sizeof_wasmtime_memory() > 0 && wm_sizeof_wasmtime_func() > 0);
    CHECK(wm_sizeof_wasmtime_extern() > 0);
    CHECK(wm_abi_count() == WM_ABI_COUNT);
    for (size_t i = 0; i < wm_abi_count(); i++)
        CHECK(wm_abi_name(i) != NULL && wm_abi_name(i)[0] != '\0');
    CHECK(wm_abi_name(wm_abi_count()) == NULL);

    /* an empty broker */
    wm_broker *b = new_broker(1);
    wm_module *host = wm_broker_host(b);
    CHECK(wm_module_id(host) == 0);
    wm_stats s = stats(b);
    CHECK(s.maps == 0 && s.named == 0 && s.entries == 0);
    wm_broker_free(b);

    /* a broker freed with everything still live: handles, names, grants, entries */
    b = new_broker(2);
    host = wm_broker_host(b);
    wm_limits l = default_limits();
    wm_module *m = wm_module_new(b, &l, "m");
    CHECK(m != NULL && wm_module_id(m) == 1);
    OK(wm_module_grant(m, KEY("shared"), RW));
    uint32_t h;
    OK(wm_op_open(m, KEY("shared"), RW, &h));
    set_str(m, h, "k", "v");
    uint32_t a = new_map(host);
    set_str(host, a, "x", "y");
    OK(wm_op_set_map(host, a, KEY("shared"), new_map(host)));
    s = stats(b);
    CHECK(s.maps == 2 && s.named == 1 && s.entries == 3);
    wm_broker_free(b);
}

/* --- handles ------------------------------------------------------------ */

void test_handles(void)
{
    wm_broker *b = new_broker(3);
    wm_module *host = wm_broker_host(b);
    wm_limits l = default_limits();
    wm_module *m = wm_module_new(b, &l, "m");

    uint32_t h1 = new_map(host);
    CHECK(h1 >> WM_HANDLE_INDEX_BITS == 1); /* first issue of slot 0: generation 1 */
    CHECK(wm_broker_map_id(b, host, h1) != 0);
    CHECK(wm_module_handle_count(host) == 1);
    uint64_t id1 = wm_broker_map_id(b, host, h1);

    OK(wm_op_close(host, h1));
    EXPECT(wm_op_close(host, h1), WM_STALE);
    CHECK(wm_broker_map_id(b, host, h1) == 0);
    EXPECT(wm_op_close(host, 0), WM_BADF);
    EXPECT(wm_op_close(host, h1 | 0x80000000u), WM_BADF);
    EXPECT(wm_op_close(host, h1 + GEN_UNIT), WM_BADF); /* generation not reached */
    EXPECT(wm_op_close(host, GEN_UNIT | 5), WM_BADF);  /* index never used */
    EXPECT(wm_op_close(host, 0xFFFFFFFFu), WM_BADF);
    EXPECT(wm_op_close(host, (WM_HANDLE_MAX_GEN + 1) << WM_HANDLE_INDEX_BITS), WM_BADF);
    CHECK(stats(b).maps == 0);

    uint32_t h2 = new_map(host); /* slot 0 again, generation 2 */
    CHECK(h2 == (2u << WM_HANDLE_INDEX_BITS));
    CHECK(wm_broker_map_id(b, host, h2) != id1); /* ids are never reused */
    uint32_t n;
    EXPECT(wm_op_len(host, h1, &n), WM_STALE);
    EXPECT(wm_op_close(m, h2), WM_BADF); /* handles are per module */

    /* clone: rights must be a subset; unknown bits are INVAL before the handle */
    uint32_t out = SENTINEL32, hr, h0, h00;
    EXPECT(wm_op_clone(host, h2, 4, &out), WM_INVAL);
    EXPECT(wm_op_clone(host, h1, 8, &out), WM_INVAL);
    EXPECT(wm_op_clone(host, h1, R, &out), WM_STALE);
    CHECK(out == SENTINEL32);
    OK(wm_op_clone(host, h2, R, &hr));
    EXPECT(wm_op_clone(host, hr, RW, &out), WM_ACCES);
    EXPECT(wm_op_clone(host, hr, W, &out), WM_ACCES);
    CHECK(out == SENTINEL32);
    OK(wm_op_clone(host, hr, 0, &h0));
    OK(wm_op_clone(host, h0, 0, &h00));
    EXPECT(wm_op_clone(host, h0, R, &out), WM_ACCES);
    CHECK(wm_broker_map_id(b, host, hr) == wm_broker_map_id(b, host, h2));
    CHECK(wm_broker_map_id(b, host, h00) == wm_broker_map_id(b, host, h2));
    CHECK(wm_module_handle_count(host) == 4);

    /* rights 0: keeps the map alive and nothing else */
    uint8_t buf[8];
    uint32_t len;
    uint64_t v;
    int64_t i64;
    EXPECT(wm_op_get(host, h0, KEY("k"), buf, sizeof buf, &len), WM_ACCES);
    EXPECT(wm_op_set(host, h0, KEY("k"), S("v"), 1), WM_ACCES);
    EXPECT(wm_op_len(host, h0, &n), WM_ACCES);
    EXPECT(wm_op_version(host, h0, KEY("k"), &v), WM_ACCES);
    EXPECT(wm_op_incr(host, h0, KEY("k"), 1, &i64), WM_ACCES);
    OK(wm_op_close(host, h2));
    OK(wm_op_close(host, hr));
    OK(wm_op_close(host, h0));
    CHECK(stats(b).maps == 1); /* h00 still holds it */
    OK(wm_op_close(host, h00));
    CHECK(stats(b).maps == 0);
    CHECK(wm_module_handle_count(host) == 0);

    /* order of checks: the handle before rights, rights before sizes */
    wm_limits small = limits(4, 4, 16, 1000, 1000);
    wm_module *s = wm_module_new(b, &small, "m");
    uint32_t hs = new_map(s), hsr, dead = new_map(s);
    OK(wm_op_close(s, dead));
    OK(wm_op_clone(s, hs, R, &hsr));
    EXPECT(wm_op_set(s, dead, KEY("toolong"), S("v"), 1), WM_STALE);
    EXPECT(wm_op_set(s, hsr, KEY("toolong"), S("v"), 1), WM_ACCES);
    EXPECT(wm_op_set(s, hs, KEY("toolong"), S("v"), 1), WM_TOOBIG);
    EXPECT(wm_op_get(s, hsr, KEY("toolong"), buf, sizeof buf, &len), WM_TOOBIG);

    /* close_all closes everything, and the maps go */
    for (int i = 0; i < 10; i++)
        OK(wm_op_clone(s, hs, R, &out));
    CHECK(wm_module_handle_count(s) == 12);
    wm_module_teardown(s);
    CHECK(wm_module_handle_count(s) == 0);
    EXPECT(wm_op_close(s, hs), WM_STALE);
    EXPECT(wm_op_len(s, out, &n), WM_STALE);
    CHECK(stats(b).maps == 0);
    wm_module_teardown(s); /* idempotent */
    uint32_t again = new_map(s);
    CHECK(wm_module_handle_count(s) == 1 && again != hs);
    wm_broker_free(b);
}

/* --- names and grants --------------------------------------------------- */

void test_names(void)
{
    wm_broker *b = new_broker(4);
    wm_module *host = wm_broker_host(b);
    wm_limits l = default_limits();
    wm_module *m = wm_module_new(b, &l, "m");
    uint32_t h, h2, out = SENTINEL32;

    OK(wm_op_open(host, KEY("alpha"), RW, &h));
    OK(wm_op_open(host, KEY("alpha"), R, &h2));
    CHECK(h != h2 && wm_broker_map_id(b, host, h) == wm_broker_map_id(b, host, h2));
    CHECK(stats(b).named == 1 && stats(b).maps == 0);
    set_str(host, h, "k", "v");
    OK(wm_op_close(host, h));
    OK(wm_op_close(host, h2));
    CHECK(stats(b).named == 1); /* a name lives as long as the broker */
    OK(wm_op_open(host, KEY("alpha"), RW, &h));
    expect_value(host, h, "k", "v");

    /* names are UTF-8, at most 1024 bytes; rights are READ|WRITE */
    static const char *bad[] = {"\xff", "a\x80", "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80",
                                "\xed\xa0\x80", "\xe2\x82", "\xf4\x90\x80\x80",
                                "\xf0\x9f\x98", "\xf8\x88\x80\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        EXPECT(wm_op_open(host, KEY(bad[i]), RW, &out), WM_INVAL);
    OK(wm_op_open(host, KEY("\xf0\x9f\x98\x80 caf\xc3\xa9 \xe2\x82\xac"), RW, &out));
    EXPECT(wm_op_open(host, KEY("alpha"), 4, &out), WM_INVAL);
    EXPECT(wm_op_open(host, EMPTY, 0, RW, &out), WM_INVAL); /* names are 1..1024 bytes */
    static uint8_t longname[1025];
    memset(longname, 'n', sizeof longname);
    OK(wm_op_open(host, longname, 1024, R, &out));
    EXPECT(wm_op_open(host, longname, 1025, R, &out), WM_INVAL);
    /* a name that is a prefix of another is another name */
    OK(wm_op_open(host, longname, 1023, R, &out));
    CHECK(wm_broker_map_id(b, host, out) != 0);
    CHECK(stats(b).named == 4);

    /* modules open only what they were granted, with at most its rights */
    out = SENTINEL32;
    EXPECT(wm_op_open(m, KEY("alpha"), R, &out), WM_ACCES);
    EXPECT(wm_module_grant(m, KEY("alpha"), 4), WM_INVAL);
    EXPECT(wm_module_grant(m, longname, 1025, R), WM_INVAL);
    EXPECT(wm_module_grant(m, EMPTY, 0, R), WM_INVAL);
    OK(wm_module_grant(m, KEY("alpha"), R));
    EXPECT(wm_op_open(m, KEY("alpha"), RW, &out), WM_ACCES);
    EXPECT(wm_op_open(m, KEY("alph"), R, &out), WM_ACCES);
    EXPECT(wm_op_open(m, KEY("alpha"), 5, &out), WM_INVAL);
    CHECK(out == SENTINEL32);
    OK(wm_op_open(m, KEY("alpha"), R, &out));
    expect_value(m, out, "k", "v");
    EXPECT(wm_op_set(m, out, KEY("k"), S("w"), 1), WM_ACCES);
    OK(wm_module_grant(m, KEY("alpha"), RW)); /* a second grant replaces the first */
    OK(wm_op_open(m, KEY("alpha"), RW, &out));
    set_str(m, out, "k", "w");
    expect_value(host, h, "k", "w");
    OK(wm_module_grant(m, KEY("alpha"), 0));
    EXPECT(wm_op_open(m, KEY("alpha"), R, &h2), WM_ACCES);
    OK(wm_op_open(m, KEY("alpha"), 0, &h2));
    for (int i = 0; i < 50; i++) { /* many grants: the grant table grows */
        char name[32];
        snprintf(name, sizeof name, "g%d", i);
        OK(wm_module_grant(m, KEY(name), (uint32_t)i % 4));
    }
    OK(wm_op_open(m, KEY("g7"), RW, &h2));
    EXPECT(wm_op_open(m, KEY("g5"), W, &h2), WM_ACCES);
    for (int i = 0; i < 40; i++) { /* many names: the name table grows */
        char name[32];
        snprintf(name, sizeof name, "name-%d", i);
        OK(wm_op_open(host, KEY(name), RW, &out));
        OK(wm_op_close(host, out));
    }
    CHECK(stats(b).named == 45);

    /* many grants and names: each found (an index, not a scan) */
    {
        wm_limits many = default_limits();
        wm_module *g = wm_module_new(b, &many, "grants");
        char name[32];
        for (int i = 0; i < 20000; i++) {
            snprintf(name, sizeof name, "grant-%d", i);
            OK(wm_module_grant(g, KEY(name), i % 3 == 0 ? R : RW));
        }
        OK(wm_module_grant(g, KEY("grant-0"), RW)); /* replaces, not adds */
        for (int i = 0; i < 20000; i += 7) {
            snprintf(name, sizeof name, "grant-%d", i);
            uint32_t gh;
            EXPECT(wm_op_open(g, KEY(name), RW, &gh), i % 3 == 0 && i ? WM_ACCES : WM_OK);
            OK(wm_op_open(g, KEY(name), R, &gh));
            OK(wm_op_open(host, KEY(name), R, &out)); /* the same named map */
            CHECK(wm_broker_map_id(b, g, gh) == wm_broker_map_id(b, host, out));
            OK(wm_op_close(host, out));
        }
        EXPECT(wm_op_open(g, KEY("grant-20000"), R, &out), WM_ACCES);
        EXPECT(wm_op_open(g, KEY("grant-"), R, &out), WM_ACCES);
        CHECK(wm_broker_check(b) == 0);
    }
    wm_broker_free(b);
}

/* --- handle generations ------------------------------------------------- */

void test_generations(void)
{
    wm_broker *b = new_broker(9);
    wm_limits l = default_limits();
    wm_module *m = wm_module_new(b, &l, "m");
    uint32_t keep = new_map(m); /* slot 0 stays live throughout */
    CHECK((keep & (GEN_UNIT - 1)) == 0);
    uint32_t issued[WM_HANDLE_MAX_GEN + 1];

    /* slot 1: issued 1023 times, then retired */
    for (uint32_t g = 1; g <= WM_HANDLE_MAX_GEN; g++) {
        uint32_t h;
        OK(wm_op_clone(m, keep, RW, &h));
        CHECK(h == (g << WM_HANDLE_INDEX_BITS | 1));
        if (g < WM_HANDLE_MAX_GEN)
            EXPECT(wm_op_close(m, h + GEN_UNIT), WM_BADF); /* not issued yet */
        OK(wm_op_close(m, h));
        issued[g] = h;
    }
    uint32_t h, n;
    OK(wm_op_clone(m, keep, RW, &h));
    CHECK(h == (1u << WM_HANDLE_INDEX_BITS | 2)); /* slot 1 retired: a fresh slot */
    for (uint32_t g = 1; g <= WM_HANDLE_MAX_GEN; g++) {
        EXPECT(wm_op_close(m, issued[g]), WM_STALE);
        EXPECT(wm_op_len(m, issued[g], &n), WM_STALE);
    }
    EXPECT(wm_op_close(m, h + GEN_UNIT), WM_BADF);
    EXPECT(wm_op_close(m, (WM_HANDLE_MAX_GEN + 1) << WM_HANDLE_INDEX_BITS | 1), WM_BADF);
    CHECK(wm_module_handle_count(m) == 2);
    /* new/open/get_map reuse the free list the same way */
    OK(wm_op_close(m, h));
    OK(wm_op_set_map(m, keep, KEY("self"), keep));
    for (int i = 0; i < 3000; i++) {
        uint32_t a, c;
        OK(wm_op_new(m, &a));
        OK(wm_op_get_map(m, keep, KEY("self"), &c));
        CHECK(a >> WM_HANDLE_INDEX_BITS >= 1 && c >> WM_HANDLE_INDEX_BITS >= 1);
        CHECK(a < 0x80000000u && c < 0x80000000u);
        OK(wm_op_close(m, a));
        OK(wm_op_close(m, c));
    }
    CHECK(wm_module_handle_count(m) == 1);

    /* the host's index space: 2^21 live handles, then QUOTA */
    wm_module *host = wm_broker_host(b);
    uint32_t root = new_map(host), last = 0, out = SENTINEL32;
    for (uint32_t i = 1; i < WM_HANDLE_MAX_SLOTS; i++)
        OK(wm_op_clone(host, root, R, &last));
    CHECK(wm_module_handle_count(host) == WM_HANDLE_MAX_SLOTS);
    CHECK((last & (GEN_UNIT - 1)) == WM_HANDLE_MAX_SLOTS - 1);
    EXPECT(wm_op_clone(host, root, R, &out), WM_QUOTA);
    EXPECT(wm_op_new(host, &out), WM_QUOTA);
    EXPECT(wm_op_open(host, KEY("n"), R, &out), WM_QUOTA);
    CHECK(out == SENTINEL32);
    uint32_t slot = last;
    for (uint32_t g = 1; g < WM_HANDLE_MAX_GEN; g++) { /* spend slot `last` */
        OK(wm_op_close(host, slot));
        OK(wm_op_clone(host, root, R, &slot));
        CHECK((slot & (GEN_UNIT - 1)) == (last & (GEN_UNIT - 1)));
    }
    CHECK(slot >> WM_HANDLE_INDEX_BITS == WM_HANDLE_MAX_GEN);
    OK(wm_op_close(host, slot));
    CHECK(wm_module_handle_count(host) == WM_HANDLE_MAX_SLOTS - 1);
    /* the host's table wraps (MapRefs never use a stale number): the spent
     * slot starts again at generation 1 instead of being retired */
    OK(wm_op_clone(host, root, R, &out));
    CHECK(out == (GEN_UNIT | (last & (GEN_UNIT - 1))));
    EXPECT(wm_op_new(host, &out), WM_QUOTA); /* full again */
    wm_module_teardown(host);
    CHECK(wm_module_handle_count(host) == 0);
    OK(wm_op_new(host, &out)); /* closed slots are free again */
    wm_broker_free(b);
}

void test_modules(void)
{
    wm_broker *b = new_broker(11);
    wm_limits l = limits(16, 16, 4, 1000, 10);
    wm_module *last = NULL;
    for (uint32_t i = 1; i < 65535; i++) {
        wm_module *m = wm_module_new(b, &l, "m");
        CHECK(m != NULL && wm_module_id(m) == i);
        last = m;
    }
    CHECK(wm_module_new(b, &l, "m") == NULL);
    OK(wm_module_grant(last, KEY("last"), RW));
    uint32_t h, hh;
    OK(wm_op_open(last, KEY("last"), RW, &h));
    set_str(last, h, "k", "v"); /* account 65534 */
    OK(wm_op_open(wm_broker_host(b), KEY("last"), RW, &hh));
    OK(wm_op_delete(wm_broker_host(b), hh, KEY("k")));
    CHECK(wm_module_entries_used(last) == 0);
    wm_broker_free(b);
}

