"""The wasi-map guest ABI, declared once: functions, errnos, rights.

Everything else is derived from this module: the C registration table
(`native/abi_gen.h`) and the guest header (`guests/include/wasi_map.h`),
written by `python broker/abi.py`; the `check` command; and the ABI tables
of docs/abi.md and docs/reference/functions.md, written by
`python -m broker.docgen`.  Tests fail when any of them drifts, and when a
function's declared errnos stop matching the C core's return paths.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

IMPORT_MODULE = "wasi_map"
DROP_EXPORT = "wasi_map_on_drop"


class Errno(enum.IntEnum):
    """Errno values every ABI function returns (fixed: guests compare the numbers)."""

    OK = 0
    BADF = 1
    STALE = 2
    NOENT = 3
    ACCES = 4
    FAULT = 5
    RANGE = 6
    INVAL = 7
    BUSY = 8
    QUOTA = 9
    TOOBIG = 10
    CONFLICT = 11
    TYPE = 12
    IO = 13


ERRNO_MEANING: dict[Errno, str] = {
    Errno.OK: "success",
    Errno.BADF: "not a handle of this module (never issued to it)",
    Errno.STALE: "a handle this module had, but it was closed or moved away",
    Errno.NOENT: "key absent",
    Errno.ACCES: "right missing, name not granted, or more rights than the grant",
    Errno.FAULT: "a pointer/length pair outside the guest's memory",
    Errno.RANGE: "output buffer too small (needed size written where the call says)",
    Errno.INVAL: "bad argument: unknown rights bits, malformed batch, bad name",
    Errno.BUSY: "the handle is lent to a call in progress",
    Errno.QUOTA: "a module limit reached (handles, bytes, entries)",
    Errno.TOOBIG: "key or value over the configured size limit",
    Errno.CONFLICT: "set_if version mismatch",
    Errno.TYPE: "map reference where bytes were expected, or the reverse",
    Errno.IO: "the backing store failed; the operation did not happen",
}


class Rights(enum.IntFlag):
    """Rights bits carried by a handle."""

    NONE = 0
    READ = 1
    WRITE = 2


RIGHTS_ALL = Rights.READ | Rights.WRITE


def parse_rights(text: object) -> Rights:
    """'r', 'w' or 'rw' (either order) as Rights; ValueError otherwise."""
    if (
        not isinstance(text, str)
        or not text
        or set(text) - {"r", "w"}
        or len(set(text)) != len(text)
    ):
        raise ValueError(f"rights must be 'r', 'w' or 'rw', not {text!r}")
    rights = Rights.NONE
    if "r" in text:
        rights |= Rights.READ
    if "w" in text:
        rights |= Rights.WRITE
    return rights


# --- numbers the C core and Python share (native/abi_gen.h has the C side) ---


class PassKind(enum.IntEnum):
    """How a declared export parameter or result passes a handle (docs/ownership.md)."""

    PLAIN = 0
    OWN = 1
    BORROW = 2
    SHARE = 3


PASS_KIND_MASK = 3  # the PassKind bits of a pass code
PASS_READONLY = 4  # the ":r" suffix, or'd into a pass code


# A handle number (docs/abi.md): a slot index in the low HANDLE_INDEX_BITS
# bits, the slot's generation (1..HANDLE_MAX_GEN) above it.
HANDLE_INDEX_BITS = 21
HANDLE_MAX_GEN = 1023


class HandleState(enum.IntEnum):
    """A slot of a module's handle table (a snapshot's `state`)."""

    FREE = 0
    OWN = 1
    BORROW = 2


# What the `bytes` quota charges beyond the key and value bytes: about what
# the data plane really allocates for an entry (its slot, index and
# allocation) and for an anonymous map (its row and its smallest table), so
# that a module's quota bounds its real memory within 2x.
ENTRY_COST = 88  # per live entry, charged to its last writer
MAP_COST = 160  # per live anonymous map, charged to the module whose `new` made it
MAX_NAME_LEN = 1024  # bytes of a map name (UTF-8); longer is INVAL
MAX_MODULES = 65535  # modules of one broker (an entry records its account in 16 bits)
MAX_HANDLE_ARGS = 64  # handle parameters, or results, of one export


class Shape(enum.Enum):
    """What a parameter is to the call: how the callback reads it (native/abi_gen.h)."""

    HANDLE = "handle"  # a handle number of the calling module
    INPUT = "input span"  # a pointer to bytes the call reads; `length` names their length
    BUFFER = "output buffer"  # a pointer to bytes the call may write; `length` names its size
    LENGTH = "length"  # the length of an input span or an output buffer
    OUTPUT = "fixed-size output"  # a pointer to `size` bytes the call writes
    INOUT = "in/out"  # a pointer to `size` bytes the call reads and writes
    VALUE = "value"  # a plain number (rights, a delta, a version, a cookie)


@dataclass(frozen=True)
class Param:
    """One parameter of an ABI function: its name, Wasm type, role and shape.

    `length` is the parameter holding an input span's or output buffer's
    length; `size` the bytes a fixed-size output or in/out pointer covers;
    `needs` the rights a handle must carry."""

    name: str
    wasm: str  # "i32" or "i64"
    role: str = ""  # what the caller passes, or (out-pointers) what the call writes there
    shape: Shape = Shape.VALUE
    length: str = ""
    size: int = 0
    needs: Rights = Rights.NONE

    @property
    def is_pointer(self) -> bool:
        """A pointer into guest memory: checked against it before anything else (FAULT)."""
        return self.shape in (Shape.INPUT, Shape.BUFFER, Shape.OUTPUT, Shape.INOUT)


@dataclass(frozen=True)
class Span:
    """A region of guest memory one call touches: its pointer's position, and
    its length's position (`length_at`) or fixed size (`size`)."""

    param: str
    at: int
    length_at: int | None
    size: int


