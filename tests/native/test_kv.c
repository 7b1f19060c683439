/* test_kv.c: single-key operations and listing keys. */
#include "harness.h"

/* --- single-key operations ---------------------------------------------- */

void test_kv(void)
{
    wm_broker *b = new_broker(5);
    wm_module *host = wm_broker_host(b);
    uint32_t h = new_map(host), n, len;
    uint8_t buf[64];
    int64_t i64;
    uint64_t v;

    /* get: NOENT, RANGE (needed size, buffer untouched), OK */
    len = SENTINEL32;
    EXPECT(wm_op_get(host, h, KEY("a"), buf, sizeof buf, &len), WM_NOENT);
    CHECK(len == SENTINEL32);
    set_str(host, h, "a", "hello!");
    memset(buf, 0xAA, sizeof buf);
    EXPECT(wm_op_get(host, h, KEY("a"), buf, 5, &len), WM_RANGE);
    CHECK(len == 6 && buf[0] == 0xAA && buf[5] == 0xAA);
    OK(wm_op_get(host, h, KEY("a"), buf, 6, &len));
    CHECK(len == 6 && memcmp(buf, "hello!", 6) == 0 && buf[6] == 0xAA);
    EXPECT(wm_op_get(host, h, KEY("a"), NOWHERE, 0, &len), WM_RANGE);

    /* overwrite: same size in place, other sizes reallocated */
    set_str(host, h, "a", "HELLO!");
    expect_value(host, h, "a", "HELLO!");
    set_str(host, h, "a", "hi");
    expect_value(host, h, "a", "hi");
    set_str(host, h, "a", "a much longer value than before");
    expect_value(host, h, "a", "a much longer value than before");

    /* the empty key and the empty value */
    OK(wm_op_set(host, h, EMPTY, 0, EMPTY, 0));
    OK(wm_op_get(host, h, EMPTY, 0, NOWHERE, 0, &len));
    CHECK(len == 0);
    OK(wm_op_exists(host, h, EMPTY, 0, &n));
    CHECK(n == 1);
    CHECK(map_len(host, h) == 2);
    OK(wm_op_set(host, h, EMPTY, 0, S("x"), 1));
    expect_value(host, h, "", "x");
    OK(wm_op_delete(host, h, EMPTY, 0));
    OK(wm_op_exists(host, h, EMPTY, 0, &n));
    CHECK(n == 0);

    /* delete: OK when absent */
    OK(wm_op_delete(host, h, KEY("never")));
    OK(wm_op_delete(host, h, KEY("a")));
    OK(wm_op_delete(host, h, KEY("a")));
    CHECK(map_len(host, h) == 0);

    /* versions: one broker-wide counter, 0 = absent, never reused */
    CHECK(version_of(host, h, "k") == 0);
    set_str(host, h, "k", "1");
    uint64_t v1 = version_of(host, h, "k");
    set_str(host, h, "j", "1");
    uint64_t vj = version_of(host, h, "j");
    set_str(host, h, "k", "1");
    uint64_t v2 = version_of(host, h, "k");
    CHECK(v1 > 0 && vj > v1 && v2 > vj);
    OK(wm_op_delete(host, h, KEY("k")));
    CHECK(version_of(host, h, "k") == 0);
    set_str(host, h, "k", "1");
    CHECK(version_of(host, h, "k") > v2);

    /* set_if: compare the version (0 = absent) */
    EXPECT(wm_op_set_if(host, h, KEY("c"), S("1"), 1, 1), WM_CONFLICT);
    OK(wm_op_set_if(host, h, KEY("c"), S("1"), 1, 0));
    EXPECT(wm_op_set_if(host, h, KEY("c"), S("2"), 1, 0), WM_CONFLICT);
    v = version_of(host, h, "c");
    EXPECT(wm_op_set_if(host, h, KEY("c"), S("2"), 1, (int64_t)(v + 1)), WM_CONFLICT);
    EXPECT(wm_op_set_if(host, h, KEY("c"), S("2"), 1, -1), WM_CONFLICT);
    OK(wm_op_set_if(host, h, KEY("c"), S("22"), 2, (int64_t)v));
    expect_value(host, h, "c", "22");
    CHECK(version_of(host, h, "c") > v);

    /* incr: absent starts at 0, wraps, needs exactly 8 bytes */
    i64 = 7;
    OK(wm_op_incr(host, h, KEY("n"), 5, &i64));
    CHECK(i64 == 5);
    OK(wm_op_incr(host, h, KEY("n"), -7, &i64));
    CHECK(i64 == -2);
    OK(wm_op_set(host, h, KEY("n"), (const uint8_t *)&(int64_t){INT64_MAX}, 8));
    OK(wm_op_incr(host, h, KEY("n"), 1, &i64));
    CHECK(i64 == INT64_MIN);
    OK(wm_op_incr(host, h, KEY("n"), INT64_MIN, &i64));
    CHECK(i64 == 0);
    OK(wm_op_incr(host, h, KEY("n"), -1, &i64));
    OK(wm_op_incr(host, h, KEY("n"), INT64_MIN, &i64));
    CHECK(i64 == INT64_MAX);
    OK(wm_op_get(host, h, KEY("n"), buf, sizeof buf, &len));
    CHECK(len == 8 && memcmp(buf, &(int64_t){INT64_MAX}, 8) == 0);
    i64 = 7;
    EXPECT(wm_op_incr(host, h, KEY("c"), 1, &i64), WM_TYPE);
    OK(wm_op_set(host, h, KEY("c"), EMPTY, 0));
    EXPECT(wm_op_incr(host, h, KEY("c"), 1, &i64), WM_TYPE);
    CHECK(i64 == 7);

    /* rights per operation */
    uint32_t hr, hw;
    OK(wm_op_clone(host, h, R, &hr));
    OK(wm_op_clone(host, h, W, &hw));
    OK(wm_op_get(host, hr, KEY("n"), buf, sizeof buf, &len));
    EXPECT(wm_op_get(host, hw, KEY("n"), buf, sizeof buf, &len), WM_ACCES);
    EXPECT(wm_op_set(host, hr, KEY("n"), S("1"), 1), WM_ACCES);
    OK(wm_op_set(host, hw, KEY("w"), S("1"), 1));
    EXPECT(wm_op_delete(host, hr, KEY("w")), WM_ACCES);
    EXPECT(wm_op_exists(host, hw, KEY("w"), &n), WM_ACCES);
    EXPECT(wm_op_len(host, hw, &n), WM_ACCES);
    EXPECT(wm_op_version(host, hw, KEY("w"), &v), WM_ACCES);
    EXPECT(wm_op_incr(host, hr, KEY("i"), 1, &i64), WM_ACCES);
    EXPECT(wm_op_incr(host, hw, KEY("i"), 1, &i64), WM_ACCES);
    EXPECT(wm_op_set_if(host, hr, KEY("i"), S("1"), 1, 0), WM_ACCES);
    EXPECT(wm_op_set_if(host, hw, KEY("i"), S("1"), 1, 0), WM_ACCES);
    OK(wm_op_delete(host, hw, KEY("w")));

    /* size limits: every key argument, reads included */
    wm_limits small = limits(8, 16, 64, 1u << 20, 1000);
    wm_module *m = wm_module_new(b, &small, "m");
    uint32_t hm = new_map(m), out = SENTINEL32;
    static const uint8_t big[32] = {0};
    OK(wm_op_set(m, hm, big, 8, big, 16));
    EXPECT(wm_op_set(m, hm, big, 9, big, 1), WM_TOOBIG);
    EXPECT(wm_op_set(m, hm, big, 8, big, 17), WM_TOOBIG);
    EXPECT(wm_op_set_if(m, hm, big, 1, big, 17, 0), WM_TOOBIG);
    EXPECT(wm_op_get(m, hm, big, 9, buf, sizeof buf, &len), WM_TOOBIG);
    EXPECT(wm_op_exists(m, hm, big, 9, &n), WM_TOOBIG);
    EXPECT(wm_op_version(m, hm, big, 9, &v), WM_TOOBIG);
    EXPECT(wm_op_delete(m, hm, big, 9), WM_TOOBIG);
    EXPECT(wm_op_incr(m, hm, big, 9, 1, &i64), WM_TOOBIG);
    EXPECT(wm_op_set_map(m, hm, big, 9, hm), WM_TOOBIG);
    EXPECT(wm_op_get_map(m, hm, big, 9, &out), WM_TOOBIG);
    CHECK(out == SENTINEL32);
    CHECK(map_len(m, hm) == 1);

    /* outputs untouched on errors */
    n = SENTINEL32;
    v = SENTINEL64;
    i64 = (int64_t)SENTINEL64;
    EXPECT(wm_op_exists(host, 12345, KEY("x"), &n), WM_BADF);
    EXPECT(wm_op_len(host, 12345, &n), WM_BADF);
    EXPECT(wm_op_version(host, 12345, KEY("x"), &v), WM_BADF);
    EXPECT(wm_op_incr(host, 12345, KEY("x"), 1, &i64), WM_BADF);
    CHECK(n == SENTINEL32 && v == SENTINEL64 && i64 == (int64_t)SENTINEL64);
    wm_broker_free(b);
}

