"""The mechanics of test_model_xmod.py's state machine: a Broker with the host and three
relays, the model beside it, and the checks that keep the two in step.

`CrossModuleHarness` sets the broker up, drives a call from the host through
the model first and the broker second and compares what each says, reads
the relays' logs to learn the handle numbers the core issued, and holds the
invariants checked after every step.  The rules (what a step may do) are in
the test file.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
import wasmtime
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant
from model import ALL_RIGHTS, Handle, HandleRef, Map, Model, ModuleModel, Passing, Refused
from relay_calls import Body, Guest, RelayCalls, Trap
from relay_guest import (
    EXPORTS,
    GRANTS,
    LIMITS,
    NSLOTS,
    PARAMS,
    PEERS,
    RELAY,
    RESULTS,
    SETUP,
    SHARED,
    pack,
)

from broker import Borrow, Broker, GuestTrap, MapRef, ModuleError, Own, Share, testing
from broker.abi import Errno
from broker.errors import ConfigError, ErrnoError
from broker.ownership import Kind, rights_mask

HOST_HANDLES = 1 << 21


class CrossModuleHarness(RelayCalls, RuleBasedStateMachine):
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
            self.load_relay(name)
        self.new_host_map()
        self.new_host_map()

    def teardown(self) -> None:
        if self.broker is not None:
            self.broker.close()

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
        inst = self.b._modules[name].instances[0]
        store = inst.store
        memory = inst.instance.exports(store)["memory"]
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

    def new_host_map(self) -> None:
        """The host makes a map, beside the model."""
        self.host_op("new_map()", self.b.new_map, lambda: self.model.new(self.host, None))

    # --- loading ----------------------------------------------------------------------------

    def load_relay(self, name: str) -> None:
        """Load relay `name` and run its SETUP program, beside the model."""
        # "stop": a trapped relay stays torn down, its memory (its log) kept to read
        self.b.load(
            name, RELAY, grants=GRANTS, limits=LIMITS[name], exports=EXPORTS, on_trap="stop"
        )
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
        self.load_relay(name)

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
