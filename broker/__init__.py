"""wasi-map: share key-value maps safely between WebAssembly modules.

The broker owns every map, hands modules handles, counts every reference
and reclaims a map the moment nothing can reach it.  The data plane is C
(native/), reached through `broker._native`; this package is the control
plane: manifests, loading, calls, the CLI.

`Broker` (broker.host) loads wasmtime and the C core, so it is imported on
first use: `import broker.pytest_plugin`, which pytest does in every session
of an environment that has wasi-map, stays light.
"""

from typing import TYPE_CHECKING

from .abi import Errno, Rights
from .errors import (
    AccessError,
    BadHandleError,
    ConfigError,
    GuestTrap,
    ManifestError,
    MapError,
    ModuleError,
    NotFoundError,
    StaleHandleError,
)
from .limits import Limits
from .mapref import MapRef
from .ownership import Borrow, Own, Share

__all__ = [
    "AccessError",
    "BadHandleError",
    "Borrow",
    "Broker",
    "ConfigError",
    "Errno",
    "GuestTrap",
    "Limits",
    "ManifestError",
    "MapError",
    "MapRef",
    "ModuleError",
    "NotFoundError",
    "Own",
    "Rights",
    "Share",
    "StaleHandleError",
]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from .host import Broker


def __getattr__(name: str) -> object:
    if name == "Broker":
        from .host import Broker

        return Broker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
