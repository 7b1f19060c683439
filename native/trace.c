/* trace.c: the ownership tracer's recorder.
 *
 * While tracing, every ownership event (WM_EV_* in wm.h) is appended to a
 * buffer in the broker, under the broker lock, by the WM_TRACE sites in
 * ops.c, ownership.c, link.c, refcount.c, gc.c and broker.c.  The host
 * takes the events after each operation (broker/tracer.py) and turns them
 * into structlog events.
 *
 * The bound: the buffer holds at most `events_limit` events between two
 * takes (56 bytes each; broker/tracer.py asks for 131,072: 7 MiB).  One
 * guest call can make any number of events (a loop of new and close in one
 * export) and nothing takes them until it returns, so beyond the limit
 * events are counted as dropped, not stored.  A dropped event still uses
 * its sequence number: a gap in `seq` shows where, and how many.  The
 * buffer starts at TRACE_CHUNK events, doubles up to the limit, and is
 * given back once a take empties it, so a burst does not keep its memory.
 * A take reads from the front and only moves a cursor: the host takes a
 * full buffer in batches, and moving the rest down after each batch cost
 * more than recording.
 * With the tracer off an event site costs one predictable branch.
 */
#include <stdlib.h>
#include <string.h>

#include "wm_core.h"

/* The buffer's first size, and the size it shrinks back to. */
#define TRACE_CHUNK 4096u

uint32_t wm_trace_compiled(void)
{
#ifdef WM_NO_TRACE
    return 0;
#else
    return 1;
#endif
}

void wm_trace_emit(wm_broker *b, const wm_event *e)
{
    uint64_t seq = ++b->events_seq; /* numbered even when dropped: the gap says so */
    if (b->events_len == b->events_cap && b->events_taken) {
        /* Full, but partly taken (an event between two takes of one drain):
         * the untaken events move down to make room. */
        b->events_len -= b->events_taken;
        memmove(b->events, b->events + b->events_taken, b->events_len * sizeof *b->events);
        b->events_taken = 0;
    }
    if (b->events_len == b->events_cap) {
        uint32_t cap = b->events_cap ? b->events_cap * 2 : TRACE_CHUNK;
        if (cap > b->events_limit || cap < b->events_cap) /* the limit, or overflow */
            cap = b->events_limit;
        wm_event *grown = cap > b->events_cap ? realloc(b->events, (size_t)cap * sizeof *grown)
                                              : NULL;
        if (!grown) {
            b->events_dropped++;
            return;
        }
        b->events = grown;
        b->events_cap = cap;
    }
    wm_event *slot = &b->events[b->events_len++];
    *slot = *e;
    slot->seq = seq;
}

int wm_broker_trace(wm_broker *b, uint32_t limit)
{
    wm_lock(b);
    b->events_limit = limit;
    /* link.c's calls without handles read it without the lock */
    __atomic_store_n(&b->tracing, limit > 0 && wm_trace_compiled(), __ATOMIC_RELAXED);
    if (!b->tracing) {
        free(b->events);
        b->events = NULL;
        b->events_len = b->events_cap = b->events_taken = 0;
    }
    wm_unlock(b);
    return WM_OK;
}

size_t wm_broker_take_events(wm_broker *b, wm_event *out, size_t cap)
{
    wm_lock(b);
    size_t left = b->events_len - b->events_taken;
    size_t n = left < cap ? left : cap;
    if (n) {
        memcpy(out, b->events + b->events_taken, n * sizeof *out);
        b->events_taken += (uint32_t)n;
    }
    if (b->events_taken == b->events_len) {
        b->events_len = b->events_taken = 0;
        if (b->events_cap > TRACE_CHUNK) {
            /* A burst grew the buffer: give it back now that it is empty (the
             * next event allocates TRACE_CHUNK again). */
            free(b->events);
            b->events = NULL;
            b->events_cap = 0;
        }
    }
    wm_unlock(b);
    return n;
}

uint64_t wm_broker_events_dropped(wm_broker *b)
{
    wm_lock(b);
    uint64_t dropped = b->events_dropped;
    wm_unlock(b);
    return dropped;
}
