"""The C core's handle and refcount tables, side by side with the model (tests/support/model.py)."""

from __future__ import annotations

from core_calls import Outcome, core_call
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from model import READ, WRITE, Map, Model, ModuleModel
from strategies import U32_MAX, handle_picks, i64_args, keys, names, rights_args, values

from broker._native import NativeBroker, NativeModule
from broker.abi import Errno
from broker.limits import Limits

HOST_HANDLES = 1 << 21  # the core gives the host the whole index space
#: The modules beside the host: name, limits, grants.  "b" is small, so
#: handle QUOTA and TOOBIG come up within a few steps.
MODULES: tuple[tuple[str, Limits, dict[bytes, int]], ...] = (
    ("a", Limits(), {b"config": READ, b"shared": READ | WRITE, b"inbox": WRITE}),
    (
        "b",
        Limits(handles=6, key_size=8, value_size=16),
        {b"shared": READ, b"config": READ | WRITE, "caf\u00e9".encode(): 0},
    ),
    ("c", Limits(), {}),
)
module_indexes = st.integers(0, len(MODULES))  # 0 is the host
#: None: use the drawn key; an int: a key the model holds in the handle's map.
stored_keys = st.one_of(st.none(), st.integers(0, 15))


def issued(got: Outcome) -> int | None:
    """The handle the core issued, if it did."""
    return got[1] if got[0] == Errno.OK else None


