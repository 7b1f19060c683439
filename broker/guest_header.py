"""Where the guest bindings are: the C and C++ headers (for `clang -I`) and the Rust crate.

A wheel carries them as package data (`broker/include/`, `broker/rust/`,
copied there from guests/ by setup.py's build step); a checkout or an
editable install has them in guests/, next to broker/.  `wasi-map include`
prints the headers' directory, `wasi-map include --rust` the crate's.
"""

from __future__ import annotations

from pathlib import Path

HEADER = "wasi_map.h"
PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parent / "guests"
PACKAGED = PACKAGE / "include"
CRATE_ROOT = "src/lib.rs"


def _find(places: tuple[Path, ...], marker: str) -> Path:
    for place in places:
        if (place / marker).is_file():
            return place
    raise FileNotFoundError(f"{marker} is in none of {', '.join(map(str, places))}")


def include_dir() -> Path:
    """The directory holding wasi_map.h and wasi_map.hpp (FileNotFoundError if none has them)."""
    return _find((PACKAGED, CHECKOUT / "include"), HEADER)


def rust_crate_dir() -> Path:
    """The Rust crate's directory: Cargo.toml and src/ (FileNotFoundError if none has it)."""
    return _find((PACKAGE / "rust", CHECKOUT / "rust"), CRATE_ROOT)
