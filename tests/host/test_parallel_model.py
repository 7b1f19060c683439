"""Guests in several threads at once against the rules (docs/concurrency.md).

Hypothesis draws a program for each of two or three threads: loops of map
operations run inside the guest (tests/guests/parallel_model.wat), so the
threads' operations really overlap in the C core -- a guest's get/set/incr
takes only its map's lock -- while the model's answer stays exact:

- every operation answers what it would alone (each loop counts the ones
  that do not, and must return 0): a private map reads back what its thread
  wrote, versions rise, `set` over a map reference drops it;
- `incr` from every thread on one key of the shared named map loses nothing;
- afterwards the refcount table recounts clean, nothing leaked (every map
  the `refs` loops made was reclaimed when written over), and the quota
  charges of all modules add up to exactly what the maps hold -- though
  each thread gave back bytes that another had written.
"""

from __future__ import annotations

import threading
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from broker import Broker
from broker._native import ENTRY_COST, MAP_COST

GUEST = Path(__file__).parent.parent / "guests" / "parallel_model.wat"
WAIT = 60  # seconds a thread may take; never reached when all is well

steps = st.tuples(st.sampled_from(["hits", "own", "refs"]), st.integers(1, 400))
programs = st.lists(st.lists(steps, min_size=1, max_size=8), min_size=2, max_size=3)


def run_threads(broker: Broker, programs: list[list[tuple[str, int]]]) -> list[str]:
    """Run each program in a thread of its own, in module t<i>, all released
    together; the failures, as messages."""
    start = threading.Barrier(len(programs))
    failures: list[str] = []

    def work(i: int, program: list[tuple[str, int]]) -> None:
        start.wait(WAIT)
        for op, n in program:
            args = (n,) if op == "hits" else (n, i)
            try:
                bad = broker.call(f"t{i}.{op}", *args)
            except Exception as exc:  # noqa: BLE001 -- reported below, with its thread
                failures.append(f"t{i}.{op}{args}: {exc!r}")
                return
            if bad != 0:
                failures.append(f"t{i}.{op}{args}: {bad} operations answered wrong")

    threads = [threading.Thread(target=work, args=(i, p)) for i, p in enumerate(programs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
        assert not t.is_alive(), "a thread did not finish"
    return failures


@settings(max_examples=25, deadline=None)
@given(programs=programs)
def test_threads_keep_the_rules(programs: list[list[tuple[str, int]]]) -> None:
    with Broker() as broker:
        for i in range(len(programs)):
            broker.load(f"t{i}", GUEST, grants={"shared": "rw"})
        assert run_threads(broker, programs) == []

        counter = broker.open("shared")
        hits = sum(n for program in programs for op, n in program if op == "hits")
        assert int.from_bytes(counter.get(b"hits", b"\0" * 8), "little") == hits
        assert b"ref" not in {bytes(k)[:3] for k in counter}  # every refs loop deleted its key
        counter.close()

        assert broker._native.check() == 0  # the refcount table recounts clean
        snapshot = broker.snapshot()
        private = sum(1 for p in programs if any(op == "own" for op, _ in p))
        assert broker.stats()["maps"] == private  # the maps `refs` made were all reclaimed
        held = sum(row.bytes + row.entries * ENTRY_COST for row in snapshot.maps.values())
        held += MAP_COST * private
        charged = [broker.native_module(f"t{i}").usage() for i in range(len(programs))]
        assert sum(b for b, _ in charged) == held
        assert sum(e for _, e in charged) == sum(row.entries for row in snapshot.maps.values())
