"""bench_abi.py's ladder: a guest `get`/`set` taken apart stage by stage (_abi_ladder.c).

One guest imports every rung of _abi_ladder.c (`ladder.get_view`, ...) and
the real `wasi_map.get`/`set`, and exports a loop over each.  Its module is
a real module of a broker of its own, put together as Broker.load does
(broker/runtime.py: the engine with epoch checks, the module's store,
wm_define_abi), so every rung runs on the core's own handle table, map and
stripe, and the last rung is the real callback.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime
from _cfloor import compile_cffi, define_unchecked

HERE = Path(__file__).resolve().parent
NATIVE = HERE.parent / "native"
SOURCE = HERE / "_abi_ladder.c"
# The core's units whose functions the stages call (the rest is inline in its headers).
CORE_UNITS = ("table.c", "stripes.c")
OPS = ("get", "set")  # numbered 0 and 1 in _abi_ladder.c
PARAMS = {"get": 6, "set": 5}
# guests/abi_loop.wat's layout: handle at 0, out_len 4, key 16, value 64, get's buffer 128.
KEY = b"bench-key-000001"
VALUE = b"0123456789abcdef" * 4
ARGS = {"get": (16, 16, 128, 64, 4), "set": (16, 16, 64, 64)}  # after the handle
CDEF = """
size_t ladder_count(int op);
const char *ladder_name(int op, size_t i);
const char *ladder_adds(int op, size_t i);
uintptr_t ladder_callback(int op, size_t i);
"""


@dataclass(frozen=True)
class Rung:
    """One step of the ladder: a loop export of the guest over one import."""

    op: str
    name: str
    adds: str
    run: Callable[[int], None]  # run(n): n calls, checked to have all returned OK


def core_flags() -> list[str]:
    """native/ffi_build.py's compiler flags, loaded by its path."""
    path = NATIVE / "ffi_build.py"
    spec = importlib.util.spec_from_file_location("wasi_map_ffi_build", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.FLAGS)


def compile_ladder() -> tuple[Any, Any]:
    """_abi_ladder.c and the core's units it calls, compiled like the core; (ffi, lib)."""
    return compile_cffi(
        "_bench_abi_ladder",
        CDEF,
        SOURCE.read_text(),
        sources=[str(NATIVE / unit) for unit in CORE_UNITS],
        include_dirs=[str(NATIVE)],
        extra_compile_args=core_flags(),
        libraries=["pthread"],
    )


def guest_wat(imports: dict[str, list[str]]) -> str:
    """A guest importing `module.field` for each op and exporting a loop over
    each under the same name (abi_loop.wat's loop)."""
    decls, loops = [], []
    for op, names in imports.items():
        params = " ".join(["i32"] * PARAMS[op])
        args = " ".join(f"(i32.const {a})" for a in ARGS[op])
        for name in names:
            module, field = name.split(".")
            decls.append(
                f'(import "{module}" "{field}" (func ${name} (param {params}) (result i32)))'
            )
            loops.append(
                f"""(func (export "{name}") (param $n i32) (result i32)
                  (local $h i32) (local $bad i32)
                  (local.set $h (i32.load (i32.const 0)))
                  (block $done (br_if $done (i32.eqz (local.get $n)))
                    (loop $next
                      (local.set $bad (i32.add (local.get $bad)
                        (i32.ne (i32.const 0) (call ${name} (local.get $h) {args}))))
                      (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
                  (local.get $bad))"""
            )
    memory = [
        '(memory (export "memory") 1)',
        f'(data (i32.const 16) "{KEY.decode()}")',
        f'(data (i32.const 64) "{VALUE.decode()}")',
    ]
    return "\n".join(["(module", *decls, *memory, *loops, ")"])


class Ladder:
    """The rungs of both operations, on one module of a broker of its own."""

    def __init__(self) -> None:
        from broker import _native
        from broker.limits import Limits
        from broker.runtime import Runtime

        ffi, lib = compile_ladder()
        self._lib = lib  # the callbacks' code stays loaded while the guest may call them
        self.native = _native.NativeBroker(Limits())
        runtime = Runtime(self.native)
        self.runtime = runtime
        self.module = self.native.new_module(Limits(), "ladder")
        self.store = runtime.new_store(self.module, Limits())
        linker = wasmtime.Linker(runtime.engine)
        self.module.define_abi(linker, runtime.functypes)
        steps: dict[str, list[tuple[str, str, str]]] = {}  # op -> (import, name, adds)
        for number, op in enumerate(OPS):
            functype = wasmtime.FuncType(
                [wasmtime.ValType.i32()] * PARAMS[op], [wasmtime.ValType.i32()]
            )
            steps[op] = []
            for i in range(lib.ladder_count(number)):
                name = ffi.string(lib.ladder_name(number, i)).decode()
                callback = int(lib.ladder_callback(number, i))
                env = int(ffi.cast("uintptr_t", self.module.ptr))  # the rung's wm_module
                define_unchecked(linker, "ladder", f"{op}_{name}", functype, callback, env)
                adds = ffi.string(lib.ladder_adds(number, i)).decode()
                steps[op].append((f"ladder.{op}_{name}", name, adds))
            # The real callback: the stages again, and the plumbing around them.
            real = "the real callback: + abi.c's frame, ops.c's route, calls across units"
            steps[op].append((f"wasi_map.{op}", "callback", real))
        wat = guest_wat({op: [step[0] for step in steps[op]] for op in OPS})
        instance = linker.instantiate(self.store, wasmtime.Module(runtime.engine, wat))
        exports = instance.exports(self.store)
        memory = exports["memory"]
        assert isinstance(memory, wasmtime.Memory)
        self.memory = memory
        self.module.set_memory(memory)
        h = self.module.op_new()
        self.module.op_set(h, KEY, VALUE)
        memory.write(self.store, h.to_bytes(4, "little"), 0)
        self.rungs = {
            op: [Rung(op, name, adds, self._loop(exports[imp])) for imp, name, adds in steps[op]]
            for op in OPS
        }

    def _loop(self, func: Any) -> Callable[[int], None]:
        def run(n: int) -> None:
            bad = func(self.store, n)
            if bad:
                raise RuntimeError(f"ladder: {bad} of {n} calls did not return OK")

        return run

    def check(self) -> None:
        """Every rung answers OK; those that copy the value out leave all of it."""
        for op in OPS:
            for rung in self.rungs[op]:
                self.memory.write(self.store, bytes(4), 4)  # out_len
                self.memory.write(self.store, bytes(len(VALUE)), 128)  # get's buffer
                rung.run(1)
                out_len = int.from_bytes(self.memory.read(self.store, 4, 8), "little")
                value = self.memory.read(self.store, 128, 128 + len(VALUE))
                copies = op == "get" and rung.name in ("work", "callback")
                if copies and (out_len, value) != (len(VALUE), VALUE):
                    raise RuntimeError(f"ladder: get rung {rung.name} did not copy the value out")
