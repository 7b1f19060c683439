"""FlakyStore: an app's own store (`Broker(store=...)`) that fails on command."""

from __future__ import annotations

from typing import Any

from broker.stores import Store


class FlakyStore(Store):
    """An app's own store: a dict, that fails on command."""

    url = "flaky:"

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.fail: BaseException | None = None

    def _check(self) -> None:
        if self.fail is not None:
            raise self.fail

    def get(self, name: str, key: bytes) -> bytes | None:
        self._check()
        return self.data.get(key)

    def set(self, name: str, key: bytes, value: bytes) -> None:
        self._check()
        self.data[key] = value

    def _unused(self, *args: object) -> Any:
        raise NotImplementedError

    delete = exists = len = keys = incr = version = set_if = get_many = set_many = _unused

    def close(self) -> None:
        pass
