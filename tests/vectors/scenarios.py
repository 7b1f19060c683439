"""The scenarios behind tests/vectors/*.json: run them on the Python host and record.

    python tests/vectors/scenarios.py           # rewrite every vector file
    python tests/vectors/scenarios.py keys      # only keys.json

Each scenario is a list of steps on the driver guest (tests/guests/abi_driver.wat,
every wasi_map function re-exported raw), built with `Steps`.  Recording
runs them through the Python host and stores what it answered: the results
every host must give (tests/vectors/README.md).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "support"), str(Path(__file__).parent)]

from scenarios_links import SCENARIOS as LINKS  # noqa: E402
from vectors import VECTORS, notation, record  # noqa: E402

from broker.abi import FUNCTIONS, Errno  # noqa: E402
from broker.abi.declaration import Shape  # noqa: E402

# The driver's memory (2 pages): out-pointers, a cursor, inputs, buffers.
OUT, OUT2, CURSOR = 0x100, 0x108, 0x110
KEY, VAL, BUF = 0x1000, 0x3000, 0x8000
MEM_END = 0x20000
DRIVER = 'path = "abi_driver.wat"'


class Steps:
    """A scenario being written: the app, then steps on module `d`."""

    def __init__(self, name: str, about: str, app: str = "", module: str = "d") -> None:
        self.name, self.about, self.module = name, about, module
        self.app = app or f"[modules.d]\n{DRIVER}\n"
        self.steps: list[dict[str, Any]] = []

    def call(self, fn: str, *args: int) -> None:
        """A raw call of the module's export `fn` (an ABI function or a helper)."""
        self.steps.append({"call": f"{self.module}.{fn}", "args": [notation(a) for a in args]})

    def to(self, target: str, *args: int) -> None:
        """A call of any module's export, `module.export`."""
        self.steps.append({"call": target, "args": [notation(a) for a in args]})

    def put(self, at: int, data: bytes) -> None:
        self.steps.append({"write": "d", "at": at, "hex": data.hex()})

    def read(self, at: int, n: int) -> None:
        self.steps.append({"read": "d", "at": at, "len": n})

    def stats(self) -> None:
        self.steps.append({"stats": {}})

    # --- shorthands on the fixed layout ----------------------------------
    def new(self) -> None:
        """new into OUT; the handle is read back by the next `read(OUT, 4)`."""
        self.call("new", OUT)
        self.read(OUT, 4)

    def set(self, h: int, key: bytes, value: bytes) -> None:
        self.put(KEY, key)
        self.put(VAL, value)
        self.call("set", h, KEY, len(key), VAL, len(value))

    def get(self, h: int, key: bytes, cap: int = 64) -> None:
        self.put(KEY, key)
        self.call("get", h, KEY, len(key), BUF, cap, OUT)
        self.read(OUT, 4)
        self.read(BUF, min(cap, 16))

    def vector(self) -> dict[str, Any]:
        return {"name": self.name, "about": self.about, "app": self.app, "steps": self.steps}


# Handle numbers of the driver (slot index, generation 1 above bit 21): the
# first handles a module gets.  The recorded `read`s of OUT show them too.
GEN1 = 1 << 21
H1, H2, H3 = 0 | GEN1, 1 | GEN1, 2 | GEN1


def values() -> Steps:
    s = Steps("values", "get, set, delete, exists and len on one anonymous map")
    s.new()
    s.get(H1, b"k")  # NOENT
    s.set(H1, b"k", b"v1")
    s.get(H1, b"k")
    s.get(H1, b"k", cap=1)  # RANGE: the needed size in out_len, the buffer untouched
    s.get(H1, b"k", cap=0)
    s.set(H1, b"k", b"value-two")
    s.get(H1, b"k")
    s.call("exists", H1, KEY, 1, OUT)
    s.read(OUT, 4)
    s.call("len", H1, OUT)
    s.read(OUT, 4)
    s.call("delete", H1, KEY, 1)
    s.call("delete", H1, KEY, 1)  # OK also when absent
    s.call("exists", H1, KEY, 1, OUT)
    s.read(OUT, 4)
    s.set(H1, b"", b"")  # an empty key and an empty value
    s.get(H1, b"")
    s.call("len", H1, OUT)
    s.read(OUT, 4)
    s.stats()
    s.call("close", H1)
    s.stats()
    return s


