"""The leak report (broker/leaks.py, `wasi-map leaks`) on apps with known leaks.

The report's shape: docs/abi.md, "The ownership tracer, leaks and the graph".

tests/apps/leaky/app.toml leaves, by design: map 1 kept by the module it
was moved to, a borrow left open (map 2, then reclaimed), a garbage cycle
(maps 3, 4) only the collector reclaims, the named map 5 and map 6 that
only it references, and map 7 kept past a borrow by `clone`.
tests/apps/leaky/hostcache.py keeps host MapRefs in module-level objects.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from held_back_apps import EXPECTED, LEAKY, WORDFREQ, h
from paths import APPS, GUESTS

from broker import Borrow, Broker, leaks


@pytest.fixture
def hostcache() -> Iterator[ModuleType]:
    """tests/apps/leaky/hostcache.py as the module `leaky_hostcache`, emptied afterwards."""
    spec = importlib.util.spec_from_file_location(
        "leaky_hostcache", APPS / "leaky" / "hostcache.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # objgraph names only modules in sys.modules
    spec.loader.exec_module(module)
    try:
        yield module
    finally:
        module.forget()
        del sys.modules[spec.name]


def leak(report: dict[str, Any], map_id: int) -> dict[str, Any]:
    (found,) = [entry for entry in report["leaks"] if entry["map"] == map_id]
    return found


class TestReport:
    """Broker.leaks(): the object `wasi-map leaks --json` prints."""

    def test_whole_report(self, leaky: Broker) -> None:
        """The leaky app's report is exactly the known leaks, holders and histories."""
        assert leaky.leaks() == EXPECTED

    def test_spec_shape(self, leaky: Broker) -> None:
        """The report has the documented keys; each leak has map, holders and events."""
        report = leaky.leaks()
        assert {"leaks", "unreleased_borrows", "reclaimed", "cycles_reclaimed"} <= set(report)
        for entry in report["leaks"]:
            assert {"map", "holders", "events"} <= set(entry)
            assert all({"module", "handle"} <= set(holder) for holder in entry["holders"])
        json.dumps(report)  # JSON-ready as it is

    def test_only_anonymous_live_maps(self, leaky: Broker) -> None:
        """Reclaimed maps (2, 3, 4) and the named map (5) are not leaks."""
        assert [entry["map"] for entry in leaky.leaks()["leaks"]] == [1, 6, 7]
        assert leaky.stats()["named"] == 1

    def test_kept_after_own(self, leaky: Broker) -> None:
        """A map moved to b and never closed: b holds it; created in a.main, moved in b.take."""
        entry = leak(leaky.leaks(), 1)
        assert entry["holders"] == [{"module": "b", "handle": h(0)}]
        assert [e["event"] for e in entry["events"]] == ["new", "move"]
        move = entry["events"][1]
        assert (move["module"], move["to_module"], move["path"]) == (
            "a",
            "b",
            ["a.main", "b.take"],
        )

    def test_referenced_only_by_a_named_map(self, leaky: Broker) -> None:
        """Map 6 has no holder; the report says which map and key keep it."""
        entry = leak(leaky.leaks(), 6)
        assert entry["holders"] == []
        assert entry["referenced_by"] == [{"map": 5, "key": "child"}]
        assert [e["event"] for e in entry["events"]] == ["new", "set_map", "close"]

    def test_kept_by_clone_of_a_borrow(self, leaky: Broker) -> None:
        """b keeps map 7 past the borrow with a clone: the history shows it in order."""
        entry = leak(leaky.leaks(), 7)
        assert entry["holders"] == [{"module": "b", "handle": h(2)}]
        assert [e["event"] for e in entry["events"]] == [
            "new",
            "borrow",
            "clone",
            "close",
            "borrow_end",
            "close",
        ]
        assert [e["path"] for e in entry["events"]] == [
            ["a.main"],
            ["a.main", "b.stash"],
            ["a.main", "b.stash"],
            ["a.main", "b.stash"],
            ["a.main", "b.stash"],
            ["a.main"],
        ]

    def test_unreleased_borrow(self, leaky: Broker) -> None:
        """The borrow b.peek left open is reported once, with lender, borrower and path."""
        assert leaky.leaks()["unreleased_borrows"] == EXPECTED["unreleased_borrows"]

    def test_counts(self, leaky: Broker) -> None:
        """One map reclaimed by counting (map 2), two by the cycle collector (3, 4)."""
        report = leaky.leaks()
        assert (report["reclaimed"], report["cycles_reclaimed"]) == (1, 2)

    def test_cycle_before_collection(self) -> None:
        """Before a collection the garbage cycle is alive: maps 3 and 4 reference each other."""
        with Broker.from_manifest(LEAKY, trace=True) as b:
            b.call("a.main")
            report = b.leaks()
        assert [entry["map"] for entry in report["leaks"]] == [1, 3, 4, 6, 7]
        assert leak(report, 3)["holders"] == leak(report, 4)["holders"] == []
        assert leak(report, 3)["referenced_by"] == [{"map": 4, "key": "next"}]
        assert leak(report, 4)["referenced_by"] == [{"map": 3, "key": "next"}]
        assert [e["event"] for e in leak(report, 3)["events"]] == [
            "new",
            "set_map",
            "set_map",
            "close",
        ]
        assert (report["reclaimed"], report["cycles_reclaimed"]) == (1, 0)

    def test_unload_ends_the_leaks(self, leaky: Broker) -> None:
        """Unloading b closes its handles: maps 1 and 7 go; map 6 stays (the name keeps it)."""
        leaky.unload("b")
        report = leaky.leaks()
        assert [entry["map"] for entry in report["leaks"]] == [6]
        assert (report["reclaimed"], report["cycles_reclaimed"]) == (3, 2)

    def test_clean_run(self) -> None:
        """A run that leaves only named maps reports nothing."""
        with Broker.from_manifest(WORDFREQ, trace=True) as b:
            b.call("wordfreq.main")
            b.collect()
            report = b.leaks()
        assert report["leaks"] == [] and report["unreleased_borrows"] == []

    def test_without_tracer(self) -> None:
        """With the tracer off the leaks and holders are still found, with no history."""
        with Broker.from_manifest(LEAKY) as b:
            b.call("a.main")
            b.collect()
            report = b.leaks()
        assert [entry["map"] for entry in report["leaks"]] == [1, 6, 7]
        assert [entry["holders"] for entry in report["leaks"]] == [
            entry["holders"] for entry in EXPECTED["leaks"]
        ]
        assert all(entry["events"] == [] for entry in report["leaks"])

    def test_host_lends(self) -> None:
        """A borrow of a host MapRef left open is reported with the host as lender."""
        with Broker(trace=True) as b:
            b.load("callee", GUESTS / "xmod_callee.wat", exports={"keep": {"params": ["borrow"]}})
            b.load("caller", GUESTS / "xmod_caller.wat")
            m = b.new_map()
            b.call("callee.keep", Borrow(m))  # the borrow ends with the call
            entry = leak(b.leaks(), m.map_id)
            assert entry["holders"] == [
                {"module": "host", "handle": m.handle, "python": entry["holders"][0]["python"]}
            ]
            (borrow,) = b.leaks()["unreleased_borrows"]
            assert (borrow["lender"], borrow["borrower"], borrow["path"]) == (
                "host",
                "callee",
                ["callee.keep"],
            )
            m.close()


