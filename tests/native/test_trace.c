/* test_trace.c: the tracer's recorder (native/trace.c): takes in batches,
 * events made between two takes, and the bound.
 *
 * A take reads from the front of the buffer and moves a cursor; the events
 * left are moved down only when the buffer is full.  Each check here is
 * about what the host sees: every event once, in order, none lost within
 * the bound, the overflow counted and numbered. */
#include "harness.h"

/* n new maps from the host: n "new" events */
static void make_events(wm_module *host, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        (void)new_map(host);
}

/* Take up to cap events; check they are "new" events numbered from *next on. */
static size_t take_checked(wm_broker *b, size_t cap, uint64_t *next)
{
    wm_event ev[8];
    CHECK(cap <= 8);
    size_t n = wm_broker_take_events(b, ev, cap);
    for (size_t i = 0; i < n; i++) {
        CHECK(ev[i].kind == WM_EV_NEW && ev[i].seq == *next);
        (*next)++;
    }
    return n;
}

void test_trace(void)
{
    wm_broker *b = new_broker(11);
    wm_module *host = wm_broker_host(b);
    uint64_t next = 1;
    OK(wm_broker_trace(b, 4)); /* a buffer of 4 events */

    /* taken in batches of 3: 3, then the 1 left, then none */
    make_events(host, 4);
    CHECK(take_checked(b, 3, &next) == 3);
    CHECK(take_checked(b, 3, &next) == 1);
    CHECK(take_checked(b, 3, &next) == 0);

    /* events made between two takes: the untaken ones move down, none lost */
    make_events(host, 4);
    CHECK(take_checked(b, 2, &next) == 2);
    make_events(host, 2); /* the buffer is full again: 2 untaken + 2 */
    CHECK(take_checked(b, 8, &next) == 4);
    CHECK(wm_broker_events_dropped(b) == 0);

    /* past the bound: counted as dropped, and their numbers skipped */
    make_events(host, 6);
    CHECK(take_checked(b, 8, &next) == 4);
    CHECK(wm_broker_events_dropped(b) == 2);
    make_events(host, 1);
    next += 2;
    CHECK(take_checked(b, 8, &next) == 1);

    /* tracing off mid-take: nothing left to take */
    make_events(host, 3);
    CHECK(take_checked(b, 1, &next) == 1);
    OK(wm_broker_trace(b, 0));
    CHECK(take_checked(b, 8, &next) == 0);
    wm_broker_free(b);
}
