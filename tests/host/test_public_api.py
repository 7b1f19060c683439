"""The public surface of `broker`: what it exports, strict_borrows, typed results, lookups."""

from __future__ import annotations

import inspect
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from paths import GUESTS, ROOT
from xmod import CALLEE, caller_map, decl, load_pair

import broker
from broker import (
    Broker,
    ConfigError,
    ExportDecl,
    GuestTrap,
    Stats,
    Store,
    StoreError,
    StoreFailure,
    errors,
)
from broker.stores import base

TWO = """
(module
  (memory (export "memory") 1)
  (global (export "g") i32 (i32.const 0))
  (func (export "add") (param i32 i64) (result i64) (local.get 1))
  (func (export "take") (param i32 i32) (result i32) (local.get 1)))
"""

STORE_TRAP = GUESTS / "store_trap.wat"


def closed_port() -> int:
    """A local TCP port nothing listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TestExports:
    def test_every_error_class_is_exported(self) -> None:
        """Every exception class broker.errors defines is importable from `broker`."""
        classes = {
            name
            for name, obj in vars(errors).items()
            if inspect.isclass(obj)
            and issubclass(obj, Exception)
            and obj.__module__ == errors.__name__
        }
        assert classes <= set(broker.__all__)
        assert all(getattr(broker, name) is getattr(errors, name) for name in classes)

    def test_store_is_exported(self) -> None:
        """`broker.Store` is the base class an app's own store implements."""
        assert Store is base.Store
        assert "Store" in broker.__all__

    def test_all_names_resolve(self) -> None:
        """Every name in __all__ is an attribute of the package."""
        assert all(hasattr(broker, name) for name in broker.__all__)


class TestStrictBorrows:
    def test_takes_effect_when_set(self, broker: Broker) -> None:
        """Setting strict_borrows after construction makes the next call strict, and off again."""
        load_pair(broker, {"keep": decl("borrow")})
        assert broker.strict_borrows is False
        h = caller_map(broker)
        assert broker.call("caller.via_keep", h) >= 0  # the broker ends the borrow itself
        broker.strict_borrows = True
        assert broker.strict_borrows is True
        with pytest.raises(GuestTrap, match="still open"):
            broker.call("caller.via_keep", h)
        broker.unload("callee")  # torn down by the trap: load it again, not strict
        broker.load("callee", CALLEE, exports={"keep": decl("borrow")})
        broker.strict_borrows = False
        assert broker.call("caller.via_keep", h) >= 0

    def test_not_a_bool_is_refused(self, broker: Broker) -> None:
        """strict_borrows takes True or False only, and stays as it was otherwise."""
        with pytest.raises(ConfigError, match="strict_borrows must be True or False, not 1"):
            broker.strict_borrows = 1  # type: ignore[assignment]
        assert broker.strict_borrows is False


class TestUnknownTargets:
    def test_unknown_module_and_export_are_one_class(self, broker: Broker) -> None:
        """An unknown module and an unknown export both raise ConfigError, naming what exists."""
        broker.load("m", TWO.encode())
        broker.load("n", TWO.encode())
        with pytest.raises(ConfigError) as module_info:
            broker.call("nope.add", 1, 2)
        with pytest.raises(ConfigError) as export_info:
            broker.call("m.nope")
        assert type(module_info.value) is type(export_info.value) is ConfigError
        assert str(module_info.value) == "no module named 'nope' is loaded (loaded: 'm', 'n')"
        assert str(export_info.value) == (
            "module 'm' has no exported function 'nope' (its functions: 'add', 'take')"
        )

    def test_a_global_is_not_a_function(self, broker: Broker) -> None:
        """An export that is not a function is unknown as a call target."""
        broker.load("m", TWO.encode())
        with pytest.raises(ConfigError, match="no exported function 'g'"):
            broker.call("m.g")

    def test_long_lists_are_cut(self, broker: Broker) -> None:
        """A module with many exports is listed up to 20 names, then counted."""
        funcs = " ".join(f'(func (export "f{i}"))' for i in range(25))
        broker.load("m", f"(module {funcs})".encode())
        with pytest.raises(ConfigError, match=r"'f19' and 5 more\)$"):
            broker.call("m.nope")

    def test_no_modules_loaded(self, broker: Broker) -> None:
        """With nothing loaded, the message says so."""
        with pytest.raises(ConfigError, match=r"\(loaded: none\)"):
            broker.call("m.f")


