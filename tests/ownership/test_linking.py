"""Linking modules by name (docs/abi.md "Calls between modules")."""

from __future__ import annotations

from pathlib import Path

import pytest
from xmod import CALLEE, CALLER, PING, PONG, SELFREF, decl, load_pair, neg

from broker import Broker, ConfigError, Errno, GuestTrap, ModuleError

# An exporter whose `keep` takes an i64 where xmod_caller.wat imports (i32) -> i32.
WRONG_KEEP = b"""
(module
  (func (export "keep") (param i64) (result i32) (i32.const 0)))
"""

# One export of each shape the declaration checks care about.
SHAPES = b"""
(module
  (func (export "wide") (param i64) (result i32) (i32.const 0))
  (func (export "one") (param i32) (result i32) (local.get 0))
  (global (export "not_a_function") i32 (i32.const 0)))
"""


def many_params(n: int) -> bytes:
    """A module exporting `f` with n i32 parameters."""
    params = " ".join(["i32"] * n)
    return f'(module (func (export "f") (param {params})))'.encode()


def write_app(tmp_path: Path, modules: dict[str, Path]) -> Path:
    """An app manifest loading `modules` (name -> guest file), in that order."""
    lines = []
    for name, path in modules.items():
        lines += [f"[modules.{name}]", f'path = "{path}"', ""]
    app = tmp_path / "app.toml"
    app.write_text("\n".join(lines))
    return app


class TestPeerImports:
    def test_import_of_a_peer_export(self, broker: Broker) -> None:
        """A call through an import of another module's export reaches that export."""
        load_pair(broker)
        assert broker.call("caller.via_give_back", 41) == 41

    def test_importer_loaded_before_exporter(self, broker: Broker) -> None:
        """An import is resolved when its module arrives after the importer."""
        broker.load("caller", CALLER)
        broker.load("callee", CALLEE)
        assert broker.call("caller.via_give_back", 7) == 7

    @pytest.mark.parametrize("order", [("ping", "pong"), ("pong", "ping")])
    def test_mutual_imports_both_orders(self, broker: Broker, order: tuple[str, str]) -> None:
        """A imports B and B imports A: calls alternate between them, in either load order."""
        files = {"ping": PING, "pong": PONG}
        for name in order:
            broker.load(name, files[name])
        assert broker.call("ping.ping", 4) == 2121
        assert broker.call("pong.pong", 5) == 21212

    def test_module_importing_its_own_export(self, broker: Broker) -> None:
        """A module's import of its own export recurses through the link."""
        broker.load("selfref", SELFREF)
        assert broker.call("selfref.fact", 5) == 120
        assert broker.call("selfref.fact", 10) == 3628800


class TestSignatureMismatch:
    def test_exporter_loaded_second(self, broker: Broker) -> None:
        """An export whose type differs from the import is refused, naming both modules."""
        broker.load("caller", CALLER)
        with pytest.raises(ModuleError) as info:
            broker.load("callee", WRONG_KEEP)
        message = str(info.value)
        assert "caller -> callee.keep" in message
        assert "imported as (i32) -> (i32), but exported as (i64) -> (i32)" in message
        assert broker.modules() == ["caller"]

    def test_importer_loaded_second(self, broker: Broker) -> None:
        """An import whose type differs from the loaded export is refused, naming both."""
        broker.load("callee", WRONG_KEEP)
        with pytest.raises(ModuleError) as info:
            broker.load("caller", CALLER)
        message = str(info.value)
        assert "caller -> callee.keep" in message
        assert "imported as (i32) -> (i32), but exported as (i64) -> (i32)" in message
        assert broker.modules() == ["callee"]

    def test_reload_with_another_signature(self, broker: Broker) -> None:
        """Re-linking on reload checks the types again."""
        load_pair(broker)
        broker.unload("callee")
        with pytest.raises(ModuleError, match=r"imported as \(i32\) -> \(i32\), but exported as"):
            broker.load("callee", WRONG_KEEP)

    def test_only_functions_can_be_imported_from_peers(self, broker: Broker) -> None:
        """Importing a peer's global is a ModuleError."""
        broker.load("p", b'(module (global (export "g") i32 (i32.const 1)))')
        with pytest.raises(ModuleError, match="imports p.g, which is not a function"):
            broker.load("q", b'(module (import "p" "g" (global i32)))')

    def test_missing_export(self, broker: Broker) -> None:
        """An import of a name the peer does not export is refused at load."""
        broker.load("caller", CALLER)
        with pytest.raises(ModuleError, match="caller -> callee.keep: module 'callee' has no"):
            broker.load("callee", b"(module)")


