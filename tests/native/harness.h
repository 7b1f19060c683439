/* harness.h: the C tests' one shared harness -- checking, fixtures, batches,
 * the random number generator, and the list of sections.
 *
 * The tests link every native C unit directly and drive the public
 * functions of native/wm.h (wm_broker_*, wm_module_*, wm_link_*, every
 * wm_op_*), without Python or wasmtime.  One binary, test_core, runs them
 * by section (test_main.c); tests/native/run_sanitized.sh builds it from
 * every .c file of tests/native under AddressSanitizer + UBSan + LeakSanitizer, and its
 * threaded section again under ThreadSanitizer.
 *
 * A failed check prints file:line and exits 1 at once (through _exit, so
 * LeakSanitizer does not bury the message under the broker we abandoned).
 */
#ifndef WM_TEST_HARNESS_H
#define WM_TEST_HARNESS_H

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "abi_gen.h" /* errno and rights numbers, generated from broker/abi/ */
#include "handles.h" /* the handle number layout (index bits, max generation) */
#include "wasmtime_abi.h" /* the restated wasmtime types, for the fake wasmtime */
#include "wm.h"
#include "wm_core.h" /* wm_ticks_now, for the ticker test */

/* --- checking ----------------------------------------------------------- */

static inline const char *errname(int e)
{
    static const char *names[] = {"OK",    "BADF",  "STALE", "NOENT",    "ACCES",
                                  "FAULT", "RANGE", "INVAL", "BUSY",     "QUOTA",
                                  "TOOBIG", "CONFLICT", "TYPE", "IO"};
    return e >= 0 && e <= WM_ERRNO_MAX ? names[e] : "?";
}

static inline void fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what);
    fflush(stderr);
    _exit(1);
}

#define CHECK(cond)                                                                               \
    do {                                                                                          \
        if (!(cond))                                                                              \
            fail(__FILE__, __LINE__, #cond);                                                      \
    } while (0)

#define EXPECT(call, want)                                                                        \
    do {                                                                                          \
        int got_ = (call), want_ = (want);                                                        \
        if (got_ != want_) {                                                                      \
            char msg_[512];                                                                       \
            snprintf(msg_, sizeof msg_, "%s returned %s (%d), expected %s", #call,                \
                     errname(got_), got_, errname(want_));                                        \
            fail(__FILE__, __LINE__, msg_);                                                       \
        }                                                                                         \
    } while (0)

#define OK(call) EXPECT(call, WM_OK)

/* --- fixtures ----------------------------------------------------------- */

#define R WM_RIGHT_READ
#define W WM_RIGHT_WRITE
#define RW WM_RIGHTS_ALL
#define GEN_UNIT (1u << WM_HANDLE_INDEX_BITS)
#define SENTINEL32 0xDEADBEEFu
#define SENTINEL64 0xDEADBEEFDEADBEEFull

static const wm_wasmtime_api NO_WASMTIME __attribute__((unused)); /* the data plane never calls it */
static const uint8_t EMPTY[1] __attribute__((unused));           /* a non-NULL pointer for empty inputs */
static uint8_t NOWHERE[1] __attribute__((unused));               /* ... and for empty output buffers */

static inline wm_limits limits(uint32_t key, uint32_t val, uint32_t handles, uint64_t bytes,
                        uint64_t entries)
{
    return (wm_limits){key, val, handles, bytes, entries, 65536, 0, 0};
}

static inline wm_limits default_limits(void)
{
    return limits(4096, 1u << 20, 65536, 256ull << 20, 1u << 20);
}

static inline wm_broker *new_broker(uint64_t seed)
{
    wm_limits host = default_limits();
    wm_broker *b = wm_broker_new(&NO_WASMTIME, seed, &host);
    CHECK(b != NULL);
    return b;
}

static inline const uint8_t *S(const char *s) { return (const uint8_t *)s; }
#define KEY(s) S(s), (uint32_t)strlen(s)

static inline uint32_t new_map(wm_module *m)
{
    uint32_t h = SENTINEL32;
    OK(wm_op_new(m, &h));
    CHECK(h != 0 && h < 0x80000000u);
    return h;
}

/* A ring of n host maps (map i references map i + 1, the last the first);
 * the handle to its first map, or 0 when every handle is closed. */
static inline uint32_t ring_of(wm_module *host, uint32_t n, bool keep)
{
    uint32_t first = new_map(host), prev = first;
    for (uint32_t i = 1; i < n; i++) {
        uint32_t h = new_map(host);
        OK(wm_op_set_map(host, prev, KEY("next"), h));
        if (prev != first)
            OK(wm_op_close(host, prev));
        prev = h;
    }
    OK(wm_op_set_map(host, prev, KEY("next"), first));
    if (prev != first)
        OK(wm_op_close(host, prev));
    if (keep)
        return first;
    OK(wm_op_close(host, first));
    return 0;
}

static inline void set_str(wm_module *m, uint32_t h, const char *k, const char *v)
{
    OK(wm_op_set(m, h, KEY(k), S(v), (uint32_t)strlen(v)));
}

/* get `k` and compare with the C string `want` */
static inline void expect_value(wm_module *m, uint32_t h, const char *k, const char *want)
{
    uint8_t buf[256];
    uint32_t len = SENTINEL32;
    OK(wm_op_get(m, h, KEY(k), buf, sizeof buf, &len));
    CHECK(len == strlen(want));
    CHECK(memcmp(buf, want, len) == 0);
}

static inline wm_stats stats(wm_broker *b)
{
    wm_stats s;
    wm_broker_stats(b, &s);
    return s;
}

static inline uint32_t map_len(wm_module *m, uint32_t h)
{
    uint32_t n = SENTINEL32;
    OK(wm_op_len(m, h, &n));
    return n;
}

static inline uint64_t version_of(wm_module *m, uint32_t h, const char *k)
{
    uint64_t v = SENTINEL64;
    OK(wm_op_version(m, h, KEY(k), &v));
    return v;
}

/* A growable byte buffer for batches. */
typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
} bytes;

