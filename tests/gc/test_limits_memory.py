"""Linear memory and tables: bounded per module (docs/abi.md, "Limits and quotas").

Growth past the limit fails as Wasm says it fails (memory.grow returns -1);
a module that needs more than its limit to start does not load, with one
line naming it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from broker import Broker, Limits, ModuleError, testing

MIB = 1 << 20

GROWER = b"""
(module
  (memory (export "memory") 1)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "touch") (param $page i32) (result i32)
    (i32.store (i32.mul (local.get $page) (i32.const 65536)) (i32.const 1))
    (i32.const 0)))
"""


class TestGrowth:
    def test_grow_past_the_limit_returns_minus_one(self, broker: Broker) -> None:
        """1 MiB is 16 pages: growing to it works, one page more is -1."""
        broker.load("g", GROWER, limits={"linear_memory": MIB})
        assert broker.call("g.grow", 15) == 1  # the old size
        assert broker.call("g.grow", 1) == -1
        assert broker.call("g.grow", 65535) == -1
        assert broker.call("g.touch", 15) == 0  # what it has is usable

    def test_the_default_stops_a_guest_at_256_mib(self, broker: Broker) -> None:
        """A guest cannot take 4 GiB: the default limit is 256 MiB."""
        broker.load("g", GROWER)
        assert Limits().linear_memory == 256 * MIB
        assert broker.call("g.grow", 4095) == 1  # 4096 pages = 256 MiB
        assert broker.call("g.grow", 1) == -1
        assert broker.call("g.grow", 60000) == -1

    def test_limits_are_per_module(self, broker: Broker) -> None:
        """One module's limit is its own."""
        broker.load("small", GROWER, limits={"linear_memory": MIB})
        broker.load("large", GROWER, limits={"linear_memory": 4 * MIB})
        assert broker.call("small.grow", 16) == -1
        assert broker.call("large.grow", 16) == 1


class TestInstantiating:
    @pytest.mark.parametrize(
        ("wat", "words"),
        [
            (b"(module (memory 5000))", "linear memory needs more than its limit"),
            (b"(module (memory i64 1048576))", "linear memory needs more than its limit"),
            (b"(module (table 100000000 funcref))", "table needs more than its limit"),
            (b"(module (memory 1) (memory 1))", "more than 1 linear memory"),
            (b"(module " + b"(table 1 funcref) " * 5 + b")", "more than 4 tables"),
        ],
        ids=["memory", "memory64-64GiB", "table-1e8", "two-memories", "five-tables"],
    )
    def test_too_much_at_start_is_one_line(self, broker: Broker, wat: bytes, words: str) -> None:
        """A module that needs more than its limits is refused in one line naming it."""
        with pytest.raises(ModuleError) as info:
            broker.load("greedy", wat)
        message = str(info.value)
        assert "greedy" in message and words in message and "\n" not in message
        assert broker.modules() == []
        assert testing.core_counters(broker)["modules"] == 0

    def test_a_manifest_limit(self, tmp_path: Path) -> None:
        """`limits = { linear_memory = N }` in the manifest; too small a limit names the file."""
        (tmp_path / "g.wat").write_bytes(GROWER)
        (tmp_path / "app.toml").write_text(
            '[modules.g]\npath = "g.wat"\nlimits = { linear_memory = 65536 }\n'
        )
        with Broker.from_manifest(tmp_path / "app.toml") as b:
            assert b.call("g.grow", 1) == -1
        (tmp_path / "app.toml").write_text(
            '[modules.g]\npath = "g.wat"\nlimits = { linear_memory = 1000 }\n'
        )
        with pytest.raises(ModuleError, match=r"g\.wat: cannot instantiate: its linear memory"):
            Broker.from_manifest(tmp_path / "app.toml")

    def test_bad_values_are_config_errors(self, broker: Broker) -> None:
        """Negative or absurd limits are refused at load."""
        from broker import ConfigError

        with pytest.raises(ConfigError, match="linear_memory"):
            broker.load("g", GROWER, limits={"linear_memory": -1})
        with pytest.raises(ConfigError, match="table_elements"):
            broker.load("g", GROWER, limits={"table_elements": 1 << 40})