class TestHostHolders:
    """A map held by the host names the Python objects that keep its MapRef alive."""

    def test_module_level_dict(self, hostcache: ModuleType) -> None:
        """A MapRef in a module-level dict is named by module, dict and key."""
        with Broker(trace=True) as b:
            ref = b.new_map()
            ref[b"k"] = b"v"
            hostcache.remember("users", ref)
            handle, map_id = ref.handle, ref.map_id
            del ref
            entry = leak(b.leaks(), map_id)
            hostcache.forget()
        (holder,) = entry["holders"]
        assert (holder["module"], holder["handle"]) == ("host", handle)
        (owner,) = holder["python"]
        assert re.fullmatch(r"""leaky_hostcache\.CACHE(\.users|\[["']users["']\])""", owner), owner
        assert [e["event"] for e in entry["events"]] == ["new"]
        assert entry["events"][0]["module"] == "host"

    def test_key_that_is_not_a_name(self, hostcache: ModuleType) -> None:
        """A key that is not an identifier is shown as a subscript."""
        with Broker() as b:
            hostcache.remember("odd key", b.new_map())
            (entry,) = b.leaks()["leaks"]
            hostcache.forget()
        owner = entry["holders"][0]["python"][0]
        assert re.fullmatch(r"""leaky_hostcache\.CACHE\[["']odd key["']\]""", owner), owner

    def test_object_attribute(self, hostcache: ModuleType) -> None:
        """A MapRef kept as an object's attribute is named by the attribute's path."""
        with Broker() as b:
            hostcache.SESSION.ref = b.new_map()
            (entry,) = b.leaks()["leaks"]
            hostcache.forget()
        assert entry["holders"][0]["python"] == ["leaky_hostcache.SESSION.ref"]

    def test_text_names_the_owner(self, hostcache: ModuleType) -> None:
        """The human report says what keeps the host's MapRef alive."""
        with Broker() as b:
            hostcache.remember("users", b.new_map())
            text = leaks.format_text(b.leaks())
            hostcache.forget()
        assert "  held by host handle 2097152, kept alive by leaky_hostcache.CACHE" in text

    def test_another_brokers_mapref_is_not_an_owner(self, hostcache: ModuleType) -> None:
        """Handle numbers repeat across brokers: only this broker's MapRefs are looked at."""
        with Broker() as other, Broker() as b:
            hostcache.remember("other", other.new_map())
            mine = b.new_map()
            assert mine.handle == hostcache.CACHE["other"].handle
            hostcache.SESSION.ref = mine
            del mine
            (entry,) = b.leaks()["leaks"]
            hostcache.forget()
        assert entry["holders"][0]["python"] == ["leaky_hostcache.SESSION.ref"]

    def test_mixed_with_guest_leaks(self, leaky: Broker, hostcache: ModuleType) -> None:
        """Host leaks come after the guests' (by map id); guest holders have no "python"."""
        hostcache.remember("users", leaky.new_map())
        report = leaky.leaks()
        hostcache.forget()
        assert [entry["map"] for entry in report["leaks"]] == [1, 6, 7, 8]
        assert leak(report, 8)["holders"][0]["module"] == "host"
        assert "python" not in leak(report, 1)["holders"][0]


