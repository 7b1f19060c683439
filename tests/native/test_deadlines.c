/* test_deadlines.c: time limits: the deadline callback, through the fake store. */
#include "harness.h"
#include "xworld.h"

/* --- time limits: the deadline callback, through the fake store ------------- */

void test_deadlines(void)
{
    xworld_new(25);
    wm_broker *b = xw.b;
    CHECK(wm_broker_set_engine(b, (void *)&fake_token) == WM_OK && fake_engines == 1);
    wm_module *m = wm_module_new(b, &(wm_limits){64, 64, 10, 100, 10, 10, 0, 30}, "slow");
    wm_module *free_m = wm_module_new(b, &(wm_limits){64, 64, 10, 100, 10, 10, 0, 0}, "free");
    wasm_store st = {0}, st2 = {0};
    wm_module_set_store(m, &st, &st);
    wm_module_set_store(free_m, &st2, &st2);
    CHECK(st.cb != NULL && st.env == m && st.deadline == 1); /* the first check sets it */
    uint64_t delta = 0;
    uint8_t kind = 9;
    /* outside any call: a later call starts within one limit */
    CHECK(st.cb((wt_context *)&st, st.env, &delta, &kind) == NULL && delta == 30 && kind == 0);
    CHECK(st2.cb((wt_context *)&st2, st2.env, &delta, &kind) == NULL && delta > 1000000);
    /* inside a call: the deadline moves to where the limit ends, then it ends */
    wm_module_enter(m);
    CHECK(st.cb((wt_context *)&st, st.env, &delta, &kind) == NULL && delta >= 1 && delta <= 30);
    int epoch = fake_epoch;
    usleep(80 * 1000); /* the ticker runs while a call does */
    CHECK(fake_epoch > epoch);
    wt_error *e = st.cb((wt_context *)&st, st.env, &delta, &kind);
    CHECK(e != NULL && strstr(((fake_msg *)e)->text, "module 'slow' ran past its time limit of 30 ms"));
    fake_error_delete(e);
    CHECK(wm_broker_take_trap_origin(b) == wm_module_id(m) + 1);
    /* re-entry keeps the outermost start; leaving ends the call */
    wm_module_enter(m);
    wm_module_leave(m);
    e = st.cb((wt_context *)&st, st.env, &delta, &kind);
    CHECK(e != NULL);
    fake_error_delete(e);
    wm_broker_take_trap_origin(b);
    wm_module_leave(m);
    CHECK(st.cb((wt_context *)&st, st.env, &delta, &kind) == NULL && delta == 30);
    /* no limit: never */
    wm_module_enter(free_m);
    usleep(5 * 1000);
    CHECK(st2.cb((wt_context *)&st2, st2.env, &delta, &kind) == NULL && delta > 1000000);
    wm_module_leave(free_m);
    /* ticks follow the clock, not the ticker's wake-ups (each a bit over
     * 1 ms): after 500 ms the count catches up to within 2 ms */
    {
        wm_module_enter(m);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        uint64_t start = wm_ticks_now();
        usleep(500 * 1000);
        bool caught_up = false;
        for (int i = 0; i < 100 && !caught_up; i++) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            uint64_t ms = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000 +
                          (uint64_t)((t1.tv_nsec - t0.tv_nsec) / 1000000);
            caught_up = wm_ticks_now() - start + 2 >= ms;
            if (!caught_up)
                usleep(1000);
        }
        CHECK(caught_up);
        wm_module_leave(m);
    }
    /* a second engine replaces the first; close gives both back */
    CHECK(wm_broker_set_engine(b, (void *)&fake_token) == WM_OK && fake_engines == 1);
    wm_broker_close(b);
    CHECK(fake_engines == 0);
    xworld_free();
}