@dataclass(frozen=True)
class AbiFunction:
    """One function of the `wasi_map` import module.

    `errnos` lists every errno the function can return besides OK, in the
    order the function checks for them, each with what it means for this
    function; `outputs` says what the call writes, and when."""

    name: str
    params: tuple[Param, ...]
    doc: str
    outputs: str = ""
    errnos: tuple[tuple[Errno, str], ...] = ()

    @property
    def param_types(self) -> tuple[str, ...]:
        return tuple(p.wasm for p in self.params)

    @property
    def result_types(self) -> tuple[str, ...]:
        return ("i32",)

    @property
    def errno_set(self) -> frozenset[Errno]:
        return frozenset(e for e, _ in self.errnos)

    def index(self, name: str) -> int:
        """The position of parameter `name`."""
        return [p.name for p in self.params].index(name)

    @property
    def needs(self) -> Rights:
        """The rights the handle `h` must carry (NONE without one)."""
        return next((p.needs for p in self.params if p.name == "h"), Rights.NONE)

    @property
    def handles(self) -> tuple[Param, ...]:
        """The handle parameters, in order."""
        return tuple(p for p in self.params if p.shape is Shape.HANDLE)

    @property
    def spans(self) -> tuple[Span, ...]:
        """Every region of guest memory the call touches, in parameter order:
        the order the callback checks them in, before anything else."""
        return tuple(
            Span(p.name, i, self.index(p.length) if p.length else None, p.size)
            for i, p in enumerate(self.params)
            if p.is_pointer
        )


# Roles of the parameters most functions share; a function may say more.
_ROLES = {
    "h": "the map's handle",
    "key_ptr": "where the key's bytes are",
    "key_len": "the key's length in bytes",
    "val_ptr": "where the value's bytes are",
    "val_len": "the value's length in bytes",
    "buf_ptr": "out: where the output buffer is",
    "buf_cap": "the output buffer's size in bytes",
    "out_h": "out: a u32, the new handle",
    "rights": "READ (1), WRITE (2) or both (3); 0 is allowed",
}

