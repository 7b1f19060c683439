"""wasi-map: share key-value maps safely between WebAssembly modules.

The broker owns every map, hands modules handles, counts every reference
and reclaims a map the moment nothing can reach it.  The data plane is C
(native/), reached through `broker._native`; this package is the control
plane: manifests, loading, calls, the CLI.
"""

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
from .host import Broker
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
