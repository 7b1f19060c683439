"""The files derived from broker/abi.py are up to date, and agree with the C core."""

import re
from pathlib import Path

import pytest

from broker import _native, abi

# The checkout this test file is in (broker/ may be an installed copy).
CHECKOUT = Path(__file__).resolve().parent.parent


class TestDerivedFiles:
    def test_generated_files_are_current(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """`python broker/abi.py --check` finds nothing stale in this checkout."""
        monkeypatch.setattr(abi, "ROOT", CHECKOUT)
        assert abi.main(["--check"]) == 0

    def test_c_core_implements_exactly_the_table(self) -> None:
        """The compiled core registers every implemented function of the table, and no other."""
        assert set(_native.abi_function_names()) == abi.IMPLEMENTED

    def test_guest_header_declares_every_function(self) -> None:
        """The guest header has one import per ABI function with the right parameter count."""
        header = abi.guest_header()
        for fn in abi.FUNCTIONS:
            match = re.search(rf"wm_errno_t wm_{fn.name}\((.*?)\);", header)
            assert match, fn.name
            assert len(match.group(1).split(",")) == len(fn.params)

    def test_errno_values_are_the_contracts(self) -> None:
        """Errno numbers are fixed by the contract, docs/abi.md (guests compare the numbers)."""
        names = [e.name for e in sorted(abi.Errno)]
        assert names == [
            "OK",
            "BADF",
            "STALE",
            "NOENT",
            "ACCES",
            "FAULT",
            "RANGE",
            "INVAL",
            "BUSY",
            "QUOTA",
            "TOOBIG",
            "CONFLICT",
            "TYPE",
            "IO",
        ]
        assert (abi.Rights.READ, abi.Rights.WRITE) == (1, 2)
