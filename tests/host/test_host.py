"""The Broker's host API: loading, calling, teardown, stats and lifetime."""

from pathlib import Path

import pytest
from replaced import replaced

from broker import Broker, ConfigError, GuestTrap, ModuleError

MAKER = """
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "set_map" (func $set_map (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; make(n): n new maps, each referenced by the first; returns the first handle.
  (func (export "make") (param $n i32) (result i32)
    (local $first i32)
    (drop (call $new (i32.const 0)))
    (local.set $first (i32.load (i32.const 0)))
    (block $done (loop $l
      (br_if $done (i32.le_s (local.get $n) (i32.const 1)))
      (drop (call $new (i32.const 4)))
      (i32.store (i32.const 8) (local.get $n))
      (drop (call $set_map (local.get $first) (i32.const 8) (i32.const 4) (i32.load (i32.const 4))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $first))
  (func (export "boom") (unreachable))
  (func (export "echo") (param i64 i32) (result i64 i32) (local.get 0) (local.get 1)))
"""


class TestLoad:
    def test_load_bytes(self, broker: Broker) -> None:
        """A module can be loaded from WAT text given as bytes."""
        broker.load("m", MAKER.encode())
        assert broker.modules() == ["m"]

    def test_duplicate_name_is_refused(self, broker: Broker) -> None:
        """Two modules cannot share a name."""
        broker.load("m", MAKER.encode())
        with pytest.raises(ConfigError, match="already loaded"):
            broker.load("m", MAKER.encode())

    def test_wrong_suffix_is_refused(self, broker: Broker, tmp_path: Path) -> None:
        """A module file must be .wat or .wasm."""
        path = tmp_path / "m.txt"
        path.write_text(MAKER)
        with pytest.raises(ModuleError, match="must be a .wat or .wasm"):
            broker.load("m", path)


class TestCall:
    def test_results_and_signedness(self, broker: Broker) -> None:
        """Several results come back as a tuple; unsigned arguments wrap to signed results."""
        broker.load("m", MAKER.encode())
        assert broker.call("m.echo", 2**64 - 1, 0xFFFFFFFF) == (-1, -1)

    def test_trap_tears_the_module_down(self, broker: Broker) -> None:
        """A trap closes the module's handles, reclaims its maps and raises GuestTrap."""
        broker.load("m", MAKER.encode())
        broker.call("m.make", 50)
        assert broker.stats()["maps"] == 50
        with pytest.raises(GuestTrap) as info:
            broker.call("m.boom")
        assert (info.value.module, info.value.export) == ("m", "boom")
        assert broker.stats() == {"maps": 0, "named": 0, "handles": {"m": 0}}
        replaced(broker, "m.make", 1)

    def test_unload_reclaims(self, broker: Broker) -> None:
        """Unloading a module closes its handles; maps only it reached are reclaimed."""
        broker.load("m", MAKER.encode())
        broker.call("m.make", 1000)
        broker.unload("m")
        assert broker.stats() == {"maps": 0, "named": 0, "handles": {}}
        broker.load("m", MAKER.encode())  # the name is free again


class TestLifetime:
    def test_closed_broker_refuses_use(self) -> None:
        """After close, the broker and its host handles raise ConfigError, never crash."""
        b = Broker()
        host = b.host
        h = host.op_new()
        b.close()
        b.close()  # idempotent
        with pytest.raises(ConfigError):
            host.op_set(h, b"k", b"v")
        with pytest.raises(ConfigError):
            b.stats()

    def test_deep_chain_reclaims_without_recursion(self, broker: Broker) -> None:
        """A chain of 100,000 maps, each referencing the next, goes in one close."""
        host = broker.host
        first = host.op_new()
        cur = host.op_clone(first, 3)
        for _ in range(100_000):
            nxt = host.op_new()
            host.op_set_map(cur, b"next", nxt)
            host.op_close(cur)
            cur = nxt
        host.op_close(cur)
        assert broker.stats()["maps"] == 100_001
        host.op_close(first)
        assert broker.stats()["maps"] == 0


class TestCloseRace:
    def test_close_while_another_thread_writes(self) -> None:
        """Closing the broker while another thread writes through a MapRef never crashes."""
        import threading

        from broker.errors import MapError

        for _ in range(20):
            b = Broker()
            m = b.new_map()
            started, outcome = threading.Event(), []

            def writer(m=m, started=started, outcome=outcome) -> None:
                started.set()
                try:
                    for i in range(100_000):
                        m[b"k%d" % (i % 64)] = b"v"
                except MapError as exc:
                    outcome.append(type(exc).__name__)

            t = threading.Thread(target=writer)
            t.start()
            started.wait()
            b.close()
            t.join()
            assert outcome in ([], ["ConfigError"], ["BadHandleError"])


