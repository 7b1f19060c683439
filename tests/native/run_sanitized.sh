#!/usr/bin/env bash
# run_sanitized.sh: the C core's tests under the sanitizers, as CI runs them.
#
#   1. test_core: the C tests (tests/native/*.c, test_main.c runs them by
#      section), linked with native/*.c (no Python, no wasmtime), built
#      with AddressSanitizer + UBSan and run with LeakSanitizer on:
#      wm_broker_free must free everything.
#   2. Its threaded section again, built with ThreadSanitizer.
#   3. The Python suite (tests/) against a separate ASan + UBSan build of
#      broker._wm, made in a copy of the checkout in a temporary directory;
#      the normal build in broker/ is never touched.
#
# Usage: tests/native/run_sanitized.sh [--c-only | --python-only] [--no-tsan]
#                                      [-- pytest arguments (default: tests)]
# Env:   CC (gcc), PYTHON (python3), WM_TEST_SEED / WM_TEST_OPS / WM_TEST_XOPS
#        (the random sections of test_core), WM_SANITIZE_KEEP=1 keeps the work
#        directory.
# Needs: gcc with libasan/libubsan/libtsan (Debian: gcc), and for step 3 the
#        package's dependencies installed (`pip install .` or `-e .`) plus
#        pytest and hypothesis.
# Exit:  0 only when every step passed and no sanitizer wrote a report.
#
# Why step 3 works, and its limits:
# - Python is not built with ASan, so the runtime is preloaded (LD_PRELOAD
#   libasan) ahead of everything; broker._wm links libasan and libubsan.
# - wasmtime turns guest traps into signals (SIGSEGV for out-of-bounds
#   memory, SIGILL for `unreachable`, SIGFPE for division) and catches them
#   itself, so ASan is told to leave those signals alone (handle_segv=0,
#   handle_sigbus=0, handle_sigill=0, handle_sigfpe=0,
#   allow_user_segv_handler=1).  Checked: out-of-bounds, division and
#   stack-exhaustion traps all come back as GuestTrap under this setup.
#   The fake stacks of detect_stack_use_after_return would confuse
#   wasmtime's stack-limit checks, so that is off.
# - detect_leaks=0: CPython leaves much allocated at exit, and a leak report
#   there would say nothing about the core.  Leaks are step 1's job.
# - PYTHONMALLOC=malloc makes every Python object a malloc block, so ASan
#   also watches the buffers the host API hands to C.
# - Guest linear memory is wasmtime's mmap, invisible to ASan: a bounds bug
#   in abi.c would show as a SIGSEGV (a test-run crash, still a failure),
#   not as a report.  Step 1 covers that: its fake wasmtime gives the
#   callbacks a guest memory that is one malloc block of exactly its size.
# - Reports go to files (log_path), not stderr, because pytest captures
#   the output of a test that dies; this script prints them and fails.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CC=${CC:-gcc}
PYTHON=${PYTHON:-python3}
DO_C=1 DO_PY=1 DO_TSAN=1
PYTEST_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --c-only) DO_PY=0 ;;
    --python-only) DO_C=0 DO_TSAN=0 ;;
    --no-tsan) DO_TSAN=0 ;;
    --) shift; PYTEST_ARGS=("$@"); break ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "run_sanitized.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ ${#PYTEST_ARGS[@]} -gt 0 ] || PYTEST_ARGS=(tests)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/wasi-map-sanitize.XXXXXX")
REPORTS=$WORK/reports
mkdir -p "$REPORTS"
if [ "${WM_SANITIZE_KEEP:-0}" = 1 ]; then
    echo "work directory (kept): $WORK"
else
    trap 'rm -rf "$WORK"' EXIT
fi

SAN_FLAGS=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
# WM_DEBUG: the core's debug checks (refcount invariants, the collector's
# phases, a recount after every collection) are on in every build here.
CFLAGS=(-std=gnu11 -g -O1 -Wall -Wextra -Wno-unused-parameter -pthread -DWM_DEBUG -I"$ROOT/native"
        -I"$ROOT/tests/native")
