"""The C core is refused when stale, and only broker/_native/ touches it.

The core carries the sha256 of broker/abi/ (one digest over its files) and
native/wm.h it was built from (native/ffi_build.py, through
broker/_native/digest.py); at import they are compared with the files
beside it.  No test here rebuilds the core: the check is called with other
files, or a copy of the package whose broker/abi/ or wm.h was changed is
imported in a child process.
"""

from __future__ import annotations

import ast
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import broker
from broker import StaleCoreError, WasmtimeMismatchError
from broker._native import built_sha256, check_core, core
from broker._native.digest import sha256_of, source_sha256

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(broker.__file__).resolve().parent  # the broker/ imported (checkout or installed)


class TestBakedHashes:
    def test_the_core_was_built_from_these_files(self) -> None:
        """The hashes in the core are those of broker/abi/ and native/wm.h."""
        assert built_sha256() == {
            "broker/abi/": source_sha256(PACKAGE / "abi"),
            "native/wm.h": sha256_of(ROOT / "native" / "wm.h"),
        }
        assert source_sha256(ROOT / "broker" / "abi") == source_sha256(PACKAGE / "abi")

    def test_these_files_pass(self) -> None:
        """The files beside the core pass the check it ran at import."""
        check_core()
        check_core(PACKAGE / "abi", ROOT / "native" / "wm.h")


class TestStaleCore:
    def test_a_changed_abi_is_refused(self, tmp_path: Path) -> None:
        """A broker/abi/ other than the one built in: the error names it and the rebuild."""
        changed = tmp_path / "abi"
        shutil.copytree(PACKAGE / "abi", changed, ignore=shutil.ignore_patterns("__pycache__"))
        with (changed / "functions.py").open("a") as f:
            f.write("# one more line\n")
        with pytest.raises(StaleCoreError) as info:
            check_core(changed, None)
        text = str(info.value)
        assert f"{changed} changed since it was built" in text
        baked = built_sha256()["broker/abi/"]
        assert baked is not None and baked[:12] in text and source_sha256(changed)[:12] in text
        assert "pip install" in text and "\n" not in text

    def test_a_changed_wm_h_is_refused(self, tmp_path: Path) -> None:
        """A wm.h other than the one built in (a checkout whose C changed) is refused."""
        changed = tmp_path / "wm.h"
        changed.write_text("/* another header */\n")
        with pytest.raises(StaleCoreError, match=r"wm\.h changed since it was built"):
            check_core(PACKAGE / "abi", changed)

    def test_no_wm_h_beside_the_package_is_not_checked(self, tmp_path: Path) -> None:
        """An installed package has no native/wm.h: only broker/abi/ is compared."""
        check_core(PACKAGE / "abi", tmp_path / "native" / "wm.h")

    def test_a_core_without_hashes_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A core built before hashes were baked in is refused, not crashed on."""
        monkeypatch.setitem(core.BAKED, "broker/abi/", "wm_no_such_function")
        with pytest.raises(StaleCoreError, match="built by an older wasi-map, without the hash"):
            check_core()

    def test_the_advice_fits_the_install(self) -> None:
        """Beside a checkout: `pip install -e .` there; else reinstall with `pip install .`."""
        advice = core.rebuild_advice()
        if core.WM_H.exists():
            assert f"`pip install -e .` in {core.CHECKOUT}" in advice
        else:
            assert "`pip install .`" in advice

    def test_is_a_mismatch_error(self) -> None:
        """StaleCoreError is caught where a wasmtime mismatch is (and is an ImportError)."""
        assert issubclass(StaleCoreError, WasmtimeMismatchError)
        assert issubclass(StaleCoreError, ImportError)


def import_copy(tmp_path: Path, change: str | None) -> subprocess.CompletedProcess[str]:
    """Copy the imported broker/ (with its core) and native/wm.h into tmp_path,
    append a comment to the file `change` (if any), and import the copy in a child."""
    shutil.copytree(PACKAGE, tmp_path / "broker", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "native").mkdir()
    shutil.copyfile(ROOT / "native" / "wm.h", tmp_path / "native" / "wm.h")
    if change is not None:
        with (tmp_path / change).open("a") as f:
            f.write("\n# changed\n" if change.endswith(".py") else "\n/* changed */\n")
    code = "import broker, broker.host; print(broker.__file__)"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


class TestImport:
    @pytest.mark.parametrize(
        "change, named",
        [("broker/abi/functions.py", "broker/abi"), ("native/wm.h", "native/wm.h")],
    )
    def test_a_stale_core_is_refused_at_import(
        self, tmp_path: Path, change: str, named: str
    ) -> None:
        """Importing beside a changed file fails with StaleCoreError naming it, not a crash."""
        run = import_copy(tmp_path, change)
        assert run.returncode == 1, run.stderr
        last = run.stderr.strip().splitlines()[-1]
        assert last.startswith("broker.errors.StaleCoreError: wasi-map's C core ")
        assert f"{tmp_path / named} changed since it was built" in last
        assert f"`pip install -e .` in {tmp_path}" in last

    def test_the_copy_imports_unchanged(self, tmp_path: Path) -> None:
        """The same copy with nothing changed imports (the test above is fair)."""
        run = import_copy(tmp_path, None)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == str(tmp_path / "broker" / "__init__.py")


COMPILED = ("_wm", "_hostmap")


def reaches_into_the_core(path: Path) -> list[str]:
    """The imports in `path` of broker._wm or broker._hostmap (the compiled
    extensions), or of `ffi`/`lib` from a broker module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.endswith(COMPILED)]
        elif isinstance(node, ast.ImportFrom):
            module = ("." * node.level) + (node.module or "")
            names = {a.name for a in node.names}
            inside = module.startswith(("broker", "."))
            if module.endswith(COMPILED) or (inside and names & {*COMPILED, "ffi", "lib"}):
                found.append(f"{path.name}:{node.lineno}: from {module} import {sorted(names)}")
    return found


