/* http-counter: answers `wasi-map serve` requests by counting hits per path.
 *
 * The serving convention (docs/serving.md): the host lends handle() a map
 * holding the request ("req:method", "req:path", ...); handle() writes its
 * response body under "resp:body" (headers under "resp:header:NAME") and
 * returns the HTTP status.
 *
 *   GET PATH   200, body "N\n": PATH's new count, kept in the named map
 *              "hits" under the key PATH (an atomic incr, so concurrent
 *              requests and several servers sharing a store never lose one)
 *   otherwise  405 with "allow: GET"; a path over PATH_CAP bytes: 414
 *
 * Every wasi_map errno it does not expect traps: the server answers 500
 * and loads the module again for the next request. */
#include <stdint.h>
#include <string.h>

#include "wasi_map.h"

#define PATH_CAP 1024
#define STORE_FAILED 503

#define ADDR(p) ((uint32_t)(uintptr_t)(p))
#define KEY(s) ADDR(s), (uint32_t)(sizeof(s) - 1) /* a string literal as (ptr, len) */

static void check(wm_errno_t err)
{
    if (err != WM_OK)
        __builtin_trap();
}

/* Write a string literal as the value of a key of the request's map. */
#define PUT(h, key, text) check(wm_set((h), KEY(key), KEY(text)))

/* The value of `key` into buf (cap bytes); its length, or -1 when it does
 * not fit (RANGE). */
static int32_t get(wm_handle_t h, uint32_t key, uint32_t key_len, char *buf, uint32_t cap)
{
    uint32_t len;
    wm_errno_t err = wm_get(h, key, key_len, ADDR(buf), cap, ADDR(&len));
    if (err == WM_RANGE)
        return -1;
    check(err);
    return (int32_t)len;
}

/* n in decimal, then "\n", into buf; its length. */
static uint32_t decimal_line(char *buf, int64_t n)
{
    char digits[20];
    uint32_t len = 0, k = 0;
    uint64_t v = (uint64_t)n;
    do {
        digits[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k)
        buf[len++] = digits[--k];
    buf[len++] = '\n';
    return len;
}

__attribute__((export_name("handle"))) int32_t handle(wm_handle_t req)
{
    static char path[PATH_CAP];
    char method[8], body[24];
    int32_t method_len = get(req, KEY("req:method"), method, sizeof method);
    if (method_len != 3 || memcmp(method, "GET", 3) != 0) {
        PUT(req, "resp:header:allow", "GET");
        PUT(req, "resp:body", "only GET counts\n");
        return 405;
    }
    int32_t path_len = get(req, KEY("req:path"), path, sizeof path);
    if (path_len < 0)
        return 414;

    wm_handle_t hits;
    int64_t count;
    check(wm_open(KEY("hits"), WM_READ | WM_WRITE, ADDR(&hits)));
    wm_errno_t err = wm_incr(hits, ADDR(path), (uint32_t)path_len, 1, ADDR(&count));
    check(wm_close(hits));
    if (err == WM_IO) { /* the store (sqlite, Redis) failed: try again later */
        PUT(req, "resp:body", "the store is unavailable\n");
        return STORE_FAILED;
    }
    check(err);
    check(wm_set(req, KEY("resp:body"), ADDR(body), decimal_line(body, count)));
    return 200;
}
