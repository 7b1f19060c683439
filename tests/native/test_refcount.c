/* test_refcount.c: map references, the refcount table and reclaim, the collector. */
#include "harness.h"

/* --- map references and reclaim ----------------------------------------- */

void test_maps(void)
{
    wm_broker *b = new_broker(8);
    wm_module *host = wm_broker_host(b);
    uint32_t p = new_map(host), c = new_map(host), out = SENTINEL32, len, n;
    uint8_t buf[16];
    int64_t i64;
    uint64_t v;

    set_str(host, c, "x", "1");
    OK(wm_op_set_map(host, p, KEY("c"), c));
    OK(wm_op_close(host, c));
    CHECK(stats(b).maps == 2);
    /* a reference is a value for exists/len/version/keys, TYPE for the rest */
    OK(wm_op_exists(host, p, KEY("c"), &n));
    CHECK(n == 1 && map_len(host, p) == 1 && version_of(host, p, "c") > 0);
    EXPECT(wm_op_get(host, p, KEY("c"), buf, sizeof buf, &len), WM_TYPE);
    EXPECT(wm_op_incr(host, p, KEY("c"), 1, &i64), WM_TYPE);
    set_str(host, p, "bytes", "b");
    EXPECT(wm_op_get_map(host, p, KEY("bytes"), &out), WM_TYPE);
    EXPECT(wm_op_get_map(host, p, KEY("absent"), &out), WM_NOENT);
    CHECK(out == SENTINEL32);
    OK(wm_op_get_map(host, p, KEY("c"), &out));
    expect_value(host, out, "x", "1");
    OK(wm_op_close(host, out));
    OK(wm_op_delete(host, p, KEY("c"))); /* the last reference: reclaimed */
    CHECK(stats(b).maps == 1 && stats(b).entries == 1);

    /* the child must carry READ|WRITE; the parent needs WRITE */
    c = new_map(host);
    uint32_t cr, c0, pr, dead = new_map(host);
    OK(wm_op_close(host, dead));
    OK(wm_op_clone(host, c, R, &cr));
    OK(wm_op_clone(host, c, 0, &c0));
    OK(wm_op_clone(host, p, R, &pr));
    EXPECT(wm_op_set_map(host, p, KEY("c"), cr), WM_ACCES);
    EXPECT(wm_op_set_map(host, p, KEY("c"), c0), WM_ACCES);
    EXPECT(wm_op_set_map(host, p, KEY("c"), dead), WM_STALE);
    EXPECT(wm_op_set_map(host, p, KEY("c"), 0x7FFFFFFFu), WM_BADF);
    EXPECT(wm_op_set_map(host, pr, KEY("c"), c), WM_ACCES);
    EXPECT(wm_op_set_map(host, dead, KEY("c"), c), WM_STALE);
    /* order: both handles (BADF/STALE), then both handles' rights, then the key size */
    static uint8_t huge_key[5000];
    EXPECT(wm_op_set_map(host, pr, KEY("c"), dead), WM_STALE);
    EXPECT(wm_op_set_map(host, pr, KEY("c"), 0x7FFFFFFFu), WM_BADF);
    EXPECT(wm_op_set_map(host, p, huge_key, sizeof huge_key, dead), WM_STALE);
    EXPECT(wm_op_set_map(host, p, huge_key, sizeof huge_key, cr), WM_ACCES);
    EXPECT(wm_op_set_map(host, pr, huge_key, sizeof huge_key, c), WM_ACCES);
    EXPECT(wm_op_set_map(host, p, huge_key, sizeof huge_key, c), WM_TOOBIG);
    OK(wm_op_exists(host, p, KEY("c"), &n));
    CHECK(n == 0);

    /* get_map gives the parent handle's rights */
    OK(wm_op_set_map(host, p, KEY("c"), c));
    OK(wm_op_get_map(host, pr, KEY("c"), &out));
    EXPECT(wm_op_set(host, out, KEY("y"), S("1"), 1), WM_ACCES);
    EXPECT(wm_op_clone(host, out, RW, &n), WM_ACCES);
    OK(wm_op_close(host, out));

    /* rewriting the entry: same child, other child, bytes, set_if, back */
    OK(wm_op_set_map(host, p, KEY("c"), c)); /* same child: incref before release */
    OK(wm_op_close(host, c));
    OK(wm_op_close(host, cr));
    OK(wm_op_close(host, c0));
    CHECK(stats(b).maps == 2);
    OK(wm_op_get_map(host, p, KEY("c"), &c));
    OK(wm_op_set_map(host, p, KEY("c"), c)); /* again, now the only other ref is c */
    OK(wm_op_close(host, c));
    CHECK(stats(b).maps == 2);
    uint32_t d = new_map(host);
    OK(wm_op_set_map(host, p, KEY("c"), d)); /* replaces: the old child goes */
    OK(wm_op_close(host, d));
    CHECK(stats(b).maps == 2);
    set_str(host, p, "c", "now bytes"); /* replaces: d goes */
    CHECK(stats(b).maps == 1);
    d = new_map(host);
    OK(wm_op_set_map(host, p, KEY("bytes"), d)); /* bytes -> reference */
    OK(wm_op_close(host, d));
    v = version_of(host, p, "bytes");
    OK(wm_op_set_if(host, p, KEY("bytes"), S("b2"), 2, (int64_t)v)); /* reference -> bytes */
    CHECK(stats(b).maps == 1);
    expect_value(host, p, "bytes", "b2");
    OK(wm_op_incr(host, p, KEY("num"), 1, &i64));
    d = new_map(host);
    OK(wm_op_set_map(host, p, KEY("num"), d)); /* an 8-byte value -> reference */
    OK(wm_op_close(host, d));
    OK(wm_op_set_map(host, p, KEY("num"), p)); /* a reference to itself */
    CHECK(stats(b).maps == 1);
    OK(wm_op_delete(host, p, KEY("num")));
    CHECK(map_len(host, p) == 2);

    /* a chain of 100k maps goes at once, without recursion */
    enum { CHAIN = 100000 };
    uint32_t root = new_map(host), cur = root;
    for (int i = 0; i < CHAIN; i++) {
        uint32_t next = new_map(host);
        set_str(host, next, "payload", "some bytes");
        OK(wm_op_set_map(host, cur, KEY("next"), next));
        if (cur != root)
            OK(wm_op_close(host, cur));
        cur = next;
    }
    OK(wm_op_close(host, cur));
    CHECK(stats(b).maps == 1 + CHAIN + 1);
    OK(wm_op_close(host, root));
    CHECK(stats(b).maps == 1);
    CHECK(stats(b).entries == 2);

    /* the same chain built from the tail, reclaimed by a delete */
    uint32_t tail = new_map(host);
    for (int i = 0; i < CHAIN; i++) {
        uint32_t up = new_map(host);
        OK(wm_op_set_map(host, up, KEY("down"), tail));
        OK(wm_op_close(host, tail));
        tail = up;
    }
    OK(wm_op_set_map(host, p, KEY("chain"), tail));
    OK(wm_op_close(host, tail));
    CHECK(stats(b).maps == 1 + CHAIN + 1);
    OK(wm_op_delete(host, p, KEY("chain")));
    CHECK(stats(b).maps == 1);

    /* a wide tree, reclaimed by overwriting its root's entry */
    uint32_t tree = new_map(host);
    for (int i = 0; i < 20000; i++) {
        char k[16];
        snprintf(k, sizeof k, "c%d", i);
        uint32_t leaf = new_map(host);
        set_str(host, leaf, "v", k);
        OK(wm_op_set_map(host, tree, KEY(k), leaf));
        OK(wm_op_close(host, leaf));
    }
    OK(wm_op_set_map(host, p, KEY("tree"), tree));
    OK(wm_op_close(host, tree));
    CHECK(stats(b).maps == 20002);
    set_str(host, p, "tree", "gone");
    CHECK(stats(b).maps == 1);

    /* deletes give memory back (the table is rebuilt smaller), and a listing
     * begun before them goes on where it was */
    {
        uint32_t t = new_map(host);
        char k[16];
        for (int i = 0; i < 1000; i++) {
            snprintf(k, sizeof k, "t%d", i);
            set_str(host, t, k, "v");
        }
        uint64_t cursor = 0;
        uint8_t page[64];
        uint32_t used, count;
        OK(wm_op_keys(host, t, &cursor, page, sizeof page, &used, &count)); /* t0.. */
        CHECK(cursor != 0 && count > 0);
        for (int i = 0; i < 1000; i++) {
            if (i % 100 == 99)
                continue; /* t99, t199, ... stay */
            snprintf(k, sizeof k, "t%d", i);
            OK(wm_op_delete(host, t, KEY(k)));
        }
        uint32_t seen = 0;
        while (cursor) {
            OK(wm_op_keys(host, t, &cursor, page, sizeof page, &used, &count));
            seen += count;
        }
        CHECK(seen == 10 && map_len(host, t) == 10);
        expect_value(host, t, "t999", "v");
        for (int i = 99; i < 1000; i += 100) {
            snprintf(k, sizeof k, "t%d", i);
            OK(wm_op_delete(host, t, KEY(k)));
        }
        CHECK(map_len(host, t) == 0);
        set_str(host, t, "again", "v"); /* an emptied map takes writes again */
        expect_value(host, t, "again", "v");
        OK(wm_op_close(host, t));
    }

    /* accounting: entries in a reclaimed map are credited back to their writers */
    wm_limits l = default_limits();
    wm_module *m = wm_module_new(b, &l, "m");
    OK(wm_module_grant(m, KEY("shared"), RW));
    uint32_t shared_m, shared_h, mm = new_map(m);
    OK(wm_op_open(m, KEY("shared"), RW, &shared_m));
    OK(wm_op_open(host, KEY("shared"), RW, &shared_h));
    set_str(m, mm, "k", "12345");
    OK(wm_op_set_map(m, shared_m, KEY("m"), mm));
    CHECK(wm_module_bytes_used(m) == WM_MAP_COST + 6 + 9 + 2 * WM_ENTRY_COST &&
          wm_module_entries_used(m) == 2);
    OK(wm_op_close(m, mm));
    OK(wm_op_get_map(host, shared_h, KEY("m"), &out));
    set_str(host, out, "host", "h");
    OK(wm_op_close(host, out));
    OK(wm_op_delete(host, shared_h, KEY("m"))); /* reclaims mm */
    CHECK(wm_module_bytes_used(m) == 0 && wm_module_entries_used(m) == 0);

    /* cycles outlive their handles until the cycle collector; broker_free
     * must still free them (LeakSanitizer checks) */
    uint32_t self = new_map(host);
    set_str(host, self, "data", "cycle");
    OK(wm_op_set_map(host, self, KEY("me"), self));
    OK(wm_op_close(host, self));
    uint32_t x = new_map(host), y = new_map(host);
    OK(wm_op_set_map(host, x, KEY("y"), y));
    OK(wm_op_set_map(host, y, KEY("x"), x));
    OK(wm_op_close(host, x));
    OK(wm_op_close(host, y));
    ring_of(host, 1001, false);
    /* a named map holding references into a cycle */
    uint32_t z = new_map(host);
    OK(wm_op_set_map(host, z, KEY("z"), z));
    OK(wm_op_set_map(host, shared_h, KEY("z"), z));
    OK(wm_op_close(host, z));
    CHECK(stats(b).maps == 1 + 1 + 2 + 1001 + 1);
    wm_broker_free(b);
}

