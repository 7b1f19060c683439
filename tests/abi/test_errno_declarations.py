"""The errnos broker/abi/ declares for each function are the ones the core returns.

Two ways: the C sources' return paths (tests/support/c_errnos.py), and a battery of
real guest calls that breaks one argument or one limit at a time.  The
reference (docs/reference/functions.md) is generated from the declarations,
so this is what keeps it true.
"""

from __future__ import annotations

from collections.abc import Iterator

import c_errnos
import pytest
from abi_table import CALLS, ITEMS, KEYS, MKEY, State, prepared
from flaky_store import FlakyStore
from guest_driver import KEY

from broker import Broker
from broker._native import ENTRY_COST, MAP_COST
from broker.abi import BY_NAME, FUNCTIONS, PASS_ERRNOS, AbiFunction, Errno, pack_items, pack_keys
from broker.errors import StoreError

# Where the reader of the C sources says more than the core can return: `len`
# and `keys` take the one door every map operation takes (native/ops.c,
# op_begin), whose size check they pass with sizes 0: never TOOBIG.  The
# battery below checks, with real calls, that nothing undeclared is seen.
# Reads reserve no room in the map (native/ops_memory.c), so they never answer
# QUOTA; TestBattery checks they answer OK at full quota.
READS = ("get", "delete", "exists", "version")
C_OVER_APPROXIMATES: dict[str, set[Errno]] = {"len": {Errno.TOOBIG}, "keys": {Errno.TOOBIG}}


class TestAgainstTheCSources:
    @pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda f: f.name)
    def test_declared_errnos_are_the_callbacks_return_paths(self, fn: AbiFunction) -> None:
        """Every errno the ABI callback can return is declared, and no other."""
        found = c_errnos.errnos(f"cb_{fn.name}") - {Errno.OK}
        found -= C_OVER_APPROXIMATES.get(fn.name, set())
        assert sorted(fn.errno_set) == sorted(found)

    def test_pass_errnos_are_pass_all_s(self) -> None:
        """What a handle passed between modules can fail with is link.c's wm_pass_all."""
        assert {e for e, _ in PASS_ERRNOS} == c_errnos.errnos("wm_pass_all") - {Errno.OK}

    def test_a_store_answers_nothing_the_function_does_not_declare(self) -> None:
        """store.c lets a store answer only errnos the in-memory path gives too."""
        answers = c_errnos.store_answers()
        assert answers, "store.c's allowed() was not found"
        for op, errnos in answers.items():
            assert errnos <= BY_NAME[op].errno_set, op

    def test_the_reader_finds_the_callbacks(self) -> None:
        """The C reader sees one callback per ABI function (a guard on the reader)."""
        defs = c_errnos.definitions()
        assert {f"cb_{f.name}" for f in FUNCTIONS} <= set(defs)


# --- the battery ------------------------------------------------------------

# The driver guest re-exports every function but watch_drop (tests/ownership/test_notices.py's).
IN_BATTERY = [fn for fn in FUNCTIONS if fn.name in CALLS]
FAR = 0xFFFFFFF0  # a pointer past the end of any guest memory
KEY_PARAMS = {fn.name for fn in FUNCTIONS if "key_len" in [p.name for p in fn.params]}


def arguments(s: State, fn: str) -> list[int]:
    """CALLS[fn]'s arguments on this state (the version looked up only for set_if)."""
    return (
        s.args(fn)
        if fn == "set_if"
        else [getattr(s, a) if isinstance(a, str) else a for a in CALLS[fn].args]
    )


def call(s: State, fn: str, changes: dict[int, int] | None = None) -> Errno:
    args = arguments(s, fn)
    for i, v in (changes or {}).items():
        args[i] = v
    return Errno(s.d.call(fn, *args))


def broken_arguments(s: State, fn: str) -> Iterator[Errno]:
    """`fn` with each argument broken in turn."""
    c = CALLS[fn]
    for ptr, _ in c.spans:
        yield call(s, fn, {ptr: FAR})
    for i in c.handle_args:
        yield call(s, fn, {i: 0})
        _, spare = s.d.clone(s.h, 3)
        assert spare is not None
        s.d.close(spare)
        yield call(s, fn, {i: spare})
        _, weak = s.d.clone(s.h if i == 0 else s.child, 0)  # no rights
        assert weak is not None
        yield call(s, fn, {i: weak})
        if fn in ("clone", "open"):
            yield call(s, fn, {1 if fn == "clone" else 2: 4})  # unknown rights bit
    if fn in KEY_PARAMS:
        s.d.put(KEY + 0x10000, b"x" * 5000)
        yield call(s, fn, {1: KEY + 0x10000, 2: 5000})  # over key_size
    yield from _specific(s, fn)
    yield call(s, fn)  # last: `close` closes h