class TestAnotherBrokersMapRef:
    def test_call_refuses_it(self, broker: Broker) -> None:
        """A MapRef of another broker passed to call is refused, whatever the kind
        (before: its number silently reached a map of this broker)."""
        from xmod import CALLEE

        from broker import Borrow, Own, Share

        broker.load(
            "callee",
            CALLEE,
            exports={
                "keep": {"params": ["share"]},
                "take": {"params": ["own"]},
                "poke": {"params": ["borrow"]},
            },
        )
        mine = broker.new_map()  # this broker's handle with the same number
        mine[b"private"] = b"yes"
        with Broker() as other:
            theirs = other.new_map()
            assert theirs.handle == mine.handle
            for export, wrap in (("keep", Share), ("take", Own), ("poke", Borrow)):
                with pytest.raises(ConfigError, match="another broker"):
                    broker.call(f"callee.{export}", wrap(theirs))
            assert len(theirs) == 0  # and still usable in its own broker
        assert dict(mine) == {b"private": b"yes"}
        assert broker.stats()["handles"]["callee"] == 0

    def test_set_map_refuses_it(self, broker: Broker) -> None:
        """set_map with another broker's MapRef as the child is refused."""
        parent = broker.new_map()
        with Broker() as other:
            child = other.new_map()
            with pytest.raises(ConfigError, match="another broker"):
                parent.set_map(b"c", child)
        assert len(parent) == 0


class TestStatsRace:
    def test_stats_while_modules_come_and_go(self, broker: Broker) -> None:
        """stats() in one thread while another loads and unloads: no error, no crash
        (before: 'dictionary changed size during iteration')."""
        import threading

        errors: list[BaseException] = []
        done = threading.Event()

        def churn() -> None:
            try:
                for i in range(300):
                    broker.load(f"m{i % 7}", MAKER.encode())
                    broker.unload(f"m{i % 7}")
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                done.set()

        worker = threading.Thread(target=churn)
        worker.start()
        while not done.is_set():
            try:
                broker.stats()
            except BaseException as exc:  # reported below
                errors.append(exc)
        worker.join()
        assert errors == []


class TestBadArguments:
    @pytest.mark.parametrize("threshold", [-1, 1 << 64, 2.5, "10"])
    def test_gc_threshold_out_of_range(self, threshold: object) -> None:
        """A collector threshold outside 0..2**64-1 is a ConfigError (before: OverflowError)."""
        with pytest.raises(ConfigError, match="threshold"):
            Broker(gc_threshold=threshold)  # type: ignore[arg-type]

    @pytest.mark.parametrize("name", ["", "a.b", "a\nb", "tab\there", "x" * 256, "\x00"])
    def test_module_names_stay_one_line(self, broker: Broker, name: str) -> None:
        """A module name names links and messages: no '.', nothing unprintable, 1..255 long."""
        with pytest.raises(ConfigError, match="module name") as info:
            broker.load(name, MAKER.encode())
        assert "\n" not in str(info.value)
        assert broker.modules() == []


class TestFork:
    def test_a_forked_child_makes_its_own_broker(self, broker: Broker) -> None:
        """In a forked child the parent's Broker refuses with one line (it would hang:
        locks of missing threads, wasmtime's compiler pool), and a new Broker works."""
        import os

        broker.load("m", MAKER.encode())
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code only
            import signal

            signal.alarm(30)  # a hang (as before) ends the child, and fails the test
            code = 1
            try:
                try:
                    broker.call("m.make", 1)
                except ConfigError as exc:
                    if "before a fork" in str(exc):
                        code = 2
                if code == 2:
                    with Broker() as mine:
                        mine.load("m", MAKER.encode())
                        code = 0 if mine.call("m.make", 3) > 0 else 3
                broker.close()  # the parent's: nothing happens here
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert broker.call("m.make", 1) > 0  # the parent's broker is untouched


class TestNamesAndRights:
    @pytest.mark.parametrize(
        ("grants", "words"),
        [
            ({"a\ud800": "rw"}, "lone surrogates"),
            ({"x" * 100_000: "rw"}, "1..1024 bytes"),
            ({"ok": True}, "not True"),
            ({"ok": 4}, "not 4"),
        ],
        ids=["surrogate", "huge", "bool", "bits"],
    )
    def test_bad_grants_are_short_config_errors(
        self, broker: Broker, grants: dict[str, object], words: str
    ) -> None:
        """A grant that cannot be one is a ConfigError of one short line
        (before: UnicodeEncodeError, a 100 KB message, True accepted)."""
        with pytest.raises(ConfigError, match=words) as info:
            broker.load("m", MAKER.encode(), grants=grants)  # type: ignore[arg-type]
        assert len(str(info.value)) < 300 and broker.modules() == []

    def test_a_map_name_with_a_lone_surrogate(self, broker: Broker) -> None:
        """Broker.open refuses it as a ConfigError."""
        with pytest.raises(ConfigError, match="lone surrogates"):
            broker.open("a\ud800")