static inline void put(bytes *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        CHECK(b->p != NULL);
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

static inline void put32(bytes *b, uint32_t v) { put(b, &v, 4); }

static inline void put_rec(bytes *b, const void *p, uint32_t n)
{
    put32(b, n);
    put(b, p, n);
}

static inline void put_rec_str(bytes *b, const char *s) { put_rec(b, s, (uint32_t)strlen(s)); }

static inline uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline const uint8_t *bp(const bytes *b) { return b->p ? b->p : EMPTY; }


/* --- random numbers (the random sections) ---------------------------------- */

extern uint64_t rng_state; /* the seed: WM_TEST_SEED, else a fixed one */

static inline uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static inline uint32_t below(uint32_t n) { return (uint32_t)(rnd() % n); }

/* A number from the environment, or `fallback`. */
static inline uint64_t env_u64(const char *name, uint64_t fallback)
{
    const char *v = getenv(name);
    return v ? strtoull(v, NULL, 0) : fallback;
}

/* --- sections (test_main.c runs them by name) ------------------------------- */

void test_lifecycle(void);   /* test_handles.c */
void test_handles(void);
void test_names(void);
void test_generations(void);
void test_modules(void);
void test_kv(void);          /* test_kv.c */
void test_hash(void);        /* test_hash.c */
void test_keys(void);
void test_batches(void);     /* test_batches.c */
void test_quotas(void);
void test_maps(void);        /* test_refcount.c */
void test_gc_debug(void);    /* test_gc.c */
void test_gc_work(void);
void test_random(void);      /* test_random.c */
void test_abi(void);         /* test_abi.c */
void test_links(void);       /* test_links.c */
void test_results(void);
void test_traps(void);       /* test_traps.c */
void test_unload(void);
void test_deadlines(void);   /* test_deadlines.c */
void test_selfcalls(void);   /* test_selfcalls.c */
void test_notices(void);     /* test_notices.c */
void test_xrandom(void);     /* test_xrandom.c */
void test_threads(void);     /* test_threads.c */
void test_pool(void);        /* test_pool.c */
void test_store(void);       /* test_store.c */
void test_trace(void);       /* test_trace.c */

#endif
