"""Reading a file a user named (a manifest, a module): regular files only, size-capped.

A FIFO would block a plain read forever and /dev/zero never ends, so the
path is checked with stat before it is opened (opening some devices has
effects of its own), opened with O_NONBLOCK (a FIFO swapped in between
cannot block the open), checked again with fstat, and read up to a cap.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MIB = 1 << 20
MAX_MODULE_SIZE = 256 * MIB  # a .wasm or .wat file; far above any real module
MAX_MANIFEST_SIZE = 1 * MIB  # an app manifest; thousands of modules fit
_CHUNK = 1 * MIB

_KINDS = (
    (stat.S_ISDIR, "is a directory"),
    (stat.S_ISFIFO, "is a FIFO, not a regular file"),
    (stat.S_ISCHR, "is a character device, not a regular file"),
    (stat.S_ISBLK, "is a block device, not a regular file"),
    (stat.S_ISSOCK, "is a socket, not a regular file"),
)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)


class UnreadableFile(Exception):
    """Why a file cannot be read, in a few words (the caller names the file)."""


def size_text(n: int) -> str:
    """A byte count as people write it: '256 MiB', '1 KiB', '100 bytes'."""
    for unit, size in (("GiB", 1 << 30), ("MiB", MIB), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def kind_problem(mode: int) -> str | None:
    """Why a file of this st_mode is not a regular file, or None."""
    if stat.S_ISREG(mode):
        return None
    return next((text for test, text in _KINDS if test(mode)), "is not a regular file")


def read_regular(path: Path, max_size: int) -> bytes:
    """The bytes of `path`, a regular file of at most `max_size` bytes; else UnreadableFile."""
    try:
        problem = kind_problem(os.stat(path).st_mode)
        if problem:
            raise UnreadableFile(problem)
        fd = os.open(path, _OPEN_FLAGS | os.O_CLOEXEC)
    except OSError as exc:
        raise UnreadableFile(exc.strerror or str(exc)) from None
    except ValueError:  # os.stat's refusal of an embedded NUL
        raise UnreadableFile("the path contains a NUL byte") from None
    try:
        info = os.fstat(fd)
        problem = kind_problem(info.st_mode)  # replaced since the stat above
        if problem:
            raise UnreadableFile(problem)
        most = f"the most is {size_text(max_size)}"
        if info.st_size > max_size:
            raise UnreadableFile(f"it has {info.st_size} bytes; {most}")
        chunks, total = [], 0
        while chunk := os.read(fd, _CHUNK):  # it may have grown since fstat
            chunks.append(chunk)
            total += len(chunk)
            if total > max_size:
                raise UnreadableFile(f"it has more than {max_size} bytes; {most}")
        return b"".join(chunks)
    except OSError as exc:
        raise UnreadableFile(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