class TestSignature:
    def test_declared_and_plain(self, broker: Broker) -> None:
        """signature() gives declared kinds where declared, Wasm types elsewhere."""
        broker.load("m", TWO.encode(), exports={"take": {"params": ["borrow:r"]}})
        assert broker.signature("m.take") == ExportDecl(("borrow:r", "i32"), ("i32",))
        assert broker.signature("m.add") == ExportDecl(("i32", "i64"), ("i64",))

    def test_unknown_target(self, broker: Broker) -> None:
        """signature() of an unknown export is the same error as calling it."""
        broker.load("m", TWO.encode())
        with pytest.raises(ConfigError, match="no exported function 'x'"):
            broker.signature("m.x")
        with pytest.raises(ConfigError, match="expected MODULE.EXPORT"):
            broker.signature("m")


class TestLastStoreFailure:
    def test_store_failure_is_kept_for_the_host(self) -> None:
        """A guest that got IO from a store that is down traps; the store's reason is kept."""
        url = f"redis://127.0.0.1:{closed_port()}/0"
        with Broker(store=url) as b:
            b.load("m", STORE_TRAP, grants={"hits": "rw"})
            assert b.last_store_failure is None
            with pytest.raises(GuestTrap) as info:
                b.call("m.main")
            failure = b.last_store_failure
            assert isinstance(failure, StoreFailure) and info.value.store_failure is failure
            assert isinstance(failure.error, StoreError)
            assert failure.message.startswith(f"{url}: ") and "refused" in failure.message

    def test_memory_store_never_fails(self, broker: Broker) -> None:
        """On the memory store a call leaves no store failure."""
        broker.load("m", STORE_TRAP, grants={"hits": "rw"})
        assert broker.call("m.main") == 1
        assert broker.last_store_failure is None


TYPED_USE = """
from broker import Broker, LeakReport, MapRef, Stats

def use(b: Broker) -> int:
    stats: Stats = b.stats()
    report: LeakReport = b.leaks()
    total = stats["maps"] + stats["named"] + sum(stats["handles"].values())
    for leak in report["leaks"]:
        total += leak["map"] + len(leak["holders"]) + leak["holders"][0]["handle"]
    for borrow in report["unreleased_borrows"]:
        total += len(borrow["lender"]) + borrow["seq"]
    result = b.call("m.f")
    if isinstance(result, int):
        total += result
    elif isinstance(result, MapRef):
        total += len(result)
    elif result is not None:
        total += len(result)
    return total + report["reclaimed"]

def wrong(b: Broker) -> None:
    b.stats()["nope"]
    b.call("m.f") + 1
"""


class TestTypedResults:
    def test_stats_shape(self, broker: Broker) -> None:
        """stats() has exactly the keys its type names."""
        broker.load("m", TWO.encode())
        assert broker.stats() == {"maps": 0, "named": 0, "handles": {"m": 0}}
        assert set(broker.stats()) == set(Stats.__annotations__)

    def test_mypy_strict_reads_the_types(self, tmp_path: Path) -> None:
        """Under mypy --strict, stats()/leaks()/call() results are typed: right use
        checks clean, a wrong key and an unnarrowed call result are errors."""
        pytest.importorskip("mypy")
        path = tmp_path / "use.py"
        path.write_text(TYPED_USE)
        run = subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--no-incremental"]
            + ["--config-file", str(ROOT / "pyproject.toml"), str(path)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            # an editable install is an import hook mypy does not follow
            env={**os.environ, "MYPYPATH": str(ROOT)},
        )
        lines = [line for line in run.stdout.splitlines() if ": error:" in line]
        # Nothing in use(); both lines of wrong() (the second once per type in the union).
        assert {line.split(":")[1] for line in lines} == {"22", "23"}, run.stdout + run.stderr
        assert 'use.py:22: error: TypedDict "Stats" has no key "nope"' in lines[0]
        assert 'Unsupported operand types for + ("None" and "int")' in run.stdout