# The shape of every parameter name the ABI uses, declared once: a pointer
# with the parameter holding its length, or with the bytes it covers (u32: 4,
# u64/i64: 8).  A function's params string may use only these names.
_SHAPES: dict[str, tuple[Shape, str | int]] = {
    "h": (Shape.HANDLE, 0),
    "child_h": (Shape.HANDLE, 0),
    "name_ptr": (Shape.INPUT, "name_len"),
    "key_ptr": (Shape.INPUT, "key_len"),
    "val_ptr": (Shape.INPUT, "val_len"),
    "keys_ptr": (Shape.INPUT, "keys_len"),
    "items_ptr": (Shape.INPUT, "items_len"),
    "buf_ptr": (Shape.BUFFER, "buf_cap"),
    **{n: (Shape.LENGTH, 0) for n in ("name_len", "key_len", "val_len", "keys_len")},
    **{n: (Shape.LENGTH, 0) for n in ("items_len", "buf_cap")},
    **{n: (Shape.OUTPUT, 4) for n in ("out_h", "out_u32", "out_len", "out_used", "out_count")},
    **{n: (Shape.OUTPUT, 8) for n in ("out_i64", "out_u64")},
    "cursor_ptr": (Shape.INOUT, 8),
    **{n: (Shape.VALUE, 0) for n in ("rights", "delta", "expected", "cookie")},
}

# What the errnos every handle function shares mean.
_FAULT = (Errno.FAULT, "a pointer/length pair or an out-pointer lies outside the guest's memory")
_BADF = (Errno.BADF, "`h` was never issued to this module")
_STALE = (Errno.STALE, "`h` was closed, or moved away by an `own` pass")
_TOOBIG_KEY = (Errno.TOOBIG, "the key is longer than the module's `key_size` limit")
_IO = (Errno.IO, "a named map kept in sqlite or Redis: the store failed; nothing happened")


_QUOTA_WRITE = (
    Errno.QUOTA,
    "the write would take the module over its `bytes` or `entries` limit",
)
_QUOTA_HANDLE = (
    Errno.QUOTA,
    "the `handles` limit is reached, or the module's handle numbers are spent",
)
_TOOBIG_BOTH = (Errno.TOOBIG, "the key is over `key_size` or the value over `value_size`")


def _needs(rights: Rights) -> tuple[Errno, str]:
    names = " and ".join(r.name or "" for r in (Rights.READ, Rights.WRITE) if r in rights)
    return (Errno.ACCES, f"`h` lacks {names}")


def _on_map(
    needs: Rights,
    *answers: tuple[Errno, str],
    invalid: tuple[tuple[Errno, str], ...] = (),
    toobig: tuple[Errno, str] | None = _TOOBIG_KEY,
    io: bool = True,
) -> tuple[tuple[Errno, str], ...]:
    """The errnos of a function on the map of `h`, in the order they are checked."""
    checks = (_FAULT, *invalid, _BADF, _STALE, _needs(needs), *([toobig] if toobig else []))
    return (*checks, *answers, *([_IO] if io else []))


def _f(
    name: str,
    spec: str,
    doc: str,
    needs: Rights = Rights.NONE,
    *,
    outputs: str,
    errnos: Sequence[tuple[Errno, str]],
    roles: dict[str, str] | None = None,
    needs_of: dict[str, Rights] | None = None,
) -> AbiFunction:
    """A function from a parameter list like "h key_ptr key_len delta:i64";
    `needs` are the rights `h` must carry, `needs_of` those of other handles."""
    roles = {**_ROLES, **(roles or {})}
    rights = {"h": needs, **(needs_of or {})}
    params = []
    for item in spec.split():
        pname, _, wasm = item.partition(":")
        if pname not in _SHAPES:
            raise ValueError(f"broker/abi.py: {name}: parameter {pname!r} has no shape in _SHAPES")
        shape, arg = _SHAPES[pname]
        params.append(
            Param(
                pname,
                wasm or "i32",
                roles[pname],
                shape,
                length=arg if isinstance(arg, str) else "",
                size=arg if isinstance(arg, int) else 0,
                needs=rights.get(pname, Rights.NONE) if shape is Shape.HANDLE else Rights.NONE,
            )
        )
    return _checked(AbiFunction(name, tuple(params), doc, outputs, tuple(errnos)))


