/* counter: an edge function that counts page hits in the named map "hits".
 *
 * The map lives in whatever store the manifest names (sqlite file, Redis
 * server, or memory); the guest does not know which.  Many processes, each
 * with its own broker and its own instance of this module, may count into
 * the same store at once:
 *
 *   "page:N"  8-byte little-endian i64: hits of page N      (incr)
 *   "total"   8-byte little-endian i64: hits of all pages   (incr)
 *   "leader"  4-byte little-endian i32: the owner that won claim(), or
 *             empty when nobody leads                        (version + set_if)
 *
 * Every wasi_map errno is checked.  Those this module does not expect trap,
 * so `wasi-map run` fails loudly.  IO, "the store failed", is expected: a
 * network or disk can fail at any time.  Each export then returns
 * STORE_FAILED (-13, minus the errno) instead of trapping, so a caller can
 * count failures and carry on; the next call tries the store again. */
#include <stdint.h>
#include <string.h>

#include "wasi_map.h"

#define STORE_FAILED (-(int32_t)WM_IO) /* what every export returns on IO */
#define MAX_PAGES 4096                 /* pages 0 .. MAX_PAGES-1 */
#define MAX_CLAIM_TRIES 64             /* set_if races lost in a row before giving up */
#define KEY_CAP 16                     /* "page:4095" fits with room to spare */

/* The ABI takes guest addresses as u32. */
#define ADDR(p) ((uint32_t)(uintptr_t)(p))
#define KEY(s) ADDR(s), (uint32_t)(sizeof(s) - 1) /* a string literal as (ptr, len) */

static const char MAP[] = "hits";

/* OK: 1.  IO: 0 (the caller returns STORE_FAILED).  Anything else traps. */
static int done(wm_errno_t err)
{
    if (err == WM_IO)
        return 0;
    if (err != WM_OK)
        __builtin_trap();
    return 1;
}

static uint32_t load_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int64_t load_i64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return (int64_t)v;
}

static void store_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Append (u32 length, bytes): one field of a set_many/get_many batch. */
static uint8_t *put_field(uint8_t *p, const void *bytes, uint32_t len)
{
    store_u32(p, len);
    memcpy(p + 4, bytes, len);
    return p + 4 + len;
}

/* Pages outside 0 .. MAX_PAGES-1 are a caller's bug: trap. */
static void check_page(int32_t page)
{
    if (page < 0 || page >= MAX_PAGES)
        __builtin_trap();
}

/* "page:N" into buf (KEY_CAP bytes); its length. */
static uint32_t page_key(char *buf, int32_t page)
{
    static const char prefix[] = "page:";
    char digits[10];
    uint32_t v = (uint32_t)page, n = 0, len = sizeof(prefix) - 1;
    memcpy(buf, prefix, len);
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        buf[len++] = digits[--n];
    return len;
}

/* Open "hits" with just the rights this export needs; 0 on IO.  (open
 * does not reach the store, docs/stores.md; it is checked like any call.) */
static int open_hits(uint32_t rights, wm_handle_t *h)
{
    return done(wm_open(KEY(MAP), rights, ADDR(h)));
}

/* The i64 counter under key, 0 when absent; 0 on IO, 1 on success. */
static int read_count(wm_handle_t h, const char *key, uint32_t key_len, int64_t *count)
{
    uint8_t le[8];
    uint32_t len;
    wm_errno_t err = wm_get(h, ADDR(key), key_len, ADDR(le), sizeof le, ADDR(&len));
    if (err == WM_NOENT) {
        *count = 0;
        return 1;
    }
    if (!done(err))
        return 0;
    if (len != sizeof le)
        __builtin_trap(); /* not a counter */
    *count = load_i64(le);
    return 1;
}

/* hit(page) -> the page's new count.  Two atomic incr: the page, then
 * "total".  If the second answers IO, the page was counted and the total
 * was not: report() and total() then differ by one (README.md). */
