"""The `wasi-map` command: run, leaks, graph and check.

Exit codes: 0 success; 1 a trap, a rule violation, (check) a problem
found, or (leaks) a leak or an unreleased borrow found; 2 a bad manifest,
module or command line (a --trace or -o file that cannot be written among
them).

Options may come before or after the manifest.  `--call` takes the export
and the words after it up to the next option: integers (decimal, 0x hex,
negative), the call's arguments.  The last of them may be the manifest,
when it is not an integer and no manifest stands elsewhere
(`run --call m.e 1 2 app.toml`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from importlib import metadata

import structlog

from . import leaks, serve
from ._native import WASMTIME_PIN
from .check import memory_problem, wasi_map_imports
from .check_app import check_app
from .cli_args import UsageError, parse, parse_call
from .errors import ConfigError, GuestTrap, MapError
from .guest_header import include_dir, rust_crate_dir
from .host import Broker, CallResult
from .manifest import load_manifest
from .mapref import MapRef
from .ownership import parse_pass
from .runtime import compile_module

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
MODULE_SUFFIXES = (".wat", ".wasm")  # `check` of anything else reads an app manifest


def version_text() -> str:
    """`wasi-map --version`: the installed distribution's version and the wasmtime pin."""
    try:
        version = metadata.version("wasi-map")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        version = "unknown"
    return f"wasi-map {version} (wasmtime {WASMTIME_PIN})"


def _refuse_handle_params(broker: Broker, target: str) -> None:
    """A handle parameter cannot come from a shell: say what to do instead."""
    for i, kind in enumerate(broker.signature(target).params):
        try:
            passing = parse_pass(kind, result=False)
        except ValueError:
            continue  # f32 and the like: the call says only i32/i64 can be passed
        if passing.is_handle:
            base, _, rights = kind.partition(":")
            wrapper = f"{base.title()}(mapref" + (f', rights="{rights}")' if rights else ")")
            raise UsageError(
                f"{target}: parameter {i} is a handle ({kind}); handle parameters can't be "
                "given on the command line (a number is no handle of the callee's): call "
                f"an export that takes only i32/i64 parameters, or call this one from "
                f"Python with {wrapper}"
            )


def _call(broker: Broker, target: str, args: list[int]) -> CallResult:
    _refuse_handle_params(broker, target)
    return broker.call(target, *args)


def _shown(value: int | MapRef) -> str:
    """A result as printed: an int, or a map as `leaks` names it."""
    return f"map {value.map_id}" if isinstance(value, MapRef) else str(value)


def _print_result(result: CallResult) -> None:
    if result is None:
        print()
    elif isinstance(result, tuple):
        print(" ".join(_shown(v) for v in result))
    else:
        print(_shown(result))


def _print_failure(failure: MapError, broker: Broker, verbose: bool) -> None:
    """The one line of a failed run; with -v a trap's details; and the store's
    reason when a guest got IO from it."""
    print(f"wasi-map: {failure}", file=sys.stderr)
    if verbose and isinstance(failure, GuestTrap):
        for line in failure.details.strip().splitlines():
            print(f"  {line}".rstrip(), file=sys.stderr)
    store_failure = broker.last_store_failure
    if store_failure is not None and not isinstance(failure, GuestTrap):
        print(f"wasi-map: the store answered IO: {store_failure.message}", file=sys.stderr)


def _quiet_structlog() -> None:
    """The CLI writes trace events only to --trace FILE, never to stdout."""
    if not structlog.is_configured():
        structlog.configure(logger_factory=structlog.ReturnLoggerFactory())


def _run_call(broker: Broker, ns: argparse.Namespace) -> tuple[CallResult, MapError | None]:
    """Make the call; a trap or rule violation is returned, a bad call raised."""
    target, args = parse_call(ns.call)
    try:
        return _call(broker, target, args), None
    except ConfigError:
        raise
    except MapError as exc:
        return None, exc


def cmd_run(ns: argparse.Namespace) -> int:
    parse_call(ns.call)  # a bad --call is refused before the app is loaded
    _quiet_structlog()
    with Broker.from_manifest(ns.app, trace=ns.trace or False) as broker:
        result, failure = _run_call(broker, ns)
        if failure is not None:
            _print_failure(failure, broker, ns.verbose)
            return EXIT_FAILED
        _print_result(result)
    return EXIT_OK


def _traced_run(ns: argparse.Namespace) -> tuple[Broker, MapError | None]:
    """Load the app with the tracer on, make the call, collect cycles.

    A trap does not stop the report: it is returned with the broker."""
    parse_call(ns.call)
    _quiet_structlog()
    broker = Broker.from_manifest(ns.app, trace=ns.trace or True)
    try:
        _, failure = _run_call(broker, ns)
    except BaseException:
        broker.close()
        raise
    broker.collect()
    return broker, failure