/* --- keys --------------------------------------------------------------- */

/* One page; returns the errno and appends the listed keys to `out`. */
static int keys_page(wm_module *m, uint32_t h, uint64_t *cursor, uint32_t cap, char (*out)[64],
                     uint32_t *n_out, uint32_t *used_out)
{
    uint8_t *buf = malloc(cap ? cap : 1);
    CHECK(buf != NULL);
    uint32_t used = SENTINEL32, count = SENTINEL32;
    int err = wm_op_keys(m, h, cursor, buf, cap, &used, &count);
    *used_out = used;
    if (err == WM_OK) {
        CHECK(used <= cap);
        uint32_t at = 0;
        for (uint32_t i = 0; i < count; i++) {
            CHECK(at + 4 <= used);
            uint32_t klen = rd32(buf + at);
            CHECK(klen < 64 && at + 4 + klen <= used);
            memcpy(out[*n_out], buf + at + 4, klen);
            out[*n_out][klen] = '\0';
            (*n_out)++;
            at += 4 + klen;
        }
        CHECK(at == used);
    }
    free(buf);
    return err;
}

void test_keys(void)
{
    wm_broker *b = new_broker(6);
    wm_module *host = wm_broker_host(b);
    uint32_t h = new_map(host), used, count = 0;
    static char listed[20000][64];

    /* empty map, and any cursor past the end: done */
    uint64_t cursor = 0;
    OK(keys_page(host, h, &cursor, 16, listed, &count, &used));
    CHECK(count == 0 && cursor == 0 && used == 0);
    cursor = UINT64_MAX;
    OK(keys_page(host, h, &cursor, 16, listed, &count, &used));
    CHECK(count == 0 && cursor == 0);

    /* insertion order, every page whole keys */
    enum { N = 1000 };
    for (int i = 0; i < N; i++) {
        char k[32];
        snprintf(k, sizeof k, "key%d", i);
        set_str(host, h, k, "v");
    }
    cursor = 0;
    count = 0;
    do {
        OK(keys_page(host, h, &cursor, 64, listed, &count, &used));
    } while (cursor != 0);
    CHECK(count == N);
    for (int i = 0; i < N; i++) {
        char k[32];
        snprintf(k, sizeof k, "key%d", i);
        CHECK(strcmp(listed[i], k) == 0);
    }

    /* RANGE: not even the first key fits; cursor unchanged, size reported */
    uint32_t hl = new_map(host);
    static uint8_t longkey[60];
    memset(longkey, 'L', sizeof longkey);
    OK(wm_op_set(host, hl, longkey, 60, S("v"), 1));
    set_str(host, hl, "short", "v");
    cursor = 0;
    count = 0;
    EXPECT(keys_page(host, hl, &cursor, 63, listed, &count, &used), WM_RANGE);
    CHECK(used == 64 && cursor == 0 && count == 0);
    OK(keys_page(host, hl, &cursor, 64, listed, &count, &used));
    CHECK(count == 1 && cursor != 0);
    uint64_t mid = cursor;
    EXPECT(keys_page(host, hl, &cursor, 8, listed, &count, &used), WM_RANGE);
    CHECK(used == 9 && cursor == mid);
    OK(keys_page(host, hl, &cursor, 9, listed, &count, &used));
    CHECK(count == 2 && cursor == 0 && strcmp(listed[1], "short") == 0);
    cursor = 0;
    EXPECT(wm_op_keys(host, hl, &cursor, NOWHERE, 0, &used, &count), WM_RANGE);

    /* paging while inserting and deleting (and so compacting and growing):
     * a key present for the whole listing appears exactly once, in order */
    uint32_t hp = new_map(host);
    enum { P = 2000 };
    static bool deleted[P];
    static int seen[P];
    memset(deleted, 0, sizeof deleted);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < P; i++) {
        char k[32];
        snprintf(k, sizeof k, "p%d", i);
        set_str(host, hp, k, "v");
    }
    uint64_t rng = 12345;
    cursor = 0;
    count = 0;
    int added = 0, last_stable = -1;
    do {
        uint32_t before = count;
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t cap = 16 + (uint32_t)(rng >> 33) % 200;
        OK(keys_page(host, hp, &cursor, cap, listed, &count, &used));
        CHECK(count < 20000);
        for (uint32_t i = before; i < count; i++) {
            int k;
            if (sscanf(listed[i], "p%d", &k) == 1 && listed[i][0] == 'p') {
                CHECK(k >= 0 && k < P);
                seen[k]++;
                if (!deleted[k]) {
                    CHECK(k > last_stable); /* stable keys come in insertion order */
                    last_stable = k;
                }
            }
        }
        /* between pages: delete some keys (listed or not), add new ones,
         * re-set existing ones (keeps their place), delete and re-add one */
        for (int j = 0; cursor != 0 && j < 7; j++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            int k = (int)((rng >> 33) % P);
            char key[32];
            snprintf(key, sizeof key, "p%d", k);
            switch (j) {
            case 0:
            case 1:
            case 2:
                deleted[k] = true;
                OK(wm_op_delete(host, hp, KEY(key)));
                break;
            case 3:
                if (!deleted[k])
                    set_str(host, hp, key, "a different length of value");
                break;
            default:
                snprintf(key, sizeof key, "new%d", added++);
                set_str(host, hp, key, "v");
            }
        }
    } while (cursor != 0);
    for (int k = 0; k < P; k++) {
        if (!deleted[k])
            CHECK(seen[k] == 1);
        else
            CHECK(seen[k] <= 1);
    }
    int new_seen = 0;
    for (uint32_t i = 0; i < count; i++)
        if (strncmp(listed[i], "new", 3) == 0)
            new_seen++;
    CHECK(new_seen == added); /* keys added during a listing come after the cursor */
    wm_broker_free(b);
}

