/* test_gc.c: the core's debug checks of the refcount invariants, and the
 * collector's kept work arrays.
 *
 * A -DWM_DEBUG build (run_sanitized.sh builds every test so) asserts the
 * invariants the collector and the refcount table rely on (native/gc.c,
 * native/refcount.c).  Here a child process breaks one on purpose, through
 * the core's internals, and must die of the assertion; without WM_DEBUG
 * the same child runs on (the release build checks nothing).
 *
 * gc_work runs many collections on one broker while the candidates grow
 * past the kept arrays and shrink back, over reused rows: under ASan a
 * write past the arrays is caught, and WM_DEBUG recounts every row (and
 * its referenced bit) after each collection.
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

/* A candidate whose referenced bit is lost: the collector must not find it
 * among the candidates (debug: an assertion; release: it is skipped, and
 * nothing is written outside the work arrays). */
static void unmarked_candidate(wm_broker *b, uint32_t map)
{
    WM_REFERENCED_WORD(b, map) &= ~WM_REFERENCED_BIT(map);
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
    CHECK(aborts(unmarked_candidate) == on);
    /* unbroken, the same collection passes every check */
    wm_broker *b = new_broker(3);
    (void)make_cycle(b);
    CHECK(wm_broker_collect(b) == 2);
    CHECK(wm_broker_check(b) == 0 && stats(b).maps == 0);
    wm_broker_free(b);
    printf("  gc_debug: debug checks %s\n", on ? "on (WM_DEBUG)" : "off");
}

void test_gc_work(void)
{
    /* Candidates per collection: at and just past the sizes the kept
     * arrays grow to (1024 first, then doubling), far past them, and back
     * under a quarter of them. */
    static const uint32_t candidates[] = {1024, 1025, 2048, 2049, 8,    20000, 1023,
                                          5000, 6,    5,    4096, 4097, 80001, 7};
    enum { HELD = 5 }; /* a ring held from outside: candidates that stay reachable */
    wm_broker *b = new_broker(5);
    wm_module *host = wm_broker_host(b);
    uint32_t held = ring_of(host, HELD, true);
    for (uint32_t r = 0; r < sizeof candidates / sizeof candidates[0]; r++) {
        uint32_t garbage = candidates[r] - HELD;
        for (uint32_t made = 0, n; made < garbage; made += n) {
            n = 1 + below(8); /* rings of 1 to 8 maps, self-references included */
            n = n < garbage - made ? n : garbage - made;
            (void)ring_of(host, n, false);
        }
        CHECK(wm_broker_collect(b) == garbage);
        CHECK(wm_broker_check(b) == 0);
        wm_stats s = stats(b);
        CHECK(s.maps == HELD);
        /* Room for this collection, and no more than four times it. */
        uint64_t need = candidates[r];
        CHECK(s.gc_work_bytes >= need * 16);
        CHECK(s.gc_work_bytes <= 16 * (need * 4 > 1024 ? need * 4 : 1024));
    }
    OK(wm_op_close(host, held));
    CHECK(wm_broker_collect(b) == HELD && stats(b).maps == 0);
    wm_broker_free(b);
}