def _checked(f: AbiFunction) -> AbiFunction:
    """`f`, once its shapes agree: every pointer and length is i32, every
    length belongs to exactly one pointer of the function, right after it."""
    for i, p in enumerate(f.params):
        if p.shape is not Shape.VALUE and p.wasm != "i32":
            raise ValueError(f"broker/abi.py: {f.name}: {p.name} ({p.shape.value}) must be i32")
        if p.shape is Shape.LENGTH:
            owners = [q.name for q in f.params if q.length == p.name]
            if len(owners) != 1 or i == 0 or f.params[i - 1].name != owners[0]:
                raise ValueError(
                    f"broker/abi.py: {f.name}: length {p.name} must follow the one pointer it"
                    f" measures (found {owners or 'none'})"
                )
        if p.length and p.length not in (q.name for q in f.params):
            raise ValueError(f"broker/abi.py: {f.name}: {p.name} has no length {p.length}")
    return f


R, W = Rights.READ, Rights.WRITE
E = Errno

FUNCTIONS: tuple[AbiFunction, ...] = (
    _f(
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
            _FAULT,
            (
                E.INVAL,
                f"unknown rights bits; a name that is empty, over {MAX_NAME_LEN} bytes or not"
                " UTF-8",
            ),
            (E.ACCES, "the name is not granted to this module, or `rights` exceed the grant"),
            _QUOTA_HANDLE,
        ),
    ),
    _f(
        "new",
        "out_h",
        "a new anonymous map, owned by the caller, rights READ|WRITE",
        outputs="on OK, `out_h`: the only owning handle to the new, empty map",
        errnos=(
            _FAULT,
            (E.QUOTA, f"the `handles` or `bytes` limit is reached (a map costs {MAP_COST} bytes)"),
        ),
    ),
    _f(
        "close",
        "h",
        "give up this handle",
        outputs="none; an owning handle's map loses one reference (and is reclaimed at zero)",
        roles={"h": "the handle to give up (owning or borrowed)"},
        errnos=(
            _BADF,
            _STALE,
            (E.BUSY, "`h` is lent to a call in progress (`borrow`); it can be closed after"),
        ),
    ),
    _f(
        "clone",
        "h rights out_h",
        "a second owning handle, rights a subset of h's",
        outputs="on OK, `out_h`: a new owning handle to `h`'s map (one reference more)",
        roles={"rights": "the new handle's rights: a subset of `h`'s"},
        errnos=(
            _FAULT,
            (E.INVAL, "unknown rights bits"),
            _BADF,
            _STALE,
            (E.ACCES, "`rights` exceed `h`'s rights"),
            _QUOTA_HANDLE,
        ),
    ),
    _f(
        "get",
        "h key_ptr key_len buf_ptr buf_cap out_len",
        "copy the value into buf",
        R,
        outputs=(
            "on OK, the value at `buf_ptr` and its length at `out_len` (u32); on RANGE only the"
            " needed length at `out_len`, the buffer untouched"
        ),
        roles={"out_len": "out: a u32, the value's length"},
        errnos=_on_map(
            R,
            (E.NOENT, "the key is absent"),
            (E.TYPE, "the key holds a map reference (read it with `get_map`)"),
            (E.RANGE, "`buf_cap` is smaller than the value"),
        ),
    ),
    _f(
        "set",
        "h key_ptr key_len val_ptr val_len",
        "insert or replace",
        W,
        outputs="none",
        errnos=_on_map(W, _QUOTA_WRITE, toobig=_TOOBIG_BOTH),
    ),
    _f(
        "delete",
        "h key_ptr key_len",
        "remove; OK also when absent",
        W,
        outputs="none; a map reference removed is released",
        errnos=_on_map(W),
    ),
    _f(
        "exists",
        "h key_ptr key_len out_u32",
        "1 or 0",
        R,
        outputs="on OK, `out_u32`: 1 if the key is present (bytes or a map reference), else 0",
        roles={"out_u32": "out: a u32, 1 or 0"},
        errnos=_on_map(R),
    ),
    _f(
        "len",
        "h out_u32",
        "number of entries",
        R,
        outputs="on OK, `out_u32`: the number of entries (map references included)",
        roles={"out_u32": "out: a u32, the number of entries"},
        errnos=_on_map(R, toobig=None),
    ),
    _f(
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
        errnos=_on_map(R, (E.RANGE, "not even the next key fits in `buf_cap`"), toobig=None),
    ),
    _f(
        "incr",
        "h key_ptr key_len delta:i64 out_i64",
        "atomic add on an 8-byte LE i64",
        R | W,
        outputs="on OK, `out_i64`: the value after the addition (an absent key counts as 0)",
        roles={
            "delta": "the i64 to add (wrapping, as `i64.add`)",
            "out_i64": "out: an i64, the new value",
        },
        errnos=_on_map(
            R | W,
            (E.TYPE, "the value is not exactly 8 bytes, or is a map reference"),
            _QUOTA_WRITE,
            toobig=(E.TOOBIG, "the key is over `key_size`, or `value_size` is under 8"),
        ),
    ),
    _f(
        "version",
        "h key_ptr key_len out_u64",
        "the key's version, 0 when absent",
        R,
        outputs="on OK, `out_u64`: the key's version, 0 when absent",
        roles={"out_u64": "out: a u64, the version"},
        errnos=_on_map(R),
    ),
    _f(
        "set_if",
        "h key_ptr key_len val_ptr val_len expected:i64",
        "set only if the version equals expected",
        R | W,
        outputs="none",
        roles={"expected": "the version the key must have (0: it must be absent), as a u64"},
        errnos=_on_map(
            R | W,
            (E.CONFLICT, "the key's version is not `expected`; nothing was written"),
            _QUOTA_WRITE,
            toobig=_TOOBIG_BOTH,
        ),
    ),
    _f(
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
        errnos=_on_map(
            R,
            (E.TYPE, "a key holds a map reference (nothing is written)"),
            (E.RANGE, "`buf_cap` is smaller than the answer"),
            invalid=((E.INVAL, "a truncated key record, or the buffer overlaps the key list"),),
            toobig=(E.TOOBIG, "a key is longer than `key_size`"),
        ),
    ),
    _f(
        "set_many",
        "h items_ptr items_len",
        "batch set, all or nothing",
        W,
        outputs="none; every item is written, or none",
        roles={
            "items_ptr": "where the items are: u32 key length, key, u32 value length, value",
            "items_len": "the batch's size in bytes",
        },
        errnos=_on_map(
            W,
            (E.QUOTA, "the batch, every item counted as a new entry, is over `bytes`/`entries`"),
            invalid=((E.INVAL, "a truncated item"),),
            toobig=(E.TOOBIG, "a key is over `key_size` or a value over `value_size`"),
        ),
    ),
    _f(
        "set_map",
        "h key_ptr key_len child_h",
        "store a reference to child's map",
        W,
        outputs="none; the parent map now holds one reference to the child's map",
        roles={"child_h": "a handle to the map to store, with READ and WRITE"},
        needs_of={"child_h": R | W},
        errnos=(
            _FAULT,
            (E.BADF, "`h` or `child_h` was never issued to this module"),
            (E.STALE, "`h` or `child_h` was closed, or moved away"),
            (E.ACCES, "`h` lacks WRITE, or `child_h` lacks READ or WRITE"),
            _TOOBIG_KEY,
            (E.TYPE, "`h` is a named map kept in sqlite or Redis, which hold bytes only"),
            _QUOTA_WRITE,
        ),
    ),
    _f(
        "get_map",
        "h key_ptr key_len out_h",
        "a new owning handle to the referenced map",
        R,
        outputs="on OK, `out_h`: a new owning handle to the referenced map, with `h`'s rights",
        errnos=_on_map(
            R,
            (E.NOENT, "the key is absent"),
            (E.TYPE, "the key holds bytes, not a map reference"),
            _QUOTA_HANDLE,
        ),
    ),
    _f(
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
            _BADF,
            _STALE,
            (E.QUOTA, "the module's `watches` limit of pending registrations is reached"),
        ),
    ),
)

