"""The wasmtime side of a broker: one Engine and Store, loading, linking, calling.

Guests reach the data plane through C host functions (registered by
`NativeModule.define_abi`), and the host calls exports through the C helper
around `wasmtime_func_call_unchecked` -- not `Func.__call__`, which costs
~35 µs a call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import wasmtime

from . import _native, abi
from .check import module_problems
from .errors import ModuleError, trap_reason

WASI_MODULE = "wasi_snapshot_preview1"
_VALTYPES = {"i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64}
_RANGES = {"i32": 1 << 32, "i64": 1 << 64}


def _valtype_name(v: wasmtime.ValType) -> str:
    return str(v)


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


class ExportFunc:
    """A guest export, callable from Python with ints through the fast path."""

    def __init__(self, runtime: Runtime, module: str, name: str, func: wasmtime.Func) -> None:
        ty = func.type(runtime.store)
        self.module, self.name = module, name
        self.params = tuple(_valtype_name(p) for p in ty.params)
        self.results = tuple(_valtype_name(r) for r in ty.results)
        unsupported = [t for t in self.params + self.results if t not in _RANGES]
        if unsupported:
            raise ModuleError(
                f"{module}.{name}: only i32/i64 parameters and results can be called from the "
                f"host, not {unsupported[0]}"
            )
        self._runtime = runtime
        self._func = _native.func_copy(func)
        self._nslots = max(len(self.params), len(self.results))
        self._args = _native.new_args(self._nslots)
        self._slots = _native.int64_view(self._args)
        self._spans = tuple(_RANGES[t] for t in self.params)
        self._i32_results = tuple(t == "i32" for t in self.results)
        self._call = runtime.native.call

    def invoke(self, args: tuple[int, ...]) -> str | None | tuple[int, ...]:
        """Run the export; the results, or the trap message as a str."""
        if len(args) != len(self.params):
            raise TypeError(
                f"{self.module}.{self.name} takes {len(self.params)} argument(s) "
                f"({', '.join(self.params)}), {len(args)} given"
            )
        slots = self._slots  # int64 view: slot i is word 2*i (low half first)
        for i, value in enumerate(args):
            span = self._spans[i]
            if type(value) is not int or not -(span >> 1) <= value < span:
                raise TypeError(
                    f"{self.module}.{self.name}: argument {i} must be an "
                    f"{self.params[i]}, got {value!r}"
                )
            slots[2 * i] = value - span if value >= (span >> 1) else value
        trap = self._call(self._runtime.context, self._func, self._args, self._nslots)
        if trap is not None:
            return trap
        out = []
        for i, is_i32 in enumerate(self._i32_results):
            raw = slots[2 * i]
            out.append(((raw & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000 if is_i32 else raw)
        return tuple(out)


@dataclass
class LoadedModule:
    """One instantiated module and its side of the C core."""

    name: str
    source: str
    native: _native.NativeModule
    instance: wasmtime.Instance
    exports: dict[str, ExportFunc] = field(default_factory=dict)
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
        self._wasi_ready = False

    def compile(self, name: str, source: str | Path | bytes) -> tuple[wasmtime.Module, str]:
        return compile_module(source, engine=self.engine, name=name)

    def instantiate(
        self, name: str, module: wasmtime.Module, label: str, native: _native.NativeModule
    ) -> LoadedModule:
        problems = module_problems(module)
        if problems:
            raise ModuleError(f"{label}: {problems[0]}")
        linker = wasmtime.Linker(self.engine)
        native.define_abi(linker, self.functypes)
        for imp in module.imports:
            if imp.module == WASI_MODULE:
                self._enable_wasi(linker)
                break
        for imp in module.imports:
            if imp.module == abi.IMPORT_MODULE and imp.name not in abi.IMPLEMENTED:
                raise ModuleError(
                    f"{label}: import wasi_map.{imp.name} is not supported by this release"
                )
            if imp.module not in (abi.IMPORT_MODULE, WASI_MODULE):
                raise ModuleError(
                    f"{label}: imports {imp.module}.{imp.name}, which nothing provides"
                )
        try:
            instance = linker.instantiate(self.store, module)
        except wasmtime.Trap as exc:
            raise ModuleError(f"{label}: trapped while starting: {trap_reason(str(exc))}") from None
        except wasmtime.WasmtimeError as exc:
            raise ModuleError(f"{label}: cannot instantiate: {str(exc).splitlines()[0]}") from None
        exports = instance.exports(self.store)
        memory = exports.get("memory")
        if isinstance(memory, wasmtime.Memory):
            native.set_memory(memory)
        loaded = LoadedModule(name, label, native, instance)
        init = exports.get("_initialize")
        if isinstance(init, wasmtime.Func):
            trap = self.export(loaded, "_initialize").invoke(())
            if isinstance(trap, str):
                raise ModuleError(f"{label}: trapped in _initialize: {trap_reason(trap)}")
        return loaded

    def export(self, loaded: LoadedModule, name: str) -> ExportFunc:
        fn = loaded.exports.get(name)
        if fn is None:
            item = loaded.instance.exports(self.store).get(name)
            if not isinstance(item, wasmtime.Func):
                raise ModuleError(f"module {loaded.name!r} has no exported function {name!r}")
            fn = loaded.exports[name] = ExportFunc(self, loaded.name, name, item)
        return fn

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
