"""`python -m broker.docgen [--check]`: rewrite (or check) the generated blocks in docs/."""

from __future__ import annotations

import sys
from pathlib import Path

from . import BLOCKS, blocks

ROOT = Path(__file__).resolve().parents[2]


def pages() -> list[Path]:
    """Every markdown page that may hold generated blocks."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path in pages():
        old = path.read_text()
        new = blocks.refill(old, BLOCKS)
        if new != old:
            stale.append(path.relative_to(ROOT))
            if not check:
                path.write_text(new)
    for rel in stale:
        print(("stale: " if check else "wrote: ") + str(rel))
    return 1 if (check and stale) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
