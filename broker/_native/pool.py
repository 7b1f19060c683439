"""A module's instances in the C core (native/pool.c): which one a call runs in."""

from __future__ import annotations

from ..errors import ConfigError
from .core import Native, ffi, lib
from .module import NativeModule, OwningBroker


class NativePool:
    """The instances of one module: a call into it runs in one this thread
    already runs in, else a free one, else waits for one (native/pool.c).
    Free it once every instance in it is unloaded."""

    def __init__(self, broker: OwningBroker, n: int) -> None:
        ptr = lib.wm_pool_new(n)
        if ptr == ffi.NULL:
            raise ConfigError(f"a module has 1 to {lib.WM_MAX_INSTANCES} instances, not {n}")
        self.broker = broker
        self.n = n
        self._ptr: Native | None = ptr

    @property
    def ptr(self) -> Native:
        if self._ptr is None:
            raise ConfigError("the module was unloaded")
        return self._ptr

    def set(self, i: int, module: NativeModule) -> None:
        """Instance `i` is `module` (loaded, linked and started)."""
        lib.wm_pool_set(self.ptr, i, module.ptr)

    def replacing(self, delta: int) -> None:
        """A new instance is coming for a torn-down one (+1), or came or failed (-1):
        meanwhile calls into a pool with no live instance wait for it."""
        lib.wm_pool_replacing(self.ptr, delta)

    def free(self) -> None:
        if self._ptr is not None:
            lib.wm_pool_free(self._ptr)
            self._ptr = None
