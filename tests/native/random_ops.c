/* random_ops.c: the operations of the one-module random run (test_random.c). */
#include "random_run.h"

/* After a write by `ph` to key k: its version is above every version of
 * the map seen before the write (`floor`); remember it when the handle may
 * read it. */
static void refresh_version(pmod *pm, mhandle *ph, int k, uint64_t floor)
{
    mentry *e = &model_of(ph->map)->e[k];
    if (!(ph->rights & R)) {
        e->ver = VER_UNKNOWN;
        return;
    }
    uint64_t v;
    OK(wm_op_version(pm->x.m, ph->h, S(key_text[k]), key_len[k], &v));
    CHECK(v > floor);
    mmap *mm = model_of(ph->map);
    if (v > mm->max_version)
        mm->max_version = v;
    e->ver = v;
}

static int size_errno(const pmod *pm, uint32_t klen, uint32_t vlen)
{
    return klen > pm->limits.key_size || vlen > pm->limits.value_size ? WM_TOOBIG : WM_OK;
}

/* An expected errno, allowing QUOTA from modules with write quotas. */
static void expect_or_quota(const char *what, int got, int want, const pmod *pm, bool *quota)
{
    *quota = false;
    r_tally[got >= 0 && got <= WM_ERRNO_MAX ? got : 0]++;
    if (got == want)
        return;
    if (want == WM_OK && got == WM_QUOTA && pm->limited) {
        *quota = true;
        return;
    }
    char msg[256];
    snprintf(msg, sizeof msg, "random op %s returned %s, expected %s (seed %" PRIu64 ")", what,
             errname(got), errname(want), rng_state);
    fail(__FILE__, __LINE__, msg);
}

