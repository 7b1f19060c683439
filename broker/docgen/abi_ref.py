"""The ABI's reference tables, from broker/abi/ and broker/limits.py."""

from __future__ import annotations

from dataclasses import fields

from ..abi import ERRNO_MEANING, FUNCTIONS, PASS_ERRNOS, AbiFunction, Errno, Rights
from ..limits import CEILINGS, DEFAULT_LIMITS, LIMIT_DOCS, ON_QUOTA


def _rights(needs: Rights) -> str:
    return " and ".join(r.name or "" for r in (Rights.READ, Rights.WRITE) if r in needs) or "none"


def _signature(f: AbiFunction) -> str:
    params = ", ".join(f"{p.name}: {p.wasm}" for p in f.params)
    return f"{f.name}({params}) -> errno: i32"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def summary() -> str:
    """One row per function: parameters, rights on `h`, a link to its reference."""
    rows = ["| function | params | rights on `h` |", "|---|---|---|"]
    for f in FUNCTIONS:
        params = ", ".join(p.name if p.wasm == "i32" else f"{p.name} {p.wasm}" for p in f.params)
        link = f"[`{f.name}`](reference/functions.md#{f.name})"
        rows.append(f"| {link} | ({params}) → errno | {_rights(f.needs)} |")
    return "\n".join(rows) + "\n"


def _needs_line(f: AbiFunction) -> str:
    if "h" not in (p.name for p in f.params):
        return ""
    return f" Rights needed on `h`: {_rights(f.needs)}."


def _function(f: AbiFunction) -> list[str]:
    out = [
        f"### {f.name}",
        "",
        f"`{_signature(f)}`",
        "",
        f"{f.doc[0].upper()}{f.doc[1:]}.{_needs_line(f)}",
        "",
        "| parameter | type | role |",
        "|---|---|---|",
    ]
    out += [f"| `{p.name}` | {p.wasm} | {_cell(p.role)} |" for p in f.params]
    out += ["", f"Outputs: {f.outputs}.", "", "| errno | name | here it means |", "|---|---|---|"]
    out.append("| 0 | `OK` | done |")
    out += [f"| {e.value} | `{e.name}` | {_cell(text)} |" for e, text in f.errnos]
    return [*out, ""]


def functions() -> str:
    """Every function: signature, parameters, rights, outputs, errnos in check order."""
    lines: list[str] = []
    for f in FUNCTIONS:
        lines += _function(f)
    return "\n".join(lines)


def errno_table() -> str:
    """Every errno: number, name, meaning, and the functions that can return it."""
    rows = ["| number | name | meaning | returned by |", "|---|---|---|---|"]
    for e in Errno:
        users = [f"`{f.name}`" for f in FUNCTIONS if e in f.errno_set]
        who = "every function" if e is Errno.OK else ", ".join(users) or "—"
        rows.append(f"| {e.value} | `{e.name}` | {_cell(ERRNO_MEANING[e])} | {who} |")
    return "\n".join(rows) + "\n"


def pass_errnos() -> str:
    """What passing a handle to another module's export can fail with."""
    rows = ["| errno | name | when |", "|---|---|---|"]
    rows += [f"| {e.value} | `{e.name}` | {_cell(text)} |" for e, text in PASS_ERRNOS]
    return "\n".join(rows) + "\n"


def _number(n: int, unit: str) -> str:
    """A limit's value as a reader wants it: exact, and in KiB/MiB/GiB or as a power of two."""
    if unit == "bytes" and n < 1 << 40:
        for shift, name in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
            if n >= 1 << shift and n % (1 << shift) == 0:
                return f"{n:,} ({n >> shift} {name})"
    for p in range(16, 64):
        if n in (1 << p, (1 << p) - 1):
            return f"{n:,} (2^{p}{' − 1' if n & 1 else ''})"
    return f"{n:,}"


def limits_table() -> str:
    """Every per-module limit: manifest key, default, range, what it bounds, when reached."""
    rows = [
        "| limit | default | range | unit | bounds | when reached |",
        "|---|---|---|---|---|---|",
    ]
    for fld in fields(DEFAULT_LIMITS):
        name, doc = fld.name, LIMIT_DOCS[fld.name]
        default = getattr(DEFAULT_LIMITS, name)
        if name in CEILINGS:
            shown = _number(default, doc.unit)
            allowed = f"0 … {_number(CEILINGS[name], doc.unit)}"
        else:
            shown, allowed = f'"{default}"', " or ".join(f'"{v}"' for v in ON_QUOTA)
        rows.append(
            f"| `{name}` | {shown} | {allowed} | {doc.unit} | {_cell(doc.bounds)}"
            f" | {_cell(doc.reached)} |"
        )
    return "\n".join(rows) + "\n"
