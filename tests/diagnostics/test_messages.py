"""Messages a user can act on: where a module fails to compile, why a guest trapped,
why a handle could not pass."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import wasmtime
from xmod import caller_map, decl, load_pair

from broker import Borrow, Broker, GuestTrap, ModuleError, Own
from broker.errors import BusyError, StaleHandleError, error_chain, trap_reason

TRAPS = b"""
(module
  (memory (export "memory") 1)
  (func (export "oob") (result i32) (i32.load (i32.const 70000)))
  (func (export "boom") unreachable))
"""

BAD_WAT = """(module
  (func $f
    (i32.add (i32.const 1) (bogus))))
"""


class TestCompileErrors:
    def test_wat_syntax_error_keeps_its_place(self, tmp_path: Path) -> None:
        """A WAT syntax error names the file, line and column, and shows the line, in one line."""
        path = tmp_path / "bad.wat"
        path.write_text(BAD_WAT)
        with Broker() as broker, pytest.raises(ModuleError) as info:
            broker.load("m", path)
        assert str(info.value) == (
            f"{path}: not a valid Wasm module: unknown operator or unexpected token "
            f"at {path}:3:29: (i32.add (i32.const 1) (bogus))))"
        )

    def test_wat_bytes_say_line_and_column(self) -> None:
        """WAT given as bytes has no file: the place is a line and a column."""
        with Broker() as broker, pytest.raises(ModuleError) as info:
            broker.load("m", b"(module")
        assert str(info.value) == (
            "module 'm': not a valid Wasm module: expected `)` at line 1, column 8: (module"
        )

    def test_long_line_is_cut_around_the_place(self, tmp_path: Path) -> None:
        """On a long line (wasmtime then puts the place after the error) the message
        shows the part around the column, and stays one line."""
        path = tmp_path / "long.wat"
        path.write_text('(module\n  (data "' + "x" * 500 + '" (bogus)))\n')
        with Broker() as broker, pytest.raises(ModuleError) as info:
            broker.load("m", path)
        message = str(info.value)
        assert "\n" not in message and "<anon>" not in message
        assert (
            f"expected one of: `i8`, `i16`, `i32`, `i64`, `f32`, `f64`, `v128` at {path}:2:"
            in message
        )
        assert message.endswith('x" (bogus)))') and ": ...xxx" in message
        assert len(message) < 400 + len(str(path))

    def test_binary_error_says_why(self) -> None:
        """A broken binary says what is wrong and where, not only "failed to parse"."""
        wasm = wasmtime.wat2wasm("(module (func (result i32) i32.const 1))")
        with Broker() as broker, pytest.raises(ModuleError) as info:
            broker.load("m", wasm[:-3])
        assert str(info.value) == (
            "module 'm': not a valid Wasm module: failed to parse WebAssembly module: "
            "unexpected end-of-file (at offset 0x17)"
        )

    def test_invalid_code_says_why_in_one_line(self) -> None:
        """Code that does not validate gives the validator's reason, on one line."""
        with Broker() as broker, pytest.raises(ModuleError) as info:
            broker.load("m", b"(module (func (result i32)))")
        message = str(info.value)
        assert "\n" not in message and "1: " not in message
        assert message.endswith("type mismatch: expected i32 but nothing on stack")


class TestTrapMessages:
    def test_no_chain_numbers_in_the_reason(self) -> None:
        """A trap whose cause chain is numbered reads without wasmtime's "1: "."""
        with Broker() as broker:
            broker.load("m", TRAPS)
            with pytest.raises(GuestTrap) as info:
                broker.call("m.oob")
        assert str(info.value) == "m.oob: guest trapped: out of bounds memory access"
        assert info.value.reason == "out of bounds memory access"

    def test_details_keep_everything(self) -> None:
        """`details` keeps the address, the memory's size and the backtrace."""
        with Broker() as broker:
            broker.load("m", TRAPS)
            with pytest.raises(GuestTrap) as info:
                broker.call("m.oob")
        details = info.value.details
        assert "memory fault at wasm address 0x11170 in linear memory of size 0x10000" in details
        assert "wasm backtrace" in details

    @pytest.mark.parametrize(
        "message,chain",
        [
            (
                "error\n\nCaused by:\n    0: outer\n    1: 12: inner\n",
                ["error", "outer", "12: inner"],
            ),
            (
                "error while executing\n  0: 0x43 - f\n\nCaused by:\n    why\n",
                ["error while executing", "why"],
            ),
            ("only this", ["only this"]),
            ("", []),
        ],
    )
    def test_error_chain(self, message: str, chain: list[str]) -> None:
        """Only the numbers wasmtime puts before each cause are dropped."""
        assert error_chain(message) == chain

    def test_trap_reason_of_nothing(self) -> None:
        """An empty message still gives a reason."""
        assert trap_reason("") == "trap"


