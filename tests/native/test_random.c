/* test_random.c: a randomized run of single-module operations against the model. */
#include "random_run.h"

/* Random operations by four modules (the host, two with tight quotas), each
 * answer checked against the model (model.h): who holds which handle with
 * which rights, and what every map holds.  The sanitizers watch the core's
 * memory while the random operations grow, shrink, compact and reclaim
 * tables.  WM_TEST_SEED and WM_TEST_OPS choose the run. */

uint64_t r_tally[WM_ERRNO_MAX + 1];

void r_check_listing(pmod *pm, mhandle *ph)
{
    mmap *mm = model_of(ph->map);
    /* expected: present keys ordered by seq */
    int order[MODEL_KEYS], n = 0;
    for (int k = 0; k < MODEL_KEYS; k++)
        if (mm->e[k].kind)
            order[n++] = k;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && mm->e[order[j]].seq < mm->e[order[j - 1]].seq; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    uint64_t cursor = 0;
    uint32_t cap = 4 + below(80), got = 0;
    uint8_t buf[256];
    for (;;) {
        uint32_t used = SENTINEL32, count = SENTINEL32;
        uint64_t before = cursor;
        int err = wm_op_keys(pm->x.m, ph->h, &cursor, buf, cap, &used, &count);
        if (err == WM_RANGE) { /* the next key does not fit: its size, cursor kept */
            CHECK(got < (uint32_t)n && used == 4 + key_len[order[got]] && used > cap);
            CHECK(cursor == before && count == SENTINEL32);
            cap = used + below(40);
            continue;
        }
        EXPECT_R("keys", err, WM_OK);
        uint32_t at = 0;
        for (uint32_t i = 0; i < count; i++) {
            CHECK(got < (uint32_t)n);
            int k = order[got++];
            CHECK(rd32(buf + at) == key_len[k]);
            CHECK(memcmp(buf + at + 4, key_text[k], key_len[k]) == 0);
            at += 4 + key_len[k];
        }
        CHECK(at == used);
        if (cursor == 0)
            break;
        CHECK(count > 0);
    }
    CHECK(got == (uint32_t)n);
}

static void check_invariants(pmod *mods, wm_broker *b)
{
    uint64_t entries = 0;
    for (int i = 0; i < NMODS; i++) {
        wm_module *m = mods[i].x.m;
        entries += wm_module_entries_used(m);
        model_check(&mods[i].x, b);
        if (mods[i].limited) {
            CHECK(wm_module_bytes_used(m) <= mods[i].limits.bytes);
            CHECK(wm_module_entries_used(m) <= mods[i].limits.entries);
        }
    }
    CHECK(stats(b).entries == entries);
}

void test_random(void)
{
    uint64_t seed = env_u64("WM_TEST_SEED", 0x5EED5EEDull);
    long ops = (long)env_u64("WM_TEST_OPS", 300000);
    rng_state = seed ? seed : 1;
    model_keys_init();

    wm_broker *b = new_broker(seed);
    pmod mods[NMODS];
    memset(mods, 0, sizeof mods);
    wm_limits lhost = default_limits();
    lhost.handles = WM_HANDLE_MAX_SLOTS;
    mods[0].limits = lhost;
    mods[1].limits = default_limits();
    mods[2].limits = limits(16, 32, 24, 8 * WM_MAP_COST + 40 * WM_ENTRY_COST + 600, 40);
    mods[2].limited = true;
    mods[3].limits = limits(4096, 1u << 20, 64, 32 * WM_MAP_COST + 30 * WM_ENTRY_COST + 2000, 30);
    mods[3].limited = true;
    for (int i = 0; i < NMODS; i++) {
        wm_module *m = i == 0 ? wm_broker_host(b) : wm_module_new(b, &mods[i].limits, "m");
        CHECK(m != NULL && wm_module_id(m) == (uint32_t)i);
        model_holder(&mods[i].x, m, MODEL_POOL, false);
    }
    for (int i = 1; i < NMODS; i++)
        for (int n = 0; n < 3; n++) {
            char name[16];
            snprintf(name, sizeof name, "n%d", n);
            if (i == 2 && n == 2)
                continue;
            OK(wm_module_grant(mods[i].x.m, KEY(name), i == 2 ? R : RW));
        }

    for (long i = 0; i < ops; i++) {
        r_random_op(mods, b);
        if (i % 2000 == 0)
            check_invariants(mods, b);
        if (i % 50000 == 49999) { /* a module torn down: all its handles closed */
            pmod *pm = &mods[1 + below(NMODS - 1)];
            wm_module_teardown(pm->x.m);
            model_teardown(&pm->x);
        }
    }
    check_invariants(mods, b);
    wm_stats s = stats(b);
    printf("  random: %ld ops, seed %#" PRIx64 ": %" PRIu64 " maps, %" PRIu64 " entries live;"
           " answers:", ops, seed, s.maps, s.entries);
    for (int e = 0; e <= WM_ERRNO_MAX; e++)
        if (r_tally[e])
            printf(" %s %" PRIu64, errname(e), r_tally[e]);
    printf("\n");
    /* close everything but leave maps in cycles for broker_free */
    for (int i = 0; i < NMODS; i++)
        wm_module_teardown(mods[i].x.m);
    model_free();
    wm_broker_free(b);
}
