/* test_abi.c: abi.c's guest callbacks and their bounds checks, through the fake
 * wasmtime. */
#include "harness.h"
#include "fake_wasmtime.h"

/* Each function's parameters: which are i64, and its spans (pointer
 * parameter, length parameter or -1 for a fixed length). */
typedef struct span_desc {
    int ptr, len;
    uint32_t fixed;
} span_desc;

static const struct abi_desc {
    const char *name;
    int nparams;
    int i64_param; /* -1: none */
    span_desc spans[4];
} ABI_DESC[] = {
    {"open", 4, -1, {{0, 1, 0}, {3, -1, 4}}},
    {"new", 1, -1, {{0, -1, 4}}},
    {"close", 1, -1, {{0}}},
    {"clone", 3, -1, {{2, -1, 4}}},
    {"get", 6, -1, {{1, 2, 0}, {3, 4, 0}, {5, -1, 4}}},
    {"set", 5, -1, {{1, 2, 0}, {3, 4, 0}}},
    {"delete", 3, -1, {{1, 2, 0}}},
    {"exists", 4, -1, {{1, 2, 0}, {3, -1, 4}}},
    {"len", 2, -1, {{1, -1, 4}}},
    {"keys", 6, -1, {{1, -1, 8}, {2, 3, 0}, {4, -1, 4}, {5, -1, 4}}},
    {"incr", 5, 3, {{1, 2, 0}, {4, -1, 8}}},
    {"version", 4, -1, {{1, 2, 0}, {3, -1, 8}}},
    {"set_if", 6, 5, {{1, 2, 0}, {3, 4, 0}}},
    {"get_many", 6, -1, {{1, 2, 0}, {3, 4, 0}, {5, -1, 4}}},
    {"set_many", 3, -1, {{1, 2, 0}}},
    {"set_map", 4, -1, {{1, 2, 0}}},
    {"get_map", 4, -1, {{1, 2, 0}, {3, -1, 4}}},
    {"watch_drop", 2, 1, {{0}}},
};
enum { NDESC = sizeof ABI_DESC / sizeof ABI_DESC[0] };

static int span_count(const struct abi_desc *d)
{
    int n = 0;
    while (n < 4 && (d->spans[n].len > 0 || d->spans[n].fixed)) /* {0} ends the list */
        n++;
    return n;
}

/* Call ABI function `d` as a guest would: i32 parameters get junk in their
 * upper half (wasmtime leaves it unspecified), results come back in slot 0. */
static int guest_call(const fake_linker *fl, const struct abi_desc *d, const int64_t *params,
                      wt_trap **trap_out)
{
    size_t at = 0;
    while (at < fl->n && strcmp(fl->names[at], d->name) != 0)
        at++;
    CHECK(at < fl->n);
    wt_val_raw args[8];
    memset(args, 0, sizeof args);
    for (int i = 0; i < d->nparams; i++) {
        if (i == d->i64_param)
            args[i].i64 = params[i];
        else
            args[i].i64 = (int64_t)(0xA5A5A5A500000000ull | (uint32_t)params[i]);
    }
    wt_trap *trap = fl->cbs[at](fl->env, (wt_caller *)&guest, args, (size_t)d->nparams);
    if (trap_out)
        *trap_out = trap;
    else
        CHECK(trap == NULL);
    int err = args[0].i32;
    CHECK(err >= 0 && err <= WM_ERRNO_MAX);
    return err;
}

static const struct abi_desc *desc(const char *name)
{
    for (int i = 0; i < NDESC; i++)
        if (strcmp(ABI_DESC[i].name, name) == 0)
            return &ABI_DESC[i];
    fail(__FILE__, __LINE__, name);
    return NULL;
}

#define GCALL(fl, name, ...) guest_call((fl), desc(name), (const int64_t[]){__VA_ARGS__}, NULL)

static uint32_t grd32(uint32_t at)
{
    CHECK(at + 4 <= guest.size);
    return rd32(guest.mem + at);
}

static void gput(uint32_t at, const void *p, size_t n)
{
    CHECK(at + n <= guest.size);
    memcpy(guest.mem + at, p, n);
}