__attribute__((export_name("hit"))) int64_t hit(int32_t page)
{
    char key[KEY_CAP];
    wm_handle_t h;
    int64_t count, total;
    check_page(page);
    if (!open_hits(WM_READ | WM_WRITE, &h))
        return STORE_FAILED;
    int counted = done(wm_incr(h, ADDR(key), page_key(key, page), 1, ADDR(&count))) &&
                  done(wm_incr(h, KEY("total"), 1, ADDR(&total)));
    done(wm_close(h));
    return counted ? count : STORE_FAILED;
}

/* hits(page) -> the page's count (0 if never hit). */
__attribute__((export_name("hits"))) int64_t hits(int32_t page)
{
    char key[KEY_CAP];
    wm_handle_t h;
    int64_t count;
    check_page(page);
    if (!open_hits(WM_READ, &h))
        return STORE_FAILED;
    int read = read_count(h, key, page_key(key, page), &count);
    done(wm_close(h));
    return read ? count : STORE_FAILED;
}

/* total() -> the "total" counter. */
__attribute__((export_name("total"))) int64_t total(void)
{
    static const char key[] = "total";
    wm_handle_t h;
    int64_t count;
    if (!open_hits(WM_READ, &h))
        return STORE_FAILED;
    int read = read_count(h, key, sizeof key - 1, &count);
    done(wm_close(h));
    return read ? count : STORE_FAILED;
}

/* report(npages) -> the sum of pages 0 .. npages-1, read with ONE get_many:
 * all counters at one point in time, one store round trip.  After every
 * hit() has returned, it equals total(). */
__attribute__((export_name("report"))) int64_t report(int32_t npages)
{
    static uint8_t keys[MAX_PAGES * (4 + KEY_CAP)];
    static uint8_t values[MAX_PAGES * (4 + 8)];
    uint8_t *p = keys;
    uint32_t used;
    wm_handle_t h;
    if (npages < 1 || npages > MAX_PAGES)
        __builtin_trap();
    for (int32_t page = 0; page < npages; page++) {
        char key[KEY_CAP];
        p = put_field(p, key, page_key(key, page));
    }
    if (!open_hits(WM_READ, &h))
        return STORE_FAILED;
    int read = done(wm_get_many(h, ADDR(keys), (uint32_t)(p - keys), ADDR(values),
                                sizeof values, ADDR(&used)));
    done(wm_close(h));
    if (!read)
        return STORE_FAILED;

    int64_t sum = 0;
    const uint8_t *v = values, *end = values + used;
    for (int32_t page = 0; page < npages; page++) {
        if (end - v < 4)
            __builtin_trap();
        uint32_t len = load_u32(v);
        v += 4;
        if (len == 0xFFFFFFFFu) /* never hit */
            continue;
        if (len != 8 || end - v < 8)
            __builtin_trap(); /* not a counter */
        sum += load_i64(v);
        v += 8;
    }
    return sum;
}

/* The leader's id, or -1 when the post is vacant (key absent or empty);
 * its version in *version (0 when absent).  0 on IO, 1 on success.
 *
 * version is read first: if "leader" changes between the two reads, the
 * version is older than the value, and a set_if on it gets CONFLICT. */
static int read_leader(wm_handle_t h, int32_t *leader, uint64_t *version)
{
    uint8_t le[4];
    uint32_t len;
    if (!done(wm_version(h, KEY("leader"), ADDR(version))))
        return 0;
    wm_errno_t err = wm_get(h, KEY("leader"), ADDR(le), sizeof le, ADDR(&len));
    if (err == WM_NOENT) {
        *leader = -1;
        return 1;
    }
    if (!done(err))
        return 0;
    if (len != 0 && len != 4)
        __builtin_trap();
    *leader = len ? (int32_t)load_u32(le) : -1;
    return 1;
}

/* claim(owner) -> the leader after the call: `owner` if this call won.
 * A compare-and-swap on the key's version: set_if(version seen) succeeds
 * only if nobody wrote "leader" since, in any process sharing the store, so
 * exactly one of many racing claims wins. */
