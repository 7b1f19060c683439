"""The wasmtime side of a broker: one Engine, a Store per module, instantiating.

One Engine per broker (a FuncType used with two engines aborts the process),
configured for epoch interruption: the C core's ticker advances it while
calls run, and each module's store has a deadline callback that enforces the
module's time limit.  Each module gets its own Store, so its linear memory
and tables are bounded by its own limits and everything it had goes when it
is unloaded.  Guests reach the data plane through C host functions
(`NativeModule.define_abi`) and each other through C trampolines that enter
the callee's store (broker/linking.py); the host calls exports through
broker/calls.py.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import wasmtime

from . import _native, abi, input_file
from .check import module_problems
from .errors import ModuleError, StoreFailure, error_chain, trap_reason
from .host_functions import HostFunctions
from .limits import Limits
from .linking import Links, check_declarations
from .loaded import Instance, LoadedModule
from .module_spec import ExportDecl

WASI_MODULE = "wasi_snapshot_preview1"
_VALTYPES = {"i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64}
_forked = False  # set in the child of a fork (os.register_at_fork below)


def _in_forked_child() -> None:
    global _forked
    _forked = True


os.register_at_fork(after_in_child=_in_forked_child)

MAX_MEMORIES = 1  # a module's one linear memory (the `memory` it exports)
MAX_TABLES = 4


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
            data = input_file.read_regular(path, input_file.MAX_MODULE_SIZE)
        except input_file.UnreadableFile as exc:
            raise ModuleError(f"{label}: cannot read module: {exc}") from None
    if not data:  # wasmtime would say only "expected wasm bytes", naming nothing
        given = "no bytes given" if isinstance(source, (bytes, bytearray)) else "the file is empty"
        raise ModuleError(f"{label}: not a valid Wasm module: {given}")
    text = None
    try:
        if data[:4] == b"\0asm":
            module = wasmtime.Module(engine or wasmtime.Engine(), data)
        else:
            text = data.decode("utf-8")
            module = wasmtime.Module(engine or wasmtime.Engine(), text)
    except UnicodeDecodeError as exc:
        raise ModuleError(
            f"{label}: not a valid Wasm module: neither Wasm (no \\0asm header) nor UTF-8 "
            f"WAT text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None
    except wasmtime.WasmtimeError as exc:
        file = None if isinstance(source, (bytes, bytearray)) else label
        problem = compile_problem(str(exc), file, text)
        raise ModuleError(f"{label}: not a valid Wasm module: {problem}") from None
    return module, label


# Where wasmtime says a WAT error is: below the error (`--> <anon>:3:29`,
# then the line and a caret) or, for a long line, after it (` at <anon>:1:519`).
_WAT_PLACE = re.compile(r"(?:\n\s*-->| at) <anon>:(\d+):(\d+)")
SHOWN_SOURCE = 100  # the most characters of a WAT line a message shows


def compile_problem(message: str, file: str | None, text: str | None) -> str:
    """Why wasmtime did not compile a module, in one line: the error and its
    last cause; for WAT `text` with an error, the place wasmtime points at
    (`FILE:LINE:COLUMN`) and that line of the text."""
    place = _WAT_PLACE.search(message)
    if place is None:
        chain = error_chain(message)
        if len(chain) < 2:
            return chain[0] if chain else "wasmtime gave no reason"
        return f"{chain[0]}: {chain[-1]}"
    number, column = int(place[1]), int(place[2])
    where = f"{file}:{number}:{column}" if file else f"line {number}, column {column}"
    problem = f"{message[: place.start()].strip()} at {where}"
    lines = (text or "").splitlines()
    if not 0 < number <= len(lines) or not lines[number - 1].strip():
        return problem
    return f"{problem}: {_excerpt(lines[number - 1], column)}"


def _excerpt(line: str, column: int) -> str:
    """A source line for a message: without its indent, around `column` if long."""
    if len(line.strip()) <= SHOWN_SOURCE:
        return line.strip()
    start = max(0, column - 1 - SHOWN_SOURCE // 2)
    end = start + SHOWN_SOURCE
    cut = line[start:end].strip()
    return f"{'...' if start else ''}{cut}{'...' if end < len(line.rstrip()) else ''}"


class Runtime:
    """One Engine per broker (a FuncType used with two engines aborts); a Store per module."""

    def __init__(self, native: _native.NativeBroker) -> None:
        self.native = native
        config = wasmtime.Config()
        config.epoch_interruption = True
        # wasmtime's parallel compiler uses a thread pool a forked child does
        # not have (its compiles would wait forever): compile on this thread there.
        config.parallel_compilation = not _forked

        self.engine = wasmtime.Engine(config)
        native.set_engine(self.engine)
        self.functypes = [
            wasmtime.FuncType(
                [_VALTYPES[t]() for t in abi.BY_NAME[name].param_types], [wasmtime.ValType.i32()]
            )
            for name in _native.abi_function_names()
        ]
        i32 = wasmtime.ValType.i32
        self.poll_type = wasmtime.FuncType([i32(), i32(), i32(), i32()], [i32()])
        self.links = Links()
        self.host_functions = HostFunctions()

    def compile(self, name: str, source: str | Path | bytes) -> tuple[wasmtime.Module, str]:
        return compile_module(source, engine=self.engine, name=name)

    def new_store(self, native: _native.NativeModule, limits: Limits) -> wasmtime.Store:
        """A store for one module, bounded by its limits, its time limit armed."""
        store = wasmtime.Store(self.engine)
        store.set_limits(
            memory_size=limits.linear_memory,
            table_elements=limits.table_elements,
            instances=1,
            memories=MAX_MEMORIES,
            tables=MAX_TABLES,
        )
        native.set_store(store)
        return store

    def instantiate(
        self,
        name: str,
        instance_label: str,
        module: wasmtime.Module,
        label: str,
        native: _native.NativeModule,
        limits: Limits,
        decls: dict[str, ExportDecl],
        loaded: dict[str, LoadedModule],
    ) -> Instance:
        """Link and instantiate one instance of module `name` in a new store;
        imports of modules in `loaded` are resolved first.  On failure
        nothing of it stays linked."""
        problems = module_problems(module)
        if problems:
            raise ModuleError(f"{label}: {problems[0]}")
        store = self.new_store(native, limits)
        linker = wasmtime.Linker(self.engine)
        native.define_abi(linker, self.functypes)
        if any(imp.module == WASI_MODULE for imp in module.imports):
            self._enable_wasi(linker, store, native)
        hosted = self.host_functions.namespaces()
        try:
            peers = [
                self.links.define(instance_label, native, linker, imp, label)
                for imp in module.imports
                if imp.module not in (WASI_MODULE, abi.IMPORT_MODULE, *hosted)
            ]
            for imp in module.imports:
                if imp.module in hosted:
                    self.host_functions.link(instance_label, native, linker, imp, label)
            for peer in peers:
                if peer.module in loaded:
                    self.links.resolve(peer, loaded[peer.module])
            native.enter()  # the start function runs under the time limit
            self.links.loading(name, native)
            start = _native.StoreReach()  # the start function may reach the store
            try:
                with start:
                    instance = linker.instantiate(store, module)
            except wasmtime.Trap as exc:
                trapped = start_trapped(label, str(exc), start.failure, start.host_error)
                raise trapped from trapped.__cause__
            except wasmtime.WasmtimeError as exc:
                if "wasi_map:" in str(exc):  # the broker stopped its start (a time limit)
                    trapped = start_trapped(label, str(exc), start.failure, start.host_error)
                    raise trapped from trapped.__cause__
                raise ModuleError(
                    f"{label}: cannot instantiate: {instantiate_problem(str(exc), limits)}"
                ) from None
            finally:
                self.links.loading(name, None)
                native.leave()
            exports = instance.exports(store)
            check_declarations(name, exports, store, decls)
        except BaseException:
            self.forget(native.id)
            store.close()
            raise
        memory = exports.get("memory")
        if isinstance(memory, wasmtime.Memory):
            native.set_memory(memory)
        return Instance(instance_label, native, store, instance)

    def _enable_wasi(
        self, linker: wasmtime.Linker, store: wasmtime.Store, native: _native.NativeModule
    ) -> None:
        """WASI preview 1 with stdout and stderr inherited; poll_oneoff is the
        core's, whose sleeps count against the time limit."""
        linker.define_wasi()
        linker.allow_shadowing = True
        native.define_wasi_poll(linker, self.poll_type)
        linker.allow_shadowing = False
        config = wasmtime.WasiConfig()
        config.inherit_stdout()
        config.inherit_stderr()
        store.set_wasi(config)

    def forget(self, importer_id: int) -> None:
        """The instance `importer_id` is going: its imports (of peers and of
        host functions) go too."""
        self.links.forget(importer_id)
        self.host_functions.forget(importer_id)

    def close(self) -> None:
        self.engine.close()  # the core holds its own reference while it ticks


def start_trapped(
    label: str, message: str, failure: StoreFailure | None, host_error: BaseException | None = None
) -> ModuleError:
    """The error for a start function that trapped; the store's failure
    during it, if any, is said and is its cause (else a host function's exception)."""
    error = ModuleError(f"{label}: trapped while starting: {trap_reason(message)}")
    error.__cause__ = host_error
    if failure is not None:
        error = ModuleError(f"{error} (the store failed during the start: {failure})")
        error.__cause__ = failure.error
    return error


def instantiate_problem(message: str, limits: Limits) -> str:
    """wasmtime's reason a module could not be instantiated, in one line,
    naming the limit when it was one of ours."""
    text = trap_reason(message)
    if "memory minimum size" in text and "exceeds memory limits" in text:
        return f"its linear memory needs more than its limit of {limits.linear_memory} bytes"
    if "table minimum size" in text and "exceeds table limits" in text:
        return f"a table needs more than its limit of {limits.table_elements} elements"
    if "memory count too high" in text:
        return f"it defines more than {MAX_MEMORIES} linear memory"
    if "table count too high" in text:
        return f"it defines more than {MAX_TABLES} tables"
    return text
