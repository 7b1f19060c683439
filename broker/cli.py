"""The `wasi-map` command (spec section 4): run, leaks, graph and check.

Exit codes: 0 success; 1 a trap, a rule violation, (check) a bad import,
or (leaks) a leak or an unreleased borrow found; 2 a bad manifest, module
or command line (a --trace or -o file that cannot be written among them).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import structlog

from . import leaks
from .check import memory_problem, wasi_map_imports
from .errors import ConfigError, GuestTrap, MapError
from .host import Broker
from .runtime import compile_module

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class UsageError(Exception):
    """A command line that cannot be run (exit 2)."""


# Options that may follow --call's integers (which never look like them).
_AFTER_CALL = {"--json": 0, "--trace": 1, "-o": 1, "--output": 1}


def _split_call(ns: argparse.Namespace) -> None:
    """Move options written after `--call M.E INT...` out of the call's words."""
    words, rest = list(ns.call or []), []
    i = 0
    while i < len(words):
        arity = _AFTER_CALL.get(words[i])
        if arity is None:
            rest.append(words[i])
            i += 1
            continue
        if arity and i + 1 >= len(words):
            raise UsageError(f"{words[i]} needs a value")
        name = words[i].lstrip("-").replace("-", "_")
        name = "output" if name == "o" else name
        setattr(ns, name, True if arity == 0 else words[i + 1])
        i += 1 + arity
    ns.call = rest


def _parse_call(words: Sequence[str]) -> tuple[str, list[int]]:
    if not words:
        raise UsageError("--call needs MODULE.EXPORT")
    target, *rest = words
    if "." not in target.strip("."):
        raise UsageError(f"--call {target!r}: expected MODULE.EXPORT")
    args = []
    for word in rest:
        try:
            args.append(int(word, 0))
        except ValueError:
            raise UsageError(f"argument {word!r} is not an integer") from None
    return target, args


def _print_result(result: object) -> None:
    if result is None:
        print()
    elif isinstance(result, tuple):
        print(" ".join(str(v) for v in result))
    else:
        print(result)


def _quiet_structlog() -> None:
    """The CLI writes trace events only to --trace FILE, never to stdout."""
    if not structlog.is_configured():
        structlog.configure(logger_factory=structlog.ReturnLoggerFactory())


def cmd_run(ns: argparse.Namespace) -> int:
    target, args = _parse_call(ns.call)
    _quiet_structlog()
    with Broker.from_manifest(ns.app, trace=ns.trace or False) as broker:
        _print_result(broker.call(target, *args))
    return EXIT_OK


def _traced_run(ns: argparse.Namespace) -> tuple[Broker, MapError | None]:
    """Load the app with the tracer on, make the call, collect cycles.

    A trap does not stop the report: it is returned with the broker."""
    target, args = _parse_call(ns.call)
    _quiet_structlog()
    broker = Broker.from_manifest(ns.app, trace=ns.trace or True)
    failure: MapError | None = None
    try:
        broker.call(target, *args)
    except GuestTrap as exc:
        failure = exc
    except MapError as exc:
        if isinstance(exc, ConfigError):
            broker.close()
            raise
        failure = exc
    broker.collect()
    return broker, failure


def cmd_leaks(ns: argparse.Namespace) -> int:
    broker, failure = _traced_run(ns)
    with broker:
        data = broker.leaks()
    if failure is not None:
        print(f"wasi-map: {failure}", file=sys.stderr)
    if ns.json:
        print(json.dumps(data, indent=2))
    else:
        print(leaks.format_text(data))
    found = bool(data["leaks"] or data["unreleased_borrows"])
    return EXIT_FAILED if found or failure is not None else EXIT_OK


def cmd_graph(ns: argparse.Namespace) -> int:
    if not ns.output:
        raise UsageError("graph needs -o FILE (.dot, .svg or .png)")
    broker, failure = _traced_run(ns)
    with broker:
        broker.graph(ns.output, title=f"{ns.app} --call {' '.join(ns.call)}")
        path = ns.output
    if failure is not None:
        print(f"wasi-map: {failure}", file=sys.stderr)
    print(f"wrote {path}")
    return EXIT_FAILED if failure is not None else EXIT_OK


def cmd_check(ns: argparse.Namespace) -> int:
    module, label = compile_module(ns.module)
    reports = wasi_map_imports(module)
    bad = 0
    for r in reports:
        status = "ok" if r.problem is None else f"ERROR: {r.problem}"
        bad += r.problem is not None
        print(f"wasi_map.{r.name} {r.signature}: {status}")
    if reports:
        mem = memory_problem(module)
        if mem:
            bad += 1
            print(f"memory: ERROR: {mem}")
    else:
        print(f"{label}: no wasi_map imports")
    if bad:
        print(f"{label}: {bad} problem(s)", file=sys.stderr)
    return EXIT_FAILED if bad else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wasi-map", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {
        "run": ("load an app and call one export", cmd_run),
        "leaks": ("the same run with the tracer on; report maps and borrows left", cmd_leaks),
        "graph": ("the same run; draw the ownership graph afterwards", cmd_graph),
    }
    for name, (help_text, func) in commands.items():
        p = sub.add_parser(name, help=help_text)
        p.add_argument("app", help="the app manifest (TOML)")
        p.add_argument(
            "--call",
            nargs=argparse.REMAINDER,
            required=True,
            metavar="MODULE.EXPORT [INT ...]",
            help="the export and its integer arguments",
        )
        p.add_argument("--trace", metavar="FILE.jsonl", help="write every ownership event")
        if name == "leaks":
            p.add_argument("--json", action="store_true", help="print the report as JSON")
        if name == "graph":
            p.add_argument("-o", "--output", metavar="FILE", help=".dot, .svg or .png")
        p.set_defaults(func=func, json=False, output=None)
    check = sub.add_parser("check", help="check a module's wasi_map imports")
    check.add_argument("module", help="a .wasm or .wat file")
    check.set_defaults(func=cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        if getattr(ns, "call", None) is not None:
            _split_call(ns)
        code: int = ns.func(ns)
        return code
    except UsageError as exc:
        print(f"wasi-map: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ConfigError as exc:
        print(f"wasi-map: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TypeError as exc:  # wrong number/type of call arguments
        print(f"wasi-map: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MapError as exc:  # before OSError: a StoreError is both
        print(f"wasi-map: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # a --trace or -o file that cannot be written
        where = f"{exc.filename}: " if exc.filename is not None else ""
        print(f"wasi-map: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
