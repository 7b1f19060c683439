"""The cycle collector against a model of the map graph (hypothesis state machine).

The model is the graph the host API builds: nodes are maps, edges are
references stored with `set_map`, roots are the live `MapRef`s.  It counts
references the way docs/ownership.md does (a map goes the moment its count is
zero, cascading) and collects like the documented collector (docs/abi.md,
"The cycle collector"): every map no root reaches.  Rules drive the host
API (new_map, clone, close, set_map, bytes over a reference, delete,
get_map, rings, collect); the checks:

- after every `collect()`: the broker's live anonymous maps are exactly the
  maps the model reaches from its live MapRefs, and `collect()` returned how
  many it reclaimed;
- after every step: every map the model reaches is alive, with exactly the
  model's entries (`get_map` of each edge gives the expected map id, bytes
  read back); with automatic collection off, the broker's live maps are
  exactly the model's (so plain counting is checked too); with it on, the
  broker keeps at least every reachable map and nothing the model has
  reclaimed;
- always: `testing.check_refcounts` (the core recounts every reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from broker import AccessError, Broker, MapRef, NotFoundError, testing
from broker.errors import ValueTypeError

KEYS = st.sampled_from([b"a", b"b", b"c", b""])
VALUES = st.sampled_from([b"", b"1", b"value"])
PICKS = st.integers(0, 1 << 16)  # an index into the live MapRefs, modulo their number


@dataclass
class Root:
    """A live MapRef in the model: the map it reaches and whether it may write."""

    ref: MapRef
    map: int
    writable: bool


class Graph:
    """Maps (id -> key -> child id, or bytes), their reference counts, and the roots."""

    def __init__(self) -> None:
        self.entries: dict[int, dict[bytes, int | bytes]] = {}
        self.count: dict[int, int] = {}
        self.roots: list[Root] = []

    def add(self, mid: int) -> None:
        assert mid not in self.entries, f"map id {mid} issued twice"
        self.entries[mid] = {}
        self.count[mid] = 0

    def hold(self, mid: int) -> None:
        self.count[mid] += 1

    def release(self, mid: int) -> None:
        """One reference less; at zero the map goes, and what it referenced loses one."""
        stack = [mid]
        while stack:
            m = stack.pop()
            self.count[m] -= 1
            if self.count[m]:
                continue
            for v in self.entries.pop(m).values():
                if isinstance(v, int):
                    stack.append(v)
            del self.count[m]

    def reachable(self) -> set[int]:
        seen: set[int] = set()
        stack = [r.map for r in self.roots]
        while stack:
            m = stack.pop()
            if m in seen:
                continue
            seen.add(m)
            stack.extend(v for v in self.entries[m].values() if isinstance(v, int))
        return seen

    def forget(self, gone: set[int]) -> None:
        """The collector reclaimed `gone` together: drop them, release what they referenced."""
        outside = []
        for m in gone:
            outside.extend(
                v for v in self.entries[m].values() if isinstance(v, int) and v not in gone
            )
        for m in gone:
            del self.entries[m], self.count[m]
        for v in outside:
            self.release(v)

    def collect(self) -> int:
        garbage = set(self.entries) - self.reachable()
        self.forget(garbage)
        return len(garbage)


class CollectorMachine(RuleBasedStateMachine):
    """One host-only broker and the graph model, kept in step."""

    def __init__(self) -> None:
        super().__init__()
        self.g = Graph()
        self.b: Broker | None = None
        self.threshold = 0

    @initialize(threshold=st.sampled_from([0, 0, 1, 3]))
    def start(self, threshold: int) -> None:
        self.threshold = threshold
        self.b = Broker(gc_threshold=threshold)

    @property
    def broker(self) -> Broker:
        assert self.b is not None
        return self.b

    def teardown(self) -> None:
        if self.b is not None:
            for r in self.g.roots:
                r.ref.close()
            self.b.close()

    # --- helpers -------------------------------------------------------------

    def pick(self, i: int) -> Root:
        return self.g.roots[i % len(self.g.roots)]

    def adopt(self, ref: MapRef, writable: bool, *, new: bool = False) -> Root:
        mid = ref.map_id
        assert mid != 0
        if new:
            self.g.add(mid)
        else:
            assert mid in self.g.entries, f"a MapRef to map {mid}, which the model has reclaimed"
        self.g.hold(mid)
        root = Root(ref, mid, writable)
        self.g.roots.append(root)
        return root

    def drop(self, root: Root) -> None:
        self.g.roots.remove(root)
        root.ref.close()
        self.g.release(root.map)

    def link(self, parent: Root, key: bytes, child: Root) -> None:
        parent.ref.set_map(key, child.ref)
        self.g.hold(child.map)  # before the old value goes: it may be the same map
        old = self.g.entries[parent.map].get(key)
        self.g.entries[parent.map][key] = child.map
        if isinstance(old, int):
            self.g.release(old)

    def live(self) -> set[int]:
        return {m.id for m in self.broker.snapshot().anonymous()}

    # --- rules ----------------------------------------------------------------

    @rule()
    def new_map(self) -> None:
        self.adopt(self.broker.new_map(), True, new=True)

    @precondition(lambda self: self.g.roots)
    @rule(i=PICKS, writable=st.booleans())
    def clone(self, i: int, writable: bool) -> None:
        root = self.pick(i)
        if writable and not root.writable:
            with pytest.raises(AccessError):
                root.ref.clone("rw")
            return
        self.adopt(root.ref.clone("rw" if writable else "r"), writable)

    @precondition(lambda self: self.g.roots)
    @rule(i=PICKS)
    def close(self, i: int) -> None:
        self.drop(self.pick(i))

    @precondition(lambda self: self.g.roots)
    @rule(i=PICKS, j=PICKS, key=KEYS)
    def set_map(self, i: int, j: int, key: bytes) -> None:
        parent, child = self.pick(i), self.pick(j)
        if not (parent.writable and child.writable):
            with pytest.raises(AccessError):
                parent.ref.set_map(key, child.ref)
            return
        self.link(parent, key, child)

    @precondition(lambda self: self.g.roots)
    @rule(i=PICKS, key=KEYS, value=VALUES)
    def set_bytes(self, i: int, key: bytes, value: bytes) -> None:
        """Write bytes under a key: over a reference, this releases it."""
        root = self.pick(i)
        if not root.writable:
            with pytest.raises(AccessError):
                root.ref[key] = value
            return
        root.ref[key] = value
        old = self.g.entries[root.map].get(key)
        self.g.entries[root.map][key] = value
        if isinstance(old, int):
            self.g.release(old)

    @precondition(lambda self: self.g.roots)
    @rule(i=PICKS, key=KEYS)
    def delete(self, i: int, key: bytes) -> None:
        root = self.pick(i)
        entries = self.g.entries[root.map]
        if key not in entries:
            with pytest.raises(KeyError):
                del root.ref[key]
            return
        if not root.writable:
            with pytest.raises(AccessError):
                del root.ref[key]
            return
        del root.ref[key]
        old = entries.pop(key)
        if isinstance(old, int):
            self.g.release(old)

    @precondition(lambda self: self.g.roots)
    @rule(i=PICKS, key=KEYS)
    def get_map(self, i: int, key: bytes) -> None:
        root = self.pick(i)
        want = self.g.entries[root.map].get(key)
        if want is None:
            with pytest.raises(NotFoundError):
                root.ref.get_map(key)
        elif isinstance(want, bytes):
            with pytest.raises(ValueTypeError):
                root.ref.get_map(key)
        else:
            got = self.adopt(root.ref.get_map(key), root.writable)
            assert got.map == want

    @rule(n=st.integers(1, 6), keep=st.booleans(), key=KEYS)
    def make_ring(self, n: int, keep: bool, key: bytes) -> None:
        """n new maps in a ring under `key`; keep a MapRef to the first, or none."""
        members = [self.adopt(self.broker.new_map(), True, new=True) for _ in range(n)]
        for a, c in zip(members, members[1:] + members[:1], strict=True):
            self.link(a, key, c)
        for m in members[1:] if keep else members:
            self.drop(m)

    @precondition(lambda self: self.g.roots)
    @rule(i=PICKS, n=st.integers(1, 4), key=KEYS)
    def hang_ring(self, i: int, n: int, key: bytes) -> None:
        """A new ring of n maps hung under `key` of a held map (if it may write)."""
        parent = self.pick(i)
        if not parent.writable:
            return
        self.make_ring(n, True, key)
        first = self.g.roots[-1]
        self.link(parent, key, first)
        self.drop(first)

    @rule()
    def collect(self) -> None:
        """collect() reclaims exactly the maps no live MapRef reaches, and says how many."""
        expected = len(set(self.g.entries) - self.g.reachable())
        assert self.broker.collect() == expected
        assert self.g.collect() == expected
        assert self.live() == set(self.g.entries) == self.g.reachable()
        assert self.broker.stats()["maps"] == len(self.g.entries)

    # --- invariants -------------------------------------------------------------

    @invariant()
    def counts_agree(self) -> None:
        """The core's recount finds no reference counted wrong."""
        if self.b is not None:
            testing.check_refcounts(self.broker)

    @invariant()
    def live_maps_agree(self) -> None:
        """No reachable map is gone, no reclaimed one alive; exact when collection is manual."""
        if self.b is None:
            return
        live = self.live()
        assert self.broker.stats()["maps"] == len(live)
        reachable = self.g.reachable()
        assert reachable <= live, f"reachable maps reclaimed: {sorted(reachable - live)}"
        extra = live - set(self.g.entries)
        assert not extra, f"maps alive that the model reclaimed: {sorted(extra)}"
        if self.threshold == 0:
            assert live == set(self.g.entries)
        else:
            self.g.forget(set(self.g.entries) - live)  # what automatic collections took
            assert live == set(self.g.entries)

    @invariant()
    def reachable_maps_hold_their_entries(self) -> None:
        """Every reachable map has the model's entries: get_map of each edge gives the right map."""
        if self.b is None:
            return
        snap = self.broker.snapshot()
        edges: dict[int, dict[bytes, int]] = {}
        for e in snap.edges:
            edges.setdefault(e.parent, {})[e.key] = e.child
        reachable = self.g.reachable()
        for m in reachable:
            want = {k: v for k, v in self.g.entries[m].items() if isinstance(v, int)}
            assert edges.get(m, {}) == want, f"map {m}"
            assert snap.maps[m].entries == len(self.g.entries[m])
        # Walk from every root with get_map; keep the collector still while
        # the walk's own handles come and go.
        self.broker.gc.threshold = 0
        opened: list[MapRef] = []
        try:
            seen: set[int] = set()
            stack = [(r.ref, r.map) for r in self.g.roots]
            while stack:
                ref, m = stack.pop()
                if m in seen:
                    continue
                seen.add(m)
                assert ref.map_id == m
                for key, v in self.g.entries[m].items():
                    if isinstance(v, bytes):
                        assert ref[key] == v
                        continue
                    child = ref.get_map(key)
                    opened.append(child)
                    assert child.map_id == v, f"map {m}[{key!r}]"
                    stack.append((child, v))
            assert seen == reachable
        finally:
            for ref in opened:
                ref.close()
            self.broker.gc.threshold = self.threshold


CollectorMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestCollectorModel = CollectorMachine.TestCase
