/* test_xrandom.c: a randomized run of calls between modules. */
#include "xrandom.h"

/* The host and four modules call each other through links of thirteen
 * shapes, with random handles; each callee's stand-in code keeps, closes,
 * clones, passes on (nested calls, three deep) or returns what it got, and
 * now and then traps.  Whether a call is refused is the core's to say; what
 * every module then holds is the model's (model.h), and the run checks:
 *   - a call that does not happen (an errno, or a trap at the link) changes
 *     nothing: every handle count and every passed handle as before;
 *   - a call that happens passes each handle as its kind says: own moves
 *     (the giver's number reaches nothing after), share and borrow leave the
 *     giver's, the callee's reaches the same map with the rights the model
 *     predicts, a borrow is over when the call returns;
 *   - a trap begins where the rules say (the innermost module at fault);
 *   - after every step, the core's own recount agrees (wm_broker_check),
 *     no handle is borrowed or busy, every handle reaches a live map, and
 *     every module holds exactly what the model says, with those rights;
 *   - at the end, with every module torn down and the cycles collected,
 *     no map is left: nothing leaked a reference.
 * WM_TEST_SEED and WM_TEST_XOPS choose the run. */

const struct xshape XSHAPE[XSHAPES] = {
    {1, 0, {WM_PASS_OWN}},
    {1, 0, {WM_PASS_BORROW}},
    {1, 0, {WM_PASS_SHARE}},
    {1, 0, {WM_PASS_OWN | WM_PASS_READONLY}},
    {1, 0, {WM_PASS_BORROW | WM_PASS_READONLY}},
    {1, 0, {WM_PASS_SHARE | WM_PASS_READONLY}},
    {2, 0, {WM_PASS_OWN, WM_PASS_SHARE}},
    {2, 0, {WM_PASS_BORROW, WM_PASS_OWN}},
    {3, 0, {WM_PASS_SHARE, WM_PASS_BORROW | WM_PASS_READONLY, WM_PASS_OWN}},
    {0, 1, {WM_PASS_OWN}},
    {1, 1, {WM_PASS_BORROW, WM_PASS_SHARE}},
    {1, 1, {WM_PASS_OWN, WM_PASS_OWN}},
    {1, 1, {WM_PASS_BORROW, WM_PASS_OWN | WM_PASS_READONLY}},
};

xrmod xr[XM];
xframe xframes[XDEPTH + 1];
int xdepth;
wm_handle_info xsnap[XSNAP];
uint32_t xfirst_origin;
uint64_t xtally[9];

bool xsnap_find(size_t n, uint32_t module, uint32_t h, wm_handle_info *out)
{
    for (size_t i = 0; i < n; i++)
        if (xsnap[i].module == module && xsnap[i].handle == h) {
            *out = xsnap[i];
            return true;
        }
    return false;
}

size_t xsnapshot(void)
{
    size_t n = wm_snapshot_handles(xw.b, xsnap, XSNAP);
    CHECK(n <= XSNAP);
    return n;
}

/* Module x now holds h, which reaches the map the core says, with `rights`
 * (the model's prediction; model_check compares them). */
void xhold(xrmod *x, uint32_t h, uint8_t rights)
{
    model_hold(&x->held, h, rights, wm_broker_map_id(xw.b, x->held.m, h));
}

/* The rights the model says module x's handle h has: one it holds, or one
 * lent to the call it is in (the innermost frame); false if it knows none. */
bool xrights(xrmod *x, uint32_t h, uint8_t *rights)
{
    const mhandle *ph = model_find(&x->held, h);
    if (ph && ph->live) {
        *rights = ph->rights;
        return true;
    }
    const xframe *f = &xframes[xdepth];
    if (xdepth > 0 && &xr[f->target] == x)
        for (uint32_t i = 0; i < XSHAPE[f->shape].np; i++)
            if (f->got[i] == h && h) {
                *rights = f->want_rights[i];
                return true;
            }
    return false;
}

/* A handle argument for module x: mostly a live one it knows, sometimes a
 * closed or moved one, or garbage. */
