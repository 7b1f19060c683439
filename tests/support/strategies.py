"""Hypothesis strategies shared by the property tests: handles, rights, keys, pointers."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

U32_MAX = 0xFFFFFFFF
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
HANDLE_INDEX_BITS = 21


def mostly(
    good: st.SearchStrategy[Any], anything: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """Three parts `good` to one part `anything`, so random calls get past the first check often."""
    return st.one_of(good, good, good, anything)


# --- rights ------------------------------------------------------------------

INVALID_RIGHTS = (4, 5, 7, 8, 0x100, 0x80000000, 0x80000003, U32_MAX)

#: A `rights` argument: mostly valid (0..3), sometimes with unknown bits set.
rights_args = mostly(st.integers(0, 3), st.sampled_from(INVALID_RIGHTS))

# --- handles -----------------------------------------------------------------

EDGE_HANDLES = (
    0,
    1,
    (1 << HANDLE_INDEX_BITS) - 1,  # generation 0: never issued
    1 << HANDLE_INDEX_BITS,  # generation 1, index 0: a module's first handle
    (1 << HANDLE_INDEX_BITS) + 1,
    2 << HANDLE_INDEX_BITS,
    1023 << HANDLE_INDEX_BITS,  # the last generation
    1024 << HANDLE_INDEX_BITS,  # past the last generation
    0x7FFFFFFF,
    0x80000000,  # top bit set: never issued
    0x80200000,
    U32_MAX,
)

#: Any 32-bit handle number, edge values first.
raw_handles = st.one_of(st.sampled_from(EDGE_HANDLES), st.integers(0, U32_MAX))

#: Where a handle argument comes from: the module's live handles (most of the
#: time; "full": those whose map has entries), its closed ones, another
#: module's live ones, the next generation of one of its own, or a raw
#: number.  The state machine resolves (kind, index, raw).
HANDLE_KINDS = (
    ("live",) * 8 + ("full",) * 6 + ("stale", "stale", "foreign", "next_generation", "raw")
)
handle_picks = st.tuples(st.sampled_from(HANDLE_KINDS), st.integers(0, 63), raw_handles)

#: An i64 argument (incr's delta, set_if's expected): edges, then anything.
i64_args = st.one_of(st.sampled_from([0, 1, -1, I64_MAX, I64_MIN]), st.integers(I64_MIN, I64_MAX))

# --- keys, values, names -------------------------------------------------------

#: Longer than the default key limit (4096 bytes).
HUGE_KEY = b"K" * 4097
#: Keys from a small set so that operations meet each other's entries; one
#: is 9 bytes, over the 8-byte key limit of the model's small module.
keys = st.sampled_from([b"a", b"b", b"k"] * 3 + [b"", b"\x00\xff", b"ninebytes", HUGE_KEY])
#: Values: short bytes, some exactly 8 bytes (counters for `incr`), some over 16.
values = st.one_of(
    st.binary(max_size=8),
    st.binary(min_size=8, max_size=8),
    st.binary(min_size=17, max_size=24),
)
#: Map names: granted and ungranted ones, and invalid ones (empty, not
#: UTF-8, surrogate, overlong, too long).
names = st.sampled_from(
    [
        b"config",
        b"shared",
        b"inbox",
        b"fresh",
        "caf\u00e9".encode(),
        b"n" * 1024,
        b"",
        b"\xff",
        b"\xed\xa0\x80",
        b"\xc0\xaf",
        b"n" * 1025,
    ]
)

# --- raw guest pointers and lengths --------------------------------------------


def pointers(mem_size: int, marks: tuple[int, ...] = ()) -> st.SearchStrategy[int]:
    """A u32 pointer: interesting addresses, the memory's end, wrap-around, anything."""
    edges = (
        0,
        1,
        mem_size - 8,
        mem_size - 5,
        mem_size - 4,
        mem_size - 1,
        mem_size,
        mem_size + 1,
        0x80000000,
        U32_MAX - 7,
        U32_MAX - 3,
        U32_MAX,
    )
    return st.one_of(
        st.sampled_from(marks + edges),
        st.integers(max(mem_size - 40, 0), mem_size + 40),
        st.integers(0, U32_MAX),
    )


def lengths(mem_size: int) -> st.SearchStrategy[int]:
    """A u32 length: small, exact page sizes, huge, anything."""
    return st.one_of(
        st.integers(0, 16),
        st.sampled_from(
            (
                0,
                1,
                4,
                8,
                64,
                4096,
                4097,
                mem_size - 1,
                mem_size,
                mem_size + 1,
                0x80000000,
                U32_MAX - 3,
                U32_MAX,
            )
        ),
        st.integers(0, U32_MAX),
    )


def spans(mem_size: int, good: tuple[tuple[int, int], ...] = ()) -> st.SearchStrategy[Any]:
    """A (pointer, length) pair: one of the prepared good spans, or anything."""
    raw = st.tuples(pointers(mem_size, tuple(p for p, _ in good)), lengths(mem_size))
    return st.one_of(st.sampled_from(good), raw) if good else raw
