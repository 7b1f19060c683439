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

The relay's exports and program language are in support/relay_guest.py, the
model's side of its calls in support/relay_calls.py, the setup, the
comparing and the invariants in support/xmod_harness.py; the rules, what a
step may do, are here.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule
from model import well_formed_handle
from relay_guest import (
    CLOSE,
    EXPORTS,
    GET,
    GIVES,
    GRANTS,
    LIMITS,
    PAIRS,
    PARAMS,
    PEERS,
    RELAY,
    SETUP,
    SHARED,
    TAKE,
    TAKES,
    map_key,
    pack,
    programs,
    slots,
    word,
)
from xmod_harness import CrossModuleHarness

from broker import Borrow, Broker, GuestTrap, MapRef
from broker.abi import Errno
from broker.errors import ConfigError

#: After a trap, mostly load the torn-down module again (else calls meet it torn down).
revives = st.sampled_from([True, True, True, False])

#: Raw numbers for `poke` besides every number issued so far: never issued anywhere.
NEVER_ISSUED = (0, 1, 0x80000000, 0xFFFFFFFF, 1023 << 21 | 4000)


class CrossModuleMachine(CrossModuleHarness):
    """The steps: the host's own MapRef operations, calls into the relays, loading."""

    # --- host maps --------------------------------------------------------------------

    @rule()
    def host_new(self) -> None:
        self.new_host_map()

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
        self.load_relay(name)

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
