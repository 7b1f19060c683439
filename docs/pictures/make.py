"""Draw the pictures of docs/ownership.md from real runs of app.toml.

    python docs/pictures/make.py [OUTDIR]        (default: docs/pictures)

Each scene loads app.toml (modules a and b) into a fresh Broker, makes the
calls the page describes, and takes snapshots of who holds what
(`Broker.snapshot()`) between them.  A moment *inside* a call is caught
when b writes to the named map "camera": that map's store is `Camera`,
which takes the snapshot right there (a store is called in the middle of
the guest's call, without the broker's lock).  The camera map itself is
left out of the pictures.  `broker.graph.frames` draws the snapshots side
by side; each picture is written as NAME.dot (the graphviz source, which
tests/tools/test_docs_ownership.py compares with a fresh run) and NAME.svg.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker import Broker, Errno, GuestTrap, graph
from broker.graph import Frame
from broker.manifest import load_manifest
from broker.refs import Snapshot
from broker.stores.sqlite_store import SqliteStore

HERE = Path(__file__).resolve().parent
APP = HERE / "app.toml"
MODULES = ["a", "b"]
CAMERA = "camera"


class Camera(SqliteStore):
    """An in-memory store of named maps that takes a snapshot at every `set` of "camera"."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.broker: Broker | None = None
        self.shots: list[Snapshot] = []

    def set(self, name: str, key: bytes, value: bytes) -> None:
        if name == CAMERA and self.broker is not None:
            self.shots.append(self.broker.snapshot())
        super().set(name, key, value)


@dataclass
class Scene:
    """One picture: its frames, and what the run showed besides (checked by the tests)."""

    name: str
    frames: list[Frame]
    facts: dict[str, Any] = field(default_factory=dict)

    def draw(self) -> Any:
        return graph.frames(self.frames, MODULES)


def app(camera: Camera | None = None) -> Broker:
    """app.toml in a fresh traced broker; with a camera, named maps live in it."""
    if camera is None:
        return Broker.from_manifest(APP, trace=True)
    manifest = load_manifest(APP)
    b = Broker(
        camera,
        limits=manifest.limits,
        strict_borrows=manifest.strict_borrows,
        gc_threshold=manifest.gc_threshold,
        trace=True,
    )
    camera.broker = b
    for m in manifest.modules.values():
        b.load(m.name, m.path, grants=dict(m.grants), limits=m.limits, exports=m.exports)
    return b


def shot(b: Broker) -> Snapshot:
    return without_camera(b.snapshot())


def without_camera(s: Snapshot) -> Snapshot:
    """The snapshot with the named map "camera" and its handles left out."""
    cam = {m.id for m in s.maps.values() if m.name == CAMERA}
    return Snapshot(
        [h for h in s.handles if h.map not in cam],
        {i: m for i, m in s.maps.items() if i not in cam},
        [e for e in s.edges if not {e.parent, e.child} & cam],
    )


def passing(name: str, export: str, callee: str) -> Scene:
    """a makes a map, then passes it to b by calling `a.export` (before / after).

    After the call a uses its handle once more: a note says if it is STALE."""
    with app() as b:
        b.call("a.make")
        before = shot(b)
        b.call(f"a.{export}")
        errno = Errno(b.call("a.probe"))
        (h,) = [h.handle for h in before.handles if h.module == "a"]
        notes = {"a": f"h{h} is {errno.name}"} if errno else {}
        return Scene(
            name,
            [Frame("before", before), Frame(f"after a calls b.{callee}", shot(b), notes)],
            {"errno": errno.name},
        )


def lending(name: str, export: str, callee: str) -> Scene:
    """a lends its map to b (before / during / after); b may keep a clone."""
    camera = Camera()
    with app(camera) as b:
        b.call("a.make")
        before = shot(b)
        b.call(f"a.{export}")
        (during,) = camera.shots
        left_open = len(b.leaks()["unreleased_borrows"])
        notes = {"b": f"the broker ended {left_open} borrow"} if left_open else {}
        return Scene(
            name,
            [
                Frame("before", before),
                Frame(f"during b.{callee}", without_camera(during)),
                Frame("after it returns", shot(b), notes),
            ],
            {"unreleased_borrows": left_open},
        )


def counting() -> Scene:
    """What keeps a map alive: a handle, a reference from another map, a name."""
    with app() as b:
        b.call("a.counting")
        return Scene("counting", [Frame("after a.counting", shot(b))])


def results() -> Scene:
    """b gives a the maps it made: one by own, one by share."""
    with app() as b:
        b.call("b.init")
        before = shot(b)
        b.call("a.fetch")
        return Scene("results", [Frame("before", before), Frame("after a calls b.give", shot(b))])


def teardown() -> Scene:
    """b traps in a call a made: b is torn down, its handles closed; a goes on."""
    with app() as b:
        b.call("a.make")
        b.call("a.share")
        b.call("b.init")
        before = shot(b)
        try:
            b.call("a.call_crash")
        except GuestTrap as trap:
            facts = {"trap": str(trap), "origin": trap.origin}
        after = shot(b)
        b.call("a.drop")  # a goes on: its handle closes as usual
        return Scene(
            "teardown",
            [
                Frame("before", before),
                Frame("after b traps in a.call_crash", after, {"b": "torn down"}),
            ],
            facts | {"maps_left": b.stats()["maps"]},
        )


def notices() -> Scene:
    """a watches its map, shares it with b and closes its handle; b closes the last."""
    with app() as b:
        b.call("a.make")
        b.call("a.watch")
        b.call("a.share")
        b.call("a.drop")
        before = shot(b)
        b.call("b.drop")
        notice = b.call("a.notice")
        return Scene(
            "notices",
            [
                Frame("b holds map 1, a watches it", before),
                Frame("after b.drop", shot(b), {"a": f"wasi_map_on_drop({notice}) ran"}),
            ],
            {"notice": notice},
        )


def cycle() -> Scene:
    """Two maps that reference each other outlive their last handle until a collection."""
    with app() as b:
        b.call("a.cycle")
        held = shot(b)
        b.call("a.drop")
        garbage = shot(b)
        collected = b.collect()
        return Scene(
            "cycle",
            [
                Frame("a holds map 1", held),
                Frame("after a.drop", garbage),
                Frame("after Broker.collect()", shot(b)),
            ],
            {"collected": collected, "maps_left": b.stats()["maps"]},
        )


SCENES: dict[str, Callable[[], Scene]] = {
    "counting": counting,
    "own": lambda: passing("own", "give_own", "take"),
    "borrow": lambda: lending("borrow", "lend", "look"),
    "share": lambda: passing("share", "share", "keep"),
    "share-r": lambda: passing("share-r", "share_r", "keep_r"),
    "lending": lambda: lending("lending", "lend_keep", "hold"),
    "results": results,
    "teardown": teardown,
    "notices": notices,
    "cycle": cycle,
}


def scenes() -> list[Scene]:
    return [make() for make in SCENES.values()]


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else HERE
    out.mkdir(parents=True, exist_ok=True)
    for scene in scenes():
        drawn = scene.draw()
        for suffix in (".dot", ".svg"):
            print(f"wrote {graph.write(drawn, out / (scene.name + suffix))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
