"""Host functions: imports an app defines in Python (Broker.define), on real guests."""

from typing import Any

import pytest
from host_functions_guest import guest

from broker import Broker, ConfigError, GuestTrap, MapRef, ModuleError
from broker.errors import FaultError, StaleHandleError

STALE = 2  # Errno.STALE, as a guest sees it


def test_a_guest_logs_through_a_host_function(broker: Broker) -> None:
    """env.log(ptr, len): the host reads the bytes from the caller's memory."""
    seen: list[tuple[str, bytes]] = []

    @broker.host_function("env", "log", params=["i32", "i32"])
    def log(caller: Any, ptr: int, length: int) -> None:
        seen.append((caller.module, caller.memory.read(ptr, length)))

    broker.load(
        "g",
        guest(
            '(import "env" "log" (func $log (param i32 i32)))',
            '(func (export "say") (call $log (i32.const 16) (i32.const 5)))',
        ),
    )
    broker.call("g.say")
    assert seen == [("g", b"hello")]


def test_a_host_function_writes_into_guest_memory(broker: Broker) -> None:
    """caller.memory.write puts bytes where the guest reads them."""

    def fill(caller: Any, ptr: int) -> int:
        caller.memory.write(ptr, b"\x2a\x00\x00\x00")
        return 4

    broker.define("env", "fill", fill, params=["i32"], results=["i32"])
    broker.load(
        "g",
        guest(
            '(import "env" "fill" (func $fill (param i32) (result i32)))',
            '(func (export "go") (result i32) (drop (call $fill (i32.const 100)))'
            " (i32.load (i32.const 100)))",
        ),
    )
    assert broker.call("g.go") == 42


def test_i32_and_i64_params_and_results(broker: Broker) -> None:
    """Plain values pass as signed ints both ways."""
    broker.define(
        "env",
        "mix",
        lambda caller, a, b: (a * 2, b - 1),
        params=["i32", "i64"],
        results=["i32", "i64"],
    )
    broker.load(
        "g",
        guest(
            '(import "env" "mix" (func $mix (param i32 i64) (result i32 i64)))',
            '(func (export "go") (param i32 i64) (result i32 i64)'
            " (call $mix (local.get 0) (local.get 1)))",
        ),
    )
    assert broker.call("g.go", -3, 2**40) == (-6, 2**40 - 1)


class TestHandles:
    def load(self, broker: Broker, kind: str, fn: Any) -> None:
        broker.define("env", "take", fn, params=[kind])
        broker.load(
            "g",
            guest(
                '(import "env" "take" (func $take (param i32)))',
                '(func (export "give") (call $take (global.get $h)))',
            ),
        )
        broker.call("g.make")

    def test_borrow_is_valid_during_the_call_only(self, broker: Broker) -> None:
        """A borrowed handle reads the guest's map in the call; then the MapRef is stale."""
        kept: list[MapRef] = []

        def take(caller: Any, ref: MapRef) -> None:
            assert ref[b"k"] == b"v"
            kept.append(ref)

        self.load(broker, "borrow", take)
        broker.call("g.give")
        with pytest.raises(StaleHandleError, match="borrowed for one call of env.take"):
            kept[0][b"k"]
        assert broker.call("g.size") == 1  # the guest still has its handle
        assert broker.stats()["handles"].get("host", 0) == 0

    def test_own_moves_the_map_to_the_host(self, broker: Broker) -> None:
        """The host keeps an owned map; the guest's handle is stale."""
        kept: list[MapRef] = []
        self.load(broker, "own", lambda caller, ref: kept.append(ref))
        broker.call("g.give")
        assert kept[0][b"k"] == b"v"
        assert broker.call("g.size") == -STALE
        kept[0].close()
        assert broker.stats()["maps"] == 0

    def test_share_gives_the_host_its_own_reference(self, broker: Broker) -> None:
        """Both the guest and the host hold the map after a share."""
        kept: list[MapRef] = []
        self.load(broker, "share", lambda caller, ref: kept.append(ref))
        broker.call("g.give")
        kept[0][b"more"] = b"x"
        assert broker.call("g.size") == 2
        kept[0].close()
        assert broker.stats()["maps"] == 1  # the guest's handle keeps it

    def test_an_own_result_gives_the_guest_a_new_map(self, broker: Broker) -> None:
        """A MapRef returned as own moves to the guest, which can use it."""
        made: list[MapRef] = []

        def make_map(caller: Any) -> MapRef:
            ref = broker.new_map()
            ref[b"a"] = b"1"
            ref[b"b"] = b"2"
            made.append(ref)
            return ref

        broker.define("env", "make_map", make_map, results=["own"])
        broker.load(
            "g",
            guest(
                '(import "env" "make_map" (func $mk (result i32)))',
                '(func (export "get") (global.set $h (call $mk)))',
            ),
        )
        broker.call("g.get")
        assert broker.call("g.size") == 2
        with pytest.raises(StaleHandleError, match="moved to g"):
            made[0][b"a"]


