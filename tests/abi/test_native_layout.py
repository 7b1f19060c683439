"""The import-time check of wasmtime's C layouts refuses a mismatch with a clear message."""

import ctypes

import pytest

from broker._native import wasmtime_layouts as layouts
from broker.errors import WasmtimeMismatchError


class TestLayoutCheck:
    def test_installed_wasmtime_matches(self) -> None:
        """The pinned wasmtime passes the check."""
        layouts.check_layouts()

    def test_a_changed_struct_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A wasmtime whose memory struct changed size is refused, naming both versions."""

        class Bigger(ctypes.Structure):
            _fields_ = [("x", ctypes.c_uint64 * 5)]

        monkeypatch.setattr(layouts.wt, "wasmtime_memory_t", Bigger)
        with pytest.raises(WasmtimeMismatchError) as info:
            layouts.check_layouts()
        text = str(info.value)
        assert layouts.WASMTIME_PIN in text
        assert "wasmtime_memory_t is 40 bytes, expected 24" in text

    def test_a_missing_entry_point_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A wasmtime without one of the entry points the core calls is refused."""
        monkeypatch.setitem(layouts.WASMTIME_ENTRY_POINTS, "gone", "wasmtime_no_such_function")
        with pytest.raises(WasmtimeMismatchError, match="missing symbol wasmtime_no_such_function"):
            layouts.check_layouts()
