"""The files derived from broker/abi/ are up to date, and agree with the C core."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from broker import _native, abi
from broker.abi import codegen

# The checkout this test file is in (broker/ may be an installed copy).
CHECKOUT = Path(__file__).resolve().parents[2]


class TestDerivedFiles:
    def test_generated_files_are_current(self) -> None:
        """`python -m broker.abi --check` finds nothing stale in this checkout."""
        run = subprocess.run(
            [sys.executable, "-m", "broker.abi", "--check"],
            cwd=CHECKOUT,
            env={**os.environ, "PYTHONPATH": str(CHECKOUT)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (run.returncode, run.stdout, run.stderr) == (0, "", "")

    def test_check_names_the_stale_files_and_a_run_writes_them(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--check reports drift and writes nothing; without it the files are written."""
        (tmp_path / "native").mkdir()
        assert codegen.main(["--check"], root=tmp_path) == 1
        assert capsys.readouterr().out.splitlines() == [
            f"stale: {rel}" for rel in codegen.GENERATED
        ]
        assert [p.name for p in tmp_path.rglob("*")] == ["native"]
        assert codegen.main([], root=tmp_path) == 0
        assert (tmp_path / "native" / "abi_gen.h").read_text() == codegen.c_header()
        assert codegen.main(["--check"], root=tmp_path) == 0

    def test_outside_a_source_tree_it_says_so(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An installed package has no native/ to write into: one line, not "stale"."""
        assert codegen.main(["--check"], root=tmp_path) == 2
        assert capsys.readouterr().err == (
            f"{tmp_path}: not a wasi-map source tree (no native/); run this in a checkout\n"
        )
        assert list(tmp_path.iterdir()) == []

    def test_c_core_implements_exactly_the_table(self) -> None:
        """The compiled core registers every implemented function of the table, and no other."""
        assert set(_native.abi_function_names()) == abi.IMPLEMENTED

    def test_guest_header_declares_every_function(self) -> None:
        """The guest header has one import per ABI function with the right parameter count."""
        header = codegen.guest_header()
        for fn in abi.FUNCTIONS:
            match = re.search(rf"wm_errno_t wm_{fn.name}\((.*?)\);", header)
            assert match, fn.name
            assert len(match.group(1).split(",")) == len(fn.params)

    def test_rust_crate_declares_every_function_and_errno(self) -> None:
        """abi.rs has one raw import per ABI function (same parameter count, i64 where the
        ABI has one) and one `Error` variant per errno but OK, with its number."""
        text = codegen.GENERATED["guests/rust/src/abi.rs"]("")
        for fn in abi.FUNCTIONS:
            match = re.search(rf"pub fn {fn.name}\((.*?)\) -> u32;", text)
            assert match, fn.name
            types = [p.split(": ")[1] for p in match.group(1).split(", ")]
            assert types == [{"i32": "u32", "i64": "i64"}[p.wasm] for p in fn.params]
        for e in abi.Errno:
            assert (f"{e.name.capitalize()} = {e.value}," in text) == (e is not abi.Errno.OK)

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


class TestDeclarations:
    """broker/abi/ refuses a declaration whose shapes do not add up, in one line."""

    def _declare(self, spec: str) -> abi.AbiFunction:
        roles = {"out_u64": "out: a u64", "nonsense": "?"}
        return abi.declare("probe", spec, "a probe", outputs="none", errnos=(), roles=roles)

    def test_a_well_formed_declaration_has_its_spans(self) -> None:
        f = self._declare("h key_ptr key_len buf_ptr buf_cap out_u64")
        assert [(s.param, s.at, s.length_at, s.size) for s in f.spans] == [
            ("key_ptr", 1, 2, 0),
            ("buf_ptr", 3, 4, 0),
            ("out_u64", 5, None, 8),
        ]
        assert [p.name for p in f.handles] == ["h"]

    @pytest.mark.parametrize(
        "spec, problem",
        [
            ("h key_len key_ptr", "length key_len must follow the one pointer it measures"),
            ("h key_ptr", "key_ptr has no length key_len"),
            ("h key_ptr key_len:i64", "key_len (length) must be i32"),
            ("h nonsense", "parameter 'nonsense' has no shape in SHAPES"),
        ],
    )
    def test_a_malformed_declaration_is_refused(self, spec: str, problem: str) -> None:
        with pytest.raises(ValueError) as info:
            self._declare(spec)
        assert str(info.value).startswith("broker/abi/functions.py: probe: ")
        assert problem in str(info.value)
        assert "\n" not in str(info.value)


class TestGeneratedC:
    """What native/abi_gen.h says of each function is its declaration."""

    @pytest.mark.parametrize("fn", abi.FUNCTIONS, ids=lambda f: f.name)
    def test_args_and_spans_follow_the_declaration(self, fn: abi.AbiFunction) -> None:
        header = codegen.c_header()
        block = re.search(rf"#define WM_ARGS_{fn.name} \\\n(.*?)\n(?!    )", header, re.DOTALL)
        assert block, fn.name
        text = block.group(1)
        for i, p in enumerate(fn.params):
            assert f"A_{p.name} = {i}," in text
        assert f"S_COUNT_ = {len(fn.spans)} }}" in text
        for s in fn.spans:
            bound = (
                f"A_{fn.params[s.length_at].name}, 0"
                if s.length_at is not None
                else (f"WM_FIXED_LEN, {s.size}")
            )
            assert f"{{A_{s.param}, {bound}}}" in text

    def test_needs_macros_are_the_declared_rights(self) -> None:
        header = codegen.c_header()
        assert "#define WM_NEEDS_GET (WM_RIGHT_READ)\n" in header
        assert "#define WM_NEEDS_SET_IF (WM_RIGHT_READ | WM_RIGHT_WRITE)\n" in header
        assert "#define WM_NEEDS_SET_MAP_CHILD (WM_RIGHT_READ | WM_RIGHT_WRITE)\n" in header
        assert "#define WM_NEEDS_CLOSE 0\n" in header
        count = sum(len(f.handles) for f in abi.FUNCTIONS)
        assert header.count("#define WM_NEEDS_") == count

    def test_shared_numbers_are_not_restated_in_c(self) -> None:
        """The numbers abi_gen.h defines are defined nowhere else in native/."""
        generated = set(re.findall(r"^#define (WM_\w+)", codegen.c_header(), re.MULTILINE))
        for path in sorted((CHECKOUT / "native").glob("*.[ch]")):
            if path.name == "abi_gen.h":
                continue
            text = path.read_text()
            defined = set(re.findall(r"^#define (WM_\w+)", text, re.MULTILINE))
            defined |= set(re.findall(r"\b(WM_\w+)\s*=", text))
            assert not defined & generated, f"{path.name} restates {sorted(defined & generated)}"
