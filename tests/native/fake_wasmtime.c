/* fake_wasmtime.c: see fake_wasmtime.h. */
#include "fake_wasmtime.h"

fake_guest guest;
char fake_token;
char fake_types[WM_ABI_COUNT];
int fake_traps;
int fake_traps_live;
int fake_engines;
_Atomic int fake_epoch;




fake_msg *fake_msg_new(uint32_t magic, const char *msg, size_t len)
{
    fake_msg *t = malloc(sizeof *t);
    CHECK(t != NULL && len < sizeof t->text);
    t->magic = magic;
    memcpy(t->text, msg, len);
    t->text[len] = '\0';
    return t;
}

const char *trap_text(const wt_trap *t)
{
    CHECK(t != NULL && ((const fake_msg *)t)->magic == TRAP_MAGIC);
    return ((const fake_msg *)t)->text;
}

void trap_free(wt_trap *t)
{
    trap_text(t);
    ((fake_msg *)t)->magic = 0;
    free(t);
    fake_traps_live--;
}

static wt_context *fake_caller_context(wt_caller *c) { return (wt_context *)c; }

static bool fake_export_get(wt_caller *c, const char *name, size_t len, wt_extern *out)
{
    if (!guest.exported || len != 6 || memcmp(name, "memory", 6) != 0)
        return false;
    memset(out, 0, sizeof *out);
    out->kind = guest.kind;
    out->of.memory.opaque[0] = 42;
    return true;
}

static uint8_t *fake_memory_data(const wt_context *cx, const wt_memory *m)
{
    CHECK(m->opaque[0] == 42);
    return guest.mem;
}

static size_t fake_memory_data_size(const wt_context *cx, const wt_memory *m)
{
    CHECK(m->opaque[0] == 42);
    return guest.size;
}

static wt_error *fake_define(wt_linker *l, const char *mod, size_t mod_len, const char *name,
                             size_t len, const wt_functype *ft, wt_unchecked_cb cb, void *env,
                             void (*finalizer)(void *))
{
    fake_linker *fl = (fake_linker *)l;
    CHECK(len == strlen(name) && cb != NULL && finalizer == NULL);
    if (fl->peers) { /* a peer import: keep its trampoline */
        CHECK(mod_len == strlen(mod) && mod_len > 0);
        fl->cbs[0] = cb;
        fl->env = env;
        fl->n = 1;
        return NULL;
    }
    CHECK(mod_len == 8 && memcmp(mod, "wasi_map", 8) == 0);
    CHECK((const void *)ft == &fake_types[fl->n]);
    if ((int)fl->n == fl->fail_at)
        return (wt_error *)&fake_token;
    CHECK(fl->n < WM_ABI_COUNT);
    fl->names[fl->n] = name;
    fl->cbs[fl->n] = cb;
    fl->env = env;
    fl->n++;
    return NULL;
}


wt_func xfunc(xexport *e)
{
    wt_func f = {{EXPORT_MAGIC, (uint64_t)(uintptr_t)e}};
    return f;
}

/* One-instance pools, kept to be freed at exit (before LeakSanitizer
 * looks: it registered its check first). */
static wm_pool **solo;
static size_t nsolo, solo_cap;
static pthread_mutex_t solo_lock = PTHREAD_MUTEX_INITIALIZER; /* threads resolve links */

static void free_solo(void)
{
    for (size_t i = 0; i < nsolo; i++)
        wm_pool_free(solo[i]);
    free(solo);
    solo = NULL;
    nsolo = solo_cap = 0;
}

wm_pool *solo_pool(wm_module *m)
{
    pthread_mutex_lock(&solo_lock);
    if (nsolo == solo_cap) {
        if (!solo_cap)
            atexit(free_solo);
        solo_cap = solo_cap ? solo_cap * 2 : 64;
        solo = realloc(solo, solo_cap * sizeof *solo);
        CHECK(solo != NULL);
    }
    wm_pool *p = wm_pool_new(1);
    CHECK(p != NULL);
    wm_pool_set(p, 0, m);
    solo[nsolo++] = p;
    pthread_mutex_unlock(&solo_lock);
    return p;
}