# A host MapRef outlives its Broker, which is never closed: kept in another
# module's dict until the interpreter exits, or reachable only from a
# reference cycle when gc runs.
AT_EXIT = """
import cache
from broker import Broker
b = Broker()
cache.remember("users", b.new_map())
"""
IN_GC = """
import gc
from broker import Broker
for _ in range(200):
    b = Broker()
    holder = {"ref": b.new_map()}
    holder["self"] = holder
    del b, holder
    gc.collect()
"""


class TestLeakedRefsAreSafe:
    """A leaked MapRef is reported, never a crash: its finalizer runs after the broker's."""

    @pytest.mark.parametrize("script", [AT_EXIT, IN_GC], ids=["at_exit", "in_gc"])
    def test_process_survives(self, script: str, tmp_path: Path) -> None:
        """The process exits normally, whatever order gc finalizes broker and MapRef in."""
        (tmp_path / "cache.py").write_text(
            "CACHE = {}\n\ndef remember(name, ref):\n    CACHE[name] = ref\n"
        )
        (tmp_path / "main.py").write_text(script)
        try:
            done = subprocess.run(
                [sys.executable, "main.py"], cwd=tmp_path, capture_output=True, timeout=60
            )
        except subprocess.TimeoutExpired:
            pytest.fail("the process hung")
        assert done.returncode == 0, done.stderr.decode()[-2000:]
