"""Host functions: every plain signature round-trips, bad results trap, handle edges.

The call for each signature is generated (broker/host_calls.py), so a
hypothesis test drives random signatures and values through a real guest
and compares with what the host function computed.
"""

from typing import Any

import pytest
from host_functions_guest import guest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker import AccessError, Broker, GuestTrap, MapRef, QuotaError
from broker.host_calls import call_source
from broker.ownership import parse_pass

SIGNED = {"i32": (-(2**31), 2**31 - 1), "i64": (-(2**63), 2**63 - 1)}
types = st.sampled_from(["i32", "i64"])


@st.composite
def signatures(draw: st.DrawFn) -> tuple[list[str], list[str], list[int], list[int]]:
    """Param and result types, arguments, and the ints the host returns."""
    params = draw(st.lists(types, max_size=5))
    results = draw(st.lists(types, max_size=3))
    args = [draw(st.integers(*SIGNED[t])) for t in params]
    outs = [draw(st.integers(*SIGNED[t])) for t in results]
    return params, results, args, outs


def echo_guest(params: list[str], results: list[str]) -> bytes:
    """`go` takes the params, calls env.f with them and returns its results."""
    sig = f"(param {' '.join(params)}) (result {' '.join(results)})"
    sig = sig.replace("(param )", "").replace("(result )", "")
    gets = " ".join(f"(local.get {i})" for i in range(len(params)))
    return guest(
        f'(import "env" "f" (func $f {sig}))', f'(func (export "go") {sig} (call $f {gets}))'
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(signatures())
def test_every_plain_signature_round_trips(sig: tuple[list[str], ...]) -> None:
    params, results, args, outs = sig
    seen: list[tuple[Any, ...]] = []

    def f(caller: Any, *got: int) -> Any:
        seen.append(got)
        return outs[0] if len(outs) == 1 else tuple(outs) if outs else None

    with Broker() as broker:
        broker.define("env", "f", f, params=params, results=results)
        broker.load("g", echo_guest(params, results))
        back = broker.call("g.go", *args)
    assert seen == [tuple(args)]
    assert (back if isinstance(back, tuple) else (back,) if results else ()) == tuple(outs)


def test_unsigned_results_are_taken_as_their_bits(broker: Broker) -> None:
    """0xFFFFFFFF for an i32 result is -1 in the guest, as wasmtime-py takes it."""
    broker.define("env", "f", lambda c: 0xFFFFFFFF, results=["i32"])
    broker.load("g", echo_guest([], ["i32"]))
    assert broker.call("g.go") == -1


@pytest.mark.parametrize(
    ("results", "out", "words"),
    [
        (["i32"], 2**32, "must be an i32, got 4294967296"),
        (["i32"], -(2**31) - 1, "must be an i32"),
        (["i64"], 2**64, "must be an i64"),
        (["i32"], "7", "must be an i32, got '7'"),
        (["i32"], True, "must be an i32, got True"),
        (["i32"], None, "returned 0 value(s), declared 1"),
        (["i32", "i32"], 1, "returned 1 value(s), declared 2"),
        ([], 5, "returned 1 value(s), declared 0"),
        (["own"], 5, "result 0 is declared own: return a MapRef"),
    ],
)
def test_a_result_that_does_not_match_traps_the_guest(
    broker: Broker, results: list[str], out: Any, words: str
) -> None:
    broker.define("env", "f", lambda c: out, results=results)
    wasm = [("i32" if r == "own" else r) for r in results]
    broker.load("g", echo_guest([], wasm))
    with pytest.raises(GuestTrap, match="host function raised TypeError") as info:
        broker.call("g.go")
    assert isinstance(info.value.__cause__, TypeError)
    assert words in str(info.value.__cause__)


def test_a_read_only_borrow_cannot_write(broker: Broker) -> None:
    """`borrow:r` hands the host the rights the declaration leaves: reading only."""
    errors: list[BaseException] = []

    def peek(caller: Any, ref: MapRef) -> int:
        try:
            ref[b"x"] = b"1"
        except AccessError as exc:
            errors.append(exc)
        return len(ref[b"k"])

    broker.define("env", "peek", peek, params=["borrow:r"], results=["i32"])
    broker.load(
        "g",
        guest(
            '(import "env" "peek" (func $peek (param i32) (result i32)))',
            '(func (export "go") (result i32) (call $peek (global.get $h)))',
        ),
    )
    broker.call("g.make")
    assert broker.call("g.go") == 1
    assert len(errors) == 1
    assert broker.call("g.size") == 1  # nothing was written


def test_an_own_result_the_guest_cannot_hold_stays_the_hosts(broker: Broker) -> None:
    """The guest's handle table is full: the call traps with QuotaError, the
    MapRef is still the host's (not stale, nothing leaked)."""
    made: list[MapRef] = []

    def make_map(caller: Any) -> MapRef:
        made.append(broker.new_map())
        return made[-1]

    broker.define("env", "mk", make_map, results=["own"])
    broker.load(
        "g",
        guest(
            '(import "env" "mk" (func $mk (result i32)))', '(func (export "go") (drop (call $mk)))'
        ),
        limits={"handles": 1},
    )
    broker.call("g.make")  # the guest's one handle
    with pytest.raises(GuestTrap) as info:
        broker.call("g.go")
    assert isinstance(info.value.__cause__, QuotaError)
    made[0][b"still"] = b"mine"
    made[0].close()
    assert broker.stats()["handles"].get("host", 0) == 0


def test_the_generated_call_reads_each_kind_from_its_slot() -> None:
    """The source made for (i32, borrow, i64) -> i32: slots 0, 2, 4; a borrow ends."""
    params = [parse_pass(t, result=False) for t in ("i32", "borrow", "i64")]
    src = call_source(params, [parse_pass("i32", result=True)])
    assert "w[0] & 0xFFFFFFFF) ^ 0x80000000" in src
    assert "a1 = MapRef(side, w[2] & 0xFFFFFFFF)" in src
    assert "w[4])" in src
    assert "a1._lapsed(lapse)" in src
    compile(src, "<host call>", "exec")