class TestMissingPeers:
    def test_from_manifest_refuses_an_import_of_a_missing_module(self, tmp_path: Path) -> None:
        """An app whose module imports a module the app does not have is a ModuleError."""
        app = write_app(tmp_path, {"caller": CALLER})
        with pytest.raises(ModuleError, match="imports callee.keep, but the app has no module"):
            Broker.from_manifest(app)

    def test_from_manifest_links_in_any_file_order(self, tmp_path: Path) -> None:
        """A manifest listing the importer first still links it to the exporter."""
        app = write_app(tmp_path, {"caller": CALLER, "callee": CALLEE})
        with Broker.from_manifest(app) as b:
            assert b.call("caller.via_give_back", 3) == 3

    def test_pending_import_traps_the_caller(self, broker: Broker) -> None:
        """With Broker.load, a call through an import whose module is not loaded traps."""
        broker.load("caller", CALLER)
        with pytest.raises(GuestTrap) as info:
            broker.call("caller.via_give_back", 1)
        assert "caller -> callee.give_back: the module is not loaded" in info.value.reason
        assert (info.value.module, info.value.export, info.value.origin) == (
            "caller",
            "via_give_back",
            "caller",
        )

    def test_pending_import_leaves_other_exports_usable(self, broker: Broker) -> None:
        """A module with a waiting import can run its other exports."""
        broker.load("caller", CALLER)
        h = broker.call("caller.new")
        assert broker.call("caller.write", h, 1, 2) == 0
        assert broker.call("caller.read", h, 1) == 2


class TestUnloadAndReload:
    def test_unloaded_target_traps_calls_through_the_link(self, broker: Broker) -> None:
        """After the exporter is unloaded, a call through its link traps: not loaded."""
        load_pair(broker)
        broker.unload("callee")
        with pytest.raises(GuestTrap, match="caller -> callee.give_back: the module is not loaded"):
            broker.call("caller.via_give_back", 1)

    def test_reloading_the_target_relinks(self, broker: Broker) -> None:
        """Loading a module under the unloaded name resolves the waiting links again."""
        load_pair(broker)
        broker.unload("callee")
        broker.load("callee", CALLEE)
        assert broker.call("caller.via_give_back", 9) == 9

    def test_torn_down_target_traps_calls_through_the_link(self, broker: Broker) -> None:
        """A guest calling into a torn-down module traps; the caller is the origin."""
        load_pair(broker, on_trap="stop")
        with pytest.raises(GuestTrap):
            broker.call("callee.trap", 0)
        with pytest.raises(GuestTrap) as info:
            broker.call("caller.via_give_back", 1)
        assert "caller -> callee.give_back: the module is torn down" in info.value.reason
        assert info.value.origin == "caller"

    def test_unloading_the_importer_keeps_the_exporter(self, broker: Broker) -> None:
        """Unloading the importer leaves the exporter and its own calls working."""
        load_pair(broker)
        broker.unload("caller")
        assert broker.call("callee.give_back", 5) == 5
        broker.load("caller", CALLER)
        assert broker.call("caller.via_give_back", 6) == 6


class TestPlainParameters:
    def test_undeclared_handle_is_badf_in_the_callee(self, broker: Broker) -> None:
        """A handle number passed as a plain i32 is BADF in a callee never issued it."""
        load_pair(broker)
        h = broker.call("caller.new")
        assert broker.call("caller.write", h, 1, 2) == 0
        assert broker.call("caller.via_give_back", h) == h  # passed unchanged
        assert broker.call("callee.count", h) == neg(Errno.BADF)
        assert broker.call("caller.read", h, 1) == 2  # still the caller's
        assert broker.stats()["handles"] == {"callee": 0, "caller": 1}

    def test_undeclared_handle_is_stale_in_the_callee(self, broker: Broker) -> None:
        """The same number is STALE in a callee that had, and closed, that handle."""
        load_pair(broker)
        own = broker.call("callee.new")
        assert broker.call("callee.close", own) == 0
        h = broker.call("caller.new")
        assert h == own  # both modules issue the same first number
        assert broker.call("caller.via_give_back", h) == h
        assert broker.call("callee.count", h) == neg(Errno.STALE)

    def test_undeclared_handle_never_reaches_another_modules_map(self, broker: Broker) -> None:
        """A number both modules hold reaches the callee's own map, never the caller's."""
        load_pair(broker)
        mine = broker.call("callee.new")
        assert broker.call("callee.write", mine, 1, 11) == 0
        h = broker.call("caller.new")
        assert broker.call("caller.write", h, 1, 22) == 0
        assert h == mine
        assert broker.call("caller.via_give_back", h) == h
        assert broker.call("callee.read", h, 1) == 11
        assert broker.native_module("callee").map_id(h) != broker.native_module("caller").map_id(h)


