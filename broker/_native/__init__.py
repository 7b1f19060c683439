"""The one door to the C data plane (broker._wm).

Only this package touches the compiled extension's `ffi` and `lib`; the
rest of broker/ calls the typed functions and classes named here, and
errnos come back as `broker.errors` exceptions.  Its modules, one job each:

- core.py: loads broker._wm; refuses a stale core (hashes baked in at build,
  taken by digest.py, which native/ffi_build.py loads by its path)
- wasmtime_layouts.py: wasmtime-py's private attributes and C layouts,
  checked against the core's at import; the wasmtime entry points it calls
- failures.py: the rule that carries a store's failure (and a host
  function's exception) out of a C call
- hostfn_door.py: the dispatcher the core calls for an app's host functions
- store_door.py: the store function the core calls for named maps in a store
- leveldb_door.py: LevelDB answered in C: plyvel's library, the databases
  the core opens, and calls into them
- hostmap_door.py: the host MapRef's hot path (broker._hostmap, a plain
  extension beside the core), bound to the core's functions
- native_broker.py, module.py, pool.py, link.py: the C broker, a module's
  side of it (the ABI operations), a module's instances, and the links
  calls go through
"""

from .core import abi_function_names, built_sha256, check_core, core_path, trace_compiled
from .failures import StoreReach
from .hostfn_door import (
    ServedLink,
    hostcall_memory_size,
    hostcall_read,
    hostcall_results,
    hostcall_write,
    inside_host_function,
)
from .hostmap_door import Door, MapCore
from .hostmap_door import raise_for as raise_for_host_op
from .hostmap_door import take_failure as take_store_failure
from .leveldb_door import LevelDB, LevelDBRefused, LevelDBUse, StoreOp
from .leveldb_door import library_problem as leveldb_library_problem
from .link import NativeLink, Trapped, int64_view, new_args, pass_problem
from .module import NativeModule
from .native_broker import ENTRY_COST, EVENT_FLAGS, EVENT_KINDS, MAP_COST, NativeBroker, RawEvent
from .pool import NativePool
from .store_door import StoreDoor
from .store_door import attach as attach_store
from .wasmtime_layouts import WASMTIME_PIN, check_layouts

__all__ = [
    "Door",
    "ENTRY_COST",
    "EVENT_FLAGS",
    "EVENT_KINDS",
    "MAP_COST",
    "WASMTIME_PIN",
    "LevelDB",
    "LevelDBRefused",
    "LevelDBUse",
    "MapCore",
    "NativeBroker",
    "NativeLink",
    "NativeModule",
    "NativePool",
    "RawEvent",
    "ServedLink",
    "StoreDoor",
    "StoreOp",
    "StoreReach",
    "Trapped",
    "abi_function_names",
    "attach_store",
    "built_sha256",
    "check_core",
    "check_layouts",
    "core_path",
    "hostcall_memory_size",
    "hostcall_read",
    "hostcall_results",
    "hostcall_write",
    "inside_host_function",
    "int64_view",
    "leveldb_library_problem",
    "new_args",
    "pass_problem",
    "raise_for_host_op",
    "take_store_failure",
    "trace_compiled",
]