class OwnershipMachine(RuleBasedStateMachine):
    """One C broker (host + three modules) and the model, kept in step."""

    def __init__(self) -> None:
        super().__init__()
        self.core = NativeBroker(Limits())
        self.model = Model()
        self.natives: list[NativeModule] = [self.core.host]
        self.mods: list[ModuleModel] = [
            self.model.add_module(ModuleModel("host", is_host=True, handle_limit=HOST_HANDLES))
        ]
        for name, limits, grants in MODULES:
            native = self.core.new_module(limits, f"m{len(self.natives)}")
            for gname, rights in grants.items():
                native.grant(gname.decode(), rights)
            self.natives.append(native)
            self.mods.append(
                self.model.add_module(
                    ModuleModel(
                        name,
                        grants=dict(grants),
                        handle_limit=limits.handles,
                        key_size=limits.key_size,
                        value_size=limits.value_size,
                    )
                )
            )
        self.by_native_id: dict[int, Map] = {}

    # --- helpers ---------------------------------------------------------------

    def pick(self, m: int, choice: tuple[str, int, int]) -> int:
        """A handle number for module m, as `strategies.handle_picks` describes."""
        kind, index, raw = choice
        mod = self.mods[m]
        pool: list[int] = []
        if kind == "live":
            pool = sorted(mod.live)
        elif kind == "full":
            pool = sorted(h for h, handle in mod.live.items() if handle.map.entries) or sorted(
                mod.live
            )
        elif kind == "stale":
            pool = mod.stale()
        elif kind == "foreign":
            pool = sorted(h for other in self.mods if other is not mod for h in other.live)
        elif kind == "next_generation":
            pool = [(h + (1 << 21)) & U32_MAX for h in sorted(mod.issued)]
        if kind in ("live", "full") and not pool:
            pool = mod.stale()
        return pool[index % len(pool)] if pool else raw

    def pick_key(
        self, m: int, h: int, key: bytes, stored: int | None, maps_only: bool = False
    ) -> bytes:
        """`key`, or (when `stored` is given) a key the model holds in h's map, if any."""
        handle = self.mods[m].live.get(h)
        if stored is None or handle is None:
            return key
        held = [
            k for k, e in handle.map.entries.items() if isinstance(e.value, Map) or not maps_only
        ]
        return held[stored % len(held)] if held else key

    def agree(self, m: int, what: str, got: Outcome, want: Outcome) -> None:
        """The core and the rules give the same errno."""
        assert got[0] == want[0], (
            f"{self.mods[m].name}: {what}: the core says {got[0].name}, "
            f"the rules say {want[0].name}"
        )

    # --- handles -------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        """Every module starts with two maps, one holding bytes and the other a reference to it."""
        for m in range(len(self.mods)):
            self.new(m)
            self.new(m)
            first, second = sorted(self.mods[m].live)
            self.set(m, ("raw", 0, first), b"a", b"1")
            self.set_map(m, ("raw", 0, second), b"k", ("raw", 0, first))

    @rule(m=module_indexes)
    def new(self, m: int) -> None:
        got = core_call(self.natives[m].op_new)
        want = self.model.attempt(self.model.new, self.mods[m], issued=issued(got))
        self.agree(m, "new()", got, want)

    @rule(m=module_indexes, name=names, rights=rights_args)
    def open(self, m: int, name: bytes, rights: int) -> None:
        got = core_call(self.natives[m].op_open, name, rights)
        want = self.model.attempt(self.model.open, self.mods[m], name, rights, issued=issued(got))
        self.agree(m, f"open({name[:40]!r}, rights={rights:#x})", got, want)

    @rule(m=module_indexes, pick=handle_picks, rights=rights_args)
    def clone(self, m: int, pick: tuple[str, int, int], rights: int) -> None:
        h = self.pick(m, pick)
        got = core_call(self.natives[m].op_clone, h, rights)
        want = self.model.attempt(self.model.clone, self.mods[m], h, rights, issued=issued(got))
        self.agree(m, f"clone({h:#x}, rights={rights:#x})", got, want)

    @rule(m=module_indexes, pick=handle_picks)
    def close(self, m: int, pick: tuple[str, int, int]) -> None:
        h = self.pick(m, pick)
        got = core_call(self.natives[m].op_close, h)
        want = self.model.attempt(self.model.close, self.mods[m], h)
        self.agree(m, f"close({h:#x})", got, want)

    @rule(m=module_indexes)
    def close_all(self, m: int) -> None:
        self.natives[m].teardown()
        self.model.close_all(self.mods[m])

    # --- bytes -----------------------------------------------------------------------

    @rule(m=module_indexes, pick=handle_picks, key=keys, value=values)
    def set(self, m: int, pick: tuple[str, int, int], key: bytes, value: bytes) -> None:
        h = self.pick(m, pick)
        got = core_call(self.natives[m].op_set, h, key, value)
        want = self.model.attempt(self.model.set, self.mods[m], h, key, value)
        self.agree(m, f"set({h:#x}, {key[:20]!r}, {value!r})", got, want)

    @rule(m=module_indexes, pick=handle_picks, key=keys, stored=stored_keys)
    def get(self, m: int, pick: tuple[str, int, int], key: bytes, stored: int | None) -> None:
        h = self.pick(m, pick)
        key = self.pick_key(m, h, key, stored)
        got = core_call(self.natives[m].op_get, h, key)
        want = self.model.attempt(self.model.get, self.mods[m], h, key)
        self.agree(m, f"get({h:#x}, {key[:20]!r})", got, want)
        assert got[1] == want[1], f"get({h:#x}, {key[:20]!r}): core {got[1]!r}, model {want[1]!r}"

    @rule(m=module_indexes, pick=handle_picks, key=keys)
    def delete(self, m: int, pick: tuple[str, int, int], key: bytes) -> None:
        h = self.pick(m, pick)
        got = core_call(self.natives[m].op_delete, h, key)
        want = self.model.attempt(self.model.delete, self.mods[m], h, key)
        self.agree(m, f"delete({h:#x}, {key[:20]!r})", got, want)

    @rule(m=module_indexes, pick=handle_picks, key=keys, delta=i64_args)
    def incr(self, m: int, pick: tuple[str, int, int], key: bytes, delta: int) -> None:
        h = self.pick(m, pick)
        got = core_call(self.natives[m].op_incr, h, key, delta)
        want = self.model.attempt(self.model.incr, self.mods[m], h, key, delta)
        self.agree(m, f"incr({h:#x}, {key[:20]!r}, {delta})", got, want)
        assert got[1] == want[1], f"incr({h:#x}, {key[:20]!r}): core {got[1]}, model {want[1]}"

    @rule(m=module_indexes, pick=handle_picks, key=keys)
    def version(self, m: int, pick: tuple[str, int, int], key: bytes) -> None:
        h = self.pick(m, pick)
        got = core_call(self.natives[m].op_version, h, key)
        want = self.model.attempt(self.model.version, self.mods[m], h, key)
        self.agree(m, f"version({h:#x}, {key[:20]!r})", got, want)
        if got[0] == Errno.OK:
            self.model.observe_version(want[1], got[1])

    @rule(m=module_indexes, pick=handle_picks)
    def read_back(self, m: int, pick: tuple[str, int, int]) -> None:
        """len, keys, and exists + get of every key agree with the model."""
        h = self.pick(m, pick)
        native, mod = self.natives[m], self.mods[m]
        got, want = core_call(native.op_len, h), self.model.attempt(self.model.len, mod, h)
        self.agree(m, f"len({h:#x})", got, want)
        assert got[1] == want[1], f"len({h:#x}): core {got[1]}, model {want[1]}"
        got, want = core_call(native.op_keys, h), self.model.attempt(self.model.keys, mod, h)
        self.agree(m, f"keys({h:#x})", got, want)
        assert got[1] == want[1], f"keys({h:#x}): core {got[1]}, model {want[1]}"
        for key in want[1] or []:
            got, want_e = (
                core_call(native.op_exists, h, key),
                self.model.attempt(self.model.exists, mod, h, key),
            )
            self.agree(m, f"exists({h:#x}, {key[:20]!r})", got, want_e)
            assert got[1] == want_e[1]
            got, want_g = (
                core_call(native.op_get, h, key),
                self.model.attempt(self.model.get, mod, h, key),
            )
            self.agree(m, f"get({h:#x}, {key[:20]!r})", got, want_g)
            assert got[1] == want_g[1], (
                f"get({h:#x}, {key[:20]!r}): core {got[1]!r}, model {want_g[1]!r}"
            )

    # --- map references ------------------------------------------------------------

    @rule(m=module_indexes, pick=handle_picks, key=keys, child_pick=handle_picks)
    def set_map(
        self, m: int, pick: tuple[str, int, int], key: bytes, child_pick: tuple[str, int, int]
    ) -> None:
        h, child = self.pick(m, pick), self.pick(m, child_pick)
        got = core_call(self.natives[m].op_set_map, h, key, child)
        want = self.model.attempt(self.model.set_map, self.mods[m], h, key, child)
        self.agree(m, f"set_map({h:#x}, {key[:20]!r}, child={child:#x})", got, want)

    @rule(m=module_indexes, pick=handle_picks, key=keys, stored=stored_keys)
    def get_map(self, m: int, pick: tuple[str, int, int], key: bytes, stored: int | None) -> None:
        h = self.pick(m, pick)
        key = self.pick_key(m, h, key, stored, maps_only=True)
        got = core_call(self.natives[m].op_get_map, h, key)
        want = self.model.attempt(self.model.get_map, self.mods[m], h, key, issued=issued(got))
        self.agree(m, f"get_map({h:#x}, {key[:20]!r})", got, want)

    # --- invariants ------------------------------------------------------------------

    @invariant()
    def handles_agree(self) -> None:
        """Handle counts agree; each live handle reaches the model's map; closed ones reach none."""
        for native, mod in zip(self.natives, self.mods, strict=True):
            assert native.handle_count() == len(mod.live), (
                f"{mod.name}: the core has {native.handle_count()} live handles, "
                f"the model {len(mod.live)}"
            )
            for h, handle in mod.live.items():
                self.identify(mod, h, handle.map, native.map_id(h))
            for h in mod.stale():
                assert native.map_id(h) == 0, (
                    f"{mod.name}: closed handle {h:#x} still reaches a map"
                )

    @invariant()
    def usage_agrees(self) -> None:
        """Each module is charged for exactly the live entries it wrote last."""
        for native, mod in zip(self.natives, self.mods, strict=True):
            assert native.usage() == self.model.usage(mod), (
                f"{mod.name}: the core charges (bytes, entries) {native.usage()}, "
                f"the model {self.model.usage(mod)}"
            )

    def identify(self, mod: ModuleModel, h: int, m: Map, native_id: int) -> None:
        """Learn (once) or check which core map id stands for model map m."""
        assert native_id != 0, f"{mod.name}: live handle {h:#x} reaches no map in the core"
        if m.native_id is None:
            assert native_id not in self.by_native_id, (
                f"{mod.name}: handle {h:#x} reaches core map {native_id}, which the model "
                f"knows as {self.by_native_id.get(native_id)}, not {m}"
            )
            m.native_id = native_id
            self.by_native_id[native_id] = m
        assert m.native_id == native_id, (
            f"{mod.name}: handle {h:#x} reaches core map {native_id} "
            f"({self.by_native_id.get(native_id)}); the model says {m} (core id {m.native_id})"
        )

    @invariant()
    def map_counts_agree(self) -> None:
        """Live anonymous maps, named maps and entries agree with the model."""
        stats = self.core.stats()
        assert stats["maps"] == self.model.live_anonymous(), (
            f"the core has {stats['maps']} live anonymous maps, the model "
            f"{self.model.live_anonymous()}: "
            f"{[m for m in self.model.maps if m.alive and m.name is None]}"
        )
        assert stats["named"] == len(self.model.names)
        entries = sum(len(m.entries) for m in self.model.maps if m.alive)
        assert stats["entries"] == entries, f"core entries {stats['entries']}, model {entries}"


OwnershipMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class TestOwnershipRules(OwnershipMachine.TestCase):
    """Random sequences of handle, byte and map-reference operations match the model."""