class TestOneDoor:
    def test_only_the_native_package_touches_ffi_and_lib(self) -> None:
        """No module outside broker/_native/ imports broker._wm, broker._hostmap, ffi or lib."""
        door = ROOT / "broker" / "_native"
        files = [p for d in ("broker", "tests", "benchmarks") for p in (ROOT / d).rglob("*.py")]
        outside = [p for p in files if not p.is_relative_to(door)]
        assert [hit for p in outside for hit in reaches_into_the_core(p)] == []
        assert reaches_into_the_core(door / "core.py")  # the check sees an import
        assert reaches_into_the_core(door / "hostmap_door.py")

    def test_the_package_modules_stay_small(self) -> None:
        """Each module of the door has one job and fits on a few screens."""
        modules = (ROOT / "broker" / "_native").glob("*.py")
        sizes = {p.name: len(p.read_text().splitlines()) for p in modules}
        assert max(sizes.values()) <= 300, sizes


def test_sha256_of_is_the_files_sha256(tmp_path: Path) -> None:
    """The hash compared is the plain sha256 of the file's bytes (as the build takes it)."""
    f = tmp_path / "x"
    f.write_bytes(b"abc")
    assert sha256_of(f) == hashlib.sha256(b"abc").hexdigest()


class TestSourceDigest:
    """The ABI's digest covers every .py file of the package, and nothing else."""

    def _package(self, tmp_path: Path) -> Path:
        pkg = tmp_path / "abi"
        pkg.mkdir()
        (pkg / "a.py").write_text("A = 1\n")
        (pkg / "b.py").write_text("B = 2\n")
        return pkg

    def test_a_change_in_any_file_changes_it(self, tmp_path: Path) -> None:
        pkg = self._package(tmp_path)
        before = source_sha256(pkg)
        (pkg / "b.py").write_text("B = 3\n")
        assert source_sha256(pkg) != before

    @pytest.mark.parametrize("edit", ["add", "remove", "rename"])
    def test_a_new_removed_or_renamed_file_changes_it(self, tmp_path: Path, edit: str) -> None:
        pkg = self._package(tmp_path)
        before = source_sha256(pkg)
        if edit == "add":
            (pkg / "c.py").write_text("")
        elif edit == "remove":
            (pkg / "b.py").unlink()
        else:
            (pkg / "b.py").rename(pkg / "c.py")
        assert source_sha256(pkg) != before

    def test_caches_do_not_count(self, tmp_path: Path) -> None:
        """Bytecode caches (an installed package's or a test run's) leave it as built."""
        pkg = self._package(tmp_path)
        before = source_sha256(pkg)
        (pkg / "__pycache__").mkdir()
        (pkg / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
        assert source_sha256(pkg) == before

    def test_a_file_is_its_plain_sha256(self, tmp_path: Path) -> None:
        f = tmp_path / "wm.h"
        f.write_bytes(b"abc")
        assert source_sha256(f) == sha256_of(f) == hashlib.sha256(b"abc").hexdigest()

    def test_the_build_hashes_with_the_same_function(self) -> None:
        """native/ffi_build.py loads broker/_native/digest.py, not a copy of it."""
        text = (ROOT / "native" / "ffi_build.py").read_text()
        assert '"broker" / "_native" / "digest.py"' in text
        assert "hashlib" not in text