def _specific(s: State, fn: str) -> Iterator[Errno]:
    """The answers of the operation itself."""
    if fn == "open":
        yield call(s, fn, {1: 0})  # empty name
        s.d.put(KEY + 0x20, b"nope")
        yield call(s, fn, {0: KEY + 0x20, 1: 4})  # not granted
    if fn in ("get", "get_map", "incr"):
        s.d.put(KEY + 0x20, b"zz")
        yield call(s, fn, {1: KEY + 0x20, 2: 2})  # absent
        yield call(s, fn, {1: MKEY if fn != "get_map" else KEY})  # the other kind
    if fn in ("get", "keys", "get_many"):
        yield call(s, fn, {3 if fn == "keys" else 4: 0})  # no room
    if fn == "set_if":
        yield call(s, fn, {5: 12345})  # not the version
    if fn in ("get_many", "set_many"):
        yield call(s, fn, {2: CALLS[fn].args[2] - 1})  # truncated
    if fn == "get_many":
        yield call(s, fn, {3: KEYS})  # overlapping
        s.d.put(KEYS + 0x40, pack_keys([b"m"]))
        yield call(s, fn, {1: KEYS + 0x40})  # a map reference
        s.d.put(KEYS + 0x80, pack_keys([b"x" * 5000]))
        yield call(s, fn, {1: KEYS + 0x80, 2: 5004})
    if fn == "set_many":
        s.d.put(ITEMS + 0x100, pack_items([(b"x" * 5000, b"")]))
        yield call(s, fn, {1: ITEMS + 0x100, 2: 5008})


def at_full_quota(fn: str) -> Errno:
    """`fn` in a module whose handles, entries and bytes are all used up."""
    maps, entries = 3, 2 * (1 + 8 + ENTRY_COST)  # what prepared() makes
    limits = {"handles": 3, "entries": 2, "bytes": maps * MAP_COST + entries, "watches": 0}
    with Broker() as broker:
        s = prepared(broker, limits=limits)
        assert s.d.clone(s.h, 3)[0] == Errno.OK  # the third and last handle
        s.d.put(KEY + 0x20, b"z")
        s.d.put(ITEMS + 0x40, pack_items([(b"z", b"new")]))
        fresh = {
            "set": {1: KEY + 0x20},
            "set_if": {1: KEY + 0x20, 5: 0},
            "incr": {1: KEY + 0x20},
            "set_map": {1: KEY + 0x20},
            "set_many": {1: ITEMS + 0x40},
        }
        return call(s, fn, fresh.get(fn))


def on_a_failing_store(fn: str) -> Errno:
    store = FlakyStore()
    with Broker(store=store) as broker:
        s = prepared(broker)
        args = arguments(s, fn) if fn != "set_if" else [s.h, *CALLS[fn].args[1:5], 0]
        store.fail = StoreError("gone")
        return Errno(s.d.call(fn, *args))


# Declared errnos the battery cannot reach, and the tests that do.
NOT_IN_BATTERY = {
    ("close", Errno.BUSY): (
        "a handle lent to a call in progress: tests/ownership/test_ownership_borrow.py"
    ),
}


@pytest.fixture(scope="module")
def observed() -> dict[str, set[Errno]]:
    seen: dict[str, set[Errno]] = {}
    for fn in IN_BATTERY:
        with Broker() as broker:
            got = set(broken_arguments(prepared(broker), fn.name))
        got |= {at_full_quota(fn.name), on_a_failing_store(fn.name)}
        seen[fn.name] = got - {Errno.OK}
    return seen


class TestBattery:
    @pytest.mark.parametrize("fn", IN_BATTERY, ids=lambda f: f.name)
    def test_every_errno_seen_is_declared(
        self, fn: AbiFunction, observed: dict[str, set[Errno]]
    ) -> None:
        assert observed[fn.name] <= fn.errno_set

    @pytest.mark.parametrize("fn", IN_BATTERY, ids=lambda f: f.name)
    def test_every_declared_errno_is_seen(
        self, fn: AbiFunction, observed: dict[str, set[Errno]]
    ) -> None:
        missing = {(fn.name, e) for e in fn.errno_set - observed[fn.name]}
        assert missing == {k for k in NOT_IN_BATTERY if k[0] == fn.name}

    @pytest.mark.parametrize("fn", READS)
    def test_reads_ignore_a_full_quota(self, fn: str) -> None:
        """The C reader's over-approximation: these answer OK with every quota used up."""
        assert at_full_quota(fn) == Errno.OK