__attribute__((export_name("claim"))) int32_t claim(int32_t owner)
{
    wm_handle_t h;
    int32_t result = -1; /* -1: not decided yet */
    uint8_t le[4];
    if (owner < 0)
        __builtin_trap(); /* ids are >= 0: -1 means vacant, -13 IO */
    store_u32(le, (uint32_t)owner);
    if (!open_hits(WM_READ | WM_WRITE, &h))
        return STORE_FAILED;
    for (int tries = 0; result == -1 && tries < MAX_CLAIM_TRIES; tries++) {
        int32_t leader;
        uint64_t version;
        if (!read_leader(h, &leader, &version)) {
            result = STORE_FAILED;
        } else if (leader >= 0) {
            result = leader; /* someone leads already (maybe owner itself) */
        } else {
            wm_errno_t err = wm_set_if(h, KEY("leader"), ADDR(le), sizeof le, (int64_t)version);
            if (err != WM_CONFLICT) /* CONFLICT: another claim or resign got in between */
                result = done(err) ? owner : STORE_FAILED;
        }
    }
    done(wm_close(h));
    if (result == -1)
        __builtin_trap(); /* MAX_CLAIM_TRIES races lost in a row */
    return result;
}

/* leader() -> the leader, or -1 when nobody leads. */
__attribute__((export_name("leader"))) int32_t leader(void)
{
    wm_handle_t h;
    int32_t who;
    uint64_t version;
    if (!open_hits(WM_READ, &h))
        return STORE_FAILED;
    int read = read_leader(h, &who, &version);
    done(wm_close(h));
    return read ? who : STORE_FAILED;
}

/* resign(owner) -> 1 if owner led and the post is now vacant, 0 if owner
 * did not lead.  Also a set_if on the version read: a resign never clears
 * a leader elected since. */
__attribute__((export_name("resign"))) int32_t resign(int32_t owner)
{
    wm_handle_t h;
    int32_t who, result = STORE_FAILED;
    uint64_t version;
    if (owner < 0)
        __builtin_trap();
    if (!open_hits(WM_READ | WM_WRITE, &h))
        return STORE_FAILED;
    if (read_leader(h, &who, &version)) {
        if (who != owner) {
            result = 0;
        } else {
            /* Only owner itself writes "leader" while owner leads, so a
             * CONFLICT here would mean two instances with the same id. */
            wm_errno_t err = wm_set_if(h, KEY("leader"), ADDR(""), 0, (int64_t)version);
            if (err == WM_CONFLICT)
                __builtin_trap();
            if (done(err))
                result = 1;
        }
    }
    done(wm_close(h));
    return result;
}

/* reset(npages) -> 0: pages 0 .. npages-1 and "total" to 0, "leader"
 * vacant, in ONE set_many: all or nothing, no reader sees half of it. */
__attribute__((export_name("reset"))) int32_t reset(int32_t npages)
{
    static uint8_t items[(MAX_PAGES + 2) * (4 + KEY_CAP + 4 + 8)];
    static const uint8_t zero[8];
    uint8_t *p = items;
    wm_handle_t h;
    if (npages < 1 || npages > MAX_PAGES)
        __builtin_trap();
    for (int32_t page = 0; page < npages; page++) {
        char key[KEY_CAP];
        p = put_field(p, key, page_key(key, page));
        p = put_field(p, zero, sizeof zero);
    }
    p = put_field(p, "total", 5);
    p = put_field(p, zero, sizeof zero);
    p = put_field(p, "leader", 6);
    p = put_field(p, "", 0);
    if (!open_hits(WM_READ | WM_WRITE, &h))
        return STORE_FAILED;
    int written = done(wm_set_many(h, ADDR(items), (uint32_t)(p - items)));
    done(wm_close(h));
    return written ? 0 : STORE_FAILED;
}
