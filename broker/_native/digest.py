"""The sha256 the core is built with and checked against, one function for both.

native/ffi_build.py loads this file by its path (broker is not importable
while the core builds) and bakes `source_sha256` of each source into the
core; core.py compares the same function's answer at import, so the two
cannot disagree.  Standard library only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_of(path: Path) -> str:
    """The plain sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_sha256(path: Path) -> str:
    """A file's sha256; for a package directory (broker/abi/), one sha256 over
    its .py files in name order, each file's name and sha256, so that a change,
    a rename, a new file or a removed one all change it (caches are not read)."""
    if not path.is_dir():
        return sha256_of(path)
    combined = hashlib.sha256()
    for member in sorted(path.glob("*.py")):
        combined.update(f"{member.name}\0{sha256_of(member)}\n".encode())
    return combined.hexdigest()
