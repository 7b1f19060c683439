"""The WASI-Map v1 guest ABI, declared once: functions, errnos, rights.

Everything else is derived from this module: the C registration table
(`native/abi_gen.h`), the guest header (`guests/include/wasi_map.h`), the
`check` command and the table in `docs/abi.md`.  Regenerate the derived
files with `python broker/abi.py`; a test fails when they drift.
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
    """Errno values every ABI function returns (fixed by the spec)."""

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


@dataclass(frozen=True)
class Param:
    """One parameter of an ABI function: its name and Wasm type."""

    name: str
    wasm: str  # "i32" or "i64"


@dataclass(frozen=True)
class AbiFunction:
    """One function of the `wasi_map` import module."""

    name: str
    params: tuple[Param, ...]
    doc: str
    needs: Rights = Rights.NONE  # rights the handle `h` must carry

    @property
    def param_types(self) -> tuple[str, ...]:
        return tuple(p.wasm for p in self.params)

    @property
    def result_types(self) -> tuple[str, ...]:
        return ("i32",)


def _f(name: str, spec: str, doc: str, needs: Rights = Rights.NONE) -> AbiFunction:
    params = []
    for item in spec.split():
        pname, _, wasm = item.partition(":")
        params.append(Param(pname, wasm or "i32"))
    return AbiFunction(name, tuple(params), doc, needs)


R, W = Rights.READ, Rights.WRITE

FUNCTIONS: tuple[AbiFunction, ...] = (
    _f("open", "name_ptr name_len rights out_h", "open a named map granted to this module"),
    _f("new", "out_h", "a new anonymous map, owned by the caller, rights READ|WRITE"),
    _f("close", "h", "give up this handle"),
    _f("clone", "h rights out_h", "a second owning handle, rights a subset of h's"),
    _f("get", "h key_ptr key_len buf_ptr buf_cap out_len", "copy the value into buf", R),
    _f("set", "h key_ptr key_len val_ptr val_len", "insert or replace", W),
    _f("delete", "h key_ptr key_len", "remove; OK also when absent", W),
    _f("exists", "h key_ptr key_len out_u32", "1 or 0", R),
    _f("len", "h out_u32", "number of entries", R),
    _f("keys", "h cursor_ptr buf_ptr buf_cap out_used out_count", "one page of keys", R),
    _f("incr", "h key_ptr key_len delta:i64 out_i64", "atomic add on an 8-byte LE i64", R | W),
    _f("version", "h key_ptr key_len out_u64", "the key's version, 0 when absent", R),
    _f(
        "set_if",
        "h key_ptr key_len val_ptr val_len expected:i64",
        "set only if the version equals expected",
        R | W,
    ),
    _f("get_many", "h keys_ptr keys_len buf_ptr buf_cap out_used", "batch get", R),
    _f("set_many", "h items_ptr items_len", "batch set, all or nothing", W),
    _f("set_map", "h key_ptr key_len child_h", "store a reference to child's map", W),
    _f("get_map", "h key_ptr key_len out_h", "a new owning handle to the referenced map", R),
    _f("watch_drop", "h cookie:i64", "call wasi_map_on_drop(cookie) when the map is reclaimed"),
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
    """The C view of this table: errno and rights constants and an X-macro."""
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


def markdown_table() -> str:
    """The function table of docs/abi.md."""
    rows = ["| function | params | rights on `h` |", "|---|---|---|"]
    for f in FUNCTIONS:
        params = ", ".join(p.name if p.wasm == "i32" else f"{p.name} {p.wasm}" for p in f.params)
        needs = ", ".join(r.name or "" for r in Rights if r and r in f.needs) or "-"
        rows.append(f"| `{f.name}` | ({params}) → errno | {needs} |")
    return "\n".join(rows) + "\n"


TABLE_START, TABLE_END = "<!-- abi-table: generated -->\n", "<!-- /abi-table -->\n"


def docs_with_table(old: str) -> str:
    """docs/abi.md with its generated function table brought up to date."""
    head, _, rest = old.partition(TABLE_START)
    _, _, tail = rest.partition(TABLE_END)
    return head + TABLE_START + markdown_table() + TABLE_END + tail


ROOT = Path(__file__).resolve().parent.parent
GENERATED: dict[str, Callable[[str], str]] = {
    "native/abi_gen.h": lambda _old: c_header(),
    "guests/include/wasi_map.h": lambda _old: guest_header(),
    "docs/abi.md": docs_with_table,
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
