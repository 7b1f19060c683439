/* test_gc.c: the core's debug checks of the refcount invariants.
 *
 * A -DWM_DEBUG build (run_sanitized.sh builds every test so) asserts the
 * invariants the collector and the refcount table rely on (native/gc.c,
 * native/refcount.c).  Here a child process breaks one on purpose, through
 * the core's internals, and must die of the assertion; without WM_DEBUG
 * the same child runs on (the release build checks nothing).
 */
#include <signal.h>
#include <sys/wait.h>

#include "harness.h"

/* Two maps referencing each other, every handle closed: a garbage cycle.
 * Returns the slot of one of them. */
static uint32_t make_cycle(wm_broker *b)
{
    wm_module *host = wm_broker_host(b);
    uint32_t x = new_map(host), y = new_map(host);
    wm_handle *slot;
    OK(wm_handles_lookup(&host->handles, x, &slot));
    uint32_t map = slot->map;
    OK(wm_op_set_map(host, x, KEY("y"), y));
    OK(wm_op_set_map(host, y, KEY("x"), x));
    OK(wm_op_close(host, x));
    OK(wm_op_close(host, y));
    return map;
}

/* A count one too high: the recount after the collection disagrees. */
static void extra_count(wm_broker *b, uint32_t map)
{
    WM_MAP(b, map).refcount++;
    (void)wm_broker_collect(b);
}

/* A map reference the parent does not count: subtract_refs sees more
 * references among its entries than refs_out says. */
static void uncounted_reference(wm_broker *b, uint32_t map)
{
    WM_MAP(b, map).refs_out--;
    (void)wm_broker_collect(b);
}

/* Run `breaks` in a child on a fresh cycle; true when the child died of
 * SIGABRT (an assertion), false when it ran to the end. */
static bool aborts(void (*breaks)(wm_broker *, uint32_t))
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        FILE *null = freopen("/dev/null", "w", stderr); /* the assertion's message */
        (void)null;
        wm_broker *b = new_broker(3);
        breaks(b, make_cycle(b));
        _exit(0); /* no leak check: the broker was broken on purpose */
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (WIFEXITED(status)) {
        CHECK(WEXITSTATUS(status) == 0);
        return false;
    }
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    return true;
}

void test_gc_debug(void)
{
#ifdef WM_DEBUG
    const bool on = true;
#else
    const bool on = false;
#endif
    CHECK(aborts(extra_count) == on);
    CHECK(aborts(uncounted_reference) == on);
    /* unbroken, the same collection passes every check */
    wm_broker *b = new_broker(3);
    (void)make_cycle(b);
    CHECK(wm_broker_collect(b) == 2);
    CHECK(wm_broker_check(b) == 0 && stats(b).maps == 0);
    wm_broker_free(b);
    printf("  gc_debug: debug checks %s\n", on ? "on (WM_DEBUG)" : "off");
}
