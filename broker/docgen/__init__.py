"""The reference pages in docs/, kept in step with the code.

A page mixes prose with generated blocks, each between
`<!-- generated: NAME -->` and `<!-- /generated: NAME -->`.
`python -m broker.docgen` rewrites every block from `BLOCKS`; with
`--check` it only names the stale pages and exits 1.  A test runs the
check, so a change to the ABI, the limits, the manifest or the command
line that is not in the docs fails.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from . import abi_ref, cli_ref, index, manifest_ref


def makers(root: Path) -> dict[str, Callable[[], str]]:
    """Each block's maker, by name, for the source tree at `root`."""
    return {
        "abi-summary": abi_ref.summary,
        "abi-functions": abi_ref.functions,
        "errnos": abi_ref.errno_table,
        "pass-errnos": abi_ref.pass_errnos,
        "limits": abi_ref.limits_table,
        "manifest-keys": manifest_ref.table,
        "cli": cli_ref.reference,
        "docs-index": partial(index.table, root / "docs"),
    }


BLOCKS = frozenset(makers(Path()))  # every block name