def test_an_exception_traps_the_guest_with_it_as_the_cause(broker: Broker) -> None:
    """The guest traps; the GuestTrap's __cause__ is the host function's exception."""

    def boom(caller: Any) -> None:
        raise ValueError("no such thing")

    broker.define("env", "boom", boom)
    broker.load(
        "g",
        guest('(import "env" "boom" (func $boom))', '(func (export "go") (call $boom))'),
    )
    with pytest.raises(GuestTrap, match="env.boom: host function raised ValueError") as info:
        broker.call("g.go")
    assert isinstance(info.value.__cause__, ValueError)
    assert str(info.value.__cause__) == "no such thing"


def test_a_read_outside_memory_traps_cleanly(broker: Broker) -> None:
    """An out-of-range read is a FaultError, which traps the guest; the broker goes on."""
    broker.define("env", "log", lambda c, p, n: c.memory.read(p, n), params=["i32", "i32"])
    broker.load(
        "g",
        guest(
            '(import "env" "log" (func $log (param i32 i32)))',
            '(func (export "go") (call $log (i32.const 65530) (i32.const 10)))',
        ),
    )
    with pytest.raises(GuestTrap, match="outside the guest's memory") as info:
        broker.call("g.go")
    assert isinstance(info.value.__cause__, FaultError)
    broker.load("h", guest("", ""))  # still usable


def test_the_caller_is_valid_only_during_the_call(broker: Broker) -> None:
    """A Caller kept past its call refuses to touch memory."""
    kept: list[Any] = []
    broker.define("env", "keep", lambda caller: kept.append(caller))
    broker.load(
        "g", guest('(import "env" "keep" (func $keep))', '(func (export "go") (call $keep))')
    )
    broker.call("g.go")
    with pytest.raises(ConfigError, match="only during the host call"):
        kept[0].memory.read(0, 1)


@pytest.mark.parametrize(
    ("params", "results", "problem"),
    [
        (["i33"], [], "params: unknown kind 'i33'"),
        ([], ["borrow"], "results: a result may be 'own' or 'share'"),
        (["f32"], [], "f32 is not supported"),
    ],
)
def test_a_wrong_declaration_is_a_config_error(
    broker: Broker, params: list[str], results: list[str], problem: str
) -> None:
    with pytest.raises(ConfigError, match=f"host function env.f {problem}|{problem}"):
        broker.define("env", "f", lambda c: None, params=params, results=results)


def test_definitions_are_checked(broker: Broker) -> None:
    """Twice, in a reserved namespace, or not callable: ConfigError."""
    broker.define("env", "f", lambda c: None)
    with pytest.raises(ConfigError, match="already defined"):
        broker.define("env", "f", lambda c: None)
    with pytest.raises(ConfigError, match="the broker's own"):
        broker.define("wasi_map", "get", lambda c: None)
    with pytest.raises(ConfigError, match="must be callable"):
        broker.define("env", "g", 3)  # type: ignore[arg-type]


def test_an_undefined_host_function_is_a_module_error_at_load(broker: Broker) -> None:
    broker.define("env", "log", lambda c, p, n: None, params=["i32", "i32"])
    with pytest.raises(ModuleError, match=r"imports env.nope, but no host function .*: 'log'"):
        broker.load("g", guest('(import "env" "nope" (func $n))', '(func (export "go") (call $n))'))
    assert broker.modules() == []


def test_an_import_of_another_type_is_a_module_error(broker: Broker) -> None:
    broker.define("env", "log", lambda c, p, n: None, params=["i32", "i32"])
    with pytest.raises(ModuleError, match=r"as \(i32\) -> \(\), but it is defined as"):
        broker.load("g", guest('(import "env" "log" (func $n (param i32)))', ""))


def test_namespaces_and_module_names_do_not_mix(broker: Broker) -> None:
    """A module cannot be loaded under a host namespace, nor one defined under a module's name."""
    broker.define("env", "f", lambda c: None)
    with pytest.raises(ConfigError, match="host functions are defined under that name"):
        broker.load("env", guest("", ""))
    broker.load("g", guest("", ""))
    with pytest.raises(ConfigError, match="a module named 'g' is loaded"):
        broker.define("g", "f", lambda c: None)


def test_calling_the_broker_from_a_host_function_is_refused(broker: Broker) -> None:
    """Re-entering Broker.call from inside a guest call is a ConfigError (the guest traps)."""
    broker.define("env", "again", lambda c: broker.call("g.size"))
    broker.load("g", guest('(import "env" "again" (func $a))', '(func (export "go") (call $a))'))
    with pytest.raises(GuestTrap) as info:
        broker.call("g.go")
    assert isinstance(info.value.__cause__, ConfigError)
    assert "not from inside a host function" in str(info.value.__cause__)