def faults() -> Steps:
    """Every pointer of every function, out of bounds: FAULT before anything else."""
    s = Steps("faults", "every span of every function just past the end of memory is FAULT")
    s.new()
    for f in FUNCTIONS:
        for i, p in enumerate(f.params):
            if p.shape not in (Shape.INPUT, Shape.BUFFER, Shape.OUTPUT, Shape.INOUT):
                continue
            args = []
            for q in f.params:
                if q.shape is Shape.HANDLE:
                    args.append(H1)
                elif q.shape is Shape.LENGTH:
                    args.append(4)
                elif q.shape is Shape.VALUE:
                    args.append(1 if q.name == "rights" else 0)
                else:
                    args.append(BUF)
            args[i] = MEM_END - (p.size or 4) + 1  # one byte past the end
            s.call(f.name, *args)
    s.call("get", H1, 0xFFFFFFFF, 2, BUF, 4, OUT)  # a span that wraps around
    s.call("close", H1)
    return s


def handles() -> Steps:
    s = Steps("handles", "handle numbers, STALE and BADF, clone and its rights")
    s.new()
    s.new()
    s.call("close", H1)
    s.call("close", H1)  # STALE
    s.call("len", H1, OUT)  # STALE
    s.call("len", 0, OUT)  # BADF: never issued
    s.call("len", 0x00FFFFFF, OUT)
    s.new()  # reuses slot 1 with the next generation
    s.call("clone", H2, 1, OUT)
    s.read(OUT, 4)
    s.call("clone", H2, 4, OUT)  # INVAL: unknown rights bits
    s.call("clone", H2, 0, OUT)
    s.read(OUT, 4)
    s.stats()
    return s


def keys() -> Steps:
    s = Steps("keys", "keys pages: whole keys only, RANGE for a key too big, the cursor")
    s.new()
    for i in range(12):
        s.set(H1, f"key-{i:02d}".encode(), b"v")
    for cap in (0, 9, 10, 40, 256):
        s.put(CURSOR, bytes(8))
        s.call("keys", H1, CURSOR, BUF, cap, OUT, OUT2)
        s.read(OUT, 12)
        s.read(CURSOR, 8)
        s.read(BUF, min(cap, 32))
    s.put(CURSOR, (5).to_bytes(8, "little"))  # resume from a cursor
    s.call("keys", H1, CURSOR, BUF, 40, OUT, OUT2)
    s.read(OUT, 12)
    s.read(CURSOR, 8)
    s.put(CURSOR, (1 << 40).to_bytes(8, "little"))  # past the end: done
    s.call("keys", H1, CURSOR, BUF, 40, OUT, OUT2)
    s.read(OUT, 12)
    s.read(CURSOR, 8)
    s.put(KEY, b"key-03")
    s.call("delete", H1, KEY, 6)
    s.set(H1, b"key-03", b"back")  # re-added: listed last
    s.put(CURSOR, bytes(8))
    s.call("keys", H1, CURSOR, BUF, 512, OUT, OUT2)
    s.read(OUT, 12)
    s.read(BUF, 128)
    return s


def counters() -> Steps:
    s = Steps("counters", "incr, version and set_if")
    s.new()
    s.put(KEY, b"n")
    s.call("incr", H1, KEY, 1, 5, OUT)
    s.read(OUT, 8)
    s.call("incr", H1, KEY, 1, -7, OUT)
    s.read(OUT, 8)
    s.call("incr", H1, KEY, 1, 2**63 - 1, OUT)  # wraps like i64.add
    s.read(OUT, 8)
    s.set(H1, b"s", b"abc")
    s.call("incr", H1, KEY, 1, 1, OUT)  # TYPE: not 8 bytes
    s.put(KEY, b"v")
    s.call("version", H1, KEY, 1, OUT)
    s.read(OUT, 8)
    s.set(H1, b"v", b"1")
    s.call("version", H1, KEY, 1, OUT)
    s.read(OUT, 8)
    s.put(VAL, b"2")
    s.call("set_if", H1, KEY, 1, VAL, 1, 0)  # CONFLICT
    s.call("set_if", H1, KEY, 1, VAL, 1, -1)  # compared unsigned: CONFLICT
    s.put(KEY, b"fresh")
    s.call("set_if", H1, KEY, 5, VAL, 1, 0)  # absent and expected 0: OK
    s.call("version", H1, KEY, 5, OUT)
    s.read(OUT, 8)
    return s


def _records(*items: bytes) -> bytes:
    return b"".join(len(i).to_bytes(4, "little") + i for i in items)


