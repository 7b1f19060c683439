"""The graph during calls: a borrowed handle drawn dashed while its call runs, and
graph.frames, snapshots of one run side by side.
"""

from __future__ import annotations

import re
import threading
import time

import pytest
from dot_graph import RED, Dot, attrs
from held_back_apps import h
from paths import GUESTS

from broker import Borrow, Broker, Own, Share, graph
from broker.graph import Frame
from broker.refs import Snapshot


@pytest.fixture
def during_borrow() -> tuple[Snapshot, list[str], int]:
    """A snapshot taken while the host's map is lent to callee.wait (borrow); the host's handle."""
    with Broker() as b:
        b.load("callee", GUESTS / "xmod_callee.wat", exports={"wait": {"params": ["borrow"]}})
        b.load("caller", GUESTS / "xmod_caller.wat")
        m = b.new_map()
        results: list[int] = []
        worker = threading.Thread(target=lambda: results.append(b.call("callee.wait", Borrow(m))))
        worker.start()
        deadline = time.monotonic() + 60
        while b"\x01" not in m:  # the callee has the borrow
            assert time.monotonic() < deadline
            time.sleep(0.001)
        snapshot = b.snapshot()
        m[b"\x02"] = b"go"  # let it return
        worker.join(timeout=60)
        assert results and results[0] >= 0
        host_h = m.handle
        m.close()
        return snapshot, b.modules(), host_h


class TestBorrows:
    """A borrowed handle exists only while its call runs; drawn then, it is dashed."""

    def test_borrow_is_dashed(self, during_borrow: tuple[Snapshot, list[str], int]) -> None:
        """The graph of a snapshot taken during a borrow: a dashed "borrow" edge."""
        snapshot, modules, host_h = during_borrow
        dot = Dot(graph.build(snapshot, modules).source)
        borrow = dot.edge("module callee", "map 1")
        assert (borrow["label"], borrow["style"]) == (f"h{h(0)} borrow rw", "dashed")
        own = dot.edge("module host", "map 1")
        assert (own["label"], own["style"]) == (f"h{host_h} own rw", "solid")
        # each module's handle edges have a colour of their own (not red)
        assert borrow["color"] != own["color"] and RED not in (borrow["color"], own["color"])
        # a borrow does not count
        assert dot.nodes["map 1"]["label"] == r"map 1\n1 entry, count 1"


def clusters(source: str) -> list[tuple[str, str]]:
    """(name, label) of each cluster in graphviz source, in order."""
    found = re.findall(r"subgraph (cluster_\w+) \{\n\t+graph \[(.*)\]", source)
    return [(name, attrs(text)["label"]) for name, text in found]


class TestFrames:
    """graph.frames: a few snapshots of one run side by side, for before / after pictures."""

    def test_a_move(self) -> None:
        """Before and after an own pass: each frame a cluster; the host drawn while it holds."""
        with Broker() as b:
            b.load("callee", GUESTS / "xmod_callee.wat", exports={"take": {"params": ["own"]}})
            m = b.new_map()
            m[b"k"] = b"v"
            before = b.snapshot()
            (host_h,) = [h.handle for h in before.handles]
            callee_h = b.call("callee.take", Own(m))
            after = b.snapshot()
        g = graph.frames([Frame("before", before), Frame("after", after)], ["callee"])
        dot = Dot(g.source)
        assert clusters(g.source) == [("cluster_f0", "before"), ("cluster_f1", "after")]
        assert "f0 module host" in dot.nodes and "f1 module host" not in dot.nodes
        assert dot.nodes["f0 module callee"]["label"] == "callee"
        assert dot.edge("f0 module host", "f0 map 1")["label"] == f"h{host_h} own rw"
        assert dot.edge("f1 module callee", "f1 map 1")["label"] == f"h{callee_h} own rw"
        assert dot.nodes["f1 map 1"]["label"] == r"map 1\n1 entry, count 1"

    def test_colours_and_order(self) -> None:
        """A module keeps its colour in every frame; modules stand in the order given."""
        with Broker() as b:
            b.load("callee", GUESTS / "xmod_callee.wat", exports={"keep": {"params": ["share"]}})
            m = b.new_map()
            b.call("callee.keep", Share(m))
            shared = b.snapshot()
            m.close()
            g = graph.frames([Frame("shared", shared), Frame("closed", b.snapshot())], ["callee"])
        dot = Dot(g.source)
        colours = {s: a["color"] for s, _, a in dot.edges if a.get("style") != "invis"}
        assert colours["f0 module callee"] == colours["f1 module callee"]
        assert colours["f0 module host"] != colours["f0 module callee"]
        assert dot.nodes["f0 map 1"]["label"] == r"map 1\n0 entries, count 2"
        assert dot.nodes["f1 map 1"]["label"] == r"map 1\n0 entries, count 1"
        # the invisible edge that keeps callee left of host in the row
        assert dot.edge("f0 module callee", "f0 module host") == {"style": "invis"}
        assert 'subgraph "f0 modules"' in g.source and "rank=same" in g.source

    def test_lent_and_borrowed(self, during_borrow: tuple[Snapshot, list[str], int]) -> None:
        """During a borrow the lender's handle says "lent"; the borrow is dashed."""
        snapshot, _, host_h = during_borrow
        dot = Dot(graph.frames([Frame("during", snapshot)], ["callee"]).source)
        assert dot.edge("f0 module host", "f0 map 1")["label"] == f"h{host_h} own rw, lent"
        borrow = dot.edge("f0 module callee", "f0 map 1")
        assert (borrow["label"], borrow["style"]) == (f"h{h(0)} borrow rw", "dashed")

    def test_notes(self) -> None:
        """A frame's note on a module goes under its name."""
        with Broker() as b:
            shot = b.snapshot()
        g = graph.frames([Frame("after", shot, {"b": "torn down"})], ["a", "b"], title="t")
        dot = Dot(g.source)
        assert dot.nodes["f0 module b"]["label"] == r"b\n(torn down)"
        assert dot.nodes["f0 module a"]["label"] == "a"
        assert "label=t labelloc=b" in g.source

    def test_garbage_sits_below(self) -> None:
        """A cycle nobody holds is red, and tied below the first module by an invisible edge."""
        with Broker(gc_threshold=0) as b:
            x, y = b.new_map(), b.new_map()
            x.set_map(b"next", y)
            y.set_map(b"next", x)
            x.close()
            y.close()
            dot = Dot(graph.frames([Frame("garbage", b.snapshot())], ["a"]).source)
        assert dot.nodes["f0 map 1"]["color"] == dot.nodes["f0 map 2"]["color"] == RED
        assert dot.edge("f0 map 1", "f0 map 2")["color"] == RED
        assert dot.edge("f0 module a", "f0 map 1") == {"style": "invis"}
        assert dot.edge("f0 module a", "f0 map 2") == {"style": "invis"}
