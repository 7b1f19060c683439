"""A separate process for tests/stores/test_store_processes.py: one broker, one abi_driver guest.

Run as `python store_worker.py STORE_URL MAP [MAP ...]`: it creates a
`Broker(store=STORE_URL)`, loads tests/guests/abi_driver.wat granted every
MAP read-write, prints `{"ready": PID}` and then answers one JSON line on
stdin with one JSON line on stdout until `{"op": "exit"}` or end of input.
Every map operation is a guest ABI call (`guest_driver.Driver`); bytes
travel as hex strings.  Requests:

    {"op": "set", "map": M, "key": K, "value": V}          -> {"errno": E}
    {"op": "delete", "map": M, "key": K}                   -> {"errno": E}
    {"op": "set_many", "map": M, "items": [[K, V], ...]}   -> {"errno": E}
    {"op": "incr", "map": M, "key": K, "delta": D}         -> {"errno": E, "value": N|null}
    {"op": "incr_loop", "map": M, "key": K, "n": N[, "pause": S]}
                                                           -> {"values": [...], "errnos": [...]}
    {"op": "version", "map": M, "key": K}                  -> {"errno": E, "version": N|null}
    {"op": "set_if", "map": M, "key": K, "value": V, "expected": N} -> {"errno": E}
    {"op": "dump", "map": M}                               -> {"entries": [[K, V, version], ...]}
    {"op": "batch", "requests": [...]}                     -> {"replies": [...]}

`incr_loop` makes N guest `incr` calls of 1 (sleeping S seconds before
each, if given) and answers with the value of each OK one, in order, and
the errno of every other one.  A request that
raises answers `{"error": TRACEBACK}`.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from typing import Any

from guest_driver import RW, Driver

from broker import Broker
from broker.abi import Errno


class Worker:
    """The broker and guest of this process, and the handles it opened."""

    def __init__(self, url: str, maps: list[str]) -> None:
        self.broker = Broker(store=url)
        self.driver = Driver(self.broker, "w", grants={name: "rw" for name in maps})
        self.handles: dict[str, int] = {}

    def handle(self, name: str) -> int:
        h = self.handles.get(name)
        if h is None:
            err, h = self.driver.open(name.encode(), RW)
            assert err == Errno.OK and h is not None, f"open {name!r}: {Errno(err).name}"
            self.handles[name] = h
        return h

    def answer(self, req: dict[str, Any]) -> dict[str, Any]:
        op, d = req["op"], self.driver
        if op == "batch":
            return {"replies": [self.answer(r) for r in req["requests"]]}
        h = self.handle(req["map"])
        key = bytes.fromhex(req.get("key", ""))
        if op == "set":
            return {"errno": d.set(h, key, bytes.fromhex(req["value"]))}
        if op == "delete":
            return {"errno": d.delete(h, key)}
        if op == "set_many":
            items = [(bytes.fromhex(k), bytes.fromhex(v)) for k, v in req["items"]]
            return {"errno": d.set_many(h, items)}
        if op == "incr":
            err, total = d.incr(h, key, req["delta"])
            return {"errno": err, "value": total}
        if op == "incr_loop":
            values: list[int] = []
            errnos: list[int] = []
            pause = req.get("pause", 0.0)
            for _ in range(req["n"]):
                if pause:
                    time.sleep(pause)
                err, total = d.incr(h, key, 1)
                if err == Errno.OK:
                    assert total is not None
                    values.append(total)
                else:
                    errnos.append(err)
            return {"values": values, "errnos": errnos}
        if op == "version":
            err, version = d.version(h, key)
            return {"errno": err, "version": version}
        if op == "set_if":
            value = bytes.fromhex(req["value"])
            return {"errno": d.set_if(h, key, value, req["expected"])}
        if op == "dump":
            return {"entries": dump(d, h)}
        raise ValueError(f"unknown request {op!r}")


def dump(d: Driver, h: int) -> list[list[Any]]:
    """Every entry as [key, value, version], in `keys` order, read by the guest."""
    keys = d.list_keys(h, cap=64)  # small pages: the cursor is exercised too
    values: list[bytes] = []
    versions: list[int] = []
    for key in keys:
        err, got = d.get(h, key, cap=0)  # RANGE with the size, then a buffer that fits
        if err == Errno.RANGE:
            assert isinstance(got, int)
            err, got = d.get(h, key, cap=got)
        # (an empty value fits in no room at all: OK at once)
        assert err == Errno.OK and isinstance(got, bytes), f"get: {Errno(err).name}"
        values.append(got)
        err, version = d.version(h, key)
        assert err == Errno.OK and version is not None, f"version: {Errno(err).name}"
        versions.append(version)
    if keys:  # get_many agrees with get, value for value
        err, many = d.get_many(h, keys, cap=sum(4 + len(v) for v in values))
        assert err == Errno.OK and many == values, f"get_many: {Errno(err).name}"
    return [[k.hex(), v.hex(), ver] for k, v, ver in zip(keys, values, versions, strict=True)]


def main(url: str, maps: list[str]) -> None:
    worker = Worker(url, maps)
    print(json.dumps({"ready": os.getpid()}), flush=True)
    try:
        for line in sys.stdin:
            req = json.loads(line)
            if req["op"] == "exit":
                break
            try:
                reply = worker.answer(req)
            except Exception:
                reply = {"error": traceback.format_exc()}
            print(json.dumps(reply), flush=True)
    finally:
        worker.broker.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