def batch() -> Steps:
    s = Steps("batch", "get_many and set_many: records, absent keys, RANGE, INVAL")
    s.new()
    items = _records(b"a", b"1", b"bb", b"22", b"a", b"333")  # a repeated key: the later wins
    s.put(VAL, items)
    s.call("set_many", H1, VAL, len(items))
    s.call("set_many", H1, VAL, len(items) - 1)  # truncated: INVAL, nothing written
    s.call("len", H1, OUT)
    s.read(OUT, 4)
    wanted = _records(b"a", b"zz", b"bb")
    s.put(KEY, wanted)
    for cap in (0, 8, 64):
        s.call("get_many", H1, KEY, len(wanted), BUF, cap, OUT)
        s.read(OUT, 4)
        s.read(BUF, 24)
    s.call("get_many", H1, KEY, len(wanted) - 1, BUF, 64, OUT)  # truncated: INVAL
    s.call("get_many", H1, KEY, len(wanted), KEY, 64, OUT)  # overlapping: INVAL
    s.call("get_many", H1, KEY, 0, BUF, 64, OUT)  # no keys: OK, 0 used
    s.read(OUT, 4)
    return s


def maprefs() -> Steps:
    s = Steps("maprefs", "set_map and get_map: references keep maps alive, TYPE")
    s.new()  # parent H1
    s.new()  # child H2
    s.set(H2, b"x", b"y")
    s.put(KEY, b"c")
    s.call("set_map", H1, KEY, 1, H2)
    s.call("close", H2)
    s.stats()  # the child lives: the parent refers to it
    s.call("get_map", H1, KEY, 1, OUT)
    s.read(OUT, 4)
    s.get(H1, b"c")  # TYPE
    s.set(H1, b"b", b"bytes")
    s.call("get_map", H1, KEY, 1, OUT)  # TYPE (KEY holds "b" now)
    s.put(KEY, b"c")
    s.call("exists", H1, KEY, 1, OUT)
    s.read(OUT, 4)
    s.call("close", H2 + GEN1)  # the handle get_map gave: slot 1, generation 2
    s.call("delete", H1, KEY, 1)  # the child's last reference: reclaimed
    s.stats()
    s.call("close", H1)
    s.stats()
    return s


GRANTS = f'[modules.d]\n{DRIVER}\ngrants = {{ shared = "rw", ro = "r", wo = "w" }}\n'


def named() -> Steps:
    s = Steps("named", "open: grants, rights within the grant, bad names", GRANTS)
    for name, rights in ((b"shared", 3), (b"ro", 1), (b"ro", 3), (b"wo", 2), (b"nope", 1)):
        s.put(KEY, name)
        s.call("open", KEY, len(name), rights, OUT)
        s.read(OUT, 4)
    s.put(KEY, b"shared")
    s.call("open", KEY, 6, 8, OUT)  # INVAL: unknown rights bits
    s.call("open", KEY, 0, 1, OUT)  # INVAL: an empty name
    s.put(KEY, b"\xff\xfe")
    s.call("open", KEY, 2, 1, OUT)  # INVAL: not UTF-8
    s.set(H1, b"k", b"kept")
    s.call("close", H1)
    s.put(KEY, b"shared")
    s.call("open", KEY, 6, 1, OUT)  # the named map outlives its handles
    s.read(OUT, 4)
    s.stats()
    return s


SMALL = "{ key_size = 8, value_size = 16, handles = 3, entries = 4 }"
LIMITED = f"[modules.d]\n{DRIVER}\nlimits = {SMALL}\n"


def limits() -> Steps:
    s = Steps("limits", "key and value sizes (TOOBIG), handles and entries (QUOTA)", LIMITED)
    s.new()
    s.set(H1, b"k" * 9, b"v")  # TOOBIG key
    s.set(H1, b"k", b"v" * 17)  # TOOBIG value
    s.get(H1, b"k" * 9)  # TOOBIG on get too
    for i in range(5):
        s.set(H1, f"k{i}".encode(), b"v")  # the fifth: QUOTA
    s.call("new", OUT)
    s.call("new", OUT)
    s.call("new", OUT)  # the fourth handle: QUOTA
    s.stats()
    return s


CHARGED = f'[modules.d]\n{DRIVER}\nlimits = {{ bytes = 600, on_quota = "trap" }}\n'


def bytes_quota() -> Steps:
    s = Steps(
        "bytes_quota",
        "the bytes quota charges MAP_COST per map and ENTRY_COST + sizes per entry;"
        " on_quota = trap makes the call that hits it trap",
        CHARGED,
    )
    s.new()  # 160
    s.set(H1, b"a", b"x" * 100)  # 88 + 1 + 100
    s.set(H1, b"a", b"x" * 10)  # an overwrite gives back the difference
    s.set(H1, b"b", b"y" * 150)
    s.stats()
    s.set(H1, b"c", b"z" * 200)  # past 600: QUOTA, and on_quota = trap: a trap
    s.stats()  # the trap tore the module down: its map reclaimed
    return s