# What a handle passed to another module's export (own, borrow, share) can
# fail with.  A guest caller traps naming the errno; the host gets it as an
# exception.  Checked before anything passes: all the handles pass, or none.
PASS_ERRNOS: tuple[tuple[Errno, str], ...] = (
    (
        E.INVAL,
        f"more than {MAX_HANDLE_ARGS} handle parameters in one call (a declaration the manifest"
        " refuses)",
    ),
    (E.BADF, "the handle was never issued to the caller"),
    (E.STALE, "the handle was closed, or moved away"),
    (E.ACCES, "`own` of a borrowed handle: it is not the caller's to give"),
    (
        E.BUSY,
        "`own` of a handle lent to a call in progress, the same handle twice in one call where"
        " one pass is `own`, or a handle lent 65,535 times at once",
    ),
    (E.QUOTA, "no room in the receiver's handle table: the receiver is at fault"),
)

BY_NAME: dict[str, AbiFunction] = {f.name: f for f in FUNCTIONS}

# Functions the current release implements in its data plane.
IMPLEMENTED: frozenset[str] = frozenset(BY_NAME)


# --- the batch buffer formats (keys, get_many, set_many) -------------------

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


def c_header() -> str:
    """The C view of this module: errnos, rights, the shared numbers, each
    function's rights and argument shapes, and an X-macro of the functions."""
    lines = [
        "/* Generated from broker/abi.py by `python broker/abi.py`; do not edit. */",
        "#ifndef WM_ABI_GEN_H",
        "#define WM_ABI_GEN_H",
        "",
    ]
    lines += [f"#define WM_{e.name} {e.value}" for e in Errno]
    lines += [f"#define WM_ERRNO_MAX {max(Errno)}"]
    names = ", ".join(f'"{e.name}"' for e in Errno)
    lines += [f"#define WM_ERRNO_NAMES {{{names}}}", ""]
    lines += [f"#define WM_RIGHT_{r.name} {r.value}" for r in (Rights.READ, Rights.WRITE)]
    lines += [f"#define WM_RIGHTS_ALL {RIGHTS_ALL.value}", ""]
    lines += _c_shared_numbers()
    lines += _c_needs()
    lines += _c_args()
    lines.append("/* X(name, number of params) for every implemented function. */")
    lines.append("#define WM_ABI_FUNCTIONS(X) \\")
    impl = [f for f in FUNCTIONS if f.name in IMPLEMENTED]
    for f in impl:
        lines.append(f"    X({f.name}, {len(f.params)}) \\")
    lines.append("")
    lines.append(f"#define WM_ABI_COUNT {len(impl)}")
    lines.append("")
    lines.append("#endif")
    return "\n".join(lines) + "\n"


