"""The Rust guest crate's generated half: guests/rust/src/abi.rs.

The raw `wasi_map` imports, the errnos as `Error` (one variant per errno)
and the rights bits, from the same tables as the C header.  The crate's
typed API (guests/rust/src/lib.rs) is written by hand on top of it.
"""

from __future__ import annotations

from .errnos import ERRNO_MEANING, Errno, Rights
from .functions import FUNCTIONS

_RUST_TYPES = {"i32": "u32", "i64": "i64"}


def variant(errno: Errno) -> str:
    """The Rust variant of an errno: `NOENT` is `Error::Noent`."""
    return errno.name.capitalize()


def rust_abi() -> str:
    """guests/rust/src/abi.rs: raw imports, `Error`, the rights bits."""
    errors = [e for e in Errno if e is not Errno.OK]
    out = [
        "// abi.rs: the WASI-Map v1 guest ABI for Rust guests, raw.",
        "// Generated from broker/abi/ by `python -m broker.abi`; do not edit.",
        "",
        "/// The rights bit to read through a handle.",
        f"pub const READ: u32 = {Rights.READ.value};",
        "/// The rights bit to write through a handle.",
        f"pub const WRITE: u32 = {Rights.WRITE.value};",
        "",
        "/// What an ABI function answered other than OK: one variant per errno.",
        "#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]",
        "pub enum Error {",
    ]
    for e in errors:
        out += [f"    /// {ERRNO_MEANING[e]}", f"    {variant(e)} = {e.value},"]
    out += [
        "}",
        "",
        "impl Error {",
        "    /// The errno `code` as an `Error`; None for 0 (OK) or a code unknown here.",
        "    pub const fn from_errno(code: u32) -> Option<Error> {",
        "        match code {",
    ]
    out += [f"            {e.value} => Some(Error::{variant(e)})," for e in errors]
    out += [
        "            _ => None,",
        "        }",
        "    }",
        "",
        "    /// The errno's name as the ABI spells it (`NOENT`).",
        "    pub const fn name(self) -> &'static str {",
        "        match self {",
    ]
    out += [f'            Error::{variant(e)} => "{e.name}",' for e in errors]
    out += [
        "        }",
        "    }",
        "",
        "    /// What the errno means.",
        "    pub const fn meaning(self) -> &'static str {",
        "        match self {",
    ]
    out += [f'            Error::{variant(e)} => "{ERRNO_MEANING[e]}",' for e in errors]
    out += ["        }", "    }", "}", ""]
    out.append("/// The imports themselves: each returns its errno (0 is OK).")
    out += ["pub mod raw {", '    #[link(wasm_import_module = "wasi_map")]', '    extern "C" {']
    for i, f in enumerate(FUNCTIONS):
        args = ", ".join(f"{p.name}: {_RUST_TYPES[p.wasm]}" for p in f.params)
        out += [""] if i else []
        out += [f"        /// {f.doc}", f"        pub fn {f.name}({args}) -> u32;"]
    out += ["    }", "}", ""]
    return "\n".join(out)