class TestHandleReasons:
    """A handle that cannot pass says why and what to do, not only the errno's name."""

    def test_borrowed_passed_as_own(self, broker: Broker) -> None:
        """The lead example: a borrowed handle passed on as own."""
        load_pair(broker, {"take": decl("own")}, {"via_take": decl("borrow")})
        with broker.new_map() as m, pytest.raises(GuestTrap) as info:
            broker.call("caller.via_take", Borrow(m))
        assert re.fullmatch(
            r"wasi_map: caller -> callee\.take: parameter 0 \(own\): ACCES: handle \d+ is "
            r"borrowed \(lent to the caller for the call it is in\), and a borrowed handle "
            r"cannot be passed as own: pass it as borrow or share, or pass an owned handle "
            r"\(clone makes one\)",
            info.value.reason,
        )

    def test_lent_passed_as_own(self, broker: Broker) -> None:
        """A handle lent to a call in progress: BUSY, and why."""
        load_pair(broker, {"take": decl("own"), "call_back": decl("borrow")})
        h = caller_map(broker)
        with pytest.raises(GuestTrap) as info:
            broker.call("caller.via_call_back", h, 1)
        assert "BUSY: handle" in info.value.reason
        assert "is lent to a call that has not returned (passed as borrow)" in info.value.reason

    def test_twice_as_own(self, broker: Broker) -> None:
        """The same handle twice, once as own: BUSY, and why."""
        load_pair(broker, {"pair": decl("own", "own")})
        h = caller_map(broker)
        with pytest.raises(GuestTrap) as info:
            broker.call("caller.via_pair", h, h)
        assert info.value.reason.endswith(
            f"parameter 1 (own): BUSY: handle {h} is passed twice, once as own: a handle "
            "that moves can go only once; pass a clone for the other"
        )

    def test_stale(self, broker: Broker) -> None:
        """STALE names the number and says what to pass instead."""
        load_pair(broker, {"take": decl("own")})
        bad = broker.call("caller.new")
        assert broker.call("caller.close", bad) == 0
        with pytest.raises(GuestTrap) as info:
            broker.call("caller.via_take", bad)
        assert info.value.reason.endswith(
            f"STALE: handle {bad} was closed, or moved away as own, before it was passed: "
            "pass a live handle"
        )

    def test_never_issued(self, broker: Broker) -> None:
        """BADF says the number was never the caller's, and where handles come from."""
        load_pair(broker, {"take": decl("own")})
        with pytest.raises(GuestTrap) as info:
            broker.call("caller.via_take", 0x7FFF)
        assert info.value.reason.endswith(
            "BADF: 32767 is not a handle the caller was issued: pass a handle it got from "
            "open, new, clone, get_map or a call"
        )

    def test_callee_full(self, broker: Broker) -> None:
        """QUOTA says whose table is full and what can be done."""
        load_pair(broker, {"take": decl("own")}, limits={"handles": 1})
        broker.call("callee.new")
        with pytest.raises(GuestTrap) as info:
            broker.call("caller.via_take", caller_map(broker))
        assert "QUOTA: the callee has no room for another handle (its `handles` limit" in (
            info.value.reason
        )

    def test_borrowed_returned_as_own(self, broker: Broker) -> None:
        """A result: the callee's handle it was lent cannot come back as own."""
        load_pair(broker, {"give_back": decl("borrow", results=("own",))})
        with pytest.raises(GuestTrap) as info:
            broker.call("caller.via_give_back", broker.call("caller.new"))
        assert "result 0 (own): ACCES: handle" in info.value.reason
        assert info.value.reason.endswith(
            "cannot be returned as own: declare the result share, or return an owned "
            "handle (clone makes one)"
        )

    def test_strict_borrow_left_open(self, broker: Broker) -> None:
        """Strict borrows: the trap says how to end or keep the borrow."""
        broker.strict_borrows = True
        broker._native.set_strict_borrows(True)
        load_pair(broker, {"keep": decl("borrow")})
        with pytest.raises(GuestTrap) as info:
            broker.call("caller.via_keep", caller_map(broker))
        assert info.value.reason.endswith(
            "(strict borrows): close each borrowed handle before returning; to keep the "
            "map, clone the handle or pass it on as share"
        )

    def test_host_own_twice(self, broker: Broker) -> None:
        """The host passing one MapRef twice as own gets the same words."""
        load_pair(broker, {"pair": decl("own", "own")})
        with broker.new_map() as m, pytest.raises(BusyError) as info:
            h = m.handle
            broker.call("callee.pair", Own(m), Own(m))
        assert str(info.value) == (
            f"BUSY: callee.pair: parameter 1 (own): handle {h} is passed twice, once "
            "as own: a handle that moves can go only once; pass a clone for the other"
        )

    def test_moved_mapref_says_where(self, broker: Broker) -> None:
        """A MapRef given away with Own(...) says it was moved, and to where."""
        load_pair(broker, {"take": decl("own")})
        m = broker.new_map()
        broker.call("callee.take", Own(m))
        with pytest.raises(StaleHandleError) as info:
            m[b"k"]
        assert str(info.value) == (
            "STALE: the MapRef was moved to callee.take (parameter 0) with Own(...): the "
            "callee owns the map now; to keep using it, pass Borrow(ref) or Share(ref), "
            "or Own(ref.clone())"
        )
        assert repr(m) == "<MapRef moved to callee.take (parameter 0) map=0>"
        m.close()  # still a no-op
        other = broker.new_map()
        other.close()
        with pytest.raises(StaleHandleError, match="^STALE: the MapRef is closed$"):
            other[b"k"]