uint32_t xpick(const xrmod *x, const uint32_t *extra, size_t nextra)
{
    const holder *held = &x->held;
    uint32_t r = below(100);
    if (r < 4)
        return r < 2 ? 0 : 0x7FFFFFFFu;
    if (nextra && r < 40)
        return extra[below((uint32_t)nextra)];
    if (!held->n)
        return 0;
    if (r < 15)
        return held->pool[below(held->n)].h;
    uint32_t live[MODEL_POOL], nlive = 0;
    for (uint32_t i = 0; i < held->n; i++)
        if (held->pool[i].live)
            live[nlive++] = held->pool[i].h;
    return nlive ? live[below(nlive)] : held->pool[below(held->n)].h;
}

void xexpect_origin_at(wm_module *m)
{
    if (!xfirst_origin)
        xfirst_origin = wm_module_id(m) + 1;
}

static void xr_links_from(int i)
{
    for (int t = 1; t < XM; t++)
        for (int s = 0; s < XSHAPES; s++)
            xr[i].links[t][s] =
                xlink(xr[i].held.m, &xr[t].ex[s], XSHAPE[s].np, XSHAPE[s].nr, XSHAPE[s].how);
}

/* Module i (again): a fresh wm_module, its exports, links to and from it. */
static void xr_load(int i)
{
    static const char *names[XM] = {"host", "m1", "m2", "m3", "small"};
    xrmod *x = &xr[i];
    wm_limits l = i == XM - 1 ? limits(64, 64, 8, 1 << 16, 1000) : default_limits();
    wm_module *m = wm_module_new(xw.b, &l, names[i]);
    CHECK(m != NULL);
    model_holder(&x->held, m, XPOOL, true);
    x->dead = false;
    x->generation++;
    for (int s = 0; s < XSHAPES; s++) {
        x->keys[s] = (xkey){i, s};
        x->ex[s] = (xexport){.body = body_xrandom, .m = x->held.m, .ctx = &x->keys[s]};
    }
    if (x->generation == 1)
        return; /* the first time, xr_links_from makes them all */
    for (int c = 0; c < XM; c++) /* links into it point at the new instance */
        for (int s = 0; s < XSHAPES; s++) {
            wt_func f = xfunc(&x->ex[s]);
            x->ex[s].nparams = XSHAPE[s].np;
            resolve(xr[c].links[i][s], x->held.m, &f, XSHAPE[s].how);
        }
    xr_links_from(i);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void xcheck_quiet(void)
{
    CHECK(wm_broker_check(xw.b) == 0);
    CHECK(xdepth == 0);
    size_t n = xsnapshot();
    static wm_map_info maps[XSNAP];
    static uint64_t ids[XSNAP];
    size_t nm = wm_snapshot_maps(xw.b, maps, XSNAP);
    CHECK(nm <= XSNAP);
    for (size_t j = 0; j < nm; j++)
        ids[j] = maps[j].id;
    qsort(ids, nm, sizeof ids[0], cmp_u64);
    uint32_t per[XM] = {0};
    for (size_t i = 0; i < n; i++) {
        CHECK(xsnap[i].state == 1 && xsnap[i].busy == 0); /* no borrow outlives its call */
        CHECK(bsearch(&xsnap[i].map, ids, nm, sizeof ids[0], cmp_u64) != NULL); /* a live map */
        for (int k = 0; k < XM; k++)
            if (xsnap[i].module == wm_module_id(xr[k].held.m))
                per[k]++;
    }
    for (int k = 0; k < XM; k++) {
        CHECK(per[k] == wm_module_handle_count(xr[k].held.m));
        model_check(&xr[k].held, xw.b); /* the model agrees with the core */
    }
}

void test_xrandom(void)
{
    uint64_t seed = env_u64("WM_TEST_SEED", 0x5EED5EEDull);
    long ops = (long)env_u64("WM_TEST_XOPS", 100000);
    rng_state = seed ? seed : 1;
    xworld_new(seed);
    memset(xr, 0, sizeof xr);
    memset(xtally, 0, sizeof xtally);
    model_holder(&xr[0].held, xw.host, XPOOL, true);
    for (int i = 1; i < XM; i++)
        xr_load(i);
    for (int i = 0; i < XM; i++)
        xr_links_from(i);
    uint64_t teardowns = 0;
    for (long op = 0; op < ops; op++) {
        if (op % 5000 == 2500)
            wm_broker_set_strict_borrows(xw.b, (uint32_t)(op / 5000) % 2);
        int i = (int)below(XM);
        xrmod *x = &xr[i];
        uint32_t r = below(100), h, out;
        if (x->dead) { /* its code cannot run; it is loaded again, sooner or later */
            if (below(2))
                xr_load(i);
            continue;
        }
        if (r < 10 || x->held.n == 0) {
            if (wm_op_new(x->held.m, &h) == WM_OK)
                xhold(x, h, RW);
        } else if (r < 16) {
            h = xpick(x, NULL, 0);
            if (wm_op_close(x->held.m, h) == WM_OK)
                model_closed(&x->held, h);
        } else if (r < 20) {
            h = xpick(x, NULL, 0);
            uint32_t rights = below(4);
            if (wm_op_clone(x->held.m, h, rights, &out) == WM_OK)
                xhold(x, out, (uint8_t)rights);
        } else if (r < 26) {
            (void)wm_op_set_map(x->held.m, xpick(x, NULL, 0), KEY("m"), xpick(x, NULL, 0));
        } else if (r < 29) {
            uint8_t rights = 0;
            h = xpick(x, NULL, 0);
            if (wm_op_get_map(x->held.m, h, KEY("m"), &out) == WM_OK) {
                CHECK(xrights(x, h, &rights)); /* the parent's */
                xhold(x, out, rights);
            }
        } else if (r < 31) {
            (void)wm_op_delete(x->held.m, xpick(x, NULL, 0), KEY("m"));
        } else if (r < 33) {
            (void)wm_op_watch_drop(x->held.m, xpick(x, NULL, 0), op);
            uint32_t mods[8];
            int64_t cookies[8];
            (void)wm_broker_take_notices(xw.b, mods, cookies, below(8));
        } else if (r < 34 && i != 0) {
            wm_module_teardown(x->held.m); /* unload, and load again */
            xr_load(i);
            teardowns++;
        } else if (r < 35) {
            (void)wm_broker_collect(xw.b);
        } else { /* the host calls a module (with a few live maps of its own) */
            for (uint32_t live = model_live(&xr[0].held); live < 3; live++)
                xhold(&xr[0], new_map(xw.host), RW);
            xfirst_origin = 0;
            int to = 1 + (int)below(XM - 1);
            wt_trap *t = xcall(0, to, (int)below(XSHAPES), NULL, 0);
            uint32_t origin = wm_broker_take_trap_origin(xw.b);
            if (t) {
                if (origin != xfirst_origin) {
                    char msg[800];
                    snprintf(msg, sizeof msg, "op %ld: trap \"%s\" began in module %u, expected %u",
                             op, trap_text(t), origin - 1, xfirst_origin - 1);
                    fail(__FILE__, __LINE__, msg);
                }
                trap_free(t);
                for (int k = 1; k < XM; k++) /* the host tears the origin down */
                    if (wm_module_id(xr[k].held.m) + 1 == origin) {
                        wm_module_teardown(xr[k].held.m);
                        model_teardown(&xr[k].held);
                        xr[k].dead = true;
                        teardowns++;
                    }
            } else {
                CHECK(origin == 0);
            }
        }
        if (op % 97 == 0)
            xcheck_quiet();
    }
    xcheck_quiet();
    wm_stats s = stats(xw.b);
    printf("  xrandom: %ld ops, seed %#" PRIx64 ": calls ok %" PRIu64 ", refused %" PRIu64
           ", trapped %" PRIu64 " (nested %" PRIu64 "); passed own %" PRIu64 ", borrow %" PRIu64
           ", share %" PRIu64 ", results %" PRIu64 "; %" PRIu64 " teardowns, %" PRIu64
           " unreleased borrows, %" PRIu64 " maps live\n",
           ops, seed, xtally[0], xtally[1], xtally[2], xtally[3], xtally[4], xtally[5], xtally[6],
           xtally[7], teardowns, s.unreleased_borrows, s.maps);
    if (xtally[8])
        printf("  xrandom: KNOWN BUG: %" PRIu64 " calls trapped for a borrow left open (strict) "
               "after passing their result to the caller (native/link.c)\n",
               xtally[8]);
    /* everything torn down and the cycles collected: no map may be left */
    for (int i = 0; i < XM; i++)
        wm_module_teardown(xr[i].held.m);
    (void)wm_broker_collect(xw.b);
    s = stats(xw.b);
    CHECK(s.maps == 0 && s.named == 0 && s.entries == 0);
    uint32_t mods[64];
    int64_t cookies[64];
    while (wm_broker_take_notices(xw.b, mods, cookies, 64) > 0)
        ;
    xworld_free();
}
