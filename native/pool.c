/* pool.c: a module's instances, and which thread runs in each.
 *
 * A module loaded with `instances = N` is N wm_modules (each its own
 * wasmtime store, handle table and quotas) in one wm_pool.  A call into the
 * module takes an instance for the calling thread:
 *   - one this thread already runs in (a call that comes back into the
 *     module re-enters it, as a module with one instance always has);
 *   - else a free one that is not torn down (one compare-and-swap);
 *   - else it waits, up to `wait_ms`, for one to come free.
 * An instance's `owner` is the thread running in it (NULL: free); only
 * that thread changes its `depth`, so taking is one compare-and-swap and
 * giving back one store.  Waiters sleep on one process-wide condition,
 * woken when any instance comes free while someone waits, and look again
 * every LOOK_MS in case a wake was missed (giving back does not fence).
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "wm_core.h"

_Thread_local char wm_thread_token WM_TLS; /* its address names this thread */
#define ME WM_ME
static char retiring_token; /* the owner of an instance being replaced, for good */
#define RETIRING ((void *)&retiring_token)

static pthread_mutex_t wait_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t freed;
static pthread_once_t freed_once = PTHREAD_ONCE_INIT;
#define waiters wm_pool_waiters

static void init_freed(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&freed, &attr);
    pthread_condattr_destroy(&attr);
}

wm_pool *wm_pool_new(uint32_t n)
{
    if (n == 0 || n > WM_MAX_INSTANCES)
        return NULL;
    wm_pool *p = calloc(1, sizeof *p + (size_t)n * sizeof p->inst[0]);
    if (p)
        p->n = n;
    return p;
}

void wm_pool_set(wm_pool *p, uint32_t i, wm_module *m)
{
    if (i < p->n) /* after its links' functions: a taker sees them */
        __atomic_store_n(&p->inst[i], m, __ATOMIC_RELEASE);
    if (__atomic_load_n(&wm_pool_waiters, __ATOMIC_SEQ_CST))
        wm_pool_wake();
}

void wm_pool_replacing(wm_pool *p, int delta)
{
    __atomic_add_fetch(&p->replacing, (uint32_t)delta, __ATOMIC_SEQ_CST);
    if (delta < 0 && __atomic_load_n(&wm_pool_waiters, __ATOMIC_SEQ_CST))
        wm_pool_wake(); /* the new one failed: waiters see it is over */
}

bool wm_pool_has(const wm_pool *p, const wm_module *m)
{
    for (uint32_t i = 0; i < p->n; i++)
        if (p->inst[i] == m)
            return true;
    return false;
}

void wm_pool_free(wm_pool *p) { free(p); }

/* A waiter looks again at least this often: a give does not fence, so
 * its wake can be missed (wm_pool_give). */
#define LOOK_MS 1

static bool before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* The monotonic time wait_ms from now. */
static struct timespec after_ms(uint64_t wait_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(wait_ms / 1000);
    until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return until;
}

wm_module *wm_pool_take(wm_pool *p, uint64_t wait_ms, int *why, uint32_t *index)
{
    bool live;
    wm_module *m = wm_pool_try(p, &live, index);
    if (m)
        return m;
    if (!live && !__atomic_load_n(&p->replacing, __ATOMIC_ACQUIRE)) {
        *why = WM_POOL_DEAD;
        return NULL;
    }
    pthread_once(&freed_once, init_freed);
    struct timespec until = after_ms(wait_ms == UINT64_MAX ? 0 : wait_ms);
    pthread_mutex_lock(&wait_lock);
    __atomic_add_fetch(&waiters, 1, __ATOMIC_SEQ_CST);
    int waited = 0;
    while (!(m = wm_pool_try(p, &live, index)) &&
           (live || __atomic_load_n(&p->replacing, __ATOMIC_ACQUIRE)) && waited != ETIMEDOUT) {
        struct timespec look = after_ms(LOOK_MS);
        bool last = wait_ms != UINT64_MAX && before(&until, &look);
        waited = pthread_cond_timedwait(&freed, &wait_lock, last ? &until : &look);
        if (!last && waited == ETIMEDOUT)
            waited = 0; /* only a look: wait on */
    }
    __atomic_sub_fetch(&waiters, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&wait_lock);
    if (!m)
        *why = live ? WM_POOL_BUSY : __atomic_load_n(&p->replacing, __ATOMIC_ACQUIRE)
                                         ? WM_POOL_BUSY
                                         : WM_POOL_DEAD;
    return m;
}

