"""wasi-map: share key-value maps safely between WebAssembly modules.

The broker owns every map, hands modules handles, counts every reference
and reclaims a map the moment nothing can reach it.  The data plane is C
(native/), reached through `broker._native`; this package is the control
plane: manifests, loading, calls, the CLI.
"""

from importlib import metadata

from .abi import Errno, Rights
from .errors import (
    AccessError,
    BadHandleError,
    BufferTooSmallError,
    BusyError,
    ConfigError,
    ConflictError,
    ErrnoError,
    FaultError,
    GuestTrap,
    InvalidArgumentError,
    ManifestError,
    MapError,
    ModuleError,
    NotFoundError,
    QuotaError,
    StaleHandleError,
    StoreError,
    TooBigError,
    ValueTypeError,
    WasmtimeMismatchError,
)
from .host import Broker, CallResult, CallValue, Stats
from .leaks import LeakReport
from .limits import Limits
from .manifest import ExportDecl
from .mapref import MapRef
from .ownership import Borrow, Own, Share
from .stores.base import Store

__all__ = [
    "AccessError",
    "BadHandleError",
    "Borrow",
    "Broker",
    "BufferTooSmallError",
    "BusyError",
    "CallResult",
    "CallValue",
    "ConfigError",
    "ConflictError",
    "Errno",
    "ErrnoError",
    "ExportDecl",
    "FaultError",
    "GuestTrap",
    "InvalidArgumentError",
    "LeakReport",
    "Limits",
    "ManifestError",
    "MapError",
    "MapRef",
    "ModuleError",
    "NotFoundError",
    "Own",
    "QuotaError",
    "Rights",
    "Share",
    "StaleHandleError",
    "Stats",
    "Store",
    "StoreError",
    "TooBigError",
    "ValueTypeError",
    "WasmtimeMismatchError",
]

try:
    __version__ = metadata.version("wasi-map")
except metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "unknown"
