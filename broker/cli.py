"""The `wasi-map` command (spec section 4): run and check.

Exit codes: 0 success; 1 a trap, a rule violation, or (check) a bad import;
2 a bad manifest, module or command line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .check import memory_problem, wasi_map_imports
from .errors import ConfigError, MapError
from .host import Broker
from .runtime import compile_module

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class UsageError(Exception):
    """A command line that cannot be run (exit 2)."""


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


def cmd_run(ns: argparse.Namespace) -> int:
    target, args = _parse_call(ns.call)
    with Broker.from_manifest(ns.app) as broker:
        result = broker.call(target, *args)
    if result is None:
        print()
    elif isinstance(result, tuple):
        print(" ".join(str(v) for v in result))
    else:
        print(result)
    return EXIT_OK


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
    run = sub.add_parser("run", help="load an app and call one export")
    run.add_argument("app", help="the app manifest (TOML)")
    run.add_argument(
        "--call",
        nargs=argparse.REMAINDER,
        required=True,
        metavar="MODULE.EXPORT [INT ...]",
        help="the export and its integer arguments",
    )
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check", help="check a module's wasi_map imports")
    check.add_argument("module", help="a .wasm or .wat file")
    check.set_defaults(func=cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
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
    except MapError as exc:
        print(f"wasi-map: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
