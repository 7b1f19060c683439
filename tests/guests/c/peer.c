/* peer.c: the cross-language peer of tests/support/guest_checks.py, in C.
 * The callee side (take/look/keep/give, declared in the manifest as
 * PEER_EXPORTS says) and the caller side, which calls the callee side of the
 * module PEER_MODULE, a string given at build time: -DPEER_MODULE='"cpp"'
 * (or '"rust"').  A result < 0 is -(the step that failed). */
#include <stdint.h>

#include "wasi_map.h"

#ifndef PEER_MODULE
#error "build with -DPEER_MODULE='\"cpp\"' (or '\"rust\"'): the module this peer calls"
#endif

/* The ABI takes addresses in the guest's memory as u32. */
#define ADDR(p) ((uint32_t)(uintptr_t)(p))
/* A string literal as (address, length). */
#define STR(s) ADDR(s), (uint32_t)(sizeof(s) - 1)
#define PEER_IMPORT(n) __attribute__((import_module(PEER_MODULE), import_name(n)))

/* The callee side of PEER_MODULE: take(own), look(borrow), keep(share), give() -> own. */
PEER_IMPORT("take") int32_t peer_take(wm_handle_t m);
PEER_IMPORT("look") int32_t peer_look(wm_handle_t m);
PEER_IMPORT("keep") int32_t peer_keep(wm_handle_t m);
PEER_IMPORT("give") wm_handle_t peer_give(void);

/* The map take or keep left here (0: none); give hands it back. */
static wm_handle_t kept;

/* len(h), or -1 when the map cannot say. */
static int32_t length(wm_handle_t h)
{
    uint32_t n;
    return wm_len(h, ADDR(&n)) == WM_OK ? (int32_t)n : -1;
}

/* Keep `h`, closing whatever was kept before. */
static void keep_handle(wm_handle_t h)
{
    if (kept)
        wm_close(kept);
    kept = h;
}

/* A new map holding 'k0'..'k<n-1>' (all "v"; none for n <= 0) at *out; its
 * errno (the map is closed again if a set fails). */
static wm_errno_t filled(int32_t n, wm_handle_t *out)
{
    wm_errno_t err = wm_new(ADDR(out));
    if (err != WM_OK)
        return err;
    for (int32_t i = 0; err == WM_OK && i < n; i++) {
        char key[12], digits[10];
        uint32_t len = 0, d = 0, v = (uint32_t)i;
        do {
            digits[d++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        key[len++] = 'k';
        while (d)
            key[len++] = digits[--d];
        err = wm_set(*out, ADDR(key), len, STR("v"));
    }
    if (err != WM_OK)
        wm_close(*out);
    return err;
}

/* --- the callee side ------------------------------------------------------ */

/* take(m own) -> len(m); m stays here. */
__attribute__((export_name("take"))) int32_t take(wm_handle_t h)
{
    keep_handle(h);
    return length(h);
}

/* look(m borrow) -> len(m); writes 'seen' = "c" and ends the borrow. */
__attribute__((export_name("look"))) int32_t look(wm_handle_t h)
{
    int32_t n = length(h);
    if (wm_set(h, STR("seen"), STR("c")) != WM_OK)
        return -2;
    if (wm_close(h) != WM_OK)
        return -3;
    return n;
}

/* keep(m share) -> len(m); keeps its own owning handle. */
__attribute__((export_name("keep"))) int32_t keep(wm_handle_t h)
{
    keep_handle(h);
    return length(h);
}

/* give() -> the kept map by own (a new empty one when none is kept). */
__attribute__((export_name("give"))) wm_handle_t give(void)
{
    wm_handle_t h = kept;
    kept = 0;
    if (!h && wm_new(ADDR(&h)) != WM_OK)
        __builtin_trap(); /* a result declared own must be a handle */
    return h;
}

/* --- the caller side ------------------------------------------------------ */

/* send_own(n) -> what take returned; the number given away is STALE here after. */
__attribute__((export_name("send_own"))) int32_t send_own(int32_t n)
{
    wm_handle_t m;
    uint32_t len;
    if (filled(n, &m) != WM_OK)
        return -1;
    int32_t got = peer_take(m);
    if (wm_len(m, ADDR(&len)) != WM_STALE)
        return -2;
    return got;
}

/* send_borrow(n) -> what look returned; after it 'seen' is PEER_MODULE and the map still ours. */
__attribute__((export_name("send_borrow"))) int32_t send_borrow(int32_t n)
{
    wm_handle_t m;
    char seen[8];
    uint32_t len;
    if (filled(n, &m) != WM_OK)
        return -1;
    int32_t got = peer_look(m);
    if (wm_get(m, STR("seen"), ADDR(seen), sizeof seen, ADDR(&len)) != WM_OK ||
        len != sizeof(PEER_MODULE) - 1 || __builtin_memcmp(seen, PEER_MODULE, len) != 0)
        return -2;
    if (wm_close(m) != WM_OK)
        return -3;
    return got;
}

/* send_share(n) -> what keep returned; then writes 'after' = '1' and closes its handle. */
__attribute__((export_name("send_share"))) int32_t send_share(int32_t n)
{
    wm_handle_t m;
    if (filled(n, &m) != WM_OK)
        return -1;
    int32_t got = peer_keep(m);
    if (wm_set(m, STR("after"), STR("1")) != WM_OK)
        return -2;
    if (wm_close(m) != WM_OK)
        return -3;
    return got;
}

/* fetch() -> len of the map give returned, after setting 'fetched' = '1' in it. */
__attribute__((export_name("fetch"))) int32_t fetch(void)
{
    wm_handle_t m = peer_give();
    int32_t n = -1;
    if (wm_set(m, STR("fetched"), STR("1")) == WM_OK)
        n = length(m);
    wm_close(m);
    return n;
}
