/* test_batches.c: batches (get_many, set_many) and quotas. */
#include "harness.h"

/* --- batches ------------------------------------------------------------ */

void test_batches(void)
{
    wm_broker *b = new_broker(7);
    wm_module *host = wm_broker_host(b);
    uint32_t h = new_map(host), used;
    bytes items = {0}, keys = {0};

    /* set_many: later items win; the empty batch is OK */
    put_rec_str(&items, "a");
    put_rec_str(&items, "1");
    put_rec_str(&items, "b");
    put_rec_str(&items, "22");
    put_rec_str(&items, "a");
    put_rec_str(&items, "333");
    put_rec_str(&items, "");
    put_rec_str(&items, "");
    OK(wm_op_set_many(host, h, items.p, (uint32_t)items.len));
    OK(wm_op_set_many(host, h, EMPTY, 0));
    CHECK(map_len(host, h) == 3);
    expect_value(host, h, "a", "333");
    expect_value(host, h, "b", "22");
    expect_value(host, h, "", "");

    /* get_many: values in order, absent as 0xFFFFFFFF */
    put_rec_str(&keys, "a");
    put_rec_str(&keys, "missing");
    put_rec_str(&keys, "b");
    put_rec_str(&keys, "");
    put_rec_str(&keys, "a");
    uint8_t buf[128];
    memset(buf, 0xAA, sizeof buf);
    uint32_t need = 4 + 3 + 4 + 4 + 2 + 4 + 0 + 4 + 3;
    EXPECT(wm_op_get_many(host, h, keys.p, (uint32_t)keys.len, buf, need - 1, &used), WM_RANGE);
    CHECK(used == need && buf[0] == 0xAA);
    EXPECT(wm_op_get_many(host, h, keys.p, (uint32_t)keys.len, NOWHERE, 0, &used), WM_RANGE);
    CHECK(used == need);
    OK(wm_op_get_many(host, h, keys.p, (uint32_t)keys.len, buf, sizeof buf, &used));
    CHECK(used == need && buf[need] == 0xAA);
    static const uint8_t want[] = {3, 0, 0, 0, '3', '3', '3', 0xff, 0xff, 0xff, 0xff,
                                   2, 0, 0, 0, '2', '2', 0, 0, 0, 0, 3, 0, 0, 0, '3', '3', '3'};
    CHECK(sizeof want == need && memcmp(buf, want, need) == 0);
    used = SENTINEL32;
    OK(wm_op_get_many(host, h, EMPTY, 0, NOWHERE, 0, &used));
    CHECK(used == 0);

    /* the key list and the output may not overlap */
    uint8_t both[256];
    CHECK(keys.len == 30);
    memcpy(both, keys.p, keys.len); /* keys at [0, 30) */
    EXPECT(wm_op_get_many(host, h, both, 30, both + 29, 64, &used), WM_INVAL);
    EXPECT(wm_op_get_many(host, h, both + 1, 29, both, 2, &used), WM_INVAL); /* malformed too */
    OK(wm_op_get_many(host, h, both, 30, both + 30, 64, &used)); /* adjacent */
    CHECK(used == need && memcmp(both + 30, want, need) == 0);
    memcpy(both + 64, keys.p, keys.len); /* keys at [64, 94) */
    EXPECT(wm_op_get_many(host, h, both + 64, 30, both, 65, &used), WM_INVAL);
    EXPECT(wm_op_get_many(host, h, both + 64, 30, both + 93, 100, &used), WM_INVAL);
    OK(wm_op_get_many(host, h, both + 64, 30, both, 64, &used));
    CHECK(used == need && memcmp(both, want, need) == 0);

    /* malformed batches: INVAL before the handle, and nothing changes */
    uint64_t va = version_of(host, h, "a");
    struct {
        const uint8_t *p;
        uint32_t len;
    } bad[] = {
        {S("\x01\x00\x00"), 3},                                  /* truncated length */
        {S("\x05\x00\x00\x00" "abcd"), 8},                        /* truncated bytes */
        {S("\x01\x00\x00\x00" "a"), 5},                           /* key, no value */
        {S("\x01\x00\x00\x00" "a" "\x02\x00\x00\x00" "x"), 10},   /* short value */
        {S("\x01\x00\x00\x00" "a" "\x01\x00\x00\x00" "x" "\x00"), 11}, /* trailing byte */
        {S("\xff\xff\xff\xff" "abcd"), 8},                        /* huge length */
        {S("\x01\x00\x00\x00" "a" "\xfc\xff\xff\xff" "x"), 10},   /* huge value length */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EXPECT(wm_op_set_many(host, h, bad[i].p, bad[i].len), WM_INVAL);
        EXPECT(wm_op_set_many(host, 999, bad[i].p, bad[i].len), WM_INVAL);
    }
    EXPECT(wm_op_get_many(host, h, S("\x01\x00\x00"), 3, buf, sizeof buf, &used), WM_INVAL);
    EXPECT(wm_op_get_many(host, h, S("\x04\x00\x00\x00" "abc"), 7, buf, sizeof buf, &used),
           WM_INVAL);
    EXPECT(wm_op_get_many(host, h, S("\xff\xff\xff\xff" "abcd"), 8, buf, sizeof buf, &used),
           WM_INVAL);
    EXPECT(wm_op_get_many(host, h, S("\x01\x00\x00\x00" "a" "\x00"), 6, buf, sizeof buf, &used),
           WM_INVAL);
    EXPECT(wm_op_get_many(host, 999, S("\x01\x00\x00"), 3, buf, sizeof buf, &used), WM_INVAL);
    EXPECT(wm_op_get_many(host, 999, keys.p, (uint32_t)keys.len, buf, sizeof buf, &used),
           WM_BADF);
    CHECK(map_len(host, h) == 3 && version_of(host, h, "a") == va);

    /* rights */
    uint32_t hr, hw;
    OK(wm_op_clone(host, h, R, &hr));
    OK(wm_op_clone(host, h, W, &hw));
    EXPECT(wm_op_set_many(host, hr, items.p, (uint32_t)items.len), WM_ACCES);
    EXPECT(wm_op_get_many(host, hw, keys.p, (uint32_t)keys.len, buf, sizeof buf, &used), WM_ACCES);
    OK(wm_op_set_many(host, hw, items.p, (uint32_t)items.len));

    /* a map reference under any key: TYPE for the whole get_many */
    uint32_t child = new_map(host);
    OK(wm_op_set_map(host, h, KEY("b"), child));
    used = SENTINEL32;
    EXPECT(wm_op_get_many(host, h, keys.p, (uint32_t)keys.len, buf, sizeof buf, &used), WM_TYPE);
    CHECK(used == SENTINEL32);
    /* set_many over a reference releases it */
    OK(wm_op_close(host, child));
    CHECK(stats(b).maps == 2);
    OK(wm_op_set_many(host, h, items.p, (uint32_t)items.len));
    CHECK(stats(b).maps == 1);
    OK(wm_op_get_many(host, h, keys.p, (uint32_t)keys.len, buf, sizeof buf, &used));

    /* limits: all or nothing */
    wm_limits small = limits(8, 16, 64, 1000, 4);
    wm_module *m = wm_module_new(b, &small, "m");
    uint32_t hm = new_map(m);
    bytes big = {0};
    put_rec_str(&big, "x");
    put_rec_str(&big, "1");
    put_rec_str(&big, "toolongkey");
    put_rec_str(&big, "1");
    EXPECT(wm_op_set_many(m, hm, big.p, (uint32_t)big.len), WM_TOOBIG);
    big.len = 0;
    put_rec_str(&big, "x");
    put_rec_str(&big, "1");
    put_rec_str(&big, "y");
    put_rec_str(&big, "0123456789abcdefg");
    EXPECT(wm_op_set_many(m, hm, big.p, (uint32_t)big.len), WM_TOOBIG);
    EXPECT(wm_op_get_many(m, hm, big.p, 4 + 1 + 4 + 1 + 4 + 1, buf, sizeof buf, &used), WM_OK);
    EXPECT(wm_op_get_many(m, hm, S("\x09\x00\x00\x00" "123456789"), 13, buf, sizeof buf, &used),
           WM_TOOBIG);
    big.len = 0;
    for (int i = 0; i < 5; i++) { /* 5 entries over an entries quota of 4 */
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        put_rec_str(&big, k);
        put_rec_str(&big, "v");
    }
    EXPECT(wm_op_set_many(m, hm, big.p, (uint32_t)big.len), WM_QUOTA);
    CHECK(map_len(m, hm) == 0 && wm_module_entries_used(m) == 0);
    OK(wm_op_set_many(m, hm, big.p, (uint32_t)big.len - 2 * 4 - 2 - 1)); /* minus k4 = v */
    CHECK(map_len(m, hm) == 4 && wm_module_entries_used(m) == 4);
    CHECK(wm_module_bytes_used(m) == WM_MAP_COST + 4 * (3 + WM_ENTRY_COST));
    /* documented: overwrites near the quota count as new entries */
    big.len = 0;
    put_rec_str(&big, "k0");
    put_rec_str(&big, "w");
    EXPECT(wm_op_set_many(m, hm, big.p, (uint32_t)big.len), WM_QUOTA);
    set_str(m, hm, "k0", "w"); /* one by one it passes */

    /* a big batch round-trips */
    uint32_t hb = new_map(host);
    bytes many = {0}, many_keys = {0};
    enum { M = 10000 };
    for (int i = 0; i < M; i++) {
        char k[16], v[40];
        snprintf(k, sizeof k, "k%d", i);
        snprintf(v, sizeof v, "value-%d-%0*d", i, i % 23, 0);
        put_rec_str(&many, k);
        put_rec_str(&many, v);
        put_rec_str(&many_keys, k);
    }
    OK(wm_op_set_many(host, hb, many.p, (uint32_t)many.len));
    CHECK(map_len(host, hb) == M);
    uint32_t cap = (uint32_t)many.len;
    uint8_t *out = malloc(cap);
    OK(wm_op_get_many(host, hb, many_keys.p, (uint32_t)many_keys.len, out, cap, &used));
    CHECK(used == many.len - many_keys.len);
    uint32_t at = 0, kat = 0;
    for (int i = 0; i < M; i++) { /* compare value i with item i of the batch */
        uint32_t klen = rd32(many.p + kat);
        uint32_t vlen = rd32(many.p + kat + 4 + klen);
        CHECK(rd32(out + at) == vlen);
        CHECK(memcmp(out + at + 4, many.p + kat + 8 + klen, vlen) == 0);
        at += 4 + vlen;
        kat += 8 + klen + vlen;
    }
    free(out);
    free(many.p);
    free(many_keys.p);
    free(big.p);
    free(items.p);
    free(keys.p);
    wm_broker_free(b);
}

