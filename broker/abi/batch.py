"""The batch buffer formats: a key list (keys, get_many) and a set_many batch."""

from __future__ import annotations

from collections.abc import Sequence

ABSENT = 0xFFFFFFFF  # get_many's length for an absent key


def pack_keys(keys: Sequence[bytes]) -> bytes:
    """A key list (get_many's input, a keys page): u32 length + bytes each."""
    return b"".join(len(k).to_bytes(4, "little") + k for k in keys)


def pack_items(items: Sequence[tuple[bytes, bytes]]) -> bytes:
    """A set_many batch: u32 key length, key, u32 value length, value per item."""
    return b"".join(
        len(k).to_bytes(4, "little") + k + len(v).to_bytes(4, "little") + v for k, v in items
    )


def unpack_records(raw: bytes, count: int) -> list[bytes | None]:
    """`count` records of u32 length + bytes; length ABSENT reads as None."""
    out: list[bytes | None] = []
    at = 0
    for _ in range(count):
        n = int.from_bytes(raw[at : at + 4], "little")
        at += 4
        if n == ABSENT:
            out.append(None)
        else:
            out.append(raw[at : at + n])
            at += n
    if at != len(raw):
        raise ValueError(f"{count} records use {at} bytes, not {len(raw)}")
    return out
