"""Where the C guest header `wasi_map.h` is, for `clang -I`.

A wheel carries it as package data (`broker/include/`, copied there from
guests/include/ by setup.py's build step); a checkout or an editable
install has it in guests/include/, next to broker/.  Both are the file
`python -m broker.abi` generates.  `wasi-map include` prints the directory.
"""

from __future__ import annotations

from pathlib import Path

HEADER = "wasi_map.h"
PACKAGED = Path(__file__).resolve().parent / "include"
CHECKOUT = Path(__file__).resolve().parent.parent / "guests" / "include"


def include_dir() -> Path:
    """The directory holding wasi_map.h (a FileNotFoundError if neither has it)."""
    for place in (PACKAGED, CHECKOUT):
        if (place / HEADER).is_file():
            return place
    raise FileNotFoundError(f"{HEADER} is in neither {PACKAGED} nor {CHECKOUT}")