/* --- quotas ------------------------------------------------------------- */

void test_quotas(void)
{
    wm_broker *b = new_broker(10);
    wm_module *host = wm_broker_host(b);

    /* handles */
    wm_limits lh = limits(64, 64, 3, 1u << 20, 1000);
    wm_module *m = wm_module_new(b, &lh, "m");
    OK(wm_module_grant(m, KEY("named"), RW));
    uint32_t a = new_map(m), bb = new_map(m), c = new_map(m), out = SENTINEL32;
    OK(wm_op_set_map(m, a, KEY("b"), bb));
    EXPECT(wm_op_new(m, &out), WM_QUOTA);
    EXPECT(wm_op_clone(m, a, R, &out), WM_QUOTA);
    EXPECT(wm_op_open(m, KEY("named"), R, &out), WM_QUOTA);
    EXPECT(wm_op_get_map(m, a, KEY("b"), &out), WM_QUOTA);
    CHECK(out == SENTINEL32 && stats(b).maps == 3 && stats(b).named == 0);
    OK(wm_op_close(m, c));
    OK(wm_op_get_map(m, a, KEY("b"), &out));
    CHECK(wm_module_handle_count(m) == 3);

    /* bytes: the writer's live keys + values + WM_ENTRY_COST an entry, and
     * WM_MAP_COST for each map it made */
    enum { E = WM_ENTRY_COST, M = WM_MAP_COST };
    wm_limits lb = limits(64, 128, 100, 2 * M + E + 100, 1000);
    wm_module *q = wm_module_new(b, &lb, "m");
    uint32_t h = new_map(q), child = new_map(q);
    CHECK(wm_module_bytes_used(q) == 2 * M);
    static const uint8_t val[128];
    OK(wm_op_set(q, h, KEY("0123456789"), val, 80));
    CHECK(wm_module_bytes_used(q) == 2 * M + E + 90 && wm_module_entries_used(q) == 1);
    EXPECT(wm_op_set(q, h, KEY("k"), val, 10), WM_QUOTA);
    OK(wm_op_set(q, h, KEY("0123456789"), val, 90)); /* its own bytes come back first */
    CHECK(wm_module_bytes_used(q) == 2 * M + E + 100);
    EXPECT(wm_op_set(q, h, KEY("0123456789"), val, 91), WM_QUOTA);
    EXPECT(wm_op_set(q, h, EMPTY, 0, EMPTY, 0), WM_QUOTA); /* even an empty entry costs E */
    int64_t i64 = 7;
    EXPECT(wm_op_incr(q, h, KEY("n"), 1, &i64), WM_QUOTA);
    CHECK(i64 == 7);
    EXPECT(wm_op_set_map(q, h, KEY("c"), child), WM_QUOTA);
    EXPECT(wm_op_set_if(q, h, KEY("k"), val, 1, 0), WM_QUOTA);
    CHECK(wm_module_bytes_used(q) == 2 * M + E + 100 && wm_module_entries_used(q) == 1);
    OK(wm_op_delete(q, h, KEY("0123456789")));
    CHECK(wm_module_bytes_used(q) == 2 * M);
    OK(wm_op_set_map(q, h, KEY("c"), child));
    CHECK(wm_module_bytes_used(q) == 2 * M + E + 9);
    OK(wm_op_close(q, child));
    CHECK(wm_module_bytes_used(q) == 2 * M + E + 9); /* h keeps it: still charged */
    OK(wm_op_delete(q, h, KEY("c"))); /* the child goes, and its charge */
    CHECK(wm_module_bytes_used(q) == M);
    OK(wm_op_incr(q, h, KEY("n"), 1, &i64));
    CHECK(wm_module_bytes_used(q) == M + E + 9);

    /* entries */
    wm_limits le = limits(64, 64, 100, 1u << 20, 2);
    wm_module *e = wm_module_new(b, &le, "m");
    h = new_map(e);
    set_str(e, h, "a", "1");
    set_str(e, h, "b", "1");
    EXPECT(wm_op_set(e, h, KEY("c"), S("1"), 1), WM_QUOTA);
    set_str(e, h, "a", "overwrite");
    i64 = 0;
    EXPECT(wm_op_incr(e, h, KEY("n"), 1, &i64), WM_QUOTA);
    OK(wm_op_delete(e, h, KEY("b")));
    OK(wm_op_incr(e, h, KEY("n"), 1, &i64));
    OK(wm_op_incr(e, h, KEY("n"), 1, &i64)); /* an existing entry passes */
    CHECK(i64 == 2 && wm_module_entries_used(e) == 2);

    /* an entry is charged to its last writer */
    wm_limits l = default_limits();
    wm_module *x = wm_module_new(b, &l, "m"), *y = wm_module_new(b, &l, "m");
    uint32_t hx, hy, hh;
    OK(wm_module_grant(x, KEY("shared"), RW));
    OK(wm_module_grant(y, KEY("shared"), RW));
    OK(wm_op_open(x, KEY("shared"), RW, &hx));
    OK(wm_op_open(y, KEY("shared"), RW, &hy));
    OK(wm_op_open(host, KEY("shared"), RW, &hh));
    set_str(x, hx, "k", "1234");
    CHECK(wm_module_bytes_used(x) == 5 + E && wm_module_bytes_used(y) == 0);
    set_str(y, hy, "k", "12");
    CHECK(wm_module_bytes_used(x) == 0 && wm_module_entries_used(x) == 0);
    CHECK(wm_module_bytes_used(y) == 3 + E && wm_module_entries_used(y) == 1);
    OK(wm_op_incr(x, hx, KEY("n"), 1, &i64));
    OK(wm_op_incr(y, hy, KEY("n"), 1, &i64));
    CHECK(wm_module_bytes_used(x) == 0 && wm_module_bytes_used(y) == 3 + 9 + 2 * E);
    /* data outlives its writer's handles */
    wm_module_teardown(y);
    expect_value(host, hh, "k", "12");
    CHECK(wm_module_entries_used(y) == 2);
    OK(wm_op_delete(host, hh, KEY("k")));
    CHECK(wm_module_entries_used(y) == 1 && wm_module_bytes_used(y) == 9 + E);
    wm_broker_free(b);
}

/* At most 65535 modules (entries record their account in 16 bits). */
