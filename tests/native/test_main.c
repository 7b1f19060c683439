/* test_main.c: test_core, the C data plane's tests, without Python or wasmtime.
 *
 * Links every native C unit directly and drives the public functions of
 * native/wm.h (wm_broker_*, wm_module_*, wm_link_*, every wm_op_*).  The
 * wm_op_* functions never call wasmtime, so most brokers get a zeroed
 * wm_wasmtime_api; the "abi" section hands one a fake wasmtime, to reach
 * abi.c's guest callbacks and their bounds checks, and the sections on
 * calls between modules ("links", "results", "traps", "unload", "xrandom",
 * and the link calls of "threads") one whose func_call runs a C function in
 * place of the callee's export code, and whose traps are malloc'd, so that
 * LeakSanitizer sees any the core drops (fake_wasmtime.c, xworld.c).  The
 * random sections check the core against the one model of who holds what
 * (model.c).  Every .c file here makes the one binary; built and run under
 * AddressSanitizer + UBSan (+ LeakSanitizer: wm_broker_free must free
 * everything, cycles included) by tests/native/run_sanitized.sh, and the
 * threaded section again under ThreadSanitizer.
 *
 *   test_core [section ...]      run these sections (see SECTIONS at the
 *                                bottom); no argument runs them all
 *   WM_TEST_SEED, WM_TEST_OPS    the random sections' seed, and the length
 *   WM_TEST_XOPS                 of "random" and of "xrandom"
 *
 * A failed check prints file:line and exits 1 at once (through _exit, so
 * LeakSanitizer does not bury the message under the broker we abandoned).
 */
#include "harness.h"

uint64_t rng_state;

/* --- main --------------------------------------------------------------- */

static const struct {
    const char *name;
    void (*run)(void);
} SECTIONS[] = {
    {"lifecycle", test_lifecycle}, {"handles", test_handles},
    {"names", test_names},         {"kv", test_kv},
    {"keys", test_keys},           {"batches", test_batches},
    {"maps", test_maps},           {"generations", test_generations},
    {"quotas", test_quotas},       {"modules", test_modules},
    {"abi", test_abi},             {"random", test_random},
    {"links", test_links},         {"results", test_results},
    {"traps", test_traps},         {"unload", test_unload},
    {"notices", test_notices},     {"xrandom", test_xrandom},
    {"threads", test_threads},     {"store", test_store},
    {"selfcalls", test_selfcalls}, {"deadlines", test_deadlines},
    {"gc_debug", test_gc_debug},   {"gc_work", test_gc_work},
    {"pool", test_pool},           {"trace", test_trace},
    {"hash", test_hash},
};
enum { NSECTIONS = sizeof SECTIONS / sizeof SECTIONS[0] };

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; i < NSECTIONS; i++) {
        bool run = argc == 1;
        for (int a = 1; a < argc; a++)
            run |= strcmp(argv[a], SECTIONS[i].name) == 0;
        if (!run)
            continue;
        printf("test_core: %s\n", SECTIONS[i].name);
        SECTIONS[i].run();
    }
    for (int a = 1; a < argc; a++) {
        bool known = false;
        for (size_t i = 0; i < NSECTIONS; i++)
            known |= strcmp(argv[a], SECTIONS[i].name) == 0;
        if (!known) {
            fprintf(stderr, "test_core: unknown section %s\n", argv[a]);
            return 2;
        }
    }
    printf("test_core: all passed\n");
    return 0;
}
