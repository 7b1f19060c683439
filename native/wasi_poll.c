/* wasi_poll.c: WASI preview 1's poll_oneoff, with sleeps under the time limit.
 *
 * wasmtime's own poll_oneoff sleeps as long as the guest asks, with the
 * broker held: a guest's `sleep(3)` stalled every caller for 3 s, and no
 * epoch deadline can interrupt host code.  This one (defined over
 * wasmtime's, see runtime.py) sleeps only on clocks, and only within the
 * module's time limit: a sleep that would end past the limit traps at once,
 * as a call that ran too long does (the module is torn down).
 *
 * Supported: clock subscriptions on any clock, relative, or absolute on
 * the realtime clock.  Answered NOTSUP: subscriptions on file descriptors,
 * and absolute times on the other clocks (their origin is wasmtime's).
 *
 * Layouts (wasi_snapshot_preview1, little-endian):
 *   subscription, 48 bytes: userdata u64 @0; tag u8 @8 (0 clock, 1 fd_read,
 *     2 fd_write); clock: id u32 @16, timeout u64 @24, precision u64 @32,
 *     flags u16 @40 (1: abstime).
 *   event, 32 bytes: userdata u64 @0; error u16 @8; type u8 @10; fd_readwrite
 *     @16 (zero for clocks).
 * Every subscription due by the soonest wait gets an event, in order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guest.h"
#include "wm_core.h"

#define SUB_SIZE 48u
#define EVENT_SIZE 32u
#define WASI_ESUCCESS 0
#define WASI_EFAULT 21
#define WASI_EINVAL 28
#define WASI_ENOMEM 48
#define WASI_ENOTSUP 58
#define CLOCK_ABSTIME 1u
#define WASI_CLOCK_REALTIME 0u
#define WASI_CLOCK_THREAD_CPUTIME 3u

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint64_t now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec left = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
}

/* How long subscription `s` asks to wait, in ns from now; or a WASI errno. */
static int wait_of(const uint8_t *s, uint64_t *ns)
{
    if (s[8] != 0)
        return WASI_ENOTSUP; /* fd_read / fd_write */
    uint32_t id;
    uint16_t flags;
    memcpy(&id, s + 16, 4);
    memcpy(&flags, s + 40, 2);
    uint64_t timeout = rd64(s + 24);
    if (id > WASI_CLOCK_THREAD_CPUTIME)
        return WASI_EINVAL;
    if (!(flags & CLOCK_ABSTIME)) {
        *ns = timeout;
        return WASI_ESUCCESS;
    }
    if (id != WASI_CLOCK_REALTIME)
        return WASI_ENOTSUP;
    uint64_t now = now_ns(CLOCK_REALTIME);
    *ns = timeout > now ? timeout - now : 0;
    return WASI_ESUCCESS;
}

static wt_trap *answer(wt_val_raw *args, int err)
{
    args[0].i32 = err;
    return NULL;
}

static wt_trap *poll_oneoff(void *env, wt_caller *caller, wt_val_raw *args, size_t nargs)
{
    (void)nargs;
    wm_module *m = env;
    guest g;
    guest_view(m, caller, &g);
    uint32_t n = (uint32_t)args[2].i32;
    uint8_t *in, *out, *nevents;
    if (n == 0)
        return answer(args, WASI_EINVAL);
    if (!span(&g, (uint32_t)args[0].i32, (uint64_t)n * SUB_SIZE, &in) ||
        !span(&g, (uint32_t)args[1].i32, (uint64_t)n * EVENT_SIZE, &out) ||
        !span(&g, (uint32_t)args[3].i32, 4, &nevents))
        return answer(args, WASI_EFAULT);
    /* Each subscription's wait, read before anything is written: the
     * events may overlap the subscriptions in guest memory. */
    uint64_t *waits = malloc((size_t)n * sizeof *waits), soonest = UINT64_MAX;
    if (!waits)
        return answer(args, WASI_ENOMEM);
    for (uint32_t i = 0; i < n; i++) {
        int err = wait_of(in + (uint64_t)i * SUB_SIZE, &waits[i]);
        if (err) {
            free(waits);
            return answer(args, err);
        }
        if (waits[i] < soonest)
            soonest = waits[i];
    }
    uint64_t *userdata = waits; /* reused below: due ones' userdata, in order */
    uint32_t count = 0;
    for (uint32_t i = 0; i < n; i++)
        if (waits[i] <= soonest)
            userdata[count++] = rd64(in + (uint64_t)i * SUB_SIZE);
    uint64_t left_ms = wm_time_left(m);
    if (left_ms != UINT64_MAX && soonest / 1000000u >= left_ms) {
        free(waits); /* no point sleeping into a trap: it traps now */
        wm_broker *b = m->broker;
        wm_lock(b);
        wm_mark_origin(b, m);
        wm_unlock(b);
        return wm_trap(b, "wasi_map: module '%.300s' would sleep past its time limit of %u ms "
                          "(poll_oneoff)",
                       m->name, m->limits.time_ms);
    }
    sleep_ns(soonest);
    for (uint32_t i = 0; i < count; i++) {
        uint8_t *e = out + (uint64_t)i * EVENT_SIZE; /* type 0: clock, error 0 */
        memset(e, 0, EVENT_SIZE);
        memcpy(e, &userdata[i], 8);
    }
    free(waits);
    memcpy(nevents, &count, 4);
    return answer(args, WASI_ESUCCESS);
}

void *wm_define_wasi_poll(wm_module *m, void *linker, void *functype)
{
    static const char module[] = "wasi_snapshot_preview1", name[] = "poll_oneoff";
    return m->broker->api.linker_define_func_unchecked(linker, module, sizeof module - 1, name,
                                                       sizeof name - 1, functype, poll_oneoff, m,
                                                       NULL);
}
