"""A store URL's password never shows: not in messages, logs, reprs, nor the `url` others print."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from paths import GUESTS
from redis_server import free_port

from broker import Broker
from broker.cli import main
from broker.errors import ConfigError, ManifestError, StoreError
from broker.manifest import load_manifest
from broker.stores import open_store, redact_url
from broker.stores.redis_store import RedisStore

SECRET = "hunter2"
APP = '[modules.a]\npath = "hello.wat"\n'
HELLO = GUESTS / "hello.wat"


def closed_port_url() -> str:
    """A URL with a password, of a port where nothing listens."""
    return f"redis://default:{SECRET}@127.0.0.1:{free_port()}/0"


class TestRedactUrl:
    @pytest.mark.parametrize(
        "url,shown",
        [
            ("redis://default:hunter2@host:6379/0", "redis://default:***@host:6379/0"),
            ("redis://:hunter2@host:6379/0", "redis://:***@host:6379/0"),
            ("redis://hunter2@host:6379/0", "redis://***@host:6379/0"),
            ("redis://u:hun@ter/2#x@host:1/0", "redis://u:***@host:1/0"),
            ("redis://u:hunter2@[::1", "redis://u:***@[::1"),
            ("redis://h:1/0?password=hunter2&x=1", "redis://h:1/0?password=***&x=1"),
            ("redis://host:6379/0", "redis://host:6379/0"),
            ("sqlite:/data/me@host.db", "sqlite:/data/me@host.db"),
            ("memory:", "memory:"),
            ("redis://u:***@h:1/0", "redis://u:***@h:1/0"),
        ],
    )
    def test_password_replaced(self, url: str, shown: str) -> None:
        """The password (or a userinfo without ':') becomes ***; the rest stays."""
        assert redact_url(url) == shown


class TestMessages:
    def test_bad_url_in_manifest(self, tmp_path: Path) -> None:
        """A manifest's unusable store URL is shown without its password."""
        (tmp_path / "hello.wat").write_text(HELLO.read_text())
        path = tmp_path / "app.toml"
        path.write_text(f'[store]\nurl = "redis://u:{SECRET}@host:port/0"\n{APP}')
        with pytest.raises(ManifestError) as info:
            load_manifest(path)
        assert SECRET not in str(info.value)
        assert "redis://u:***@host:port/0" in str(info.value)

    @pytest.mark.parametrize(
        "url",
        [
            f"redis://u:{SECRET}@[::1",
            f"redis://u:{SECRET}@h:99999/0",
            f"redis://{SECRET}@h:0/0",
            f"redis://u:12/{SECRET}@h:1/0",  # a '/' in the password: its end looks like a path
        ],
    )
    def test_bad_url_given_to_broker(self, url: str) -> None:
        """Broker(store=URL) with an unusable URL is a ConfigError without the password."""
        with pytest.raises(ConfigError) as info:
            Broker(store=url)
        assert SECRET not in str(info.value)

    def test_command_line(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """`wasi-map run` with an unusable store URL exits 2 without printing the password."""
        (tmp_path / "hello.wat").write_text(HELLO.read_text())
        path = tmp_path / "app.toml"
        path.write_text(f'[store]\nurl = "redis://u:{SECRET}@[::1"\n{APP}')
        assert main(["run", str(path), "--call", "a.main"]) == 2
        err = capsys.readouterr().err
        assert "redis://u:***@[::1" in err and SECRET not in err

    def test_manifest_repr(self, tmp_path: Path) -> None:
        """A Manifest's repr leaves the store URL out."""
        (tmp_path / "hello.wat").write_text(HELLO.read_text())
        path = tmp_path / "app.toml"
        path.write_text(f'[store]\nurl = "redis://u:{SECRET}@host:1/0"\n{APP}')
        manifest = load_manifest(path)
        assert manifest.store_url == f"redis://u:{SECRET}@host:1/0"  # what the broker connects with
        assert SECRET not in repr(manifest)


class TestRedisStore:
    def test_url_and_repr(self) -> None:
        """The store's `url` and repr hide the password; it still connects with it."""
        store = open_store(closed_port_url())
        assert isinstance(store, RedisStore)
        try:
            assert SECRET not in store.url and ":***@" in store.url
            assert SECRET not in repr(store)
            assert store._pool.connection_kwargs["password"] == SECRET
        finally:
            store.close()

    def test_connection_refused(self, caplog: pytest.LogCaptureFixture) -> None:
        """A StoreError for a server that is not there names the URL without the password."""
        caplog.set_level(logging.DEBUG)
        with (
            Broker(store=closed_port_url()) as broker,
            broker.open("m") as ref,
            pytest.raises(StoreError) as info,
        ):
            ref[b"k"] = b"v"
        assert "default:***@127.0.0.1" in str(info.value)
        assert SECRET not in str(info.value)
        assert SECRET not in caplog.text

    def test_refused_login(self, redis_url: str) -> None:
        """A login the server refuses is a StoreError without the password."""
        url = redis_url.replace("redis://", f"redis://nobody:{SECRET}@")
        with (
            Broker(store=url) as broker,
            broker.open("m") as ref,
            pytest.raises(StoreError) as info,
        ):
            ref[b"k"] = b"v"
        assert "nobody:***@" in str(info.value)
        assert SECRET not in str(info.value)


class TestOutsideTheStores:
    def test_broker_store_url(self) -> None:
        """Broker.store_url, which other code prints, hides the password."""
        with Broker(store=closed_port_url()) as broker:
            assert SECRET not in broker.store_url
