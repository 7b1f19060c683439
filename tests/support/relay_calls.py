"""What the cross-module test knows of a relay, and the rules of a call between relays.

`RelayCalls` runs a relay program on the model, as tests/guests/relay.wat
runs it on the core, and makes each call to a peer's export as
native/link.c makes it: which handles pass, which calls trap, and which
module a trap tears down.  The state machine of test_model_xmod.py mixes it
in and compares the broker with what it predicts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from hypothesis import event
from model import Handle, HandleRef, Model, ModuleModel, Passing, Refused
from relay_guest import (
    CLONE,
    CLOSE,
    END,
    GET,
    GET_MAP,
    GIVE,
    GIVES,
    NEW,
    OPEN,
    PAIR,
    PAIRS,
    PARAMS,
    PEERS,
    RESULTS,
    SET,
    SET_MAP,
    SHARED,
    SWAP,
    SWAPS,
    TAKE,
    TAKES,
    TRAP,
    at,
    map_key,
    sub,
)

from broker.abi import Errno


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


class RelayCalls:
    """The model's side of the relays' calls; the state machine supplies the state."""

    model: Model
    host: ModuleModel  # the host's side of the model
    guests: dict[str, Guest | None]
    strict: bool  # strict borrows: a borrow left open traps its callee
    unreleased: int  # borrows the broker had to end itself

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
