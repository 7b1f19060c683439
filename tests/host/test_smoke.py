"""The shortest path through the stack: load a WAT guest, call it."""

from broker import Broker


class TestSmoke:
    def test_guest_sets_and_gets(self, broker: Broker, guests) -> None:
        """A guest creates a map, sets a key and reads the value's length back."""
        broker.load("a", guests / "hello.wat")
        assert broker.call("a.main") == 6
        assert broker.stats() == {"maps": 1, "named": 0, "handles": {"a": 1}}
