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

from . import gc as cycle_gc
from . import input_file, module_spec, stores, toml_guard
from .errors import ManifestError
from .limits import DEFAULT_LIMITS, Limits
from .module_spec import SHOWN_PROBLEM_LEN, ModuleSpec, SpecError
from .names import shorten, shown_name

SHOWN_KEY_LEN = 64  # characters of a key's part in a message
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


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
    quoted = json.dumps(shorten(name, SHOWN_KEY_LEN), ensure_ascii=False)
    return "".join(_escape(c) for c in quoted)


@dataclass(frozen=True)
class Manifest:
    """A whole app: its store and its modules, in file order."""

    path: Path
    store_url: str = field(default="memory:", repr=False)  # it may hold a password
    limits: Limits = DEFAULT_LIMITS
    strict_borrows: bool = False
    gc_threshold: int = cycle_gc.DEFAULT_THRESHOLD
    modules: dict[str, ModuleSpec] = field(default_factory=dict)


class _Reader:
    """Walks the parsed TOML, turning every problem into a one-line error."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> ManifestError:
        return ManifestError(f"{self.path}: {key}: {shorten(problem, SHOWN_PROBLEM_LEN)}")

    @staticmethod
    def sub(key: str, name: str) -> str:
        """The key of `name` inside the table at `key` ("" for the top)."""
        return f"{key}.{shown_key(name)}" if key else shown_key(name)

    def table(self, value: object, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table, not {type(value).__name__}")
        return value

    def only(self, table: dict[str, Any], key: str, allowed: tuple[str, ...]) -> None:
        for name in table:
            if name not in allowed:
                raise self.fail(self.sub(key, name), f"unknown key (allowed: {', '.join(allowed)})")

    def spec_failed(self, key: str, exc: SpecError) -> ManifestError:
        """A module spec's problem, at its key under the table at `key`."""
        for part in exc.where if exc.where != ("name",) else ():
            key = self.sub(key, str(part))
        return self.fail(key, exc.problem)

    def limits(self, value: object) -> Limits:
        """The top-level [limits]: every module's defaults."""
        try:
            return module_spec.check_limits(value, DEFAULT_LIMITS)
        except SpecError as exc:
            raise self.spec_failed("", exc) from None

    def module(self, name: str, value: object, defaults: Limits) -> ModuleSpec:
        key = self.sub("modules", name)
        try:
            module_spec.check_name(name)
            table = self.table(value, key)
            self.only(table, key, ("path", "grants", "limits", "exports", "instances", "on_trap"))
            path = table.get("path")
            if not isinstance(path, str) or not path:
                raise self.fail(f"{key}.path", "required: the module's .wat or .wasm file")
            if "\0" in path:
                raise self.fail(f"{key}.path", "the file name contains a NUL byte")
            return module_spec.module_spec(
                name,
                self.path.parent / path,
                grants=table.get("grants"),
                limits=table.get("limits"),
                exports=table.get("exports"),
                instances=table.get("instances", 1),
                on_trap=table.get("on_trap", "replace"),
                base_limits=defaults,
                text_rights=True,
            )
        except SpecError as exc:
            raise self.spec_failed(key, exc) from None


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
        raise reader.fail(
            "broker.strict_borrows", f"must be true or false, not {shown_name(strict)}"
        )
    threshold = options.get("gc_threshold", cycle_gc.DEFAULT_THRESHOLD)
    problem = cycle_gc.threshold_problem(threshold)
    if problem:
        raise reader.fail("broker.gc_threshold", problem)
    store = reader.table(data.get("store", {}), "store")
    reader.only(store, "store", ("url",))
    url = store.get("url", "memory:")
    if not isinstance(url, str):
        raise reader.fail("store.url", f"must be a string, not {shown_name(url)}")
    problem = stores.url_problem(url)
    if problem:
        shown = shorten(repr(stores.redact_url(url)), 200)
        raise reader.fail("store.url", f"{problem}, not {shown}")
    url = stores.resolve_url(url, path.parent)
    limits = reader.limits(data.get("limits", {}))
    modules_table = reader.table(data.get("modules", {}), "modules")
    if not modules_table:
        raise reader.fail("modules", "an app needs at least one [modules.NAME] table")
    modules = {name: reader.module(name, value, limits) for name, value in modules_table.items()}
    return Manifest(path, url, limits, strict, threshold, modules)
