"""The Node.js host's ABI table: hosts/node/src/abi.js.

The errnos, rights, the shared numbers, the default limits and every function's parameters
(shapes, spans, the rights each handle needs, its errnos in the order it
checks them), from the same tables as the C core's native/abi_gen.h, so
the two hosts cannot drift apart on what the ABI is.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from ..limits import CEILINGS, DEFAULT_LIMITS, ON_QUOTA
from .constants import (
    DROP_EXPORT,
    ENTRY_COST,
    HANDLE_INDEX_BITS,
    HANDLE_MAX_GEN,
    IMPORT_MODULE,
    MAP_COST,
    MAX_HANDLE_ARGS,
    MAX_INSTANCES,
    MAX_MODULES,
    MAX_NAME_LEN,
    PASS_KIND_MASK,
    PASS_READONLY,
    PassKind,
)
from .declaration import AbiFunction
from .errnos import ERRNO_MEANING, Errno, Rights
from .functions import FUNCTIONS


def _js(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _function(f: AbiFunction) -> dict[str, object]:
    return {
        "name": f.name,
        "doc": f.doc,
        "params": [
            {
                "name": p.name,
                "wasm": p.wasm,
                "shape": p.shape.name.lower(),
                **({"length": p.length} if p.length else {}),
                **({"size": p.size} if p.size else {}),
                **({"needs": p.needs.value} if p.needs else {}),
            }
            for p in f.params
        ],
        "errnos": [e.name for e, _ in f.errnos],
    }


def _limits() -> list[str]:
    """The default limits, their ceilings and the on_quota choices (broker/limits.py)."""
    return [
        "/** A module's limits by default, the largest each may be, and on_quota's choices. */",
        f"export const DEFAULT_LIMITS = Object.freeze({_js(asdict(DEFAULT_LIMITS))});",
        f"export const LIMIT_CEILINGS = Object.freeze({_js(CEILINGS)});",
        f"export const ON_QUOTA = Object.freeze({_js(list(ON_QUOTA))});",
        "",
    ]


def node_abi() -> str:
    """hosts/node/src/abi.js: an ES module of constants and the function table."""
    out = [
        "// abi.js: the WASI-Map v1 ABI, as the Node.js host reads it.",
        "// Generated from broker/abi/ by `python -m broker.abi`; do not edit.",
        "",
        f"export const IMPORT_MODULE = {_js(IMPORT_MODULE)};",
        f"export const DROP_EXPORT = {_js(DROP_EXPORT)};",
        "",
        "/** Errno values every ABI function returns. */",
        "export const Errno = Object.freeze({",
        *[f"  {e.name}: {e.value}," for e in Errno],
        "});",
        "",
        "/** What each errno means (by number). */",
        "export const ERRNO_MEANING = Object.freeze([",
        *[f"  {_js(ERRNO_MEANING[e])}," for e in Errno],
        "]);",
        "",
        "/** Rights bits a handle carries. */",
        f"export const READ = {Rights.READ.value};",
        f"export const WRITE = {Rights.WRITE.value};",
        f"export const RIGHTS_ALL = {(Rights.READ | Rights.WRITE).value};",
        "",
        "/** How a declared export parameter or result passes a handle. */",
        "export const PassKind = Object.freeze({",
        *[f"  {k.name}: {k.value}," for k in PassKind],
        "});",
        f"export const PASS_KIND_MASK = {PASS_KIND_MASK};",
        f"export const PASS_READONLY = {PASS_READONLY};",
        "",
        "/** A handle number: slot index in the low bits, generation (1..max) above. */",
        f"export const HANDLE_INDEX_BITS = {HANDLE_INDEX_BITS};",
        f"export const HANDLE_MAX_GEN = {HANDLE_MAX_GEN};",
        "",
        "/** What the `bytes` quota charges beyond key and value bytes, and fixed limits. */",
        f"export const ENTRY_COST = {ENTRY_COST};",
        f"export const MAP_COST = {MAP_COST};",
        f"export const MAX_NAME_LEN = {MAX_NAME_LEN};",
        f"export const MAX_MODULES = {MAX_MODULES};",
        f"export const MAX_INSTANCES = {MAX_INSTANCES};",
        f"export const MAX_HANDLE_ARGS = {MAX_HANDLE_ARGS};",
        "",
        *_limits(),
        "/**",
        " * Every function of the import module: its parameters (name, Wasm type,",
        " * shape; `length` names an input's or buffer's length parameter, `size` a",
        " * fixed output's bytes, `needs` a handle's rights) and its errnos in the",
        " * order it checks them.",
        " */",
        "export const FUNCTIONS = Object.freeze([",
        *[f"  {_js(_function(f))}," for f in FUNCTIONS],
        "]);",
        "",
    ]
    return "\n".join(out)
