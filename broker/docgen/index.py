"""The table of contents of docs/: every page with its title."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def title(path: Path) -> str:
    """A page's first heading, without the #s."""
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return path.stem


def table() -> str:
    """One row per page under docs/ (this index excepted), reference pages last."""
    pages = sorted(
        (p for p in DOCS.rglob("*.md") if p.name != "README.md"),
        key=lambda p: (p.parent != DOCS, str(p)),
    )
    rows = ["| page | what it holds |", "|---|---|"]
    rows += [f"| [{p.relative_to(DOCS)}]({p.relative_to(DOCS)}) | {title(p)} |" for p in pages]
    return "\n".join(rows) + "\n"
