"""One operation of the C core run for its errno and result, as the model tests compare them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from broker.abi import Errno
from broker.errors import ErrnoError

Outcome = tuple[Errno, Any]


def core_call(fn: Callable[..., Any], *args: Any) -> Outcome:
    """Run one core operation: (errno, result)."""
    try:
        return Errno.OK, fn(*args)
    except ErrnoError as exc:
        assert exc.errno is not None
        return Errno(exc.errno), None