WATCHER = '[modules.w]\npath = "watcher.wat"\nlimits = { watches = 3 }\n'


def drop_notices() -> Steps:
    """tests/guests/watcher.wat: new/link/watch/close, and its wasi_map_on_drop
    records each cookie (count, cookie(i)); trap_on_drop makes the handler trap."""
    s = Steps(
        "drop_notices",
        "watch_drop: notices delivered after the call, in reclaim order (a cascade"
        " through references), the watches quota, handler-made notices waiting for"
        " the next delivery, a trap in a handler, teardown dropping pending notices",
        WATCHER,
        module="w",
    )
    s.call("new")
    s.call("new")
    s.call("new")
    s.call("link", H1, H2)  # H1 refers to H2, H2 to H3
    s.call("link", H2, H3)
    for h, cookie in ((H1, 1), (H2, 2), (H3, 3), (H3, 4)):  # the fourth: QUOTA (watches = 3)
        s.call("watch", h, cookie)
    s.call("close", H2)
    s.call("close", H3)
    s.call("count")  # still alive through H1: no notice
    s.call("close", H1)  # the cascade: H1's map, then H2's, then H3's
    s.call("count")
    for i in range(3):
        s.call("cookie", i)
    s.stats()
    s.call("new")
    s.call("watch", H1 + GEN1, 7)
    s.call("close", H1 + GEN1)
    s.call("count")
    s.call("cookie", 3)
    s.call("count")  # the handler made, watched and closed a map: its notice came later
    s.call("cookie", 4)
    s.call("new")
    s.call("watch", H1 + 3 * GEN1, 9)
    s.call("trap_on_drop")
    s.call("close", H1 + 3 * GEN1)  # the handler traps: the module is torn down
    s.call("count")
    s.stats()
    s.call("new")
    s.call("watch", H1, 5)
    s.call("trap")  # teardown: the notice goes nowhere
    s.call("count")
    s.stats()
    return s


def teardown() -> Steps:
    s = Steps("teardown", "a trap closes every handle of the module: its maps are reclaimed")
    s.new()
    s.new()
    s.set(H1, b"k", b"v")
    s.stats()
    s.steps.append({"call": "d.trap", "args": []})
    s.stats()
    return s


def xmod_app(broker: str = "", **exports: str) -> str:
    """tests/guests/xmod_caller.wat as `caller`, xmod_callee.wat as `callee`
    with `exports` declared (e.g. keep='{ params = ["own"] }')."""
    lines = [broker, "[modules.caller]", 'path = "xmod_caller.wat"', "", "[modules.callee]"]
    lines.append('path = "xmod_callee.wat"')
    lines += [f"exports.{name} = {decl}" for name, decl in exports.items()]
    return "\n".join(line for line in lines if line is not None) + "\n"


OWN, BORROW, SHARE = '{ params = ["own"] }', '{ params = ["borrow"] }', '{ params = ["share"] }'
READ_ONLY = '{ params = ["own:r"] }'


def xmod_own() -> Steps:
    s = Steps(
        "xmod_own", "own: the handle moves; :r passes READ only", xmod_app(keep=OWN, take=READ_ONLY)
    )
    s.to("caller.new")
    s.to("caller.write", H1, 1, 7)
    s.to("caller.via_keep", H1)  # the callee's new handle number
    s.to("caller.read", H1, 1)  # STALE: it moved
    s.to("callee.read", H1, 1)
    s.stats()
    s.to("caller.new")
    s.to("caller.via_take", H1 + GEN1)  # own:r
    s.to("callee.write", H2, 1, 1)  # ACCES: READ only
    s.to("callee.read", H2, 1)
    s.to("caller.via_keep", 0x7FFF)  # never issued: BADF, the caller traps
    s.stats()
    s.to("callee.close", H1)
    s.to("callee.close", H2)
    s.stats()
    return s


