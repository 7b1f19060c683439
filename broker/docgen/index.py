"""The table of contents of docs/: every page with its title."""

from __future__ import annotations

from pathlib import Path


def title(path: Path) -> str:
    """A page's first heading, without the #s."""
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return path.stem


def table(docs: Path) -> str:
    """One row per page under `docs` (its README.md excepted), reference pages last."""
    pages = sorted(
        (p for p in docs.rglob("*.md") if p.name != "README.md"),
        key=lambda p: (p.parent != docs, str(p)),
    )
    rows = ["| page | what it holds |", "|---|---|"]
    rows += [f"| [{p.relative_to(docs)}]({p.relative_to(docs)}) | {title(p)} |" for p in pages]
    return "\n".join(rows) + "\n"