def _c_shared_numbers() -> list[str]:
    lines = ["/* How a handle passes (PassKind, or'd with WM_PASS_READONLY for ':r'). */"]
    lines += [f"#define WM_PASS_{k.name} {k.value}" for k in PassKind]
    lines += [f"#define WM_PASS_KIND {PASS_KIND_MASK}", f"#define WM_PASS_READONLY {PASS_READONLY}"]
    lines += ["", "/* A handle number's layout, and a handle table slot's state (HandleState). */"]
    lines += [
        f"#define WM_HANDLE_INDEX_BITS {HANDLE_INDEX_BITS}",
        f"#define WM_HANDLE_MAX_GEN {HANDLE_MAX_GEN}u",
    ]
    lines += [f"#define WM_H_{s.name} {s.value}" for s in HandleState]
    lines += ["", "/* What the `bytes` quota charges beyond keys and values, and fixed limits. */"]
    lines += [
        f"#define WM_ENTRY_COST {ENTRY_COST}",
        f"#define WM_MAP_COST {MAP_COST}",
        f"#define WM_MAX_NAME_LEN {MAX_NAME_LEN}u",
        f"#define WM_MAX_MODULES {MAX_MODULES}u",
        f"#define WM_MAX_HANDLE_ARGS {MAX_HANDLE_ARGS}",
        "",
    ]
    return lines


def _c_rights(needs: Rights) -> str:
    bits = [f"WM_RIGHT_{r.name}" for r in (Rights.READ, Rights.WRITE) if r in needs]
    return f"({' | '.join(bits)})" if bits else "0"


