"""After a trap: the instance it began in was torn down, then replaced (on_trap="replace")."""

from typing import Any

from broker import Broker


def replaced(b: Broker, target: str, *args: Any) -> Any:
    """`target`'s module holds no handle (the trap closed them all), and a call
    of `target` runs again, in the instance put in the torn one's place."""
    module = target.partition(".")[0]
    assert b.stats()["handles"][module] == 0
    return b.call(target, *args)
