"""Ownership across modules: the host and three relay guests pass maps around, beside the model.

The guest, tests/guests/relay.wat, is loaded as "a", "b" and "c"; each
imports all three (itself too), so maps move, are lent and shared in any
direction, re-entrantly, through real cross-module calls.  A guest keeps
handles in a table and runs small programs (see the top of relay.wat): the
state machine draws a program, works out with the model what it must do --
which handles pass, which calls trap and which module a trap tears down --
then runs it and compares.  The guest logs every handle it gets, so the
model learns the numbers the core issued and checks, after every step, that
each handle of every module (and of the host) reaches exactly the map the
model says, that no number reaches a map its module was not given, and that
the maps alive are exactly those with a count above zero (until the cycle
collector, run at chosen points, reclaims the ones nothing reaches).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
import wasmtime
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from model import (
    ALL_RIGHTS,
    Handle,
    HandleRef,
    Map,
    Model,
    ModuleModel,
    Passing,
    Refused,
    well_formed_handle,
)
from paths import GUESTS

from broker import Borrow, Broker, GuestTrap, Limits, MapRef, ModuleError, Own, Share, testing
from broker.abi import Errno
from broker.errors import ConfigError, ErrnoError
from broker.ownership import Kind, parse_pass, rights_mask

RELAY = GUESTS / "relay.wat"
PEERS = ("a", "b", "c")  # a relay's peer number is an index into this
#: b has room for few handles, so passes into it and its own calls meet QUOTA.
LIMITS = {"a": Limits(), "b": Limits(handles=6), "c": Limits()}
GRANTS = {"shared": "rw"}
HOST_HANDLES = 1 << 21
NSLOTS = 4  # table slots the programs use (the guest has 16)

# The relay's exports, in its table order, and how each passes its handles.
TAKES = ("take_own", "take_borrow", "take_share", "take_own_r", "take_borrow_r", "take_share_r")
GIVES = ("give_own", "give_share", "give_share_r")
PAIRS = ("pair_own_own", "pair_own_share", "pair_borrow_own", "pair_share_borrow_r")
SWAPS = ("swap_borrow_share", "swap_borrow_own", "swap_own_own")
DECLARED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    **{name: ((name[5:].replace("_r", ":r"),), ()) for name in TAKES},
    **{name: ((), (name[5:].replace("_r", ":r"),)) for name in GIVES},
    "pair_own_own": (("own", "own"), ()),
    "pair_own_share": (("own", "share"), ()),
    "pair_borrow_own": (("borrow", "own"), ()),
    "pair_share_borrow_r": (("share", "borrow:r"), ()),
    "swap_borrow_share": (("borrow",), ("share",)),
    "swap_borrow_own": (("borrow",), ("own",)),
    "swap_own_own": (("own",), ("own",)),
}
EXPORTS = {name: {"params": list(p), "results": list(r)} for name, (p, r) in DECLARED.items()}


def passing(text: str, *, result: bool, mask: int = ALL_RIGHTS) -> Passing:
    declared = parse_pass(text, result=result)
    return Passing(declared.kind, declared.readonly, mask)


PARAMS = {name: [passing(t, result=False) for t in p] for name, (p, _) in DECLARED.items()}
RESULTS = {name: [passing(t, result=True) for t in r] for name, (_, r) in DECLARED.items()}
PARAMS["run"], RESULTS["run"] = [], []  # run(p0, p1): plain parameters only

# --- programs (mirrors relay.wat) -----------------------------------------------

END, NEW, OPEN, CLOSE, CLONE, SET, GET, SET_MAP, GET_MAP, TAKE, GIVE, PAIR, TRAP, SWAP = range(14)
SHARED = b"shared"  # the one named map, granted rw to every relay


def word(op: int, s: int = 0, x: int = 0) -> int:
    return op | s << 4 | x << 8


def pack(words: list[int]) -> tuple[int, int]:
    """A program as the two i64 parameters (unsigned; the host call wraps them)."""
    assert len(words) <= 8
    padded = words + [0] * (8 - len(words))
    return (
        sum(w << 16 * i for i, w in enumerate(padded[:4])),
        sum(w << 16 * i for i, w in enumerate(padded[4:])),
    )


def at(words: list[int], i: int) -> int:
    """Word i of a program; 0 (END) past its end, as in relay.wat."""
    return words[i] if i < min(len(words), 8) else 0


def sub(words: list[int], start: int, n: int) -> list[int]:
    return [at(words, start + k) for k in range(min(n, 8))]


def map_key(x: int) -> bytes:
    return b"m%d" % (x >> 4 & 3)


slots = st.integers(0, NSLOTS - 1)
peer_numbers = st.integers(0, len(PEERS) - 1)
SIMPLE = (NEW, OPEN, CLOSE, CLONE, SET, GET, SET_MAP, GET_MAP)


@st.composite
def programs(draw: st.DrawFn, room: int = 8, depth: int = 0) -> list[int]:
    """A relay program of at most `room` words; calls nest at most three deep.

    Calls are frequent and traps rare; a callee often closes what it was
    lent (else strict borrows trap it)."""
    words: list[int] = []
    while len(words) < room:
        left = room - len(words)
        roll = draw(st.integers(0, 99))
        calls = left >= 2 and depth < 3
        if roll < 6:
            break  # END
        if roll < 8:
            words.append(word(TRAP))
            continue
        s = draw(slots)
        if calls and roll < 30:
            inner = draw(programs(left - 2, depth + 1))
            fn, dest = draw(st.integers(0, len(TAKES) - 1)), draw(slots)
            if len(inner) < left - 2 and draw(st.booleans()):
                inner.append(word(CLOSE, dest))
            o = draw(peer_numbers) | fn << 2 | dest << 8 | len(inner) << 12
            words += [word(TAKE, s), o, *inner]
        elif calls and roll < 40:
            inner = draw(programs(left - 2, depth + 1))
            fn, src = draw(st.integers(0, len(GIVES) - 1)), draw(slots)
            words += [word(GIVE, s), draw(peer_numbers) | fn << 2 | src << 8 | len(inner) << 12]
            words += inner
        elif calls and roll < 46:
            inner = draw(programs(left - 2, depth + 1))
            fn, slot = draw(st.integers(0, len(SWAPS) - 1)), draw(slots)
            words += [word(SWAP, s), draw(peer_numbers) | fn << 2 | slot << 8 | len(inner) << 12]
            words += inner
        elif calls and left >= 3 and roll < 52:
            inner = draw(programs(left - 3, depth + 1))
            fn, second = draw(st.integers(0, len(PAIRS) - 1)), draw(slots)
            d1, d2 = draw(slots), draw(slots)
            if len(inner) < left - 3 and draw(st.booleans()):
                inner.append(word(CLOSE, d1 if PAIRS[fn] == "pair_borrow_own" else d2))
            o = draw(peer_numbers) | fn << 2 | second << 4 | d1 << 8 | d2 << 12
            words += [word(PAIR, s), o, len(inner), *inner]
        else:
            op = draw(st.sampled_from(SIMPLE))
            if op == OPEN:
                x = draw(st.integers(0, 3))
            elif op == CLONE:
                x = draw(slots) | draw(st.integers(0, 3)) << 4
            elif op == SET:
                x = draw(st.integers(1, 255))
            elif op in (SET_MAP, GET_MAP):
                x = draw(slots) | draw(st.integers(0, 1)) << 4
            else:
                x = 0
            words.append(word(op, s, x))
    return words


#: What every relay runs when loaded: maps in slots 0 and 1 (1 holding 0
#: under "m0"), the named map in slot 2, slot 3 empty.
SETUP = [
    word(NEW, 0),
    word(NEW, 1),
    word(OPEN, 2, 3),
    word(SET, 0, 1),
    word(SET_MAP, 1, 0 | 0 << 4),
]


# --- what the test knows of a guest ------------------------------------------------


@dataclass(eq=False)
class Guest:
    """One loaded relay: its side of the model, its table, and the log entries it owes."""

    name: str
    mod: ModuleModel
    table: list[Handle | None] = field(default_factory=lambda: [None] * 16)
    log: list[tuple[str, Any]] = field(default_factory=list)  # ("handle"|"errno"|"byte", value)
    torn_down: bool = False

    def made(self, slot: int, outcome: tuple[Errno, Any]) -> None:
        """After an op that makes a handle: on OK it goes to `slot`; the log says which."""
        errno, handle = outcome
        if errno == Errno.OK:
            self.table[slot & 15] = handle
            self.log.append(("handle", handle))
        else:
            self.log.append(("errno", errno))


class Trap(Exception):
    """A trap the rules predict; `origin` is the module it began in, which is torn down."""

    def __init__(self, origin: Guest, why: str) -> None:
        super().__init__(f"trap in {origin.name}: {why}")
        self.origin = origin


Body = Callable[[Guest, list[Handle]], HandleRef]

#: After a trap, mostly load the torn-down module again (else calls meet it torn down).
revives = st.sampled_from([True, True, True, False])

#: Raw numbers for `poke` besides every number issued so far: never issued anywhere.
NEVER_ISSUED = (0, 1, 0x80000000, 0xFFFFFFFF, 1023 << 21 | 4000)


class CrossModuleMachine(RuleBasedStateMachine):
    """A Broker with the host and three relays, and the model, kept in step."""

    def __init__(self) -> None:
        super().__init__()
        self.broker: Broker | None = None
        self.model = Model()
        self.host = self.model.add_module(
            ModuleModel("host", is_host=True, handle_limit=HOST_HANDLES)
        )
        self.guests: dict[str, Guest | None] = {}
        self.refs: list[tuple[MapRef, Handle]] = []  # every MapRef the host had
        self.numbers: set[int] = set()  # every handle number any module was given
        self.unreleased = 0  # borrows the broker had to end itself
        self.strict = False
        self.by_native_id: dict[int, Map] = {}
        self.orphans: list[Handle] = []  # handles the core gave a caller that never saw them

    @property
    def b(self) -> Broker:
        assert self.broker is not None
        return self.broker

    @initialize(strict=st.booleans())
    def start(self, strict: bool) -> None:
        """Three relays and two host maps; strict borrows or not."""
        self.strict = strict
        self.broker = Broker(strict_borrows=strict)
        self.broker.gc.disable()  # the `collect` rule runs it, at known points
        for name in PEERS:
            self._load(name)
        self.host_new()
        self.host_new()

    def teardown(self) -> None:
        if self.broker is not None:
            self.broker.close()

    # --- the rules of one call, as native/link.c applies them --------------------

    def call_export(
        self,
        caller: Guest | None,
        target_name: str,
        export: str,
        items: list[tuple[HandleRef, Passing]],
        body: Body,
    ) -> Handle | None:
        """One call through a link (`caller` None: the host), as native/link.c makes it.

        Pass the handles all or none; run the callee; pass its result back;
        end the borrows.  A trap begins in the module at fault: the caller
        for its own handles, the receiver of a pass whose table is full, the
        callee for a result it may not pass or a borrow left open in strict
        mode -- and the innermost trap wins."""
        target = self.guests.get(target_name)
        if target is None or target.torn_down:  # the host is stopped in Python first
            assert caller is not None
            raise Trap(caller, f"{target_name} is {'torn down' if target else 'not loaded'}")
        giver = caller.mod if caller is not None else self.host
        try:
            passed, lends = self.model.pass_handles(giver, items, target.mod)
        except Refused as refused:
            if caller is None:
                raise  # the host gets the errno
            event(f"guest pass refused: {refused.errno.name}")
            at_fault = target if refused.receiver_full else caller
            raise Trap(
                at_fault, f"{export}: a parameter cannot pass: {refused.errno.name}"
            ) from None
        event(f"passed: {', '.join(str(how) for _, how in items) or 'nothing'}")
        trap: Trap | None = None
        back: Handle | None = None
        try:
            result = body(target, passed)
            if self.strict and any(lend.borrowed.live for lend in lends):
                # Strict borrows: the trap comes before any result passes.
                raise Trap(target, f"{export} returned with a borrow open (strict borrows)")
            if RESULTS[export]:  # results pass first: a lent handle may go back as share
                (back,), _ = self.model.pass_handles(
                    target.mod, [(result, RESULTS[export][0])], giver
                )
        except Trap as inner:
            trap = inner
        except Refused as refused:
            event(f"result refused: {refused.errno.name}")
            at_fault = caller if refused.receiver_full and caller is not None else target
            trap = Trap(at_fault, f"{export}: its result cannot pass: {refused.errno.name}")
        left_open = [self.model.end_borrow(lend) for lend in lends].count(True)
        self.unreleased += left_open
        if left_open:
            event(f"borrow left open (strict: {self.strict})")
        if trap is not None:
            raise trap
        return back

    def take(self, g: Guest, passed: list[Handle], dests: list[int], program: list[int]) -> None:
        """A take_*/pair_* export: table the handles it got, log them, run its program."""
        for handle, dest in zip(passed, dests, strict=True):
            g.table[dest & 15] = handle
            g.log.append(("handle", handle))
        self.run(g, program)

    def give(self, g: Guest, passed: list[Handle], src: int, program: list[int]) -> HandleRef:
        """A give_* export: run its program, then return its T[src]."""
        self.run(g, program)
        return g.table[src & 15]

    def swap(self, g: Guest, passed: list[Handle], slot: int, program: list[int]) -> HandleRef:
        """A swap_* export: take a handle into T[slot], run its program, return T[slot]."""
        self.take(g, passed, [slot], program)
        return g.table[slot & 15]

    def run(self, g: Guest, words: list[int]) -> None:
        """Module g runs a program (relay.wat's $run)."""
        m, mod, table, i = self.model, g.mod, g.table, 0
        while i < 8:
            w = at(words, i)
            op, s, x = w & 15, w >> 4 & 15, w >> 8
            i += 1
            if op == END:
                return
            if op == NEW:
                g.made(s, m.attempt(m.new, mod, issued=None))
            elif op == OPEN:
                g.made(s, m.attempt(m.open, mod, SHARED, x & 3, issued=None))
            elif op == CLOSE:
                g.log.append(("errno", m.attempt(m.close, mod, table[s])[0]))
            elif op == CLONE:
                g.made(x, m.attempt(m.clone, mod, table[s], x >> 4 & 3, issued=None))
            elif op == SET:
                g.log.append(("errno", m.attempt(m.set, mod, table[s], b"k", bytes([x]))[0]))
            elif op == GET:
                errno, value = m.attempt(m.get, mod, table[s], b"k")
                g.log.append(("byte", value[0]) if errno == Errno.OK else ("errno", errno))
            elif op == SET_MAP:
                outcome = m.attempt(m.set_map, mod, table[s], map_key(x), table[x & 15])
                g.log.append(("errno", outcome[0]))
            elif op == GET_MAP:
                g.made(x, m.attempt(m.get_map, mod, table[s], map_key(x), issued=None))
            elif op == TAKE:
                o = at(words, i)
                program, dest, export = sub(words, i + 1, o >> 12), o >> 8 & 15, TAKES[o >> 2 & 7]
                self.call_export(
                    g,
                    PEERS[o & 3],
                    export,
                    [(table[s], PARAMS[export][0])],
                    partial(self.take, dests=[dest], program=program),
                )
                g.log.append(("errno", Errno.OK))  # the export's 0
                i += 1 + (o >> 12)
            elif op == GIVE:
                o = at(words, i)
                program, src, export = sub(words, i + 1, o >> 12), o >> 8 & 15, GIVES[o >> 2 & 3]
                back = self.call_export(
                    g, PEERS[o & 3], export, [], partial(self.give, src=src, program=program)
                )
                table[s] = back
                g.log.append(("handle", back))
                i += 1 + (o >> 12)
            elif op == PAIR:
                o, n = at(words, i), at(words, i + 1) & 15
                program, export = sub(words, i + 2, n), PAIRS[o >> 2 & 3]
                first, second = PARAMS[export]
                self.call_export(
                    g,
                    PEERS[o & 3],
                    export,
                    [(table[s], first), (table[o >> 4 & 15], second)],
                    partial(self.take, dests=[o >> 8, o >> 12], program=program),
                )
                g.log.append(("errno", Errno.OK))
                i += 2 + n
            elif op == SWAP:
                o = at(words, i)
                program, slot, export = sub(words, i + 1, o >> 12), o >> 8 & 15, SWAPS[o >> 2 & 3]
                back = self.call_export(
                    g,
                    PEERS[o & 3],
                    export,
                    [(table[s], PARAMS[export][0])],
                    partial(self.swap, slot=slot, program=program),
                )
                table[s] = back
                g.log.append(("handle", back))
                i += 1 + (o >> 12)
            else:
                assert op == TRAP, f"the strategy drew op {op}"
                raise Trap(g, "unreachable")

    # --- driving a call from the host, and comparing --------------------------------

    def host_call(
        self,
        target: str,
        export: str,
        handles: list[tuple[int, Kind, Any]],
        plain: list[int],
        body: Body,
        revive: bool = True,
    ) -> None:
        """Call `target.export` from the host, with the model first, then the broker.

        `handles`: (index into self.refs, wrapper kind, rights mask) per declared
        handle parameter, then `plain` ints.  After a trap the module torn down
        is loaded again if `revive`."""
        wrappers = {Kind.OWN: Own, Kind.BORROW: Borrow, Kind.SHARE: Share}
        args = [wrappers[kind](self.refs[i][0], rights=mask) for i, kind, mask in handles]
        items: list[tuple[HandleRef, Passing]] = [
            (self.refs[i][1], Passing(how.kind, how.readonly, rights_mask(mask)))
            for (i, _, mask), how in zip(handles, PARAMS[export], strict=True)
        ]
        guest = self.guests[target]
        want: tuple[str, Any]
        if guest is None:
            want = ("not loaded", None)
        elif guest.torn_down:
            want = ("torn down", None)
        else:
            try:
                want = ("ok", self.call_export(None, target, export, items, body))
            except Refused as refused:
                want = ("errno", refused.errno)
            except Trap as trap:
                self.model.teardown(trap.origin.mod)
                trap.origin.torn_down = True
                want = ("trap", trap.origin.name)

        got: tuple[str, Any]
        try:
            got = ("ok", self.b.call(f"{target}.{export}", *args, *plain))
        except ErrnoError as exc:
            got = ("errno", exc.errno)
        except GuestTrap as exc:
            assert exc.module == target
            got = ("trap", exc.origin)
        except ModuleError:
            got = ("torn down", None)
        except ConfigError:
            got = ("not loaded", None)
        what = f"{target}.{export}{tuple(plain)}"
        event(f"host call: {want[0]} {want[1].name if isinstance(want[1], Errno) else ''}")
        assert got[0] == want[0] and (got[0] == "ok" or got[1] == want[1]), (
            f"{what}: the broker says {got}, the rules say {want}"
        )
        if got[0] == "ok" and RESULTS[export]:
            ref, handle = got[1], want[1]
            assert isinstance(ref, MapRef) and isinstance(handle, Handle)
            self.adopt(ref, handle)
        elif got[0] == "ok":
            assert got[1] == 0, f"{what} returned {got[1]}"
        self.settle()
        if got[0] == "trap" and revive:
            self.revive(str(got[1]))

    def adopt(self, ref: MapRef, handle: Handle) -> None:
        """A MapRef the host got, and the model's handle for it."""
        self.model.bind(self.host, handle, ref.handle)
        self.numbers.add(ref.handle)
        self.refs.append((ref, handle))

    def read_log(self, name: str, torn_down: bool) -> list[int]:
        """A guest's log entries since the last read, and clear it."""
        if not torn_down:
            n = self.b.call(f"{name}.log_len")
            got = [self.b.call(f"{name}.log_at", i) for i in range(n)]
            self.b.call(f"{name}.log_clear")
            return got
        # A torn-down module cannot be called: read its memory (see relay.wat's layout).
        store = self.b._modules[name].store
        memory = self.b._modules[name].instance.exports(store)["memory"]
        assert isinstance(memory, wasmtime.Memory)
        (n,) = struct.unpack("<i", memory.read(store, 0x300, 0x304))
        memory.write(store, bytes(4), 0x300)
        return list(struct.unpack(f"<{n}i", memory.read(store, 0x400, 0x400 + 4 * n)))

    def settle(self) -> None:
        """Read every guest's log: check it against the model's, and learn the numbers.

        A torn-down guest's log is checked too: it shows how far its
        programs got before the trap."""
        for name, g in self.guests.items():
            if g is None:
                continue
            want, g.log = g.log, []
            got = self.read_log(name, g.torn_down)
            assert len(got) == len(want), f"{name} logged {got}, the rules say {want}"
            for (kind, value), entry in zip(want, got, strict=True):
                if kind == "handle":
                    assert isinstance(value, Handle)
                    self.model.bind(g.mod, value, entry & 0xFFFFFFFF)
                    self.numbers.add(entry & 0xFFFFFFFF)
                elif kind == "errno":
                    event(f"guest op: {Errno(value).name}")
                    assert entry == -int(value), (
                        f"{name}: logged {entry}, the rules say {Errno(value).name} "
                        f"(log {got}, expected {want})"
                    )
                else:
                    assert entry == value, f"{name}: read {entry}, the rules say {value}"
            if g.torn_down:
                continue
            for i in range(NSLOTS):
                handle = g.table[i]
                assert self.b.call(f"{name}.slot", i) & 0xFFFFFFFF == (
                    0 if handle is None else handle.number
                ), f"{name}: table slot {i} is not {handle}"

    # --- host maps --------------------------------------------------------------------

    def ref(self, pick: tuple[bool, int]) -> int:
        """An index into self.refs: a live one when `pick[0]` and there is one."""
        live = [i for i, (_, h) in enumerate(self.refs) if h.live]
        pool = live if pick[0] and live else list(range(len(self.refs)))
        return pool[pick[1] % len(pool)]

    def host_op(self, what: str, op: Callable[[], Any], model_op: Callable[[], Any]) -> Any:
        """Run a MapRef operation and the model's; the errnos agree.  The core's result."""
        want = self.model.attempt(model_op)
        try:
            got: tuple[Errno, Any] = (Errno.OK, op())
        except ErrnoError as exc:
            assert exc.errno is not None
            got = (Errno(exc.errno), None)
        assert got[0] == want[0], (
            f"host {what}: the broker says {got[0].name}, the rules {want[0].name}"
        )
        if got[0] == Errno.OK and isinstance(got[1], MapRef):
            self.adopt(got[1], want[1])
        return got[1], want[1]

    @rule()
    def host_new(self) -> None:
        self.host_op("new_map()", self.b.new_map, lambda: self.model.new(self.host, None))

    @rule(rights=st.integers(0, 3))
    def host_open(self, rights: int) -> None:
        self.host_op(
            f"open('shared', {rights})",
            lambda: self.b.open("shared", rights),
            lambda: self.model.open(self.host, SHARED, rights, None),
        )

    @rule(pick=st.tuples(st.booleans(), st.integers(0, 63)), rights=st.integers(0, 3))
    def host_clone(self, pick: tuple[bool, int], rights: int) -> None:
        ref, handle = self.refs[self.ref(pick)]
        self.host_op(
            f"clone({rights})",
            lambda: ref.clone(rights),
            lambda: self.model.clone(self.host, handle, rights, None),
        )

    @rule(pick=st.tuples(st.booleans(), st.integers(0, 63)))
    def host_close(self, pick: tuple[bool, int]) -> None:
        """MapRef.close() is idempotent: closing a closed or moved MapRef does nothing."""
        ref, handle = self.refs[self.ref(pick)]
        ref.close()
        if handle.live:
            self.model.close(self.host, handle)

    @rule(pick=st.tuples(st.booleans(), st.integers(0, 63)), value=st.integers(1, 255))
    def host_set(self, pick: tuple[bool, int], value: int) -> None:
        ref, handle = self.refs[self.ref(pick)]
        self.host_op(
            f"[b'k'] = {value}",
            lambda: ref.__setitem__(b"k", bytes([value])),
            lambda: self.model.set(self.host, handle, b"k", bytes([value])),
        )

    @rule(pick=st.tuples(st.booleans(), st.integers(0, 63)))
    def host_get(self, pick: tuple[bool, int]) -> None:
        ref, handle = self.refs[self.ref(pick)]
        got, want = self.host_op(
            "[b'k']", lambda: ref[b"k"], lambda: self.model.get(self.host, handle, b"k")
        )
        assert got == want, f"host [b'k']: the broker reads {got!r}, the model {want!r}"

    @rule(
        pick=st.tuples(st.booleans(), st.integers(0, 63)),
        key=st.integers(0, 1),
        child=st.tuples(st.booleans(), st.integers(0, 63)),
    )
    def host_set_map(self, pick: tuple[bool, int], key: int, child: tuple[bool, int]) -> None:
        (ref, handle), (cref, chandle) = self.refs[self.ref(pick)], self.refs[self.ref(child)]
        k = map_key(key << 4)
        self.host_op(
            f"set_map({k!r})",
            lambda: ref.set_map(k, cref),
            lambda: self.model.set_map(self.host, handle, k, chandle),
        )

    @rule(pick=st.tuples(st.booleans(), st.integers(0, 63)), key=st.integers(0, 1))
    def host_get_map(self, pick: tuple[bool, int], key: int) -> None:
        ref, handle = self.refs[self.ref(pick)]
        k = map_key(key << 4)
        self.host_op(
            f"get_map({k!r})",
            lambda: ref.get_map(k),
            lambda: self.model.get_map(self.host, handle, k, None),
        )

    # --- calls ---------------------------------------------------------------------------

    @rule(
        name=st.sampled_from(PEERS),
        fn=st.integers(0, len(TAKES) - 1),
        pick=st.tuples(st.booleans(), st.integers(0, 63)),
        mask=st.sampled_from([None, None, None, "r", "w", 0]),
        dest=slots,
        program=programs(),
        revive=revives,
    )
    def call_take(
        self,
        name: str,
        fn: int,
        pick: tuple[bool, int],
        mask: str | int | None,
        dest: int,
        program: list[int],
        revive: bool,
    ) -> None:
        """The host passes a MapRef (own/borrow/share, :r, narrowed); the callee runs a program."""
        export = TAKES[fn]
        self.host_call(
            name,
            export,
            [(self.ref(pick), PARAMS[export][0].kind, mask)],
            [dest, *pack(program)],
            lambda g, passed: self.take(g, passed, [dest], program),
            revive,
        )

    @rule(
        name=st.sampled_from(PEERS),
        fn=st.integers(0, len(GIVES) - 1),
        src=slots,
        program=programs(),
        revive=revives,
    )
    def call_give(self, name: str, fn: int, src: int, program: list[int], revive: bool) -> None:
        """The callee runs a program, then gives the host its T[src] (own or share)."""
        self.host_call(
            name,
            GIVES[fn],
            [],
            [src, *pack(program)],
            partial(self.give, src=src, program=program),
            revive,
        )

    @rule(
        name=st.sampled_from(PEERS),
        fn=st.integers(0, len(PAIRS) - 1),
        first=st.tuples(st.booleans(), st.integers(0, 63)),
        second=st.tuples(st.booleans(), st.integers(0, 63)),
        d1=slots,
        d2=slots,
        program=programs(),
        revive=revives,
    )
    def call_pair(
        self,
        name: str,
        fn: int,
        first: tuple[bool, int],
        second: tuple[bool, int],
        d1: int,
        d2: int,
        program: list[int],
        revive: bool,
    ) -> None:
        """Two handles in one call: both pass or neither does (the same MapRef twice, too)."""
        export = PAIRS[fn]
        kinds = [p.kind for p in PARAMS[export]]
        self.host_call(
            name,
            export,
            [(self.ref(first), kinds[0], None), (self.ref(second), kinds[1], None)],
            [d1, d2, *pack(program)],
            lambda g, passed: self.take(g, passed, [d1, d2], program),
            revive,
        )

    @rule(name=st.sampled_from(PEERS), program=programs(), revive=revives)
    def call_run(self, name: str, program: list[int], revive: bool) -> None:
        """A module runs a program on its own table (and calls its peers)."""
        self.host_call(
            name, "run", [], list(pack(program)), lambda g, _: self.run(g, program), revive
        )

    @rule(name=st.sampled_from(PEERS), index=st.integers(0, 1 << 16), what=st.integers(0, 2))
    def poke(self, name: str, index: int, what: int) -> None:
        """A module uses a raw number: its own (live or closed), another's, or one never issued."""
        g = self.guests[name]
        if g is None or g.torn_down:
            return
        pool = sorted(self.numbers) + list(NEVER_ISSUED)
        number = pool[index % len(pool)]
        m = self.model
        if what == 0:
            errno, value = m.attempt(m.get, g.mod, number, b"k")
            want = value[0] if errno == Errno.OK else -errno
        elif what == 1:
            want = -m.attempt(m.set, g.mod, number, b"k", b"\x55")[0]
        else:
            want = -m.attempt(m.close, g.mod, number)[0]
        got = self.b.call(f"{name}.poke", number, what)
        assert got == want, (
            f"{name}.poke({number:#x}, {what}): the guest got {got}, the rules {want}"
        )

    # --- loading ----------------------------------------------------------------------------

    def _load(self, name: str) -> None:
        self.b.load(name, RELAY, grants=GRANTS, limits=LIMITS[name], exports=EXPORTS)
        mod = self.model.add_module(
            ModuleModel(
                name,
                grants={SHARED: ALL_RIGHTS},
                handle_limit=LIMITS[name].handles,
            )
        )
        self.guests[name] = Guest(name, mod)
        self.host_call(name, "run", [], list(pack(SETUP)), lambda g, _: self.run(g, SETUP))

    def revive(self, name: str) -> None:
        """A torn-down module is unloaded and loaded again, as an app would."""
        g = self.guests[name]
        assert g is not None and g.torn_down
        with pytest.raises(ModuleError, match="torn down"):
            self.b.call(f"{name}.run", 0, 0)
        assert self.b.stats()["handles"][name] == 0
        self.b.unload(name)
        self.model.unload(g.mod, self.host)  # its handles are closed already
        self.guests[name] = None
        self._load(name)

    @precondition(lambda self: any(g is not None for g in self.guests.values()))
    @rule(name=st.sampled_from(PEERS))
    def unload(self, name: str) -> None:
        """Unloading closes every handle of the module; calls through links into it trap."""
        g = self.guests[name]
        if g is None:
            with pytest.raises(ConfigError):
                self.b.unload(name)
            return
        self.b.unload(name)
        self.model.unload(g.mod, self.host)
        self.guests[name] = None

    @rule(name=st.sampled_from(PEERS))
    def load(self, name: str) -> None:
        """A module loaded again is a new instance: a new table, no handles, links resolved."""
        if self.guests[name] is not None:
            with pytest.raises(ConfigError, match="already loaded"):
                self.b.load(name, RELAY, grants=GRANTS, exports=EXPORTS)
            return
        self._load(name)

    @rule(pick=st.tuples(st.booleans(), st.integers(0, 63)))
    def host_cycle(self, pick: tuple[bool, int]) -> None:
        """The host makes two maps that hold each other and a third map, then lets go of them."""
        ref, handle = self.refs[self.ref(pick)]
        x, y = self.b.new_map(), self.b.new_map()
        hx, hy = self.model.new(self.host, x.handle), self.model.new(self.host, y.handle)
        self.numbers |= {x.handle, y.handle}
        self.refs += [(x, hx), (y, hy)]
        x.set_map(b"m0", y)
        self.model.set_map(self.host, hx, b"m0", hy)
        y.set_map(b"m0", x)
        self.model.set_map(self.host, hy, b"m0", hx)
        self.host_op(
            "set_map(b'm1')",
            lambda: y.set_map(b"m1", ref),
            lambda: self.model.set_map(self.host, hy, b"m1", handle),
        )
        for r, h in ((x, hx), (y, hy)):
            r.close()
            self.model.close(self.host, h)

    @rule()
    def collect(self) -> None:
        """The cycle collector reclaims exactly the maps no handle or name reaches."""
        freed = self.model.collect()
        event(f"collected: {min(freed, 3)}{'+' if freed > 3 else ''}")
        assert self.b.collect() == freed

    # --- invariants ---------------------------------------------------------------------------

    def sides(self) -> list[tuple[ModuleModel, Any]]:
        """(model module, core module) for the host and every loaded relay."""
        out = [(self.host, self.b.host)]
        for name, g in self.guests.items():
            if g is not None:
                out.append((g.mod, self.b.native_module(name)))
        return out

    def identify(self, where: str, m: Map, native_id: int) -> None:
        """Learn (once) or check which core map id stands for model map m."""
        assert native_id != 0, f"{where} reaches no map in the core; the model says {m}"
        if m.native_id is None:
            assert native_id not in self.by_native_id, (
                f"{where} reaches core map {native_id}, which the model knows as "
                f"{self.by_native_id.get(native_id)}, not {m}"
            )
            m.native_id = native_id
            self.by_native_id[native_id] = m
        assert m.native_id == native_id, (
            f"{where} reaches core map {native_id} ({self.by_native_id.get(native_id)}); "
            f"the model says {m}"
        )

    @invariant()
    def handles_reach_their_maps(self) -> None:
        """Every live handle reaches the model's map; every other number reaches none."""
        if self.broker is None:
            return
        stats = self.b.stats()
        for mod, native in self.sides():
            unbound = [h for h in mod.unbound if not any(h is o for o in self.orphans)]
            assert not unbound, f"{mod.name}: handles never numbered: {unbound}"
            assert native.handle_count() == mod.handle_count(), (
                f"{mod.name}: the core has {native.handle_count()} live handles, "
                f"the model {mod.handle_count()}: {mod.handles()}"
            )
            if not mod.is_host:
                assert stats["handles"][mod.name] == mod.handle_count()
            for number, handle in mod.live.items():
                self.identify(f"{mod.name} handle {number:#x}", handle.map, native.map_id(number))
            # An orphan's number is unknown: the maps of the module's orphans may show up.
            orphan_maps = {h.map.native_id for h in mod.unbound}
            for number in self.numbers - mod.live.keys():
                reached = native.map_id(number)
                if reached in orphan_maps or (reached and None in orphan_maps):
                    continue
                assert reached == 0, (
                    f"{mod.name}: number {number:#x} reaches map {native.map_id(number)}, "
                    f"but the module holds no such handle"
                )
        for ref, handle in self.refs:
            if handle.live:
                self.identify(f"MapRef {handle}", handle.map, ref.map_id)
            else:
                assert ref.map_id == 0 and ref.closed, f"{ref} is usable, the model says {handle}"

    @invariant()
    def alive_exactly_when_counted(self) -> None:
        """A map is alive exactly when its count (handles, references, a name) is above zero."""
        if self.broker is None:
            return
        for m in self.model.maps:
            count = self.model.count_of(m) if m.alive else 0
            assert m.refs == count and m.alive == (count > 0), (
                f"{m}: the model's count is {m.refs}, by definition {count}"
            )
        stats = self.b.stats()
        assert stats["maps"] == self.model.live_anonymous(), (
            f"the core has {stats['maps']} live anonymous maps, the model "
            f"{self.model.live_anonymous()}: "
            f"{[m for m in self.model.maps if m.alive and m.name is None]}"
        )
        assert stats["named"] == len(self.model.names)
        # The core's own recount, and the tracer's count of borrows the broker
        # had to end itself (broker/_native/native_broker.py).
        testing.check_refcounts(self.b)
        assert testing.core_counters(self.b)["unreleased_borrows"] == self.unreleased
        for mod, native in self.sides():
            assert native.usage() == self.model.usage(mod), (
                f"{mod.name}: the core charges (bytes, entries) {native.usage()}, "
                f"the model {self.model.usage(mod)}"
            )


CrossModuleMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=35,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class TestOwnershipAcrossModules(CrossModuleMachine.TestCase):
    """Random calls between the host and three relays pass maps exactly as the model says."""


# --- worked examples ------------------------------------------------------------------


@pytest.fixture
def relays() -> Iterator[Broker]:
    """A broker with the three relays loaded and set up (slots 0-2 hold handles)."""
    with Broker() as b:
        for name in PEERS:
            b.load(name, RELAY, grants=GRANTS, limits=LIMITS[name], exports=EXPORTS)
            b.call(f"{name}.run", *pack(SETUP))
            b.call(f"{name}.log_clear")
        yield b


def take(peer: str, export: str, dest: int, inner: list[int]) -> int:
    """The operand word of TAKE: pass to `peer`'s take_* `export` into slot `dest`."""
    return PEERS.index(peer) | TAKES.index(export) << 2 | dest << 8 | len(inner) << 12


def log_of(b: Broker, name: str) -> list[int]:
    n = b.call(f"{name}.log_len")
    entries = [b.call(f"{name}.log_at", i) for i in range(n)]
    b.call(f"{name}.log_clear")
    return entries


class TestRulesByExample:
    """Worked examples of the cross-module rules the model encodes, run against the core."""

    def test_lent_handle_is_busy_when_the_call_comes_back(self, relays: Broker) -> None:
        """a lends slot 0 to b, b shares it back to a: a cannot close it till the borrow ends."""
        in_a = [word(CLOSE, 0)]  # a, re-entered
        in_b = [word(TAKE, 0), take("a", "take_share", 3, in_a), *in_a]
        relays.call("a.run", *pack([word(TAKE, 0), take("b", "take_borrow", 0, in_b), *in_b]))
        shared, busy, returned = log_of(relays, "a")
        lent, b_returned = log_of(relays, "b")
        assert well_formed_handle(shared) and well_formed_handle(lent)
        assert (busy, returned, b_returned) == (-Errno.BUSY, 0, 0)
        relays.call("a.run", *pack([word(CLOSE, 0), word(GET, 3)]))
        assert log_of(relays, "a") == [0, 1]  # the borrow is over; the share reads slot 0's map

    def test_callee_may_return_what_it_was_lent_as_share_only(self, relays: Broker) -> None:
        """A callee may hand back what it was lent as a share; as own, it traps (torn down)."""
        ref = relays.new_map()
        ref[b"k"] = b"\x07"
        got = relays.call("b.swap_borrow_share", Borrow(ref), 0, 0, 0)
        assert isinstance(got, MapRef) and got.map_id == ref.map_id and got[b"k"] == b"\x07"
        with pytest.raises(GuestTrap, match="ACCES") as trap:
            relays.call("b.swap_borrow_own", Borrow(ref), 0, 0, 0)
        assert trap.value.origin == "b"
        assert ref[b"k"] == b"\x07" and relays.stats()["handles"]["b"] == 0

    def test_strict_trap_returns_nothing(self) -> None:
        """A call that traps for a borrow left open (strict) leaves its caller no result."""
        with Broker(strict_borrows=True) as b:
            b.load("a", RELAY, grants=GRANTS, exports=EXPORTS)
            ref = b.new_map()
            with pytest.raises(GuestTrap, match="strict borrows"):
                b.call("a.swap_borrow_share", Borrow(ref), 0, 0, 0)
            assert b.host.handle_count() == 1  # only ref's: no result nobody can close
            ref.close()
            assert b.stats()["maps"] == 0
