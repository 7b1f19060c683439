"""A module's spec: what loading one module needs, checked in one place.

`Broker.load(...)` builds a `ModuleSpec` from its arguments, and the app
manifest (broker/manifest.py) one from each `[modules.NAME]` table, both
through `module_spec()`: the module's name, its grants (map names and
rights), its limits (over a base: the broker's, or the manifest's
`[limits]`) and its export declarations are checked here and nowhere else.

A problem is a `SpecError`: where in the spec it is (`("grants", NAME)`,
`("exports", NAME, "params")`, ...) and what is wrong, in words both
callers keep.  The manifest puts its file and key in front (a
`ManifestError`: `app.toml: modules.a.grants.cfg: rights must be ...`),
`Broker.load` the module (a `ConfigError`: `module 'a' grant 'cfg': rights
must be ...`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .abi import MAX_INSTANCES, Rights, parse_rights
from .limits import DEFAULT_LIMITS, Limits
from .names import map_name_problem, module_name_problem, shorten, shown_name
from .ownership import Pass, parse_kind, parse_pass, rights_value

DECLARATION_KEYS = ("params", "results")
SHOWN_PROBLEM_LEN = 300  # characters of a problem (which may quote a huge value)

#: Where a problem is, from the module's table down: ("grants", "cfg").
Where = tuple[object, ...]


class SpecError(ValueError):
    """A problem in a module's spec: `where` it is and what (`problem`)."""

    def __init__(self, where: Where, problem: str) -> None:
        self.where = where
        self.problem = shorten(problem, SHOWN_PROBLEM_LEN)
        super().__init__(self.problem)

    def place(self) -> str:
        """Where, in words for a message: "grant 'cfg'", "export 'f' params", "limits"."""
        head, *rest = self.where
        if not rest:
            return str(head)
        singular = {"grants": "grant", "exports": "export"}.get(str(head), str(head))
        return " ".join([singular, shown_name(rest[0]), *(str(r) for r in rest[1:])])


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
    """One module, checked: its name, its source, and what it is allowed."""

    name: str
    source: str | Path | bytes  # a .wat/.wasm path, or Wasm/WAT bytes
    grants: dict[str, Rights] = field(default_factory=dict)
    limits: Limits = DEFAULT_LIMITS
    exports: dict[str, ExportDecl] = field(default_factory=dict)
    instances: int = 1  # how many instances run its calls (docs/instances.md)
    on_trap: str = "replace"  # an instance a trap tore down: replaced, or "stop"

    @property
    def path(self) -> Path:
        """The module's file (a manifest's modules always have one)."""
        if isinstance(self.source, (bytes, bytearray)):
            raise TypeError(f"module {self.name!r} was given as bytes, not as a file")
        return Path(self.source)


def module_spec(
    name: object,
    source: str | Path | bytes,
    *,
    grants: object = None,
    limits: object = None,
    exports: object = None,
    instances: object = 1,
    on_trap: object = "replace",
    base_limits: Limits = DEFAULT_LIMITS,
    text_rights: bool = False,
) -> ModuleSpec:
    """The checked spec of one module; SpecError naming the first problem.

    `grants` maps map names to rights ('r', 'w', 'rw', or an int combining
    READ and WRITE; only text when `text_rights`, as in the manifest);
    `limits` is a Limits, a table of some limits over `base_limits`, or None
    for `base_limits`; `exports` maps export names to an ExportDecl or a
    table {"params": [kinds], "results": [kinds]}."""
    return ModuleSpec(
        check_name(name),
        source,
        check_grants(grants, text_rights=text_rights),
        check_limits(limits, base_limits),
        check_exports(exports),
        check_instances(instances),
        check_on_trap(on_trap),
    )


ON_TRAP = ("replace", "stop")


def check_on_trap(on_trap: object) -> str:
    """`on_trap`, if it says what becomes of an instance a trap tore down."""
    if on_trap not in ON_TRAP:
        raise SpecError(("on_trap",), f'must be "replace" or "stop", got {on_trap!r}')
    assert isinstance(on_trap, str)
    return on_trap


def check_instances(instances: object) -> int:
    """`instances`, if it is a count of instances (1..MAX_INSTANCES)."""
    if type(instances) is not int or not 1 <= instances <= MAX_INSTANCES:
        raise SpecError(
            ("instances",), f"must be an integer in 1..{MAX_INSTANCES}, got {instances!r}"
        )
    return instances


def check_name(name: object) -> str:
    """`name`, if it can name a module."""
    problem = module_name_problem(name)
    if problem:
        raise SpecError(("name",), problem)
    assert isinstance(name, str)
    return name


def check_grants(grants: object, *, text_rights: bool = False) -> dict[str, Rights]:
    """Map name -> Rights, every name and rights checked."""
    checked: dict[str, Rights] = {}
    for name, rights in _table(grants, ("grants",)).items():
        where = ("grants", name)
        problem = map_name_problem(name)
        if problem:
            raise SpecError(where, problem)
        try:
            checked[name] = parse_rights(rights) if text_rights else rights_value(rights)
        except ValueError as exc:
            raise SpecError(where, str(exc)) from None
    return checked


def check_limits(limits: object, base: Limits) -> Limits:
    """A module's limits: `limits` itself, or `base` with some of its fields replaced."""
    if limits is None:
        return base
    if isinstance(limits, Limits):
        return limits
    table = _table(limits, ("limits",))
    try:
        return base.merged(dict(table))
    except (TypeError, ValueError) as exc:
        raise SpecError(("limits",), str(exc)) from None


def check_exports(exports: object) -> dict[str, ExportDecl]:
    """Export name -> its declaration, every kind checked."""
    return {name: check_export(name, decl) for name, decl in _table(exports, ("exports",)).items()}


def check_export(name: str, decl: object) -> ExportDecl:
    """One export's declaration: a table of "params" and "results" kinds (or an ExportDecl)."""
    where: Where = ("exports", name)
    if isinstance(decl, ExportDecl):
        decl = {"params": decl.params, "results": decl.results}
    table = _table(decl, where)
    for key in table:
        if key not in DECLARATION_KEYS:
            raise SpecError((*where, key), f"unknown key (allowed: {', '.join(DECLARATION_KEYS)})")
    kinds: dict[str, tuple[str, ...]] = {}
    for part in DECLARATION_KEYS:
        items = table.get(part, [])
        if not isinstance(items, (list, tuple)):
            raise SpecError((*where, part), "must be a list of kinds")
        try:
            kinds[part] = tuple(parse_kind(k, result=part == "results") for k in items)
        except ValueError as exc:
            raise SpecError((*where, part), str(exc)) from None
    return ExportDecl(kinds["params"], kinds["results"])


def _table(value: object, where: Where) -> Mapping[str, object]:
    """`value` as a table (None: an empty one)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(where, f"must be a table, not {type(value).__name__}")
    return value
