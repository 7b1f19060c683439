"""The app manifest (docs/reference/manifest.md): TOML in, checked records out.

Every problem is a `ManifestError` of one line naming the file and the key
(quoted as TOML would, so a name with a newline stays on the line), and
quoting no more than a few hundred characters of the value.  The file is
read by broker/input_file.py (a regular file of at most 1 MiB) and parsed
by broker/toml_guard.py (no nesting or keys that tomllib chokes on).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import input_file, stores, toml_guard
from .abi import Rights, parse_rights
from .errors import ManifestError
from .gc import MAX_THRESHOLD as MAX_GC_THRESHOLD
from .limits import DEFAULT_LIMITS, Limits
from .ownership import Pass, parse_kind, parse_pass

MAX_NAME_LEN = 1024  # bytes of UTF-8, as native/wm_core.h
SHOWN_KEY_LEN = 64  # characters of a key's part in a message
SHOWN_PROBLEM_LEN = 300  # characters of a problem (which may quote a huge value)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _shorten(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown(value: object) -> str:
    """A value from the file, as a message quotes it."""
    return _shorten(repr(value), 40)


def _escape(char: str) -> str:
    """A character as a TOML string shows it: itself if printable, else escaped."""
    if char.isprintable():
        return char
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def shown_key(name: str) -> str:
    """A key's part as TOML writes it: bare, else quoted, on one short line."""
    if _BARE_KEY.fullmatch(name):
        return name
    quoted = json.dumps(_shorten(name, SHOWN_KEY_LEN), ensure_ascii=False)
    return "".join(_escape(c) for c in quoted)


MAX_MODULE_NAME_LEN = 255  # characters


def module_name_problem(name: object) -> str | None:
    """Why `name` cannot name a module, or None: it names links ("a.f"), messages
    and trace events, which must stay one line."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_MODULE_NAME_LEN:
        return f"a module name must be 1..{MAX_MODULE_NAME_LEN} characters"
    if "." in name or not name.isprintable():
        return "a module name must have no '.' and no unprintable characters"
    return None


def shown_name(name: object) -> str:
    """A name as a message quotes it: repr, cut short (a message stays one line)."""
    return _shown(name)


def map_name_problem(name: object) -> str | None:
    """Why `name` cannot name a map, or None."""
    if not isinstance(name, str):
        return f"a map name must be a str, not {type(name).__name__}"
    try:
        size = len(name.encode())
    except UnicodeEncodeError:
        return "a map name must be valid Unicode text (no lone surrogates)"
    if not 0 < size <= MAX_NAME_LEN:
        return f"a map name must be 1..{MAX_NAME_LEN} bytes of UTF-8"
    return None


@dataclass(frozen=True)
class ExportDecl:
    """How an export's parameters and results pass: plain types or handle kinds."""

    params: tuple[str, ...]
    results: tuple[str, ...]

    @property
    def param_passes(self) -> tuple[Pass, ...]:
        return tuple(parse_pass(k, result=False) for k in self.params)

    @property
    def result_passes(self) -> tuple[Pass, ...]:
        return tuple(parse_pass(k, result=True) for k in self.results)


@dataclass(frozen=True)
class ModuleSpec:
    """One `[modules.NAME]` table."""

    name: str
    path: Path
    grants: dict[str, Rights] = field(default_factory=dict)
    limits: Limits = DEFAULT_LIMITS
    exports: dict[str, ExportDecl] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """A whole app: its store and its modules, in file order."""

    path: Path
    store_url: str = field(default="memory:", repr=False)  # it may hold a password
    limits: Limits = DEFAULT_LIMITS
    strict_borrows: bool = False
    gc_threshold: int = 10_000
    modules: dict[str, ModuleSpec] = field(default_factory=dict)


