/* fake_wasmtime.h: a fake wasmtime for the C tests.
 *
 * abi.c's callbacks are static: wm_define_abi hands them to
 * linker_define_func_unchecked, so a fake linker collects them, and a fake
 * caller gives them a guest memory that is one malloc block of exactly its
 * size.  Any read or write past a span's end lands in ASan's redzone: this
 * is where the one bounds check, span(), is tested.  Exports of fake
 * modules are C functions (xexport) that fake_call runs in place of the
 * guest code; traps and errors are malloc'd, so that LeakSanitizer sees any
 * the core drops.
 */
#ifndef WM_TEST_FAKE_WASMTIME_H
#define WM_TEST_FAKE_WASMTIME_H

#include "harness.h"

typedef struct fake_linker {
    const char *names[WM_ABI_COUNT];
    wt_unchecked_cb cbs[WM_ABI_COUNT];
    void *env;
    size_t n;
    int fail_at; /* define number that fails, or -1 */
    bool peers;  /* a linker for one peer import (wm_link_define), not the ABI */
} fake_linker;

/* The guest memory the callbacks see. */
typedef struct fake_guest {
    uint8_t *mem;
    size_t size;
    bool exported;
    uint8_t kind;
} fake_guest;
extern fake_guest guest;
extern char fake_token;                  /* what the fake hands out as a define error */
extern char fake_types[WM_ABI_COUNT];    /* stand-ins for the wasm_functype_t* */
extern int fake_traps;                   /* traps made so far */
extern int fake_traps_live;              /* ... and not yet freed: each is one malloc block */
extern int fake_engines;                 /* engine clones alive */
extern _Atomic int fake_epoch;           /* epoch increments seen */

/* A trap or error of the fake: a malloc'd message, so that LeakSanitizer
 * sees one that is dropped and ASan one that is freed twice. */
typedef struct fake_msg {
    uint32_t magic;
    char text[512];
} fake_msg;
#define TRAP_MAGIC 0x7A7A7A7Au
#define ERROR_MAGIC 0xE7707E77u

/* An export of a fake module, called through wasmtime_func_call_unchecked:
 * a C function standing in for the guest code. */
typedef struct xexport xexport;
typedef wt_trap *(*xbody)(xexport *e, wt_val_raw *args);
struct xexport {
    xbody body;
    wm_module *m;       /* whose export it is */
    uint32_t nparams;   /* how many slots it reads */
    uint32_t got[8];    /* the parameters of its last call */
    int calls;
    bool fail;          /* answer with a wasmtime error instead (a host trap's shape) */
    void *ctx;          /* for the body */
};
#define EXPORT_MAGIC 8u

/* The fake's stores and engines: a deadline callback is kept, to be run by
 * the time-limit tests as wasmtime would when the epoch passes it. */
typedef struct wasm_store {
    wt_deadline_cb cb;
    void *env;
    uint64_t deadline; /* the last delta set */
} wasm_store;

fake_msg *fake_msg_new(uint32_t magic, const char *msg, size_t len);
const char *trap_text(const wt_trap *t);
void trap_free(wt_trap *t);
wt_trap *fake_trap_new(const char *msg, size_t len);
void fake_error_delete(wt_error *error);
wt_func xfunc(xexport *e);
/* A new pool of one holding `m`, and a link resolved into one: calls
 * through it run in `m`. */
wm_pool *solo_pool(wm_module *m);
void resolve(wm_link *l, wm_module *m, const wt_func *f, const uint8_t *how);
wm_wasmtime_api fake_api(void);
/* Define the ABI for `m` into `fl`: every function, in wm_abi_name order. */
void define_abi(wm_module *m, fake_linker *fl);

#endif
