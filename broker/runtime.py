"""The wasmtime side of a broker: one Engine and Store, compiling, instantiating.

Guests reach the data plane through C host functions (registered by
`NativeModule.define_abi`) and each other through C trampolines
(broker/linking.py); the host calls exports through broker/calls.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import wasmtime

from . import _native, abi
from .check import module_problems
from .errors import ModuleError, trap_reason
from .linking import Links, check_declarations
from .manifest import ExportDecl

if TYPE_CHECKING:
    from .calls import HostCall

WASI_MODULE = "wasi_snapshot_preview1"
_VALTYPES = {"i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64}


def compile_module(
    source: str | Path | bytes, *, engine: wasmtime.Engine | None = None, name: str = "module"
) -> tuple[wasmtime.Module, str]:
    """Compile a .wat/.wasm path or Wasm/WAT bytes; (module, label for messages)."""
    if isinstance(source, (bytes, bytearray)):
        label, data = f"module {name!r}", bytes(source)
    else:
        path = Path(source)
        label = str(path)
        if path.suffix not in (".wat", ".wasm"):
            raise ModuleError(f"{label}: a module must be a .wat or .wasm file")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModuleError(f"{label}: cannot read module: {exc.strerror}") from None
    try:
        if data[:4] == b"\0asm":
            module = wasmtime.Module(engine or wasmtime.Engine(), data)
        else:
            module = wasmtime.Module(engine or wasmtime.Engine(), data.decode("utf-8"))
    except (wasmtime.WasmtimeError, UnicodeDecodeError) as exc:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise ModuleError(f"{label}: not a valid Wasm module: {first}") from None
    return module, label


@dataclass
class LoadedModule:
    """One instantiated module and its side of the C core."""

    name: str
    source: str
    native: _native.NativeModule
    instance: wasmtime.Instance
    decls: dict[str, ExportDecl] = field(default_factory=dict)
    calls: dict[str, HostCall] = field(default_factory=dict)  # the host's ways in
    torn_down: str | None = None  # why, once torn down


class Runtime:
    """One Engine and one Store per broker (a FuncType used with two engines aborts)."""

    def __init__(self, native: _native.NativeBroker) -> None:
        self.native = native
        self.engine = wasmtime.Engine()
        self.store = wasmtime.Store(self.engine)
        self.context = _native.context_of(self.store)
        self.functypes = [
            wasmtime.FuncType(
                [_VALTYPES[t]() for t in abi.BY_NAME[name].param_types], [wasmtime.ValType.i32()]
            )
            for name in _native.abi_function_names()
        ]
        self.links = Links(self)
        self._wasi_ready = False

    def compile(self, name: str, source: str | Path | bytes) -> tuple[wasmtime.Module, str]:
        return compile_module(source, engine=self.engine, name=name)

    def instantiate(
        self,
        name: str,
        module: wasmtime.Module,
        label: str,
        native: _native.NativeModule,
        decls: dict[str, ExportDecl],
        loaded: dict[str, LoadedModule],
    ) -> LoadedModule:
        """Link and instantiate; imports of modules in `loaded` are resolved first."""
        problems = module_problems(module)
        if problems:
            raise ModuleError(f"{label}: {problems[0]}")
        linker = wasmtime.Linker(self.engine)
        native.define_abi(linker, self.functypes)
        if any(imp.module == WASI_MODULE for imp in module.imports):
            self._enable_wasi(linker)
        peers = [
            self.links.define(name, native, linker, imp, label)
            for imp in module.imports
            if imp.module not in (WASI_MODULE, abi.IMPORT_MODULE)
        ]
        try:
            for peer in peers:
                if peer.module in loaded:
                    self.links.resolve(peer, loaded[peer.module])
            try:
                instance = linker.instantiate(self.store, module)
            except wasmtime.Trap as exc:
                raise ModuleError(
                    f"{label}: trapped while starting: {trap_reason(str(exc))}"
                ) from None
            except wasmtime.WasmtimeError as exc:
                raise ModuleError(f"{label}: cannot instantiate: {trap_reason(str(exc))}") from None
            exports = instance.exports(self.store)
            check_declarations(name, exports, self.store, decls)
        except BaseException:
            self.links.forget(name)
            raise
        memory = exports.get("memory")
        if isinstance(memory, wasmtime.Memory):
            native.set_memory(memory)
        return LoadedModule(name, label, native, instance, dict(decls))

    def _enable_wasi(self, linker: wasmtime.Linker) -> None:
        linker.define_wasi()
        if not self._wasi_ready:
            config = wasmtime.WasiConfig()
            config.inherit_stdout()
            config.inherit_stderr()
            self.store.set_wasi(config)
            self._wasi_ready = True

    def close(self) -> None:
        self.store.close()
        self.engine.close()