class _Reader:
    """Walks the parsed TOML, turning every problem into a one-line error."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> ManifestError:
        return ManifestError(f"{self.path}: {key}: {_shorten(problem, SHOWN_PROBLEM_LEN)}")

    @staticmethod
    def sub(key: str, name: str) -> str:
        """The key of `name` inside the table at `key` ("" for the top)."""
        return f"{key}.{shown_key(name)}" if key else shown_key(name)

    def integer(self, value: object, key: str, ceiling: int) -> int:
        """`value`, an integer from 0 to `ceiling` (not a bool)."""
        if type(value) is not int or not 0 <= value <= ceiling:
            raise self.fail(key, f"must be an integer from 0 to {ceiling}, not {_shown(value)}")
        return value

    def table(self, value: object, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table, not {type(value).__name__}")
        return value

    def only(self, table: dict[str, Any], key: str, allowed: tuple[str, ...]) -> None:
        for name in table:
            if name not in allowed:
                raise self.fail(self.sub(key, name), f"unknown key (allowed: {', '.join(allowed)})")

    def limits(self, value: object, key: str, base: Limits) -> Limits:
        table = self.table(value, key)
        try:
            return base.merged(table)
        except (ValueError, TypeError) as exc:
            raise self.fail(key, str(exc)) from None

    def module(self, name: str, value: object, defaults: Limits) -> ModuleSpec:
        key = self.sub("modules", name)
        problem = module_name_problem(name)
        if problem:
            raise self.fail(key, problem)
        table = self.table(value, key)
        self.only(table, key, ("path", "grants", "limits", "exports"))
        path = table.get("path")
        if not isinstance(path, str) or not path:
            raise self.fail(f"{key}.path", "required: the module's .wat or .wasm file")
        if "\0" in path:
            raise self.fail(f"{key}.path", "the file name contains a NUL byte")
        grants: dict[str, Rights] = {}
        for gname, rights in self.table(table.get("grants", {}), f"{key}.grants").items():
            try:
                grants[gname] = parse_rights(rights)
            except ValueError as exc:
                raise self.fail(self.sub(f"{key}.grants", gname), str(exc)) from None
            problem = map_name_problem(gname)
            if problem:
                raise self.fail(self.sub(f"{key}.grants", gname), problem)
        limits = self.limits(table.get("limits", {}), f"{key}.limits", defaults)
        exports = {
            ename: self.export(self.sub(f"{key}.exports", ename), decl)
            for ename, decl in self.table(table.get("exports", {}), f"{key}.exports").items()
        }
        return ModuleSpec(name, (self.path.parent / path), grants, limits, exports)

    def export(self, key: str, value: object) -> ExportDecl:
        table = self.table(value, key)
        self.only(table, key, ("params", "results"))
        kinds: dict[str, tuple[str, ...]] = {}
        for part in ("params", "results"):
            items = table.get(part, [])
            if not isinstance(items, list):
                raise self.fail(f"{key}.{part}", "must be a list of kinds")
            try:
                kinds[part] = tuple(parse_kind(k, result=part == "results") for k in items)
            except ValueError as exc:
                raise self.fail(f"{key}.{part}", str(exc)) from None
        return ExportDecl(kinds["params"], kinds["results"])


def module_key(name: str) -> str:
    """The manifest key of a module's table: `modules.NAME`, quoted as TOML would."""
    return _Reader.sub("modules", name)


def module_file_problem(manifest: Manifest, spec: ModuleSpec) -> str | None:
    """The one-line error for a module path that names no file, or None.

    Names the manifest, the key and the path as resolved, so a path
    relative to the manifest's folder is not mistaken for one relative to
    the working directory; any other reason a file cannot be read is the
    module's own error when it is compiled."""
    if os.path.lexists(spec.path):
        return None
    where = os.path.abspath(spec.path)
    return f"{manifest.path}: {module_key(spec.name)}.path: no such file: {where}"


def load_manifest(path: str | Path) -> Manifest:
    """Read and check an app manifest; raises ManifestError."""
    path = Path(path)
    try:
        raw = input_file.read_regular(path, input_file.MAX_MANIFEST_SIZE)
    except input_file.UnreadableFile as exc:
        raise ManifestError(f"{path}: cannot read manifest: {exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = f"byte 0x{raw[exc.start]:02x} at offset {exc.start}"
        raise ManifestError(f"{path}: invalid TOML: not UTF-8 ({where})") from None
    try:
        data = toml_guard.loads(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError among them
        raise ManifestError(f"{path}: invalid TOML: {exc}") from None
    reader = _Reader(path)
    reader.only(data, "", ("store", "broker", "limits", "modules"))
    options = reader.table(data.get("broker", {}), "broker")
    reader.only(options, "broker", ("strict_borrows", "gc_threshold"))
    strict = options.get("strict_borrows", False)
    if not isinstance(strict, bool):
        raise reader.fail("broker.strict_borrows", f"must be true or false, not {_shown(strict)}")
    threshold = reader.integer(
        options.get("gc_threshold", 10_000), "broker.gc_threshold", MAX_GC_THRESHOLD
    )
    store = reader.table(data.get("store", {}), "store")
    reader.only(store, "store", ("url",))
    url = store.get("url", "memory:")
    if not isinstance(url, str):
        raise reader.fail("store.url", f"must be a string, not {_shown(url)}")
    problem = stores.url_problem(url)
    if problem:
        shown = _shorten(repr(stores.redact_url(url)), 200)
        raise reader.fail("store.url", f"{problem}, not {shown}")
    url = stores.resolve_url(url, path.parent)
    limits = reader.limits(data.get("limits", {}), "limits", DEFAULT_LIMITS)
    modules_table = reader.table(data.get("modules", {}), "modules")
    if not modules_table:
        raise reader.fail("modules", "an app needs at least one [modules.NAME] table")
    modules = {name: reader.module(name, value, limits) for name, value in modules_table.items()}
    return Manifest(path, url, limits, strict, threshold, modules)
