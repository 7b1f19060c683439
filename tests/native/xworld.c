/* xworld.c: see xworld.h. */
#include "xworld.h"


xworld xw;
const uint8_t H_OWN[1] = {WM_PASS_OWN}, H_BORROW[1] = {WM_PASS_BORROW}, H_SHARE[1] = {WM_PASS_SHARE};

void xworld_new(uint64_t seed)
{
    wm_wasmtime_api api = fake_api();
    wm_limits hl = default_limits();
    xw.b = wm_broker_new(&api, seed, &hl);
    CHECK(xw.b != NULL);
    xw.host = wm_broker_host(xw.b);
    wm_limits l = default_limits();
    wm_limits two = limits(64, 64, 2, 1000, 100);
    xw.a = wm_module_new(xw.b, &l, "a");
    xw.c = wm_module_new(xw.b, &l, "c");
    xw.small = wm_module_new(xw.b, &two, "small");
    CHECK(xw.a && xw.c && xw.small);
    fake_traps_live = 0;
}

void xworld_free(void)
{
    CHECK(fake_traps_live == 0);                     /* every trap came back and was freed */
    CHECK(wm_broker_take_trap_origin(xw.b) == 0);   /* and every origin was taken */
    CHECK(wm_broker_check(xw.b) == 0);
    wm_broker_free(xw.b);
    memset(&xw, 0, sizeof xw);
}

/* A link from `caller` to export `e` of `e->m`; `how` has np + nr codes. */
wm_link *xlink(wm_module *caller, xexport *e, uint32_t np, uint32_t nr,
                      const uint8_t *how)
{
    wm_link *l = wm_link_new(caller, "caller -> callee.export", np, nr);
    CHECK(l != NULL);
    wt_func f = xfunc(e);
    e->nparams = np;
    resolve(l, e->m, &f, how);
    return l;
}

/* The host calls through a link: the errno (nothing passed unless OK);
 * *trap gets the trap, if any (NULL: none allowed). */
int host_call(wm_link *l, wm_val_raw *args, size_t n, const uint8_t *masks, void **trap,
                     uint32_t *bad)
{
    void *t = NULL;
    uint32_t bad_param = SENTINEL32;
    int err = wm_link_call(l, args, n, masks, &t, &bad_param);
    if (err)
        CHECK(t == NULL && bad_param != SENTINEL32);
    if (bad)
        *bad = bad_param;
    if (trap)
        *trap = t;
    else if (t)
        fail(__FILE__, __LINE__, trap_text(t));
    return err;
}

/* A guest module calls through a link: its trampoline's trap, or NULL. */
wt_trap *guest_link_call(wm_link *l, wt_val_raw *args, size_t n)
{
    fake_linker fl;
    memset(&fl, 0, sizeof fl);
    fl.peers = true;
    CHECK(wm_link_define(l, &fl, "peer", "export", &fake_types[0]) == NULL);
    CHECK(fl.n == 1 && fl.env == (void *)l);
    return fl.cbs[0](fl.env, (wt_caller *)&guest, args, n);
}


void expect_trap(void *t, const char *words, wm_module *origin)
{
    CHECK(t != NULL);
    if (!strstr(trap_text(t), words)) {
        char msg[700];
        snprintf(msg, sizeof msg, "trap \"%s\" does not say \"%s\"", trap_text(t), words);
        fail(__FILE__, __LINE__, msg);
    }
    trap_free(t);
    /* the module the trap began in, as id + 1; then none is left behind */
    uint32_t o = wm_broker_take_trap_origin(xw.b);
    if (o != wm_module_id(origin) + 1) {
        char msg[200];
        snprintf(msg, sizeof msg, "the trap began in module %u, expected %u", o - 1,
                 wm_module_id(origin));
        fail(__FILE__, __LINE__, msg);
    }
    CHECK(wm_broker_take_trap_origin(xw.b) == 0);
}

uint8_t rights_of(wm_module *m, uint32_t h)
{
    /* READ: len works; WRITE: deleting an absent key works */
    uint32_t n;
    uint8_t r = 0;
    if (wm_op_len(m, h, &n) == WM_OK)
        r |= R;
    if (wm_op_delete(m, h, KEY("\x01never")) == WM_OK)
        r |= W;
    return r;
}

bool is_borrowed(wm_module *m, uint32_t h)
{
    static wm_handle_info info[2048];
    size_t n = wm_snapshot_handles(xw.b, info, 2048);
    CHECK(n <= 2048);
    for (size_t i = 0; i < n; i++)
        if (info[i].module == wm_module_id(m) && info[i].handle == h)
            return info[i].state == 2;
    fail(__FILE__, __LINE__, "no such live handle");
    return false;
}

/* --- bodies: what the stand-in exports do ---------------------------------- */

wt_trap *body_keep(xexport *e, wt_val_raw *args) { return NULL; }

wt_trap *body_close_first(xexport *e, wt_val_raw *args)
{
    OK(wm_op_close(e->m, (uint32_t)args[0].i32));
    return NULL;
}


wt_trap *body_check_lent(xexport *e, wt_val_raw *args)
{
    lend_ctx *c = e->ctx;
    uint32_t bh = (uint32_t)args[0].i32;
    CHECK(is_borrowed(e->m, bh));
    CHECK(wm_broker_map_id(xw.b, e->m, bh) == wm_broker_map_id(xw.b, c->lender, c->lender_h));
    EXPECT(wm_op_close(c->lender, c->lender_h), WM_BUSY);
    set_str(c->lender, c->lender_h, "lender", "wrote");
    set_str(e->m, bh, "borrower", "wrote");
    expect_value(e->m, bh, "lender", "wrote");
    OK(wm_op_clone(e->m, bh, R, &c->clone));
    CHECK(!is_borrowed(e->m, c->clone));
    return NULL;
}

wt_trap *body_trap(xexport *e, wt_val_raw *args)
{
    static const char msg[] = "wasm trap: unreachable";
    return fake_trap_new(msg, sizeof msg - 1);
}

/* Results: the body puts the handle `ctx` points at into slot 0. */
wt_trap *body_return(xexport *e, wt_val_raw *args)
{
    args[0].i32 = (int32_t) * (uint32_t *)e->ctx;
    return NULL;
}

/* Returns what it was lent (params: one borrow). */
wt_trap *body_return_lent(xexport *e, wt_val_raw *args) { return NULL; }

wt_trap *body_nest(xexport *e, wt_val_raw *args)
{
    nest_ctx *c = e->ctx;
    for (size_t i = 0; i < c->n; i++) /* the handles this call received, where asked */
        if (c->args[i].i32 == -1)
            c->args[i].i32 = args[i].i32;
    wt_trap *t = guest_link_call(c->link, c->args, c->n);
    if (c->swallow) {
        c->seen = t;
        return NULL;
    }
    return t;
}