void test_abi(void)
{
    wm_wasmtime_api api = fake_api();
    wm_limits host_limits = default_limits();
    wm_broker *b = wm_broker_new(&api, 13, &host_limits);
    CHECK(b != NULL);
    wm_limits l = default_limits();
    wm_module *m = wm_module_new(b, &l, "m");
    fake_linker fl, failing;

    /* registration: every function, in wm_abi_name order; errors come back */
    define_abi(m, &fl);
    CHECK(NDESC == WM_ABI_COUNT);
    for (size_t i = 0; i < WM_ABI_COUNT; i++) {
        CHECK(strcmp(fl.names[i], wm_abi_name(i)) == 0);
        CHECK(strcmp(desc(fl.names[i])->name, fl.names[i]) == 0);
    }
    void *types[WM_ABI_COUNT];
    for (size_t i = 0; i < WM_ABI_COUNT; i++)
        types[i] = &fake_types[i];
    memset(&failing, 0, sizeof failing);
    failing.fail_at = 5;
    CHECK(wm_define_abi(m, &failing, types) == (void *)&fake_token);
    CHECK(failing.n == 5);

    /* a link without handles passes straight through to the export */
    wm_val_raw vals[3] = {{0}};
    void *trap = &fake_token;
    wt_func func = {{7, 0}};
    uint8_t how[4] = {0};
    uint32_t bad = 0;
    wm_link *link = wm_link_new(wm_broker_host(b), "host -> m.f", 3, 1);
    CHECK(link != NULL);
    resolve(link, m, &func, how);
    CHECK(wm_link_call(link, vals, 3, NULL, &trap, &bad) == WM_OK && trap == NULL &&
          vals[0].lo == 3);

    /* a 64 KiB guest memory, found through the caller (start-function path) */
    guest.size = 65536;
    guest.mem = malloc(guest.size);
    CHECK(guest.mem != NULL);
    memset(guest.mem, 0, guest.size);
    guest.exported = true;
    guest.kind = WM_WASMTIME_EXTERN_MEMORY;
    const uint32_t top = (uint32_t)guest.size;

    EXPECT(GCALL(&fl, "new", 101), WM_OK); /* odd addresses: no alignment assumed */
    uint32_t h = grd32(101);
    wt_memory mem = {{42, 0, 0}};
    wm_module_set_memory(m, &mem); /* the normal path, after instantiation */
    gput(1001, "key", 3);
    gput(1011, "value", 5);
    EXPECT(GCALL(&fl, "set", h, 1001, 3, 1011, 5), WM_OK);
    uint32_t sentinel = SENTINEL32;
    gput(2001, &sentinel, 4);
    EXPECT(GCALL(&fl, "get", h, 1001, 3, 3001, 4, 2001), WM_RANGE);
    CHECK(grd32(2001) == 5 && guest.mem[3001] == 0);
    EXPECT(GCALL(&fl, "get", h, 1001, 3, 3001, 5, 2001), WM_OK);
    CHECK(memcmp(guest.mem + 3001, "value", 5) == 0);
    EXPECT(GCALL(&fl, "incr", h, 1021, 1, INT64_MIN + 5, 2011), WM_OK);
    int64_t i64;
    memcpy(&i64, guest.mem + 2011, 8);
    CHECK(i64 == INT64_MIN + 5);
    EXPECT(GCALL(&fl, "keys", h, 4001, 4101, 4, 2101, 2105), WM_RANGE);
    CHECK(grd32(2101) == 7);
    EXPECT(GCALL(&fl, "keys", h, 4001, 4101, 100, 2101, 2105), WM_OK);
    CHECK(grd32(2101) == 7 + 5 && grd32(2105) == 2 && rd32(guest.mem + 4001) == 0);
    CHECK(memcmp(guest.mem + 4105, "key", 3) == 0);

    /* every span of every function at the edge of memory */
    int64_t base[8];
    for (int i = 0; i < NDESC; i++) {
        const struct abi_desc *d = &ABI_DESC[i];
        int ns = span_count(d);
        for (int s = 0; s < ns; s++) {
            for (int variant = 0; variant < 7; variant++) {
                /* a well-formed call: the handle, READ|WRITE, small spans in
                 * separate places, one-key batches */
                for (int p = 0; p < 8; p++)
                    base[p] = p == 0 ? h : RW;
                if (strcmp(d->name, "incr") == 0)
                    base[3] = 1;
                if (strcmp(d->name, "set_if") == 0)
                    base[5] = 0;
                if (strcmp(d->name, "set_map") == 0)
                    base[3] = h;
                for (int t = 0; t < ns; t++) {
                    base[d->spans[t].ptr] = 8001 + 997 * t;
                    if (d->spans[t].len >= 0)
                        base[d->spans[t].len] = 8;
                }
                static const uint8_t rec[8] = {4, 0, 0, 0, 'a', 'b', 'c', 'd'};
                for (int t = 0; t < ns; t++)
                    gput((uint32_t)base[d->spans[t].ptr], rec, 8);
                if (strcmp(d->name, "set_many") == 0)
                    base[2] = 16, gput((uint32_t)base[1] + 8, rec, 8);
                uint64_t zero = 0;
                if (strcmp(d->name, "keys") == 0)
                    gput((uint32_t)base[1], &zero, 8);
                const span_desc *sd = &d->spans[s];
                uint32_t len = sd->len >= 0 ? (uint32_t)base[sd->len] : sd->fixed;
                bool var = sd->len >= 0, fault;
                uint32_t ptr = 0;
                switch (variant) {
                case 0: /* ends exactly at the end of memory */
                    ptr = top - len, fault = false;
                    break;
                case 1: /* one byte past */
                    ptr = top - len + 1, fault = true;
                    break;
                case 2: /* wraps around 2^32 */
                    ptr = UINT32_MAX - 1, fault = true;
                    break;
                case 3: /* empty, at the very end */
                    if (!var)
                        continue;
                    ptr = top, len = 0, fault = false;
                    break;
                case 4: /* empty, past the end */
                    if (!var)
                        continue;
                    ptr = top + 1, len = 0, fault = true;
                    break;
                case 5: /* the largest length */
                    if (!var)
                        continue;
                    ptr = 0, len = UINT32_MAX, fault = true;
                    break;
                default: /* a length that wraps the pointer */
                    if (!var)
                        continue;
                    ptr = 16, len = UINT32_MAX - 15, fault = true;
                }
                base[sd->ptr] = ptr;
                if (var)
                    base[sd->len] = len;
                if (!fault && len >= 8) /* keep batches well-formed at the edge */
                    gput(ptr, rec, 8);
                uint8_t *before = malloc(guest.size);
                memcpy(before, guest.mem, guest.size);
                int err = guest_call(&fl, d, base, NULL);
                if (fault) {
                    if (err != WM_FAULT || memcmp(before, guest.mem, guest.size) != 0) {
                        char msg[128];
                        snprintf(msg, sizeof msg, "%s span %d variant %d: %s, memory %s", d->name,
                                 s, variant, errname(err),
                                 memcmp(before, guest.mem, guest.size) ? "changed" : "same");
                        fail(__FILE__, __LINE__, msg);
                    }
                } else if (err == WM_FAULT) {
                    char msg[128];
                    snprintf(msg, sizeof msg, "%s span %d variant %d: FAULT inside memory",
                             d->name, s, variant);
                    fail(__FILE__, __LINE__, msg);
                }
                free(before);
                if (strcmp(d->name, "close") == 0 || strcmp(d->name, "new") == 0 ||
                    strcmp(d->name, "open") == 0 || strcmp(d->name, "clone") == 0 ||
                    strcmp(d->name, "get_map") == 0) {
                    wm_module_teardown(m); /* start again from one handle */
                    EXPECT(GCALL(&fl, "new", 101), WM_OK);
                    h = grd32(101);
                }
            }
        }
    }

    /* a quota configured to trap: the errno is still written, and a trap returned */
    wm_limits lt = limits(64, 64, 1, 1000, 100);
    lt.trap_on_quota = 1;
    wm_module *mt = wm_module_new(b, &lt, "m");
    fake_linker flt;
    define_abi(mt, &flt);
    wm_module_set_memory(mt, &mem);
    wt_trap *tr = NULL;
    EXPECT(guest_call(&flt, desc("new"), (const int64_t[]){101}, &tr), WM_OK);
    CHECK(tr == NULL);
    int traps = fake_traps;
    EXPECT(guest_call(&flt, desc("new"), (const int64_t[]){101}, &tr), WM_QUOTA);
    CHECK(tr != NULL && fake_traps == traps + 1);
    CHECK(strstr(trap_text(tr), "quota") != NULL);
    trap_free(tr);
    EXPECT(guest_call(&flt, desc("close"), (const int64_t[]){12345}, &tr), WM_BADF);
    CHECK(tr == NULL);

    /* a module without an exported memory (or with a shared one): every
     * pointer is FAULT, calls without pointers still work */
    for (int kind = 0; kind < 2; kind++) {
        wm_module *mn = wm_module_new(b, &l, "m");
        fake_linker fln;
        define_abi(mn, &fln);
        guest.exported = kind == 1;
        guest.kind = WM_WASMTIME_EXTERN_SHAREDMEMORY;
        EXPECT(GCALL(&fln, "new", 0), WM_FAULT);
        EXPECT(GCALL(&fln, "len", 1, 0), WM_FAULT);
        EXPECT(GCALL(&fln, "close", 1), WM_BADF);
        EXPECT(GCALL(&fln, "delete", 1, 0, 0), WM_BADF); /* an empty span at 0 is inside */
        EXPECT(GCALL(&fln, "set_many", 1, 0, 0), WM_BADF);
        guest.exported = true;
        guest.kind = WM_WASMTIME_EXTERN_MEMORY;
    }

    /* random calls: random functions, arguments near the edges */
    uint64_t state = 99;
    uint8_t *before = malloc(guest.size);
    for (int i = 0; i < 40000; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        const struct abi_desc *d = &ABI_DESC[(state >> 33) % NDESC];
        int64_t p[8];
        for (int j = 0; j < 8; j++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t r = (uint32_t)(state >> 32);
            switch (r % 8) {
            case 0: p[j] = r; break;                             /* anything */
            case 1: p[j] = top - (r >> 8) % 64; break;            /* near the end */
            case 2: p[j] = (r >> 8) % 64; break;                  /* small */
            case 3: p[j] = h; break;                              /* the handle */
            case 4: p[j] = UINT32_MAX - (r >> 8) % 16; break;     /* wrapping */
            case 5: p[j] = RW; break;
            default: p[j] = (r >> 8) % top; break;                /* inside */
            }
        }
        memcpy(before, guest.mem, guest.size);
        int err = guest_call(&fl, d, p, NULL);
        if (err == WM_FAULT)
            CHECK(memcmp(before, guest.mem, guest.size) == 0);
        if (i % 1000 == 0) {
            wm_module_teardown(m);
            EXPECT(GCALL(&fl, "new", 101), WM_OK);
            h = grd32(101);
        }
    }
    free(before);
    free(guest.mem);
    guest.mem = NULL;
    wm_broker_free(b);
}