class TestDeclarations:
    def test_handle_kind_on_an_i64(self, broker: Broker) -> None:
        """A handle kind declared on an i64 parameter is a ModuleError."""
        with pytest.raises(ModuleError, match=r"'wide': params\[0\] is declared own, but a handle"):
            broker.load("m", SHAPES, exports={"wide": decl("own")})
        assert broker.modules() == []

    def test_handle_kind_on_an_i64_result(self, broker: Broker) -> None:
        """A handle kind declared on a non-i32 result is a ModuleError."""
        with pytest.raises(ModuleError, match="a handle is an i32, not i64"):
            broker.load(
                "m",
                b'(module (func (export "g") (result i64) (i64.const 0)))',
                exports={"g": decl(results=("share",))},
            )

    def test_declared_export_missing(self, broker: Broker) -> None:
        """Declaring an export the module does not have is a ModuleError."""
        with pytest.raises(ModuleError, match="'absent': declared in exports, but not an exported"):
            broker.load("m", SHAPES, exports={"absent": decl("own")})

    def test_declared_export_not_a_function(self, broker: Broker) -> None:
        """Declaring an exported global is a ModuleError."""
        with pytest.raises(ModuleError, match="not an exported function"):
            broker.load("m", SHAPES, exports={"not_a_function": decl()})

    def test_too_many_declared_params(self, broker: Broker) -> None:
        """Declaring more parameters than the function has is a ModuleError."""
        with pytest.raises(ModuleError, match="declares 2 params, the function has 1"):
            broker.load("m", SHAPES, exports={"one": decl("own", "i32")})

    def test_too_many_declared_results(self, broker: Broker) -> None:
        """Declaring more results than the function has is a ModuleError."""
        with pytest.raises(ModuleError, match="declares 2 results, the function has 1"):
            broker.load("m", SHAPES, exports={"one": decl("own", results=("own", "i32"))})

    def test_plain_entry_must_name_the_actual_type(self, broker: Broker) -> None:
        """A plain entry naming the wrong type is a ModuleError."""
        with pytest.raises(ModuleError, match=r"params\[0\] is declared i64, but is i32"):
            broker.load("m", SHAPES, exports={"one": decl("i64")})

    def test_shorter_list_leaves_the_rest_plain(self, broker: Broker) -> None:
        """A declaration shorter than the function leaves the remaining slots plain."""
        broker.load("m", SHAPES, exports={"one": {"params": []}})
        assert broker.call("m.one", 5) == 5

    def test_at_most_64_handle_kinds(self, broker: Broker) -> None:
        """An export may declare 64 handle kinds, not 65."""
        broker.load("ok", many_params(64), exports={"f": decl(*["share"] * 64, results=())})
        with pytest.raises(ModuleError, match="at most 64 handle parameters"):
            broker.load("bad", many_params(65), exports={"f": decl(*["share"] * 65, results=())})

    def test_borrow_result_is_refused(self, broker: Broker) -> None:
        """A result may be own or share, never borrow."""
        with pytest.raises(ConfigError, match="never 'borrow'"):
            broker.load("m", SHAPES, exports={"one": decl("i32", results=("borrow",))})

    def test_unknown_kind_is_refused(self, broker: Broker) -> None:
        """A kind that is neither a plain type nor own/borrow/share(:r) is refused."""
        with pytest.raises(ConfigError, match="unknown kind 'lend'"):
            broker.load("m", SHAPES, exports={"one": decl("lend")})