def xmod_borrow() -> Steps:
    s = Steps(
        "xmod_borrow",
        "borrow: a non-counting handle for the call; the lender's handle BUSY for close and own",
        xmod_app(keep=BORROW, poke=BORROW, end_borrow=BORROW, call_back=BORROW, take=OWN,
                 keep_clone=BORROW),
    )  # fmt: skip
    s.to("caller.new")
    s.to("caller.via_keep", H1)  # the borrowed number, left open: the broker ends it
    s.to("callee.read", H1, 1)  # STALE after the call
    s.to("caller.via_poke", H1)  # the callee writes through the borrow
    s.to("caller.read", H1, 9)
    s.to("caller.via_end_borrow", H1)  # closing a borrow is OK
    s.to("caller.via_call_back", H1, 0)  # re-entered: close BUSY, write and read fine
    s.to("caller.load32", 0x100)
    s.to("caller.load32", 0x104)
    s.to("caller.load32", 0x108)
    s.to("caller.via_call_back", H1, 1)  # own of a lent handle: BUSY, a trap
    s.stats()
    s.to("caller.new")  # the trap replaced the caller: a fresh handle table
    s.to("caller.via_keep_clone", H1, 1)  # a READ clone (slot 1: the borrow has slot 0)
    s.to("callee.read", H2, 1)
    s.to("callee.write", H2, 1, 1)  # ACCES: the clone has READ only
    s.to("caller.close", H1)
    s.stats()  # the clone keeps the map
    s.to("callee.close", H2)
    s.stats()
    return s


def xmod_share() -> Steps:
    s = Steps(
        "xmod_share",
        "share: a second owner; results own and share; a bad result traps the callee",
        xmod_app(
            keep=SHARE,
            give='{ results = ["own"] }',
            give_back='{ params = ["borrow"], results = ["share"] }',
            give_bad='{ results = ["own"] }',
            share_on=BORROW,
        ),
    )
    s.to("caller.new")
    s.to("caller.write", H1, 1, 5)
    s.to("caller.via_keep", H1)
    s.to("caller.close", H1)
    s.stats()  # the callee's handle keeps the map
    s.to("callee.read", H1, 1)
    s.to("caller.via_give")  # a new map {1: 7}, moved to the caller
    s.to("caller.read", H1 + GEN1, 1)
    s.stats()
    s.to("caller.via_give_back", H1 + GEN1)  # a borrowed handle back as share
    s.to("caller.via_give_bad")  # not a handle of the callee: the callee traps
    s.stats()
    return s


def xmod_strict() -> Steps:
    s = Steps(
        "xmod_strict",
        "strict_borrows: a callee that keeps a borrow open past its call traps",
        xmod_app("[broker]\nstrict_borrows = true\n", keep=BORROW, end_borrow=BORROW),
    )
    s.to("caller.new")
    s.to("caller.via_end_borrow", H1)  # closed in time: fine
    s.to("caller.via_keep", H1)  # left open: the callee traps
    s.to("caller.read", H1, 1)  # the lender's handle is its own again
    s.stats()
    return s


GC_APP = f"[broker]\ngc_threshold = 2\n\n[modules.d]\n{DRIVER}\n"


def gc_cycles() -> Steps:
    s = Steps(
        "gc_cycles",
        "the cycle collector runs by itself after gc_threshold releases: a 2-cycle and a"
        " self-cycle are reclaimed at the same call on every host",
        GC_APP,
    )
    s.new()  # a
    s.new()  # b
    s.new()  # c
    s.put(KEY, b"k")
    s.call("set_map", H1, KEY, 1, H2)  # a -> b
    s.call("set_map", H2, KEY, 1, H1)  # b -> a
    s.call("set_map", H3, KEY, 1, H3)  # c -> c
    s.call("close", H1)
    s.stats()
    s.call("close", H2)  # a and b keep each other alive
    s.stats()
    s.call("close", H3)
    s.stats()
    for k in range(2, 5):  # releases that leave a referenced map alive: the threshold
        a, b = 2 | k << 21, 1 | k << 21  # freed slots are reused last-freed first
        s.new()
        s.new()
        s.call("set_map", a, KEY, 1, b)
        s.call("close", b)
        s.call("close", a)
        s.stats()
    return s


SCENARIOS: dict[str, Callable[[], Steps]] = {
    f.__name__: f
    for f in (
        values,
        faults,
        handles,
        keys,
        counters,
        batch,
        maprefs,
        named,
        limits,
        bytes_quota,
        drop_notices,
        teardown,
        xmod_own,
        xmod_borrow,
        xmod_share,
        xmod_strict,
        gc_cycles,
    )
}


def _linked(name: str) -> Callable[[], Steps]:
    """A scenario of scenarios_links.py: its steps as they are written there."""

    def make() -> Steps:
        about, app, steps = LINKS[name]
        s = Steps(name, about, app)
        s.steps = [dict(step) for step in steps]
        return s

    return make


SCENARIOS.update({name: _linked(name) for name in LINKS})


def main(argv: list[str]) -> int:
    names = argv or list(SCENARIOS)
    for name in names:
        path = VECTORS / f"{name}.json"
        record(SCENARIOS[name]().vector(), path)
        print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    assert Errno.OK == 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
