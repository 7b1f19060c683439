"""The ownership tracer (broker/tracer.py): every ownership event, who, where, and from where.

Runs the held-back apps tests/apps/leaky (a -> b: own, borrow, clone, a
named map, a garbage cycle) and tests/apps/atlas (loader -> index, sink:
share, an own result, borrow:r), and the xmod guests for the host's side.
"""

from __future__ import annotations

from typing import Any

import pytest
from held_back_apps import events, h, without_seq
from paths import GUESTS

from broker import Borrow, Broker, GuestTrap, Share


def one(b: Broker, kind: str, **match: Any) -> dict[str, Any]:
    (found,) = events(b, kind, **match)
    return found


def at(*path: str) -> dict[str, Any]:
    """The export and path fields of an event inside the call `path`."""
    return {"export": path[-1], "path": list(path)}


class TestEventKinds:
    """Each kind of event, with its module, handle, map, export and call path."""

    def test_new(self, leaky: Broker) -> None:
        """new: the module and the handle it got, in the export that ran."""
        assert without_seq(one(leaky, "new", map=1)) == {
            "event": "new",
            "module": "a",
            "handle": h(0),
            "map": 1,
            "export": "a.main",
            "path": ["a.main"],
        }

    def test_open(self, leaky: Broker) -> None:
        """open: a named map opened by a guest."""
        assert without_seq(one(leaky, "open")) == {
            "event": "open",
            "module": "a",
            "handle": h(1, 2),
            "map": 5,
            "export": "a.main",
            "path": ["a.main"],
        }

    def test_move(self, leaky: Broker) -> None:
        """move: from a's handle to b's, inside b.take called from a.main."""
        assert without_seq(one(leaky, "move")) == {
            "event": "move",
            "module": "a",
            "handle": h(0),
            "map": 1,
            "to_module": "b",
            "to_handle": h(0),
            "export": "b.take",
            "path": ["a.main", "b.take"],
        }

    def test_borrow_and_end(self, leaky: Broker) -> None:
        """borrow / borrow_end: the lender, the borrower's handle; left_open when not closed."""
        assert without_seq(one(leaky, "borrow", map=2)) == {
            "event": "borrow",
            "module": "a",
            "handle": h(0, 2),
            "map": 2,
            "to_module": "b",
            "to_handle": h(1),
            "export": "b.peek",
            "path": ["a.main", "b.peek"],
        }
        assert without_seq(one(leaky, "borrow_end", map=2)) == {
            "event": "borrow_end",
            "module": "a",
            "handle": h(0, 2),
            "map": 2,
            "to_module": "b",
            "to_handle": h(1),
            "export": "b.peek",
            "path": ["a.main", "b.peek"],
            "left_open": True,
        }
        closed_by_callee = one(leaky, "borrow_end", map=7)
        assert "left_open" not in closed_by_callee
        assert closed_by_callee["path"] == ["a.main", "b.stash"]

    def test_clone(self, leaky: Broker) -> None:
        """clone: the new handle, in the callee that keeps a borrowed map."""
        clone = one(leaky, "clone")
        assert (clone["module"], clone["handle"], clone["map"]) == ("b", h(2), 7)
        assert (clone["export"], clone["path"]) == ("b.stash", ["a.main", "b.stash"])

    def test_close(self, leaky: Broker) -> None:
        """close: an owning handle, and a borrowed one (flagged), each where it ran."""
        assert [without_seq(e) for e in events(leaky, "close", map=7)] == [
            {
                "event": "close",
                "module": "b",
                "handle": h(1, 2),
                "map": 7,
                "export": "b.stash",
                "path": ["a.main", "b.stash"],
                "borrowed": True,
            },
            {
                "event": "close",
                "module": "a",
                "handle": h(1, 3),
                "map": 7,
                "export": "a.main",
                "path": ["a.main"],
            },
        ]

    def test_set_map(self, leaky: Broker) -> None:
        """set_map: the parent (map) and the child (other_map), through the module's handle."""
        assert without_seq(one(leaky, "set_map", map=5)) == {
            "event": "set_map",
            "module": "a",
            "handle": h(1, 2),
            "map": 5,
            "other_map": 6,
            "export": "a.main",
            "path": ["a.main"],
        }

    def test_reclaim(self, leaky: Broker) -> None:
        """reclaim: the map, right after the close that dropped its count to zero."""
        reclaim = one(leaky, "reclaim", map=2)
        assert without_seq(reclaim) == {
            "event": "reclaim",
            "map": 2,
            "export": "a.main",
            "path": ["a.main"],
        }
        close = one(leaky, "close", map=2)
        assert reclaim["seq"] == close["seq"] + 1

    def test_cycle_reclaim(self, leaky: Broker) -> None:
        """cycle_reclaim: the maps of the garbage cycle, by the collector outside any call."""
        assert [without_seq(e) for e in events(leaky, "cycle_reclaim")] == [
            {"event": "cycle_reclaim", "map": 3},
            {"event": "cycle_reclaim", "map": 4},
        ] or [without_seq(e) for e in events(leaky, "cycle_reclaim")] == [
            {"event": "cycle_reclaim", "map": 4},
            {"event": "cycle_reclaim", "map": 3},
        ]

    def test_share(self, atlas: Broker) -> None:
        """share: loader keeps its handle, sink gets its own, inside sink.keep."""
        shares = events(atlas, "share")
        assert [without_seq(e) for e in shares] == [
            {
                "event": "share",
                "module": "loader",
                "handle": shares[0]["handle"],
                "map": 15,
                "to_module": "sink",
                "to_handle": h(0),
                "export": "sink.keep",
                "path": ["loader.main", "sink.keep"],
            },
            {
                "event": "share",
                "module": "loader",
                "handle": shares[1]["handle"],
                "map": 16,
                "to_module": "sink",
                "to_handle": h(1),
                "export": "sink.keep",
                "path": ["loader.main", "sink.keep"],
            },
        ]
        holders = {(x.module, x.map) for x in atlas.snapshot().handles}
        assert {("loader", 15), ("sink", 15), ("loader", 16), ("sink", 16)} <= holders

    def test_own_result(self, atlas: Broker) -> None:
        """An own result is a move from the callee back to the caller, in the callee's export."""
        move = one(atlas, "move", map=19)
        assert (move["module"], move["to_module"]) == ("index", "loader")
        assert move["path"] == ["loader.main", "index.fresh"]
        new = one(atlas, "new", map=19)
        assert (new["module"], new["path"]) == ("index", ["loader.main", "index.fresh"])

    def test_read_only_borrow(self, atlas: Broker) -> None:
        """borrow:r then clone: sink keeps a read-only handle to map 17."""
        borrow = one(atlas, "borrow", map=17)
        assert (borrow["module"], borrow["to_module"], borrow["path"]) == (
            "loader",
            "sink",
            ["loader.main", "sink.copy"],
        )
        (kept,) = [x for x in atlas.snapshot().handles if x.module == "sink" and x.map == 17]
        assert kept.rights_text == "r"

    def test_teardown(self, leaky: Broker) -> None:
        """Unloading b: teardown, then each of b's handles closed (flagged), then reclaims."""
        assert leaky.tracer is not None
        start = leaky.tracer.recent[-1].seq
        leaky.unload("b")
        tail = [without_seq(e.as_dict()) for e in leaky.tracer.recent if e.seq > start]
        assert tail[0] == {"event": "teardown", "module": "b"}
        assert sorted((e["event"], e.get("handle"), e.get("map")) for e in tail[1:]) == [
            ("close", h(0), 1),
            ("close", h(2), 7),
            ("reclaim", None, 1),
            ("reclaim", None, 7),
        ]
        assert all(e.get("teardown") for e in tail if e["event"] == "close")

    def test_teardown_after_trap(self) -> None:
        """A trap tears the callee down: the return is flagged, then teardown and closes."""
        with Broker(trace=True) as b:
            b.load("callee", GUESTS / "xmod_callee.wat", exports={"trap": {"params": ["own"]}})
            b.load("caller", GUESTS / "xmod_caller.wat")
            hc = b.call("caller.new")
            with pytest.raises(GuestTrap):
                b.call("caller.via_trap", hc)
        tracer = b.tracer
        assert tracer is not None
        move = one(b, "move")
        assert move["path"] == ["caller.via_trap", "callee.trap"]
        tail = [without_seq(e.as_dict()) for e in tracer.recent if e.seq > move["seq"]]
        assert tail == [
            {
                "event": "return",
                "module": "caller",
                "to_module": "callee",
                "trapped": True,
                **at("caller.via_trap", "callee.trap"),
            },
            {
                "event": "return",
                "module": "host",
                "to_module": "caller",
                "trapped": True,
                **at("caller.via_trap"),
            },
            {"event": "teardown", "module": "callee"},
            {
                "event": "close",
                "module": "callee",
                "handle": move["to_handle"],
                "map": 1,
                "teardown": True,
            },
            {"event": "reclaim", "map": 1},
        ]

    def test_host_events(self) -> None:
        """The host's own operations: module "host", no export, no path."""
        with Broker(trace=True) as b:
            parent, child = b.new_map(), b.new_map()
            cfg = b.open("config")
            parent.set_map(b"c", child)
            view = parent.get_map(b"c")
            parent[b"c"] = b"bytes now"  # replaces the reference: unset_map
            copy = cfg.clone("r")
            for ref in (child, view, cfg, copy, parent):
                ref.close()
        assert b.tracer is not None  # closing the broker took the last events
        seen = [without_seq(e.as_dict()) for e in b.tracer.recent]
        assert seen[:7] == [
            {"event": "new", "module": "host", "handle": h(0), "map": 1},
            {"event": "new", "module": "host", "handle": h(1), "map": 2},
            {"event": "open", "module": "host", "handle": h(2), "map": 3},
            {"event": "set_map", "module": "host", "handle": h(0), "map": 1, "other_map": 2},
            {"event": "get_map", "module": "host", "handle": h(3), "map": 2, "other_map": 1},
            {"event": "unset_map", "module": "host", "map": 1, "other_map": 2},
            {"event": "clone", "module": "host", "handle": h(4), "map": 3, "to_handle": h(2)},
        ]
        assert [e["event"] for e in seen[7:]] == [
            "close",  # child
            "close",  # view
            "reclaim",  # map 2: nothing references it any more
            "close",  # cfg
            "close",  # copy (map 3 is named: it stays)
            "close",  # parent
            "reclaim",
        ]

    def test_host_lends(self) -> None:
        """The host lends and shares MapRefs: the host is the lender, the path the export."""
        with Broker(trace=True) as b:
            b.load(
                "callee",
                GUESTS / "xmod_callee.wat",
                exports={
                    "end_borrow": {"params": ["borrow"]},
                    "poke": {"params": ["borrow"]},
                    "keep": {"params": ["share"]},
                },
            )
            b.load("caller", GUESTS / "xmod_caller.wat")
            m = b.new_map()
            assert b.call("callee.end_borrow", Borrow(m)) == 0
            assert b.call("callee.poke", Borrow(m)) == 0
            kept = b.call("callee.keep", Share(m, rights="r"))
            assert b.tracer is not None
            mine = [without_seq(e.as_dict()) for e in b.tracer.recent if e.map == m.map_id]
            m.close()
        lent = {"module": "host", "handle": h(0), "map": 1, "to_module": "callee"}
        assert mine == [
            {"event": "new", "module": "host", "handle": h(0), "map": 1},
            # end_borrow closes its borrowed handle during the call
            {"event": "borrow", **lent, "to_handle": h(0), **at("callee.end_borrow")},
            {
                "event": "close",
                "module": "callee",
                "handle": h(0),
                "map": 1,
                "borrowed": True,
                **at("callee.end_borrow"),
            },
            {"event": "borrow_end", **lent, "to_handle": h(0), **at("callee.end_borrow")},
            # poke leaves it open: the broker ends it
            {"event": "borrow", **lent, "to_handle": h(0, 2), **at("callee.poke")},
            {
                "event": "borrow_end",
                **lent,
                "to_handle": h(0, 2),
                "left_open": True,
                **at("callee.poke"),
            },
            {"event": "share", **lent, "to_handle": kept, **at("callee.keep")},
        ]
