"""What users install: the sdist is the whole source release, a wheel builds from it alone.

The sdist and the wheel come from `python -m build` on this checkout (it
builds the sdist, then the wheel from the unpacked sdist with no checkout
around), or from WM_DIST, a directory where .ci/run put the ones it built
and installed.  With WM_TEST_INSTALLED=1 (.ci/run sets it) the suite must be
testing an installed wasi-map, not this checkout's broker/.
"""

from __future__ import annotations

import email.parser
import os
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
from paths import ROOT
from sanitizer import SANITIZED

import broker

CHECKOUT = ROOT
# In git but not in the sdist: CI's script and git's own file.
NOT_SHIPPED = {".ci/run", ".gitignore"}
# In the sdist but not in git: what setuptools writes.
SDIST_EXTRA = {"PKG-INFO", "setup.cfg"}
SDIST_EXTRA_DIR = "wasi_map.egg-info/"


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, wheel built from that sdist): from WM_DIST, or built now."""
    given = os.environ.get("WM_DIST")
    if given:
        out = Path(given)
    else:
        if SANITIZED:
            pytest.skip("no builds under AddressSanitizer (the compilers would run with it)")
        out = tmp_path_factory.mktemp("dist")
        done = subprocess.run(
            [sys.executable, "-m", "build", "--outdir", str(out), str(CHECKOUT)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (sdist,) = out.glob("wasi_map-*.tar.gz")
    (wheel,) = out.glob("wasi_map-*.whl")
    return sdist, wheel


def sdist_names(sdist: Path) -> set[str]:
    """The files in the sdist, without its top directory."""
    with tarfile.open(sdist) as tar:
        return {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()}


class TestBuildSystem:
    def test_setuptools_reads_the_spdx_license(self) -> None:
        """The build needs setuptools 77 or newer: older ones refuse `license = "Apache-2.0"`."""
        project = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())
        assert project["project"]["license"] == "Apache-2.0"
        assert "setuptools>=77" in project["build-system"]["requires"]


class TestSdist:
    def test_every_file_of_the_checkout_and_nothing_built(self, dist: tuple[Path, Path]) -> None:
        """The sdist holds every file git has (less CI), and no build product or cache."""
        if not (CHECKOUT / ".git").exists():
            pytest.skip("not a git checkout (an unpacked sdist has no file list to compare)")
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=CHECKOUT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
        tracked = {name for name in listed if name and (CHECKOUT / name).is_file()}
        shipped = sdist_names(dist[0])
        assert sorted(tracked - NOT_SHIPPED - shipped) == []
        extra = {n for n in shipped - tracked if not n.startswith(SDIST_EXTRA_DIR)}
        assert sorted(extra - SDIST_EXTRA) == []

    def test_what_the_build_needs(self, dist: tuple[Path, Path]) -> None:
        """The core's build script and headers, the guest header: once missing from it."""
        shipped = sdist_names(dist[0])
        needed = {"setup.py", "native/ffi_build.py", "native/wm.h", "native/wm_core.h"}
        needed |= {"guests/include/wasi_map.h", "scripts/install-deps.sh", "MANIFEST.in"}
        needed |= {"LICENSE"}
        assert sorted(needed - shipped) == []


class TestWheel:
    def test_the_package_and_its_compiled_core(self, dist: tuple[Path, Path]) -> None:
        """The wheel built from the sdist: broker's modules, py.typed, the core and
        the MapRef extension beside it (with its stub), no sources."""
        sdist, wheel = dist
        with zipfile.ZipFile(wheel) as zf:
            names = set(zf.namelist())
        package = {n for n in names if not n.startswith("wasi_map-")}
        modules = {n for n in sdist_names(sdist) if n.startswith("broker/") and n.endswith(".py")}
        cores = {n for n in package if n.startswith("broker/_wm") and n.endswith(".so")}
        assert len(cores) == 1, sorted(package)
        hostmap = {n for n in package if n.startswith("broker/_hostmap.") and n.endswith(".so")}
        assert len(hostmap) == 1, sorted(package)
        header = "broker/include/wasi_map.h"  # setup.py copies it from guests/include/
        bindings = {
            header,
            "broker/include/wasi_map.hpp",
            "broker/rust/Cargo.toml",
            "broker/rust/src/lib.rs",
            "broker/rust/src/abi.rs",
        }
        typing = {"broker/py.typed", "broker/_hostmap.pyi"}
        assert package == modules | cores | hostmap | typing | bindings
        with zipfile.ZipFile(wheel) as zf, tarfile.open(sdist) as tar:
            (source,) = (
                m for m in tar.getmembers() if m.name.endswith("guests/include/wasi_map.h")
            )
            original = tar.extractfile(source)
            assert original is not None and zf.read(header) == original.read()

    def test_metadata_and_entry_points(self, dist: tuple[Path, Path]) -> None:
        """The SPDX license, the console script and the pytest plugin's entry point."""
        with zipfile.ZipFile(dist[1]) as zf:
            info = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            meta = email.parser.Parser().parsestr(zf.read(info).decode())
            entry_points = zf.read(info.replace("METADATA", "entry_points.txt")).decode()
        assert meta["License-Expression"] == "Apache-2.0"
        assert meta["License-File"] == "LICENSE"
        with zipfile.ZipFile(dist[1]) as zf:
            text = zf.read(info.replace("METADATA", "licenses/LICENSE")).decode()
        assert "Apache License" in text and "Version 2.0" in text
        assert "wasi-map = broker.cli:main" in entry_points
        assert "[pytest11]\nwasi_map = broker.pytest_plugin" in entry_points


class TestInstalled:
    @pytest.mark.skipif(
        os.environ.get("WM_TEST_INSTALLED") != "1",
        reason="WM_TEST_INSTALLED=1 (set by .ci/run) says the suite tests an installed wasi-map",
    )
    def test_broker_comes_from_site_packages(self) -> None:
        """The broker under test is the installed one, not this checkout's broker/."""
        from broker._native import core_path

        places = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
        for name, file in (("broker", broker.__file__), ("broker._wm", core_path())):
            where = Path(file or "").resolve()
            print(f"{name}: {where}")
            assert not where.is_relative_to(CHECKOUT / "broker"), where
            assert any(where.is_relative_to(p) for p in places), (where, places)
        assert (Path(sys.executable).parent / "wasi-map").is_file()  # the console script
