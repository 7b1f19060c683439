"""Every function of the `wasi_map` import module, declared once.

Each with its parameters (their roles and shapes), the rights its handles
need, what it writes and every errno it can return, in the order it checks.
"""

from __future__ import annotations

from .constants import MAP_COST, MAX_NAME_LEN
from .declaration import (
    BADF,
    FAULT,
    QUOTA_HANDLE,
    QUOTA_WRITE,
    STALE,
    TOOBIG_BOTH,
    TOOBIG_KEY,
    AbiFunction,
    declare,
    on_map,
)
from .errnos import Errno, Rights

R, W = Rights.READ, Rights.WRITE
E = Errno

FUNCTIONS: tuple[AbiFunction, ...] = (
    declare(
        "open",
        "name_ptr name_len rights out_h",
        "open a named map granted to this module",
        outputs="on OK, `out_h`: a new owning handle with `rights`",
        roles={
            "name_ptr": "where the map's name is (UTF-8)",
            "name_len": f"the name's length in bytes, 1..{MAX_NAME_LEN}",
            "rights": "the rights wanted: a subset of the module's grant of the name",
        },
        errnos=(
            FAULT,
            (
                E.INVAL,
                f"unknown rights bits; a name that is empty, over {MAX_NAME_LEN} bytes or not"
                " UTF-8",
            ),
            (E.ACCES, "the name is not granted to this module, or `rights` exceed the grant"),
            QUOTA_HANDLE,
        ),
    ),
    declare(
        "new",
        "out_h",
        "a new anonymous map, owned by the caller, rights READ|WRITE",
        outputs="on OK, `out_h`: the only owning handle to the new, empty map",
        errnos=(
            FAULT,
            (E.QUOTA, f"the `handles` or `bytes` limit is reached (a map costs {MAP_COST} bytes)"),
        ),
    ),
    declare(
        "close",
        "h",
        "give up this handle",
        outputs="none; an owning handle's map loses one reference (and is reclaimed at zero)",
        roles={"h": "the handle to give up (owning or borrowed)"},
        errnos=(
            BADF,
            STALE,
            (E.BUSY, "`h` is lent to a call in progress (`borrow`); it can be closed after"),
        ),
    ),
    declare(
        "clone",
        "h rights out_h",
        "a second owning handle, rights a subset of h's",
        outputs="on OK, `out_h`: a new owning handle to `h`'s map (one reference more)",
        roles={"rights": "the new handle's rights: a subset of `h`'s"},
        errnos=(
            FAULT,
            (E.INVAL, "unknown rights bits"),
            BADF,
            STALE,
            (E.ACCES, "`rights` exceed `h`'s rights"),
            QUOTA_HANDLE,
        ),
    ),
    declare(
        "get",
        "h key_ptr key_len buf_ptr buf_cap out_len",
        "copy the value into buf",
        R,
        outputs=(
            "on OK, the value at `buf_ptr` and its length at `out_len` (u32); on RANGE only the"
            " needed length at `out_len`, the buffer untouched"
        ),
        roles={"out_len": "out: a u32, the value's length"},
        errnos=on_map(
            R,
            (E.NOENT, "the key is absent"),
            (E.TYPE, "the key holds a map reference (read it with `get_map`)"),
            (E.RANGE, "`buf_cap` is smaller than the value"),
        ),
    ),
    declare(
        "set",
        "h key_ptr key_len val_ptr val_len",
        "insert or replace",
        W,
        outputs="none",
        errnos=on_map(W, QUOTA_WRITE, toobig=TOOBIG_BOTH),
    ),
    declare(
        "delete",
        "h key_ptr key_len",
        "remove; OK also when absent",
        W,
        outputs="none; a map reference removed is released",
        errnos=on_map(W),
    ),
    declare(
        "exists",
        "h key_ptr key_len out_u32",
        "1 or 0",
        R,
        outputs="on OK, `out_u32`: 1 if the key is present (bytes or a map reference), else 0",
        roles={"out_u32": "out: a u32, 1 or 0"},
        errnos=on_map(R),
    ),
    declare(
        "len",
        "h out_u32",
        "number of entries",
        R,
        outputs="on OK, `out_u32`: the number of entries (map references included)",
        roles={"out_u32": "out: a u32, the number of entries"},
        errnos=on_map(R, toobig=None),
    ),
    declare(
        "keys",
        "h cursor_ptr buf_ptr buf_cap out_used out_count",
        "one page of keys",
        R,
        outputs=(
            "on OK, `out_count` keys as u32 length + bytes in the first `out_used` bytes of the"
            " buffer, and the next cursor at `cursor_ptr` (0: done); on RANGE only the size the"
            " first key needs at `out_used`"
        ),
        roles={
            "cursor_ptr": "in/out: a u64 cursor, 0 to start; receives the next one",
            "out_used": "out: a u32, the bytes of the buffer used",
            "out_count": "out: a u32, the number of keys in the page",
        },
        errnos=on_map(R, (E.RANGE, "not even the next key fits in `buf_cap`"), toobig=None),
    ),
    declare(
        "incr",
        "h key_ptr key_len delta:i64 out_i64",
        "atomic add on an 8-byte LE i64",
        R | W,
        outputs="on OK, `out_i64`: the value after the addition (an absent key counts as 0)",
        roles={
            "delta": "the i64 to add (wrapping, as `i64.add`)",
            "out_i64": "out: an i64, the new value",
        },
        errnos=on_map(
            R | W,
            (E.TYPE, "the value is not exactly 8 bytes, or is a map reference"),
            QUOTA_WRITE,
            toobig=(E.TOOBIG, "the key is over `key_size`, or `value_size` is under 8"),
        ),
    ),
    declare(
        "version",
        "h key_ptr key_len out_u64",
        "the key's version, 0 when absent",
        R,
        outputs="on OK, `out_u64`: the key's version, 0 when absent",
        roles={"out_u64": "out: a u64, the version"},
        errnos=on_map(R),
    ),
    declare(
        "set_if",
        "h key_ptr key_len val_ptr val_len expected:i64",
        "set only if the version equals expected",
        R | W,
        outputs="none",
        roles={"expected": "the version the key must have (0: it must be absent), as a u64"},
        errnos=on_map(
            R | W,
            (E.CONFLICT, "the key's version is not `expected`; nothing was written"),
            QUOTA_WRITE,
            toobig=TOOBIG_BOTH,
        ),
    ),
    declare(
        "get_many",
        "h keys_ptr keys_len buf_ptr buf_cap out_used",
        "batch get",
        R,
        outputs=(
            "on OK, one record per key at `buf_ptr` (u32 length + bytes; 0xFFFFFFFF and no bytes"
            " for an absent key) and their total size at `out_used`; on RANGE only the total"
            " needed at `out_used`"
        ),
        roles={
            "keys_ptr": "where the keys are, each as u32 length + bytes",
            "keys_len": "the key list's size in bytes",
            "out_used": "out: a u32, the bytes of the buffer used",
        },
        errnos=on_map(
            R,
            (E.TYPE, "a key holds a map reference (nothing is written)"),
            (E.RANGE, "`buf_cap` is smaller than the answer"),
            invalid=((E.INVAL, "a truncated key record, or the buffer overlaps the key list"),),
            toobig=(E.TOOBIG, "a key is longer than `key_size`"),
        ),
    ),
    declare(
        "set_many",
        "h items_ptr items_len",
        "batch set, all or nothing",
        W,
        outputs="none; every item is written, or none",
        roles={
            "items_ptr": "where the items are: u32 key length, key, u32 value length, value",
            "items_len": "the batch's size in bytes",
        },
        errnos=on_map(
            W,
            (E.QUOTA, "the batch, every item counted as a new entry, is over `bytes`/`entries`"),
            invalid=((E.INVAL, "a truncated item"),),
            toobig=(E.TOOBIG, "a key is over `key_size` or a value over `value_size`"),
        ),
    ),
    declare(
        "set_map",
        "h key_ptr key_len child_h",
        "store a reference to child's map",
        W,
        outputs="none; the parent map now holds one reference to the child's map",
        roles={"child_h": "a handle to the map to store, with READ and WRITE"},
        needs_of={"child_h": R | W},
        errnos=(
            FAULT,
            (E.BADF, "`h` or `child_h` was never issued to this module"),
            (E.STALE, "`h` or `child_h` was closed, or moved away"),
            (E.ACCES, "`h` lacks WRITE, or `child_h` lacks READ or WRITE"),
            TOOBIG_KEY,
            (E.TYPE, "`h` is a named map kept in sqlite or Redis, which hold bytes only"),
            QUOTA_WRITE,
        ),
    ),
    declare(
        "get_map",
        "h key_ptr key_len out_h",
        "a new owning handle to the referenced map",
        R,
        outputs="on OK, `out_h`: a new owning handle to the referenced map, with `h`'s rights",
        errnos=on_map(
            R,
            (E.NOENT, "the key is absent"),
            (E.TYPE, "the key holds bytes, not a map reference"),
            QUOTA_HANDLE,
        ),
    ),
    declare(
        "watch_drop",
        "h cookie:i64",
        "call wasi_map_on_drop(cookie) when the map is reclaimed",
        outputs=(
            "none; when the map is reclaimed the broker calls this module's"
            " `wasi_map_on_drop(cookie)`, after the outermost broker operation"
        ),
        roles={
            "h": "a handle to the map to watch (any rights)",
            "cookie": "an i64 handed back to `wasi_map_on_drop`",
        },
        errnos=(
            BADF,
            STALE,
            (E.QUOTA, "the module's `watches` limit of pending registrations is reached"),
        ),
    ),
)


BY_NAME: dict[str, AbiFunction] = {f.name: f for f in FUNCTIONS}

# Functions the current release implements in its data plane.
IMPLEMENTED: frozenset[str] = frozenset(BY_NAME)
