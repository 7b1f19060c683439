"""The compiled C core (broker._wm): loaded here, and refused when it is stale.

`ffi` and `lib` are the raw cffi objects; only the modules of this package
use them.  native/ffi_build.py bakes into the core the sha256 of the
sources its Python side must agree with: the ABI package broker/abi/ (one
digest over its files) and native/wm.h (the cffi declarations), both taken
by digest.py.  At import the baked ABI digest is compared with the
broker/abi/ being imported, and the wm.h hash with native/wm.h when a
checkout lies around the package; a mismatch is a StaleCoreError naming
what changed and the command that rebuilds the core.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .. import abi
from ..errors import StaleCoreError
from .digest import source_sha256

try:
    from .._wm import ffi as ffi
    from .._wm import lib as lib
except ImportError as exc:  # pragma: no cover - a broken install
    raise ImportError(
        f"wasi-map's C core (broker._wm) is not built: {exc}. Reinstall with `pip install .`."
    ) from exc

Native = Any  # a cffi pointer; `lib` is untyped, types come back in this package

CHECKOUT = Path(__file__).resolve().parents[2]  # the source tree, when there is one
ABI_DIR = Path(abi.__file__).resolve().parent  # broker/abi/, hashed as one
WM_H = CHECKOUT / "native" / "wm.h"  # present in a checkout or an editable install
# The baked hashes: the file each stands for and the function that returns it.
BAKED = {"broker/abi/": "wm_built_abi_sha256", "native/wm.h": "wm_built_wm_h_sha256"}


def core_path() -> str:
    """Where the compiled core this process imported lives."""
    return str(sys.modules["broker._wm"].__file__)


def built_sha256() -> dict[str, str | None]:
    """The sha256 of each source file, as baked into the core at build (None: a
    core built before hashes were baked in)."""
    out: dict[str, str | None] = {}
    for name, function in BAKED.items():
        baked = getattr(lib, function, None)
        out[name] = ffi.string(baked()).decode() if baked is not None else None
    return out


def rebuild_advice() -> str:
    """The command that rebuilds the core where it is."""
    if WM_H.exists():
        return f"rebuild it: run `pip install -e .` in {CHECKOUT} (or `pip install .` there)"
    return "reinstall wasi-map from its source: `pip install .`"


def check_core(abi_dir: Path = ABI_DIR, wm_h: Path | None = WM_H) -> None:
    """Refuse a core built from another broker/abi/ (or native/wm.h, when
    `wm_h` exists) than these, with the command that rebuilds it."""
    baked = built_sha256()
    sources = {"broker/abi/": abi_dir, "native/wm.h": wm_h}
    for name, path in sources.items():
        if path is None or not path.exists():
            continue
        want = baked[name]
        if want is None:
            raise StaleCoreError(
                f"wasi-map's C core {core_path()} is stale: it was built by an older "
                f"wasi-map, without the hash of {name}; {rebuild_advice()}"
            )
        have = source_sha256(path)
        if have != want:
            raise StaleCoreError(
                f"wasi-map's C core {core_path()} is stale: {path} changed since it was "
                f"built (sha256 {have[:12]}, the core has {want[:12]}); {rebuild_advice()}"
            )
    names = set(abi_function_names())
    if names != abi.IMPLEMENTED:  # pragma: no cover - only with an unchanged broker/abi/
        raise StaleCoreError(
            f"wasi-map's C core {core_path()} is stale: it implements {sorted(names)}; "
            f"{rebuild_advice()}"
        )


def abi_function_names() -> list[str]:
    """The ABI functions in the order wm_define_abi expects their types."""
    return [ffi.string(lib.wm_abi_name(i)).decode() for i in range(lib.wm_abi_count())]


def trace_compiled() -> bool:
    """Whether this build of the core records events (not a -DWM_NO_TRACE build)."""
    return bool(lib.wm_trace_compiled())


check_core()