# The core's sources: native/*.c but hostmap.c, the MapRef extension (it
# includes Python.h; step 3 builds it with the sanitizers).
SOURCES=()
for source in "$ROOT"/native/*.c; do
    [ "$(basename "$source")" = hostmap.c ] || SOURCES+=("$source")
done
TEST_SOURCES=("$ROOT"/tests/native/*.c)
UBSAN_OPTIONS_BASE="print_stacktrace=1:halt_on_error=1"
RESULTS=()
FAILED=0

step() { printf '\n=== %s\n' "$*"; }
show() { printf '+'; printf ' %q' "$@"; printf '\n'; }

# True when no sanitizer wrote a report under $REPORTS/$1.*; prints any.
no_reports() {
    local clean=0 f
    for f in "$REPORTS/$1".*; do
        [ -e "$f" ] || continue
        clean=1
        printf -- '--- sanitizer report %s\n' "$f"
        cat "$f"
    done
    return $clean
}

# record NAME STATUS [REPORT-PREFIX]: a step's result, failed on a report too
record() {
    local name=$1 status=$2 prefix=${3:-}
    if [ -n "$prefix" ] && ! no_reports "$prefix"; then
        echo "$name: sanitizer report(s) above"
        [ "$status" -ne 0 ] || status=99
    fi
    if [ "$status" -eq 0 ]; then
        RESULTS+=("PASS  $name")
    else
        RESULTS+=("FAIL  $name (exit $status)")
        FAILED=1
    fi
}

# --- 1. test_core under ASan + UBSan + LSan ---------------------------------
if [ "$DO_C" = 1 ]; then
    step "1. C core tests (test_core: tests/native/*.c) under AddressSanitizer + UBSan + LeakSanitizer"
    BIN=$WORK/test_core_asan
    show "$CC" "${CFLAGS[@]}" "${SAN_FLAGS[@]}" "${TEST_SOURCES[@]}" "${SOURCES[@]}" -o "$BIN"
    if "$CC" "${CFLAGS[@]}" "${SAN_FLAGS[@]}" "${TEST_SOURCES[@]}" "${SOURCES[@]}" -o "$BIN"; then
        export ASAN_OPTIONS="detect_leaks=1:log_path=$REPORTS/core-asan"
        export UBSAN_OPTIONS="$UBSAN_OPTIONS_BASE:log_path=$REPORTS/core-asan"
        echo "+ ASAN_OPTIONS=$ASAN_OPTIONS $BIN"
        "$BIN"
        record "test_core under ASan+UBSan+LSan" $? core-asan
        unset ASAN_OPTIONS UBSAN_OPTIONS
    else
        record "test_core under ASan+UBSan+LSan (build)" 1
    fi
fi

# --- 2. the threaded section under TSan ---------------------------------------
if [ "$DO_TSAN" = 1 ]; then
    step "2. C core threads section under ThreadSanitizer"
    BIN=$WORK/test_core_tsan
    show "$CC" "${CFLAGS[@]}" -fsanitize=thread "${TEST_SOURCES[@]}" "${SOURCES[@]}" -o "$BIN"
    if "$CC" "${CFLAGS[@]}" -fsanitize=thread "${TEST_SOURCES[@]}" "${SOURCES[@]}" -o "$BIN"; then
        export TSAN_OPTIONS="halt_on_error=1:log_path=$REPORTS/core-tsan"
        echo "+ TSAN_OPTIONS=$TSAN_OPTIONS $BIN threads pool"
        "$BIN" threads pool
        status=$?
        # Some kernels' address-space randomisation leaves TSan no room
        # ("unexpected memory mapping"); it runs fine with it switched off.
        if [ $status -ne 0 ] && grep -qs "unexpected memory mapping" "$REPORTS"/core-tsan.*; then
            echo "TSan could not map its shadow memory; retrying under setarch -R"
            rm -f "$REPORTS"/core-tsan.*
            setarch "$(uname -m)" -R "$BIN" threads pool
            status=$?
        fi
        record "test_core threads and pool under TSan" $status core-tsan
        unset TSAN_OPTIONS
    else
        record "test_core threads under TSan (build)" 1
    fi
fi

# --- 3. the Python suite against an ASan + UBSan broker._wm --------------------
if [ "$DO_PY" = 1 ]; then
    step "3. Python suite against an ASan + UBSan build of broker._wm and broker._hostmap (in a copy)"
    SRC=$WORK/src
    mkdir -p "$SRC"
    # A copy of the checkout without builds or caches: tests may use any
    # file of it (guests, examples), and nothing is written into the original.
    echo "+ copy $ROOT to $SRC (without .git, builds, *.so, caches)"
    tar -C "$ROOT" --exclude=.git --exclude=./build --exclude=./dist --exclude='*.so' \
        --exclude=./broker/_wm.c --exclude='*.o' --exclude=__pycache__ --exclude=.pytest_cache \
        --exclude=.hypothesis --exclude='*.egg-info' -cf - . | tar -C "$SRC" -xf -
    LIBASAN=$("$CC" -print-file-name=libasan.so)
    # Built in a directory of its own: setuptools would read the checkout's
    # pyproject.toml from the working directory, and an older setuptools
    # than the build requires (pip's isolated build has its own) refuses it.
    BUILD=$WORK/build
    mkdir -p "$BUILD"
    BUILD_PY="import sys; sys.path.insert(0, '$SRC/native')
from ffi_build import build_hostmap_here, make_ffi
flags = ['-g', '-O1', '-DWM_DEBUG', '-fsanitize=address,undefined', '-fno-sanitize-recover=all',
         '-fno-omit-frame-pointer']
print(make_ffi('broker._wm', flags).compile(tmpdir='.'))
build_hostmap_here(flags[:1] + flags[3:])"
    echo "+ (cd $BUILD && $PYTHON -c \"make_ffi('broker._wm', [-g -O1 -DWM_DEBUG ${SAN_FLAGS[*]}]).compile(tmpdir='.'); build_hostmap_here(...)\")"
    if [ ! -e "$LIBASAN" ]; then
        echo "no libasan.so for $CC ($LIBASAN)"
        record "Python suite under ASan+UBSan (build)" 1
    elif ! (cd "$BUILD" && CC=$CC "$PYTHON" -c "$BUILD_PY" && cp broker/_wm*.so broker/_hostmap*.so "$SRC/broker/"); then
        record "Python suite under ASan+UBSan (build)" 1
    else
        export LD_PRELOAD=$LIBASAN
        export ASAN_OPTIONS="detect_leaks=0:handle_segv=0:handle_sigbus=0:handle_sigill=0:handle_sigfpe=0:allow_user_segv_handler=1:detect_stack_use_after_return=0:log_path=$REPORTS/py-asan"
        export UBSAN_OPTIONS="$UBSAN_OPTIONS_BASE:log_path=$REPORTS/py-asan"
        export PYTHONPATH=$SRC PYTHONMALLOC=malloc
        echo "+ LD_PRELOAD=$LD_PRELOAD"
        echo "+ ASAN_OPTIONS=$ASAN_OPTIONS"
        echo "+ UBSAN_OPTIONS=$UBSAN_OPTIONS"
        echo "+ PYTHONPATH=$PYTHONPATH PYTHONMALLOC=$PYTHONMALLOC"
        # The import must find the copy's sanitized build, not an installed one.
        (cd "$SRC" && "$PYTHON" -c "
import sys
from broker._native import core_path
print('broker._wm:', core_path())
sys.exit(0 if core_path().startswith('$SRC/') else 1)")
        status=$?
        if [ $status -ne 0 ]; then
            echo "broker._wm was not imported from the sanitized copy"
            record "Python suite under ASan+UBSan (import)" $status py-asan
        else
            show "$PYTHON" -m pytest -q -p no:cacheprovider "${PYTEST_ARGS[@]}"
            (cd "$SRC" && "$PYTHON" -m pytest -q -p no:cacheprovider "${PYTEST_ARGS[@]}")
            record "Python suite under ASan+UBSan (pytest ${PYTEST_ARGS[*]})" $? py-asan
        fi
        unset LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS PYTHONPATH PYTHONMALLOC
    fi
fi

step "summary"
for r in "${RESULTS[@]}"; do echo "$r"; done
[ ${#RESULTS[@]} -gt 0 ] || { echo "nothing ran"; exit 2; }
exit $FAILED
