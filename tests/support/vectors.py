"""Run a test vector (tests/vectors/README.md) on the Python host, or record one.

`run(vector)` replays every step and returns the steps as this host
answered them, in the vector's own notation, so a test compares the two
lists and `record` writes them back as the expected results.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from paths import GUESTS

from broker import Broker, GuestTrap

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
SAFE = 2**53  # beyond ±2^53 an integer is written as a decimal string (JSON in JS)

Step = dict[str, Any]


def files() -> list[Path]:
    """Every vector file, by name."""
    return sorted(VECTORS.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads(path.read_text())
    return vector


def number(text_or_int: int | str) -> int:
    """An integer of the notation (a decimal string beyond ±2^53)."""
    return int(text_or_int)


def notation(value: int) -> int | str:
    """An integer in the notation."""
    return value if -SAFE < value < SAFE else str(value)


def _results(value: object) -> list[int | str]:
    values = [] if value is None else list(value) if isinstance(value, tuple) else [value]
    assert all(isinstance(v, int) for v in values), f"not all integers: {values!r}"
    return [notation(int(v)) for v in values]  # type: ignore[call-overload]


def _write(b: Broker, module: str, at: int, data: bytes) -> None:
    whole = len(data) - len(data) % 8
    for i in range(0, whole, 8):
        word = int.from_bytes(data[i : i + 8], "little", signed=True)
        b.call(f"{module}.store64", at + i, word)
    for i in range(whole, len(data)):
        b.call(f"{module}.store8", at + i, data[i])


def _read(b: Broker, module: str, at: int, n: int) -> bytes:
    out = bytearray()
    whole = n - n % 8
    for i in range(0, whole, 8):
        word = b.call(f"{module}.load64", at + i)
        assert isinstance(word, int)
        out += (word & (2**64 - 1)).to_bytes(8, "little")
    for i in range(whole, n):
        byte = b.call(f"{module}.load8", at + i)
        assert isinstance(byte, int)
        out.append(byte)
    return bytes(out)


def _step(b: Broker, step: Step) -> Step:
    """What this host answers to one step, in the vector's notation."""
    if "write" in step:
        _write(b, step["write"], step["at"], bytes.fromhex(step["hex"]))
        return dict(step)
    if "read" in step:
        n = len(step["hex"]) // 2 if "hex" in step else step["len"]
        got = _read(b, step["read"], step["at"], n)
        return {"read": step["read"], "at": step["at"], "hex": got.hex()}
    if "stats" in step:
        stats = b.stats()
        return {"stats": {"maps": stats["maps"], "named": stats["named"], **_handles(stats)}}
    args = [number(a) for a in step["args"]]
    try:
        results = b.call(step["call"], *args)
    except GuestTrap:
        return {"call": step["call"], "args": step["args"], "trap": True}
    return {"call": step["call"], "args": step["args"], "results": _results(results)}


def _handles(stats: Any) -> dict[str, dict[str, int]]:
    return {"handles": dict(stats["handles"])}


def run(vector: dict[str, Any]) -> list[Step]:
    """Every step of `vector` as this host answers it."""
    with tempfile.TemporaryDirectory() as scratch:
        where = Path(scratch)
        for guest in GUESTS.iterdir():  # module paths are relative to tests/guests/
            (where / guest.name).symlink_to(guest)
        app = where / "app.toml"
        app.write_text(vector["app"])
        with Broker.from_manifest(app) as b:
            return [_step(b, step) for step in vector["steps"]]


def record(vector: dict[str, Any], path: Path) -> None:
    """Write `vector` with this host's answers as its expected results."""
    done = {**vector, "steps": run(vector)}
    lines = ",\n    ".join(json.dumps(step) for step in done["steps"])
    head = {k: v for k, v in done.items() if k != "steps"}
    text = json.dumps(head, indent=2)[:-2] + f',\n  "steps": [\n    {lines}\n  ]\n}}\n'
    path.write_text(text)
