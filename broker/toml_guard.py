"""TOML read in bounded time and stack: `loads`, or ValueError saying why not.

Python's tomllib recurses once per level of nested arrays and inline
tables (100,000 levels: RecursionError), and takes time quadratic in the
parts of a dotted key (`a.a.a...` of 100,000 parts: minutes).  The first
is caught; the second is refused before parsing by a scan that skips
strings and comments and counts the dots of each key.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

MAX_KEY_PARTS = 32  # a manifest's deepest key has 5 (modules.NAME.exports.NAME.params)

# What the scan stops at: quotes and '#' (skipped to their end), dots
# (counted), and what ends a key or a value (the count starts again).  A
# value has at most one dot (a float, a time's fraction), a key one less
# than its parts.
_SPECIAL = re.compile(r"[\"'#.\n=,\[\]{}]")
_BASIC_REST = re.compile(r'(?:[^"\\\n]|\\.)*+"')
# A multi-line string may end in up to two quotes of its own before its ''' or """.
_ML_BASIC_REST = re.compile(r'(?:[^"\\]|\\.|"(?!""))*+"{3,5}', re.DOTALL)
_ML_LITERAL_REST = re.compile(r"(?:[^']|'(?!''))*+'{3,5}", re.DOTALL)


def _string_end(text: str, quote: str, at: int) -> int:
    """Where the string whose opening `quote` ends just before `at` ends; -1
    if it never does (invalid TOML, which tomllib reports at that string)."""
    if text.startswith(quote * 2, at):
        rest = _ML_BASIC_REST if quote == '"' else _ML_LITERAL_REST
        match = rest.match(text, at + 2)
        return match.end() if match else -1
    if quote == '"':
        match = _BASIC_REST.match(text, at)
        return match.end() if match else -1
    end, newline = text.find("'", at), text.find("\n", at)
    return -1 if end < 0 or 0 <= newline < end else end + 1


def long_key_problem(text: str) -> str | None:
    """Which line has a key of more than MAX_KEY_PARTS parts, or None."""
    line, dots, at = 1, 0, 0
    while match := _SPECIAL.search(text, at):
        char, at = match.group(), match.end()
        if char == ".":
            dots += 1
            if dots >= MAX_KEY_PARTS:
                return f"line {line}: a dotted key of more than {MAX_KEY_PARTS} parts"
        elif char == "#":
            at = text.find("\n", at)
            if at < 0:
                return None
        elif char in "\"'":
            end = _string_end(text, char, at)
            if end < 0:
                return None  # tomllib stops at this string: nothing after it is parsed
            line += text.count("\n", at, end)
            at = end
        else:
            line += char == "\n"
            dots = 0
    return None


def loads(text: str) -> dict[str, Any]:
    """tomllib.loads(text), refusing what it would take too long or too deep a stack for."""
    problem = long_key_problem(text)
    if problem:
        raise ValueError(problem)
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise ValueError("arrays or inline tables nested too deeply") from None
    except tomllib.TOMLDecodeError:
        raise
    except ValueError as exc:  # int() of more digits than sys.get_int_max_str_digits()
        raise ValueError(str(exc).partition(";")[0].partition(":")[0]) from None