_Atomic uint32_t wm_pool_waiters;

void wm_pool_wake(void)
{
    pthread_mutex_lock(&wait_lock);
    pthread_cond_broadcast(&freed);
    pthread_mutex_unlock(&wait_lock);
}

/* Take `m` for `token` once it is free (whether or not it is dead),
 * waiting up to wait_ms; true when taken. */
static bool take_when_free(wm_module *m, void *token, uint64_t wait_ms)
{
    void *none = NULL;
    if (__atomic_compare_exchange_n(&m->owner, &none, token, false, __ATOMIC_SEQ_CST,
                                    __ATOMIC_RELAXED))
        return true;
    pthread_once(&freed_once, init_freed);
    struct timespec until = after_ms(wait_ms);
    pthread_mutex_lock(&wait_lock);
    __atomic_add_fetch(&waiters, 1, __ATOMIC_SEQ_CST);
    int waited = 0;
    bool taken;
    none = NULL; /* the failed exchange left the owner there */
    while (!(taken = __atomic_compare_exchange_n(&m->owner, &none, token, false,
                                                 __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) &&
           waited != ETIMEDOUT) {
        none = NULL;
        struct timespec look = after_ms(LOOK_MS);
        bool last = before(&until, &look);
        waited = pthread_cond_timedwait(&freed, &wait_lock, last ? &until : &look);
        if (!last && waited == ETIMEDOUT)
            waited = 0;
    }
    __atomic_sub_fetch(&waiters, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&wait_lock);
    return taken;
}

/* Wait until `m` is free and take it for good (wm.h). */
int wm_pool_retire(wm_module *m, uint64_t wait_ms)
{
    void *owner = __atomic_load_n(&m->owner, __ATOMIC_ACQUIRE);
    if (owner == ME || owner == RETIRING)
        return owner == RETIRING ? WM_OK : WM_BUSY; /* this thread runs in it: later */
    return take_when_free(m, RETIRING, wait_ms) ? WM_OK : WM_BUSY;
}

/* Hold `m` for the host's operations on this thread (wm.h). */
int wm_module_hold(wm_module *m, uint64_t wait_ms)
{
    void *owner = __atomic_load_n(&m->owner, __ATOMIC_ACQUIRE);
    if (m == m->broker->host || owner == ME)
        return WM_HOLD_NONE; /* the host's are locked; a call of this thread runs in it */
    if (owner == RETIRING)
        return WM_BUSY; /* being replaced: its handles are gone */
    return take_when_free(m, ME, wait_ms) ? WM_OK : WM_BUSY;
}

void wm_module_unhold(wm_module *m) { wm_pool_give(m); }

/* Wait until no other thread runs in `m` (marked dead: none can start). */
void wm_pool_wait_unowned(wm_module *m)
{
    void *owner = __atomic_load_n(&m->owner, __ATOMIC_SEQ_CST);
    if (!owner || owner == ME || owner == RETIRING)
        return;
    pthread_once(&freed_once, init_freed);
    pthread_mutex_lock(&wait_lock);
    __atomic_add_fetch(&waiters, 1, __ATOMIC_SEQ_CST);
    while ((owner = __atomic_load_n(&m->owner, __ATOMIC_SEQ_CST)) && owner != ME &&
           owner != RETIRING) {
        struct timespec look = after_ms(LOOK_MS);
        pthread_cond_timedwait(&freed, &wait_lock, &look);
    }
    __atomic_sub_fetch(&waiters, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&wait_lock);
}

bool wm_pool_mine(const wm_module *m)
{
    return __atomic_load_n(&m->owner, __ATOMIC_ACQUIRE) == ME;
}