def cmd_leaks(ns: argparse.Namespace) -> int:
    broker, failure = _traced_run(ns)
    with broker:
        data = broker.leaks()
    if failure is not None:
        _print_failure(failure, broker, ns.verbose)
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
        _print_failure(failure, broker, ns.verbose)
    print(f"wrote {path}")
    return EXIT_FAILED if failure is not None else EXIT_OK


def _check_module(path: str) -> int:
    module, label = compile_module(path)
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


def _check_app(path: str) -> int:
    manifest = load_manifest(path)
    report = check_app(manifest)
    for problem in report.problems:
        print(problem)
    if report.problems:
        print(f"{manifest.path}: {len(report.problems)} problem(s)", file=sys.stderr)
        return EXIT_FAILED
    print(report.summary(manifest))
    return EXIT_OK


def cmd_check(ns: argparse.Namespace) -> int:
    if ns.target.endswith(MODULE_SUFFIXES):
        return _check_module(ns.target)
    return _check_app(ns.target)


def cmd_include(ns: argparse.Namespace) -> int:
    print(rust_crate_dir() if ns.rust else include_dir())
    return EXIT_OK


def cmd_serve(ns: argparse.Namespace) -> int:
    target, args = parse_call(ns.call)
    if args:
        raise UsageError(
            f"serve --call {target}: takes no arguments (each request is the argument: "
            "docs/serving.md)"
        )
    if not 0 <= ns.port <= 65535:
        raise UsageError(f"--port {ns.port}: expected 0..65535 (0: any free port)")
    serve.serve(ns.app, target, host=ns.host, port=ns.port)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, with help for every option (docs are made from it)."""
    parser = argparse.ArgumentParser(
        prog="wasi-map",
        description="Run, inspect and check wasi-map apps (WebAssembly modules sharing maps).",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=version_text(),
        help="print wasi-map's version and the wasmtime version it is built for, then exit",
    )
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="what to do (COMMAND -h: its options)",
    )
    commands = {
        "run": ("load an app, call one export, print its results on one line", cmd_run),
        "leaks": ("the same run with the tracer on; report maps and borrows left", cmd_leaks),
        "graph": ("the same run; draw the ownership graph afterwards", cmd_graph),
    }
    for name, (help_text, func) in commands.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("app", metavar="APP.toml", help="the app manifest")
        p.add_argument(
            "--call",
            nargs="+",
            required=True,
            metavar=("MODULE.EXPORT", "INT"),
            help="the export to call and its integer arguments (decimal, 0x hex, negative); "
            "handle parameters cannot be given here",
        )
        p.add_argument(
            "--trace",
            metavar="FILE.jsonl",
            help="write every ownership event to FILE as JSON lines",
        )
        p.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            help="on a trap, print its details too (wasmtime's message: the faulting "
            "address and memory size where it says them, and the backtrace)",
        )
        if name == "leaks":
            p.add_argument("--json", action="store_true", help="print the report as JSON")
        if name == "graph":
            p.add_argument(
                "-o", "--output", metavar="FILE", help="where to write it: .dot, .svg or .png"
            )
        p.set_defaults(func=func, json=False, output=None)
    check = sub.add_parser(
        "check",
        help="check a module's wasi_map imports, or a whole app",
        description="A .wat or .wasm file: list its wasi_map imports and whether each is "
        "in the ABI. Anything else is read as an app manifest: every module compiles and "
        "suits the ABI, every export declaration fits, every link resolves, and the app "
        "loads (into the memory store); one line per problem, or a one-line summary.",
    )
    check.add_argument(
        "target", metavar="MODULE.wasm|MODULE.wat|APP.toml", help="a module or an app manifest"
    )
    check.set_defaults(func=cmd_check)
    include = sub.add_parser(
        "include",
        help="print the directory of the guest headers wasi_map.h and wasi_map.hpp (for clang -I)",
        description="Print the directory that holds wasi_map.h and wasi_map.hpp, the C and "
        'C++ guest headers: clang ... -I "$(wasi-map include)".  With --rust, the directory '
        "of the Rust guest crate (Cargo.toml, src/lib.rs).",
    )
    include.add_argument(
        "--rust", action="store_true", help="print the Rust crate's directory instead"
    )
    include.set_defaults(func=cmd_include)
    serving = sub.add_parser(
        "serve",
        help="answer HTTP requests with an export of an app, until SIGINT or SIGTERM",
        description="Load an app and answer HTTP/1.1 requests on HOST:PORT with one export, "
        "declared (borrow) -> i32: it gets the request in a map and returns the status "
        "(docs/serving.md). One JSON log line per request on stderr.",
    )
    serving.add_argument("app", metavar="APP.toml", help="the app manifest")
    serving.add_argument(
        "--call",
        nargs=1,
        required=True,
        metavar="MODULE.EXPORT",
        help="the export that answers each request",
    )
    serving.add_argument(
        "--port", type=int, required=True, help="the TCP port (0: any free one, logged)"
    )
    serving.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    serving.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        ns = parse(parser, sys.argv[1:] if argv is None else argv)
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
