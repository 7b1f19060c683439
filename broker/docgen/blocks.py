"""Generated blocks in markdown pages: find them, refill them."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

_BLOCK = re.compile(
    r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /generated: (?P=name) -->)",
    re.DOTALL,
)


def names(text: str) -> list[str]:
    """The generated blocks of a page, in order."""
    return [m.group("name") for m in _BLOCK.finditer(text)]


def refill(text: str, makers: Mapping[str, Callable[[], str]]) -> str:
    """`text` with every block's body made anew (an unknown block name is a KeyError)."""

    def fill(m: re.Match[str]) -> str:
        body = makers[m.group("name")]()
        return m.group(1) + body.rstrip("\n") + "\n" + m.group(4)

    return _BLOCK.sub(fill, text)
