"""`python -m broker.docgen [--check] [--root DIR]`: rewrite (or check) the
generated blocks of a source tree's README.md and docs/.

DIR is the checkout (default: the current directory): the pages are files
of the source tree, not of an installed package.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import blocks, makers


def pages(root: Path) -> list[Path]:
    """Every markdown page of the tree at `root` that may hold generated blocks."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m broker.docgen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only name stale pages; exit 1")
    parser.add_argument("--root", type=Path, default=Path(), help="the source tree (default: .)")
    ns = parser.parse_args(argv)
    root: Path = ns.root
    if not (root / "README.md").is_file() or not (root / "docs").is_dir():
        print(f"docgen: {root.resolve()} has no README.md and docs/: pass --root", file=sys.stderr)
        return 2
    make = makers(root)
    stale = []
    for path in pages(root):
        old = path.read_text()
        new = blocks.refill(old, make)
        if new != old:
            stale.append(path.relative_to(root))
            if not ns.check:
                path.write_text(new)
    for rel in stale:
        print(("stale: " if ns.check else "wrote: ") + str(rel))
    return 1 if (ns.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
