"""The app manifest's keys: type, default, example, meaning.

The manifest reader (broker/manifest.py) does not describe its keys, so
they are declared here; tests/tools/test_docs_reference.py checks this list
against what the reader accepts, its defaults, and that every example loads.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..abi import MAX_INSTANCES


@dataclass(frozen=True)
class Key:
    """One manifest key.  `table` is where it sits ("" for the top level)."""

    table: str
    name: str
    type: str
    default: str  # as TOML, or a phrase for "required" and the like
    example: str  # as TOML, a value that loads
    meaning: str

    @property
    def path(self) -> str:
        return f"{self.table}.{self.name}" if self.table else self.name


MODULE = "modules.NAME"
EXPORT = "modules.NAME.exports.EXPORT"

KEYS: tuple[Key, ...] = (
    Key("", "store", "table", "{}", '{ url = "memory:" }', "where named maps live"),
    Key("", "broker", "table", "{}", "{ strict_borrows = true }", "options of the broker itself"),
    Key(
        "",
        "limits",
        "table of limits",
        "{} (every limit at its default)",
        "{ handles = 1000 }",
        "defaults for every module's limits; the keys are the limits of [limits.md](limits.md)",
    ),
    Key(
        "",
        "modules",
        "table of modules",
        "required",
        '{ a = { path = "a.wat" } }',
        "the app's modules, one `[modules.NAME]` table each; at least one",
    ),
    Key(
        "store",
        "url",
        "string",
        '"memory:"',
        '"sqlite:state.db"',
        "`memory:` (in this process), `sqlite:PATH` or `leveldb:PATH` (PATH relative to the"
        " manifest), `redis://HOST:PORT/DB` or `redis+cluster://HOST:PORT,...`;"
        " see [stores.md](../stores.md)",
    ),
    Key(
        "broker",
        "strict_borrows",
        "boolean",
        "false",
        "true",
        "a callee that leaves a borrowed handle open traps (and is torn down) instead of"
        " the broker closing the handle for it",
    ),
    Key(
        "broker",
        "gc_threshold",
        "integer, 0 … 2^64 − 1",
        "10000",
        "500",
        "releases that may have cut a cycle loose before the cycle collector runs by"
        " itself; 0: only on demand",
    ),
    Key(
        MODULE,
        "path",
        "string",
        "required",
        '"counter.wat"',
        "the module's `.wat` or `.wasm` file, relative to the manifest",
    ),
    Key(
        MODULE,
        "grants",
        'table: map name → "r", "w" or "rw"',
        "{} (no named maps)",
        '{ hits = "rw", config = "r" }',
        "the named maps the module may `open`, and the most rights it may ask for;"
        " a name is 1 … 1024 bytes of UTF-8",
    ),
    Key(
        MODULE,
        "limits",
        "table of limits",
        "the top-level `limits`",
        "{ time_ms = 500 }",
        "this module's limits, over the top-level ones",
    ),
    Key(
        MODULE,
        "exports",
        "table: export name → declaration",
        "{} (every export plain)",
        '{ ingest = { params = ["own", "i32"], results = ["i32"] } }',
        "which parameters and results of the module's exports are handles, and how they pass",
    ),
    Key(
        MODULE,
        "instances",
        f"integer, 1 … {MAX_INSTANCES}",
        "1",
        "4",
        "how many instances of the module serve calls at once, each with its own memory,"
        " handles and quotas; named maps are shared ([instances.md](../instances.md))",
    ),
    Key(
        MODULE,
        "on_trap",
        '"replace" or "stop"',
        '"replace"',
        '"stop"',
        "what becomes of an instance a trap tore down: a new one takes its place, or it"
        " stays torn down (its memory kept to inspect) and calls into it fail until the"
        " module is loaded again",
    ),
    Key(
        EXPORT,
        "params",
        "list of kinds",
        "[] (all plain)",
        '["borrow:r", "i64"]',
        "one kind per parameter, from the first: `i32` or `i64` (plain), or `own`, `borrow`,"
        " `share`, each optionally `:r` (read-only), on an `i32`; missing ones are plain",
    ),
    Key(
        EXPORT,
        "results",
        "list of kinds",
        "[] (all plain)",
        '["own"]',
        "one kind per result: `i32`, `i64`, or `own` / `share` (optionally `:r`); never `borrow`",
    ),
)


def table() -> str:
    rows = ["| key | type | default | example | meaning |", "|---|---|---|---|---|"]
    for k in KEYS:
        cells = (f"`{k.path}`", k.type, k.default, f"`{k.example}`", k.meaning)
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"