void r_random_op(pmod *mods, wm_broker *b)
{
    pmod *pm = &mods[below(NMODS)];
    wm_module *m = pm->x.m;
    uint32_t op = below(100);
    bool quota;

    /* handle-making operations (also when the pool is empty) */
    if (pm->x.n == 0 || op < 6) {
        uint32_t h = SENTINEL32;
        int want = model_live(&pm->x) >= pm->limits.handles ? WM_QUOTA : WM_OK;
        if (below(2) == 0) {
            /* a new map is charged WM_MAP_COST: QUOTA is allowed where bytes are limited */
            expect_or_quota("new", wm_op_new(m, &h), want, pm, &quota);
            if (want == WM_OK && !quota)
                model_hold(&pm->x, h, RW, wm_broker_map_id(b, m, h));
        } else {
            char name[16];
            snprintf(name, sizeof name, "n%u", below(3));
            uint8_t rights = (uint8_t)(below(2) ? RW : below(4));
            int err = wm_op_open(m, KEY(name), rights, &h);
            if (wm_module_id(m) == 2 && (strcmp(name, "n2") == 0 || (rights & W))) {
                /* module 2 was granted n0 and n1 READ only */
                EXPECT_R("open", err, WM_ACCES);
            } else {
                EXPECT_R("open", err, want);
                if (want == WM_OK)
                    model_hold(&pm->x, h, rights, wm_broker_map_id(b, m, h));
            }
        }
        CHECK(wm_module_handle_count(m) == model_live(&pm->x));
        return;
    }

    /* mostly a live handle: stale ones are a small share of the answers */
    mhandle *ph = &pm->x.pool[below(pm->x.n)];
    for (int tries = 0; !ph->live && below(8) != 0 && tries < 8; tries++)
        ph = &pm->x.pool[below(pm->x.n)];
    mmap *mm = ph->live ? model_of(ph->map) : NULL;
    int k = (int)below(MODEL_KEYS);
    const uint8_t *key = S(key_text[k]);
    uint32_t klen = key_len[k];
    uint8_t buf[512];
    uint32_t len = SENTINEL32, n = SENTINEL32;
    uint64_t v;
    int64_t i64;
    int want;

    if (op < 10) { /* close */
        EXPECT_R("close", wm_op_close(m, ph->h), ph->live ? WM_OK : WM_STALE);
        ph->live = false;
    } else if (op < 14) { /* clone */
        uint32_t rights = below(9) == 0 ? 4 + below(4) : below(2) ? RW : below(4), h;
        want = rights > RW ? WM_INVAL : model_handle_errno(ph, rights);
        if (want == WM_OK && model_live(&pm->x) >= pm->limits.handles)
            want = WM_QUOTA;
        EXPECT_R("clone", wm_op_clone(m, ph->h, rights, &h), want);
        if (want == WM_OK)
            model_hold(&pm->x, h, (uint8_t)rights, ph->map);
    } else if (op < 17) { /* a number that was never issued */
        uint32_t bad = below(3) == 0   ? 0
                       : below(2) == 0 ? 0x80000000u | (uint32_t)rnd()
                                       : (GEN_UNIT | (WM_HANDLE_MAX_SLOTS - 1));
        EXPECT_R("bad handle", wm_op_len(m, bad, &n), WM_BADF);
        if (ph->live && ph->h >> WM_HANDLE_INDEX_BITS < WM_HANDLE_MAX_GEN) {
            uint32_t next = ph->h + GEN_UNIT; /* that generation was not issued yet */
            EXPECT_R("next gen", wm_op_close(m, next), WM_BADF);
        }
    } else if (op < 30) { /* get */
        want = model_handle_errno(ph, R);
        if (!want)
            want = size_errno(pm, klen, 0);
        if (!want)
            want = !mm->e[k].kind ? WM_NOENT : mm->e[k].kind == 2 ? WM_TYPE : WM_OK;
        uint32_t cap = below(4) == 0 ? below(8) : sizeof buf;
        if (want == WM_OK && mm->e[k].len > cap)
            want = WM_RANGE;
        EXPECT_R("get", wm_op_get(m, ph->h, key, klen, cap ? buf : NOWHERE, cap, &len),
                 want);
        if (want == WM_OK)
            CHECK(len == mm->e[k].len && memcmp(buf, mm->e[k].val, len) == 0);
        else if (want == WM_RANGE)
            CHECK(len == mm->e[k].len);
        else
            CHECK(len == SENTINEL32);
    } else if (op < 44) { /* set */
        uint32_t vlen = below(10) == 0 ? below(300) : below(24);
        for (uint32_t i = 0; i < vlen; i++)
            buf[i] = (uint8_t)rnd();
        want = model_handle_errno(ph, W);
        if (!want)
            want = size_errno(pm, klen, vlen);
        int err = wm_op_set(m, ph->h, key, klen, buf, vlen);
        expect_or_quota("set", err, want, pm, &quota);
        if (want == WM_OK && !quota) {
            model_write(mm, k, 1, buf, vlen, 0);
            refresh_version(pm, ph, k, model_of(ph->map)->max_version);
        }
    } else if (op < 52) { /* delete */
        want = model_handle_errno(ph, W);
        if (!want)
            want = size_errno(pm, klen, 0);
        EXPECT_R("delete", wm_op_delete(m, ph->h, key, klen), want);
        if (want == WM_OK)
            model_clear(&mm->e[k]);
    } else if (op < 56) { /* exists */
        want = model_handle_errno(ph, R);
        if (!want)
            want = size_errno(pm, klen, 0);
        EXPECT_R("exists", wm_op_exists(m, ph->h, key, klen, &n), want);
        CHECK(want != WM_OK || n == (mm->e[k].kind != 0));
    } else if (op < 58) { /* len */
        want = model_handle_errno(ph, R);
        EXPECT_R("len", wm_op_len(m, ph->h, &n), want);
        if (want == WM_OK) {
            uint32_t live = 0;
            for (int i = 0; i < MODEL_KEYS; i++)
                live += mm->e[i].kind != 0;
            CHECK(n == live);
        }
    } else if (op < 60) { /* keys */
        if (model_handle_errno(ph, R) == WM_OK)
            r_check_listing(pm, ph);
        else {
            uint64_t cursor = 0;
            uint32_t used, count;
            EXPECT_R("keys", wm_op_keys(m, ph->h, &cursor, buf, 64, &used, &count),
                     model_handle_errno(ph, R));
        }
    } else if (op < 67) { /* incr */
        int64_t delta = below(4) == 0 ? (int64_t)rnd() : (int64_t)below(10) - 5;
        want = model_handle_errno(ph, RW);
        if (!want)
            want = size_errno(pm, klen, 8);
        if (!want && mm->e[k].kind && (mm->e[k].kind != 1 || mm->e[k].len != 8))
            want = WM_TYPE;
        i64 = (int64_t)SENTINEL64;
        int err = wm_op_incr(m, ph->h, key, klen, delta, &i64);
        expect_or_quota("incr", err, want, pm, &quota);
        if (want == WM_OK && !quota) {
            uint64_t old = 0;
            if (mm->e[k].kind)
                memcpy(&old, mm->e[k].val, 8);
            uint64_t nv = old + (uint64_t)delta;
            CHECK(i64 == (int64_t)nv);
            model_write(mm, k, 1, (const uint8_t *)&nv, 8, 0);
            refresh_version(pm, ph, k, model_of(ph->map)->max_version);
        } else {
            CHECK(i64 == (int64_t)SENTINEL64);
        }
    } else if (op < 70) { /* version */
        want = model_handle_errno(ph, R);
        if (!want)
            want = size_errno(pm, klen, 0);
        v = SENTINEL64;
        EXPECT_R("version", wm_op_version(m, ph->h, key, klen, &v), want);
        if (want == WM_OK) {
            if (!mm->e[k].kind)
                CHECK(v == 0);
            else if (mm->e[k].ver == VER_UNKNOWN)
                CHECK(v > 0 && v <= mm->max_version + 1000000);
            else
                CHECK(v == mm->e[k].ver);
            if (mm->e[k].kind)
                mm->e[k].ver = v;
        }
    } else if (op < 75) { /* set_if */
        bool known = !ph->live || !mm->e[k].kind || mm->e[k].ver != VER_UNKNOWN;
        if (!known)
            return;
        uint64_t cur = ph->live && mm->e[k].kind ? mm->e[k].ver : 0;
        uint64_t expected = below(2) ? cur : cur + 1 + below(3);
        uint32_t vlen = below(20);
        for (uint32_t i = 0; i < vlen; i++)
            buf[i] = (uint8_t)rnd();
        want = model_handle_errno(ph, RW);
        if (!want)
            want = size_errno(pm, klen, vlen);
        if (!want && expected != cur)
            want = WM_CONFLICT;
        int err = wm_op_set_if(m, ph->h, key, klen, buf, vlen, (int64_t)expected);
        expect_or_quota("set_if", err, want, pm, &quota);
        if (want == WM_OK && !quota) {
            model_write(mm, k, 1, buf, vlen, 0);
            refresh_version(pm, ph, k, model_of(ph->map)->max_version);
        }
    } else if (op < 81) { /* get_many */
        bytes keys = {0};
        int ks[16], nk = (int)below(16);
        for (int i = 0; i < nk; i++) {
            ks[i] = (int)below(MODEL_KEYS);
            put_rec(&keys, key_text[ks[i]], key_len[ks[i]]);
        }
        bool malformed = below(12) == 0 && keys.len > 0;
        uint32_t klen_all = (uint32_t)keys.len - (malformed ? 1 + below(3) : 0);
        uint8_t *out = malloc(4096);
        uint32_t cap = below(3) == 0 ? below(64) : 4096, used = SENTINEL32;
        want = malformed ? WM_INVAL : model_handle_errno(ph, R);
        uint32_t need = 0;
        if (!want) {
            for (int i = 0; i < nk; i++) {
                if (key_len[ks[i]] > pm->limits.key_size)
                    want = WM_TOOBIG;
                need += 4 + (mm->e[ks[i]].kind == 1 ? mm->e[ks[i]].len : 0);
            }
        }
        if (!want)
            for (int i = 0; i < nk; i++)
                if (mm->e[ks[i]].kind == 2)
                    want = WM_TYPE;
        if (!want && need > cap)
            want = WM_RANGE;
        EXPECT_R("get_many", wm_op_get_many(m, ph->h, bp(&keys), klen_all, out, cap, &used), want);
        if (want == WM_OK || want == WM_RANGE)
            CHECK(used == need);
        else
            CHECK(used == SENTINEL32);
        if (want == WM_OK) {
            uint32_t at = 0;
            for (int i = 0; i < nk; i++) {
                mentry *e = &mm->e[ks[i]];
                if (e->kind) {
                    CHECK(rd32(out + at) == e->len && memcmp(out + at + 4, e->val, e->len) == 0);
                    at += 4 + e->len;
                } else {
                    CHECK(rd32(out + at) == UINT32_MAX);
                    at += 4;
                }
            }
        }
        free(out);
        free(keys.p);
    } else if (op < 88) { /* set_many */
        bytes items = {0};
        int ks[16], nk = (int)below(16);
        uint32_t vlens[16], max_k = 0, max_v = 0;
        static uint8_t vals[16][300];
        for (int i = 0; i < nk; i++) {
            ks[i] = (int)below(MODEL_KEYS);
            vlens[i] = below(10) == 0 ? below(300) : below(16);
            for (uint32_t j = 0; j < vlens[i]; j++)
                vals[i][j] = (uint8_t)rnd();
            put_rec(&items, key_text[ks[i]], key_len[ks[i]]);
            put_rec(&items, vals[i], vlens[i]);
            if (key_len[ks[i]] > max_k)
                max_k = key_len[ks[i]];
            if (vlens[i] > max_v)
                max_v = vlens[i];
        }
        bool malformed = below(12) == 0 && items.len > 0;
        uint32_t ilen = (uint32_t)items.len - (malformed ? 1 + below(4) : 0);
        want = malformed ? WM_INVAL : model_handle_errno(ph, W);
        if (!want)
            want = size_errno(pm, max_k, max_v);
        int err = wm_op_set_many(m, ph->h, bp(&items), ilen);
        expect_or_quota("set_many", err, want, pm, &quota);
        if (want == WM_OK && !quota) {
            for (int i = 0; i < nk; i++)
                model_write(mm, ks[i], 1, vals[i], vlens[i], 0);
            uint64_t floor = mm->max_version; /* items take versions in order */
            for (int i = 0; i < nk; i++)
                if (mm->e[ks[i]].ver == VER_UNKNOWN)
                    refresh_version(pm, ph, ks[i], floor);
        }
        free(items.p);
    } else if (op < 94) { /* set_map */
        /* both handles, then both handles' rights, then sizes */
        mhandle *child = &pm->x.pool[below(pm->x.n)];
        want = !ph->live || !child->live ? WM_STALE : WM_OK;
        if (!want)
            want = (ph->rights & W) && child->rights == RW ? WM_OK : WM_ACCES;
        if (!want)
            want = size_errno(pm, klen, 0);
        int err = wm_op_set_map(m, ph->h, key, klen, child->h);
        expect_or_quota("set_map", err, want, pm, &quota);
        if (want == WM_OK && !quota) {
            model_write(mm, k, 2, NULL, 0, child->map);
            refresh_version(pm, ph, k, model_of(ph->map)->max_version);
        }
    } else { /* get_map */
        want = model_handle_errno(ph, R);
        if (!want)
            want = size_errno(pm, klen, 0);
        if (!want)
            want = !mm->e[k].kind ? WM_NOENT : mm->e[k].kind != 2 ? WM_TYPE : WM_OK;
        if (!want && model_live(&pm->x) >= pm->limits.handles)
            want = WM_QUOTA;
        uint32_t h = SENTINEL32;
        EXPECT_R("get_map", wm_op_get_map(m, ph->h, key, klen, &h), want);
        if (want == WM_OK) {
            CHECK(wm_broker_map_id(b, m, h) == mm->e[k].child);
            model_hold(&pm->x, h, ph->rights, mm->e[k].child);
        } else {
            CHECK(h == SENTINEL32);
        }
    }
}
