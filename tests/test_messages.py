"""Messages a user can act on: where a module fails to compile, why a guest trapped."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime

from broker import Broker, GuestTrap, ModuleError
from broker.errors import error_chain, trap_reason

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
