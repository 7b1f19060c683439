"""How an ABI function is declared: its parameters' shapes and roles, and
the errnos most functions share.

`declare` builds an AbiFunction from a parameter list and refuses one whose
shapes do not add up; broker/abi/functions.py declares every function with it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from .errnos import Errno, Rights

WHERE = "broker/abi/functions.py"  # where the declarations are, for a refusal's message


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
ROLES = {
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
SHAPES: dict[str, tuple[Shape, str | int]] = {
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
FAULT = (Errno.FAULT, "a pointer/length pair or an out-pointer lies outside the guest's memory")
BADF = (Errno.BADF, "`h` was never issued to this module")
STALE = (Errno.STALE, "`h` was closed, or moved away by an `own` pass")
TOOBIG_KEY = (Errno.TOOBIG, "the key is longer than the module's `key_size` limit")
_IO = (Errno.IO, "a named map kept in sqlite or Redis: the store failed; nothing happened")


QUOTA_WRITE = (
    Errno.QUOTA,
    "the write would take the module over its `bytes` or `entries` limit",
)
QUOTA_HANDLE = (
    Errno.QUOTA,
    "the `handles` limit is reached, or the module's handle numbers are spent",
)
TOOBIG_BOTH = (Errno.TOOBIG, "the key is over `key_size` or the value over `value_size`")


def _needs(rights: Rights) -> tuple[Errno, str]:
    names = " and ".join(r.name or "" for r in (Rights.READ, Rights.WRITE) if r in rights)
    return (Errno.ACCES, f"`h` lacks {names}")


def on_map(
    needs: Rights,
    *answers: tuple[Errno, str],
    invalid: tuple[tuple[Errno, str], ...] = (),
    toobig: tuple[Errno, str] | None = TOOBIG_KEY,
    io: bool = True,
) -> tuple[tuple[Errno, str], ...]:
    """The errnos of a function on the map of `h`, in the order they are checked."""
    checks = (FAULT, *invalid, BADF, STALE, _needs(needs), *([toobig] if toobig else []))
    return (*checks, *answers, *([_IO] if io else []))


def declare(
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
    roles = {**ROLES, **(roles or {})}
    rights = {"h": needs, **(needs_of or {})}
    params = []
    for item in spec.split():
        pname, _, wasm = item.partition(":")
        if pname not in SHAPES:
            raise ValueError(f"{WHERE}: {name}: parameter {pname!r} has no shape in SHAPES")
        shape, arg = SHAPES[pname]
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
            raise ValueError(f"{WHERE}: {f.name}: {p.name} ({p.shape.value}) must be i32")
        if p.shape is Shape.LENGTH:
            owners = [q.name for q in f.params if q.length == p.name]
            if len(owners) != 1 or i == 0 or f.params[i - 1].name != owners[0]:
                raise ValueError(
                    f"{WHERE}: {f.name}: length {p.name} must follow the one pointer it"
                    f" measures (found {owners or 'none'})"
                )
        if p.length and p.length not in (q.name for q in f.params):
            raise ValueError(f"{WHERE}: {f.name}: {p.name} has no length {p.length}")
    return f
