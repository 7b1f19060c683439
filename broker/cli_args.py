"""The command line's words: `--call MODULE.EXPORT [INT ...]` gathered wherever it stands.

Done before and after argparse, because an argument like -0x10 looks like
an option to it; broker/cli.py builds the parser and runs the commands.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


class UsageError(Exception):
    """A command line that cannot be run (exit 2)."""


def _is_int(word: str) -> bool:
    try:
        int(word, 0)
    except ValueError:
        return False
    return True


def _is_option(word: str) -> bool:
    """An option word: it starts with '-' and is not a (negative) integer."""
    return word.startswith("-") and word != "-" and not _is_int(word)


def gather_call(argv: Sequence[str]) -> tuple[list[str], list[str], str | None]:
    """Take `--call MODULE.EXPORT [INT ...]` out of argv, wherever it is.

    Returns the words left for argparse (with `--call=MODULE.EXPORT` in its
    place), the call's arguments, and the word that may be the manifest
    (a non-integer right after them; argparse decides: it is the manifest
    unless one was given elsewhere).  Done before argparse because an
    argument like -0x10 looks like an option to it.
    """
    out: list[str] = []
    args: list[str] = []
    candidate: str | None = None
    i, seen = 0, False
    while i < len(argv):
        word = argv[i]
        if word == "--":
            out += argv[i:]
            break
        i += 1
        if word != "--call" and not word.startswith("--call="):
            out.append(word)
            continue
        if seen:
            raise UsageError("--call is given more than once")
        seen = True
        words = [word.partition("=")[2]] if "=" in word else []
        while i < len(argv) and not _is_option(argv[i]) and argv[i] != "--":
            words.append(argv[i])
            i += 1
        target, *args = words or [""]
        if args and not _is_int(args[-1]):
            candidate = args.pop()
        out.append(f"--call={target}")
        if candidate is not None:
            out.append(candidate)
    return out, args, candidate


def parse_call(words: Sequence[str]) -> tuple[str, list[int]]:
    target, *rest = words or [""]
    if not target:
        raise UsageError("--call needs MODULE.EXPORT")
    if "." not in target.strip("."):
        raise UsageError(f"--call {target!r}: expected MODULE.EXPORT")
    args = []
    for word in rest:
        try:
            args.append(int(word, 0))
        except ValueError:
            raise UsageError(f"argument {word!r} is not an integer") from None
    return target, args


def parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """argv parsed, with `--call`'s words gathered wherever they stand."""
    words, call_args, candidate = gather_call(argv)
    ns, extra = parser.parse_known_args(words)
    if candidate is not None and extra and extra[-1] == candidate:
        extra.pop()  # the manifest came before: the word was meant as an argument
        call_args.append(candidate)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(ns, "call", None) is not None:
        ns.call = ns.call + call_args
    return ns