def _c_needs() -> list[str]:
    """WM_NEEDS_<FN>: the rights `h` must carry; WM_NEEDS_<FN>_<PARAM> for other handles."""
    lines = ["/* The rights each function's handles must carry (else ACCES). */"]
    for f in FUNCTIONS:
        for p in f.handles:
            suffix = "" if p.name == "h" else "_" + p.name.removesuffix("_h").upper()
            lines.append(f"#define WM_NEEDS_{f.name.upper()}{suffix} {_c_rights(p.needs)}")
    return [*lines, ""]


def _c_args() -> list[str]:
    """WM_ARGS_<fn>: the callback's view of its arguments, as block-scope
    declarations: A_<param>, each parameter's position (A_COUNT_ of them);
    S_<pointer>, each pointer's place among the spans (S_COUNT_ of them); and
    SPANS_, what bounds each span: the position of its length, or
    WM_FIXED_LEN and its size in bytes."""
    lines = [
        "/* Each callback's arguments and the guest memory it touches (native/abi.c). */",
        "#define WM_FIXED_LEN 0xFF",
    ]
    for f in FUNCTIONS:
        args = [f"A_{p.name} = {i}" for i, p in enumerate(f.params)]
        decl = [f"enum {{ {', '.join([*args, f'A_COUNT_ = {len(f.params)}'])} }};"]
        spans = f.spans
        where = [f"S_{s.param} = {i}" for i, s in enumerate(spans)]
        decl.append(f"enum {{ {', '.join([*where, f'S_COUNT_ = {len(spans)}'])} }};")
        if spans:
            rows = ", ".join(
                f"{{A_{s.param}, A_{f.params[s.length_at].name}, 0}}"
                if s.length_at is not None
                else f"{{A_{s.param}, WM_FIXED_LEN, {s.size}}}"
                for s in spans
            )
            decl.append(f"static const wm_span SPANS_[S_COUNT_] = {{{rows}}};")
        lines.append(f"#define WM_ARGS_{f.name} \\")
        lines += [f"    {d} \\" for d in decl[:-1]]
        lines.append(f"    {decl[-1]}")
    return [*lines, ""]


_C_TYPES = {"i32": "uint32_t", "i64": "int64_t"}


def guest_header() -> str:
    """The guest's C header: imports, errnos and rights."""
    out = [
        "/* wasi_map.h: the WASI-Map v1 guest ABI for C guests.",
        " * Generated from broker/abi.py by `python broker/abi.py`; do not edit. */",
        "#ifndef WASI_MAP_H",
        "#define WASI_MAP_H",
        "",
        "#include <stdint.h>",
        "",
        "typedef uint32_t wm_handle_t;",
        "typedef uint32_t wm_errno_t;",
        "",
    ]
    for e in Errno:
        out.append(f"#define WM_{e.name} {e.value}u  /* {ERRNO_MEANING[e]} */")
    out.append("")
    out += [f"#define WM_{r.name} {r.value}u" for r in (Rights.READ, Rights.WRITE)]
    out.append("")
    out.append('#define WM_IMPORT(n) __attribute__((import_module("wasi_map"), import_name(n)))')
    out.append("")
    for f in FUNCTIONS:
        args = ", ".join(f"{_C_TYPES[p.wasm]} {p.name}" for p in f.params)
        out.append(f"/* {f.doc} */")
        out.append(f'WM_IMPORT("{f.name}") wm_errno_t wm_{f.name}({args});')
    out += ["", "#endif", ""]
    return "\n".join(out)


ROOT = Path(__file__).resolve().parent.parent
GENERATED: dict[str, Callable[[str], str]] = {  # the C files; docs: broker/docgen
    "native/abi_gen.h": lambda _old: c_header(),
    "guests/include/wasi_map.h": lambda _old: guest_header(),
}


def main(argv: list[str]) -> int:
    """Write the derived files (or, with --check, report drift)."""
    check = "--check" in argv
    stale = []
    for rel, make in GENERATED.items():
        path = ROOT / rel
        old = path.read_text() if path.exists() else ""
        text = make(old)
        if old == text:
            continue
        stale.append(rel)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for rel in stale:
        print(("stale: " if check else "wrote: ") + rel)
    return 1 if (check and stale) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
