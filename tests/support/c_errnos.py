"""Which errnos a C function of the core can return, read from its source.

A small reader for native/*.c and *.h, good enough for this code base's
style: a function's errnos are the `WM_<ERRNO>` constants its body (or a
macro it uses) produces -- returns and assignments, not comparisons
(`err == WM_RANGE`) or `case` labels -- plus those of every function it
calls that returns an errno (`int`).  It over-approximates where a callee
returns an errno only for some arguments; the test that uses it lists
those places.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from paths import ROOT

from broker.abi import Errno

NATIVE = ROOT / "native"
_NAMES = "|".join(e.name for e in Errno)
_ERRNO = re.compile(rf"(==|!=|\bcase)?\s*\bWM_({_NAMES})\b")
_CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_DEFINE = re.compile(r"^#define\s+(\w+)(\([^)]*\))?(.*)$", re.MULTILINE)
_FUNCTION = re.compile(r"^([A-Za-z_][\w \t*]*?[\s*])(\w+)\s*\(([^;{)]*)\)\s*\{", re.MULTILINE)
_CALLBACK = re.compile(r"\bCALLBACK\((\w+)\)(.*?)\bEND_CALLBACK\b", re.DOTALL)


@dataclass(frozen=True)
class Body:
    """A function's (or macro's) code, and whether it returns an errno."""

    text: str
    returns_errno: bool


def _strip(text: str) -> str:
    """Code without comments and string literals; continuation lines joined."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r'"(\\.|[^"\\\n])*"', '""', text)
    return text.replace("\\\n", " ")


def _block(text: str, open_at: int) -> str:
    """The text of the brace block opening at `open_at`."""
    depth = 0
    for i in range(open_at, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[open_at : i + 1]
    raise ValueError("unbalanced braces")


@cache
def definitions() -> dict[str, list[Body]]:
    """Every function, macro and ABI callback (`cb_NAME`) of native/."""
    found: dict[str, list[Body]] = {}
    for path in sorted(NATIVE.glob("*.[ch]")):
        text = _strip(path.read_text())
        for m in _DEFINE.finditer(text):
            found.setdefault(m.group(1), []).append(Body(m.group(3), True))
        code = _DEFINE.sub("", text)
        for m in _CALLBACK.finditer(code):
            found.setdefault(f"cb_{m.group(1)}", []).append(Body(m.group(2), True))
        at = 0
        while (fm := _FUNCTION.search(code, at)) is not None:
            body = _block(code, fm.end() - 1)
            returns = (
                re.fullmatch(r"((static\s+)?(inline\s+)?|WM_INLINE\s+)int", fm.group(1).strip())
                is not None
            )
            found.setdefault(fm.group(2), []).append(Body(body, returns))
            at = fm.end() - 1 + len(body)
    return found


def errnos(name: str) -> frozenset[Errno]:
    """The errnos function (or macro) `name` can return, OK included when it can."""
    return _errnos(name, frozenset())


def _errnos(name: str, seen: frozenset[str]) -> frozenset[Errno]:
    out: set[Errno] = set()
    seen = seen | {name}
    for body in definitions().get(name, []):
        for m in _ERRNO.finditer(body.text):
            if m.group(1) is None:
                out.add(Errno[m.group(2)])
        for callee in set(_CALL.findall(body.text)) - seen:
            if any(b.returns_errno for b in definitions().get(callee, [])):
                out |= _errnos(callee, seen)
    return frozenset(out)


def store_answers() -> dict[str, frozenset[Errno]]:
    """store.c's `allowed`: which errnos each store operation may answer, by operation name."""
    text = _block_of("allowed")
    out: dict[str, set[Errno]] = {}
    for m in re.finditer(r"case WM_(\w+):\s*return ([^;]*);", text):
        for op in re.findall(r"WM_SOP_(\w+)", m.group(2)):
            out.setdefault(op.lower(), set()).add(Errno[m.group(1)])
    return {op: frozenset(v) for op, v in out.items()}


def _block_of(name: str) -> str:
    (body,) = definitions()[name]
    return body.text
