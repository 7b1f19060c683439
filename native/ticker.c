/* ticker.c: the clock behind every module's time limit.
 *
 * One thread per process -- the one piece of state in the core that is not
 * a broker's, by design: wasmtime's epoch interruption wants one ticker,
 * not one per call.  While any broker has a call running (a host call or a
 * start function: wm_tick_begin/end), it advances a tick counter and the
 * epoch of every registered engine by the milliseconds passed, every
 * WM_TICK_NS; with no call
 * running it sleeps on a condition variable, so an idle process is never
 * woken.  A module's call notes the tick it began at (cheaply: one atomic
 * load); wasmtime calls link.c's deadline callback when the module's epoch
 * deadline passes, and that compares the ticks used with the limit.
 *
 * Engines are held as clones (wasmtime_engine_clone), so an engine the
 * broker's owner drops stays valid until the broker unregisters it.  After
 * fork() the child has no ticker thread: the next call starts one.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "wm_core.h"

typedef struct ticked_engine {
    void *engine; /* wasm_engine_t *, our clone */
    void (*increment)(void *);
    void (*destroy)(void *);
} ticked_engine;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    ticked_engine *engines; /* guarded by lock */
    size_t len, cap;
    atomic_bool started;    /* changed under lock */
    atomic_uint_fast64_t active; /* calls running, in every broker */
    pthread_once_t once;
} T = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, .once = PTHREAD_ONCE_INIT};

_Atomic uint64_t wm_tick_count; /* ticks since the process began ticking */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Ticks follow the monotonic clock, not the number of wake-ups: a ticker
 * woken late (a loaded machine) catches up, so a limit is wall-clock time.
 * Time spent idle (no call running) is not counted: the count resumes
 * where it stopped, so a call never starts with time already used. */
static void *run(void *unused)
{
    (void)unused;
    struct timespec period = {0, WM_TICK_NS};
    uint64_t base = 0; /* now_ms() - ticks: where tick 0 was */
    bool resumed = true;
    for (;;) {
        pthread_mutex_lock(&T.lock);
        while (atomic_load(&T.active) == 0) {
            pthread_cond_wait(&T.wake, &T.lock);
            resumed = true;
        }
        pthread_mutex_unlock(&T.lock);
        if (resumed) {
            base = now_ms() - atomic_load(&wm_tick_count);
            resumed = false;
        }
        struct timespec left = period;
        while (nanosleep(&left, &left) != 0 && errno == EINTR)
            ;
        uint64_t ticks = atomic_load(&wm_tick_count), due = now_ms() - base;
        uint64_t step = due > ticks ? due - ticks : 0;
        if (step > 1000) /* a suspended machine: one second of catching up at most */
            step = 1000;
        pthread_mutex_lock(&T.lock);
        atomic_fetch_add_explicit(&wm_tick_count, step, memory_order_relaxed);
        for (size_t i = 0; i < T.len; i++)
            for (uint64_t k = 0; k < step; k++)
                T.engines[i].increment(T.engines[i].engine);
        pthread_mutex_unlock(&T.lock);
    }
    return NULL;
}

/* The child of a fork has none of the parent's threads: a ticker to start
 * again, and a lock and condition that another thread may have held. */
static void forked_child(void)
{
    pthread_mutex_init(&T.lock, NULL);
    pthread_cond_init(&T.wake, NULL);
    atomic_store(&T.started, false);
}

static void install_fork_handler(void) { pthread_atfork(NULL, NULL, forked_child); }

/* Lock held.  A failure to start leaves time limits unenforced, never a
 * crash; the next call tries again. */
static void start_locked(void)
{
    if (atomic_load(&T.started))
        return;
    pthread_attr_t attr;
    pthread_t thread;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    atomic_store(&T.started, pthread_create(&thread, &attr, run, NULL) == 0);
    pthread_attr_destroy(&attr);
}

void wm_tick_begin(void)
{
    if (atomic_fetch_add(&T.active, 1) == 0 || !atomic_load(&T.started)) {
        pthread_once(&T.once, install_fork_handler);
        pthread_mutex_lock(&T.lock);
        start_locked();
        pthread_cond_signal(&T.wake);
        pthread_mutex_unlock(&T.lock);
    }
}

void wm_tick_end(void) { atomic_fetch_sub(&T.active, 1); }

void *wm_ticker_add(const wt_api *api, void *engine)
{
    void *clone = api->engine_clone(engine);
    if (!clone)
        return NULL;
    pthread_mutex_lock(&T.lock);
    if (T.len == T.cap) {
        size_t cap = T.cap ? T.cap * 2 : 4;
        ticked_engine *grown = realloc(T.engines, cap * sizeof *grown);
        if (!grown) {
            pthread_mutex_unlock(&T.lock);
            api->engine_delete(clone);
            return NULL;
        }
        T.engines = grown;
        T.cap = cap;
    }
    T.engines[T.len++] = (ticked_engine){clone, api->engine_increment_epoch, api->engine_delete};
    pthread_mutex_unlock(&T.lock);
    return clone;
}

void wm_ticker_remove(void *engine_clone)
{
    ticked_engine gone = {0};
    pthread_mutex_lock(&T.lock);
    for (size_t i = 0; i < T.len; i++) {
        if (T.engines[i].engine == engine_clone) {
            gone = T.engines[i];
            T.engines[i] = T.engines[--T.len];
            break;
        }
    }
    if (T.len == 0) { /* nothing left to tick: give the table back */
        free(T.engines);
        T.engines = NULL;
        T.cap = 0;
    }
    pthread_mutex_unlock(&T.lock);
    if (gone.engine)
        gone.destroy(gone.engine);
}