void resolve(wm_link *l, wm_module *m, const wt_func *f, const uint8_t *how)
{
    CHECK(wm_link_resolve(l, solo_pool(m), f, how) == WM_OK);
}

static wt_error *fake_call(wt_context *cx, const wt_func *f, wt_val_raw *args, size_t n,
                           wt_trap **trap)
{
    *trap = NULL;
    if (f->opaque[0] == 7) { /* the abi section's: report the slot count */
        args[0].i64 = (int64_t)n;
        return NULL;
    }
    CHECK(f->opaque[0] == EXPORT_MAGIC);
    xexport *e = (xexport *)(uintptr_t)f->opaque[1];
    CHECK(n >= e->nparams);
    e->calls++;
    for (uint32_t i = 0; i < e->nparams && i < 8; i++)
        e->got[i] = (uint32_t)args[i].i32;
    if (e->fail) {
        static const char msg[] = "error: a host function trapped";
        return (wt_error *)fake_msg_new(ERROR_MAGIC, msg, sizeof msg - 1);
    }
    *trap = e->body ? e->body(e, args) : NULL;
    return NULL;
}

wt_trap *fake_trap_new(const char *msg, size_t len)
{
    CHECK(len > 0 && strlen(msg) >= len);
    fake_traps++;
    fake_traps_live++;
    return (wt_trap *)fake_msg_new(TRAP_MAGIC, msg, len);
}

static void fake_error_message(const wt_error *error, wt_byte_vec *out)
{
    const fake_msg *m = (const fake_msg *)error;
    CHECK(m->magic == ERROR_MAGIC && out->data == NULL);
    out->size = strlen(m->text);
    out->data = malloc(out->size + 1);
    CHECK(out->data != NULL);
    memcpy(out->data, m->text, out->size + 1);
}

void fake_error_delete(wt_error *error)
{
    CHECK(((fake_msg *)error)->magic == ERROR_MAGIC);
    ((fake_msg *)error)->magic = 0;
    free(error);
}

static void fake_byte_vec_delete(wt_byte_vec *v)
{
    free(v->data);
    v->data = NULL;
    v->size = 0;
}

static wt_error *fake_error_new(const char *msg)
{
    return (wt_error *)fake_msg_new(ERROR_MAGIC, msg, strlen(msg));
}


static void fake_set_deadline(wt_context *cx, uint64_t delta) { ((wasm_store *)cx)->deadline = delta; }

static void fake_deadline_callback(wt_store *st, wt_deadline_cb cb, void *env, void (*fin)(void *))
{
    CHECK(fin == NULL);
    ((wasm_store *)st)->cb = cb;
    ((wasm_store *)st)->env = env;
}

int fake_engines;          /* clones alive */
_Atomic int fake_epoch;    /* increments seen */
static void *fake_engine_clone(void *engine)
{
    fake_engines++;
    return malloc(1);
}
static void fake_engine_delete(void *engine)
{
    fake_engines--;
    free(engine);
}
static void fake_increment(void *engine) { fake_epoch++; }

wm_wasmtime_api fake_api(void)
{
    wm_wasmtime_api api = {
        (void *)fake_caller_context, (void *)fake_export_get,   (void *)fake_memory_data,
        (void *)fake_memory_data_size, (void *)fake_define,     (void *)fake_call,
        (void *)fake_trap_new,       (void *)fake_error_message, (void *)fake_error_delete,
        (void *)fake_byte_vec_delete, (void *)fake_error_new,   (void *)fake_set_deadline,
        (void *)fake_deadline_callback, (void *)fake_engine_clone, (void *)fake_engine_delete,
        (void *)fake_increment};
    return api;
}

void define_abi(wm_module *m, fake_linker *fl)
{
    void *types[WM_ABI_COUNT];
    for (size_t i = 0; i < WM_ABI_COUNT; i++)
        types[i] = &fake_types[i];
    memset(fl, 0, sizeof *fl);
    fl->fail_at = -1;
    CHECK(wm_define_abi(m, fl, types) == NULL);
    CHECK(fl->n == WM_ABI_COUNT && fl->env == (void *)m);
}
