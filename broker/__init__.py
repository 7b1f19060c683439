"""wasi-map: share key-value maps safely between WebAssembly modules.

The broker owns every map, hands modules handles, counts every reference
and reclaims a map the moment nothing can reach it.  The data plane is C
(native/), reached through `broker._native`; this package is the control
plane: manifests, loading, calls, the CLI.

`Broker` (broker.host) and `MapRef` load wasmtime and the C core, so they are imported on
first use: `import broker.pytest_plugin`, which pytest does in every session
of an environment that has wasi-map, stays light.
"""

from importlib import metadata
from typing import TYPE_CHECKING

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
    StaleCoreError,
    StaleHandleError,
    StoreError,
    StoreFailure,
    TooBigError,
    ValueTypeError,
    WasmtimeMismatchError,
)
from .limits import Limits
from .module_spec import ExportDecl
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
    "Caller",
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
    "StaleCoreError",
    "StaleHandleError",
    "Stats",
    "Store",
    "StoreError",
    "StoreFailure",
    "TooBigError",
    "ValueTypeError",
    "WasmtimeMismatchError",
]

try:
    __version__ = metadata.version("wasi-map")
except metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "unknown"

if TYPE_CHECKING:
    from .host import Broker, CallResult, CallValue, Stats
    from .host_calls import Caller
    from .leaks import LeakReport
    from .mapref import MapRef

_LAZY = {  # loading these loads wasmtime and the C core: on first use only
    "Broker": "host",
    "CallResult": "host",
    "CallValue": "host",
    "Caller": "host_calls",
    "Stats": "host",
    "LeakReport": "leaks",
    "MapRef": "mapref",  # its base class is the C extension broker._hostmap
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)
