"""Redis over TCP, TLS (rediss://) and a unix socket (unix://): URLs, options, passwords."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from certificates import make_certificates
from redis_server import RedisServer

from broker import Broker, ConfigError
from broker.errors import StoreError
from broker.stores import open_store, redact_url, resolve_url, url_problem
from broker.stores.redis_store import RedisStore

SECRET = "s3cr3t-pw"


class TestUrls:
    @pytest.mark.parametrize(
        "url",
        [
            "redis://127.0.0.1:6379/0",
            "rediss://127.0.0.1:6380/0",
            "rediss://user:pw@h:6380/1?ssl_ca_certs=/c/ca.pem&ssl_cert_reqs=required",
            "rediss://h:6380/0?ssl_cert_reqs=none&ssl_check_hostname=false",
            "rediss://h:6380/0?ssl_certfile=c.pem&ssl_keyfile=k.pem&ssl_password=x",
            "rediss://h:6380/0?ssl_ca_path=/etc/ssl/certs",
            "unix:///run/redis.sock",
            "unix:///run/redis.sock?db=3",
            "unix://:pw@/run/redis.sock?db=3",
            "unix://user:pw@/run/redis.sock",
            "unix:///run/redis.sock?db=1&password=pw",
        ],
    )
    def test_good(self, url: str) -> None:
        """Every documented form is accepted."""
        assert url_problem(url) is None

    @pytest.mark.parametrize(
        "url,problem",
        [
            ("redis://h:1/0?ssl_ca_certs=x", "takes no options after the database number"),
            ("rediss://h:1/0?ssl_cert_reqs=maybe", "ssl_cert_reqs must be one of none, optional"),
            ("rediss://h:1/0?protocol=3", "unknown option 'protocol' (the options are ssl_"),
            ("rediss://h:1/0?ssl_ca_certs=a&ssl_ca_certs=b", "ssl_ca_certs is given twice"),
            ("rediss://h:1/0?ssl_ca_certs=", "ssl_ca_certs= needs a value"),
            ("rediss://h:1/0?ssl_check_hostname=perhaps", "ssl_check_hostname must be one of"),
            ("rediss://h:99999/0", "write rediss://HOST:PORT/DB"),
            ("rediss://h:1/x", "the database must be a number"),
            ("unix://redis.sock", "write unix:///PATH/TO/SOCKET[?db=N]"),
            ("unix://host/run/redis.sock", "the socket's absolute path, no host"),
            ("unix:///run/redis.sock?db=x", "the database must be a number"),
            ("unix:///run/redis.sock?db=", "db= needs a number"),
            ("unix:///run/redis.sock?timeout=1", "unknown option 'timeout' (the options are db"),
            ("unix:///run/redis.sock#frag", "takes no '#'"),
        ],
    )
    def test_bad(self, url: str, problem: str) -> None:
        """A URL redis-py would take with an option the broker does not is refused,
        saying what is allowed: no option reaches the connection unchecked."""
        found = url_problem(url)
        assert found is not None and problem in found
        with pytest.raises(ConfigError, match="^store '"):
            open_store(url)

    def test_secrets_are_hidden(self) -> None:
        """Passwords in the user part or in options are shown as ***."""
        assert redact_url(f"unix://:{SECRET}@/run/r.sock?db=1") == "unix://:***@/run/r.sock?db=1"
        assert SECRET not in redact_url(f"unix:///run/r.sock?password={SECRET}&db=1")
        shown = redact_url(f"rediss://h:1/0?ssl_keyfile=k.pem&ssl_password={SECRET}")
        assert shown == "rediss://h:1/0?ssl_keyfile=k.pem&ssl_password=***"

    def test_manifest_relative_certificates(self) -> None:
        """A manifest's relative certificate files are relative to the manifest."""
        url = "rediss://u:p%40w@h:6380/0?ssl_ca_certs=certs/ca.pem&ssl_certfile=/abs/c.pem"
        assert resolve_url(url, Path("/app")) == (
            "rediss://u:p%40w@h:6380/0?ssl_ca_certs=/app/certs/ca.pem&ssl_certfile=/abs/c.pem"
        )

    def test_missing_certificate_file(self, tmp_path: Path) -> None:
        """A certificate file that is not there is a ConfigError naming it, at once."""
        missing = tmp_path / "ca.pem"
        with pytest.raises(ConfigError) as info:
            Broker(store=f"rediss://127.0.0.1:1/0?ssl_ca_certs={missing}")
        assert str(info.value).endswith(f"ssl_ca_certs: {missing} is not a file")


# --- a real server on a unix socket -------------------------------------------


@pytest.fixture(scope="module")
def unix_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server on a unix socket (and a TCP port), with a password."""
    # A socket's path is at most 107 bytes: pytest's tmp paths can be longer.
    with tempfile.TemporaryDirectory(prefix="wm-") as short:
        server = RedisServer(
            tmp_path_factory.mktemp("unix"),
            unixsocket=Path(short) / "redis.sock",
            password=SECRET,
        ).start()
        try:
            yield server
        finally:
            server.stop()


class TestUnixSocket:
    def test_password_and_db(self, unix_server: RedisServer) -> None:
        """unix://:PASSWORD@/PATH?db=N reaches that database through the socket."""
        url = f"unix://:{SECRET}@{unix_server.unixsocket}?db=2"
        with Broker(store=url) as broker, broker.open("m") as ref:
            ref[b"k"] = b"v"
            assert ref[b"k"] == b"v"
            assert SECRET not in broker.store_url and ":***@" in broker.store_url
        direct = redis.Redis(unix_socket_path=str(unix_server.unixsocket), password=SECRET, db=2)
        try:
            assert direct.hget("wasi-map:v:{m}", b"k") == b"v"
        finally:
            direct.close()

    def test_password_as_option(self, unix_server: RedisServer) -> None:
        """The password may be an option (?password=...) instead."""
        url = f"unix://{unix_server.unixsocket}?password={SECRET}&db=3"
        with Broker(store=url) as broker, broker.open("m") as ref:
            ref[b"k"] = b"v"
            assert len(ref) == 1

    def test_username_and_password(self, unix_server: RedisServer) -> None:
        """USER:PASSWORD@ logs in as an ACL user."""
        admin = redis.Redis(unix_socket_path=str(unix_server.unixsocket), password=SECRET)
        admin.acl_setuser(
            "alice", enabled=True, passwords=["+alice-pw"], keys=["*"], commands=["+@all"]
        )
        admin.close()
        with Broker(store=f"unix://alice:alice-pw@{unix_server.unixsocket}") as broker:
            with broker.open("m") as ref:
                assert ref.incr(b"n", 5) == 5
            assert broker.store_url == f"unix://alice:***@{unix_server.unixsocket}"

    def test_wrong_password(self, unix_server: RedisServer) -> None:
        """A refused login is a StoreError that names the URL without the password."""
        url = f"unix://:not-{SECRET}@{unix_server.unixsocket}"
        with (
            Broker(store=url) as broker,
            broker.open("m") as ref,
            pytest.raises(StoreError) as info,
        ):
            ref[b"k"] = b"v"
        message = str(info.value)
        assert f"unix://:***@{unix_server.unixsocket}" in message and SECRET not in message
        assert "invalid" in message.lower() or "WRONGPASS" in message

    def test_no_socket(self, tmp_path: Path) -> None:
        """A socket that is not there: the call fails with IO, naming the path."""
        with (
            Broker(store=f"unix://{tmp_path}/none.sock") as broker,
            broker.open("m") as ref,
            pytest.raises(StoreError, match="none.sock"),
        ):
            ref[b"k"] = b"v"


# --- a real server over TLS ---------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server with a TLS port, its certificate signed by a CA of the test's own."""
    pytest.importorskip("cryptography")
    directory = tmp_path_factory.mktemp("tls")
    server = RedisServer(directory, tls=make_certificates(directory))
    try:
        server.start()
    except RuntimeError:
        pytest.skip("this redis-server was built without TLS (--tls-port)")
    try:
        yield server
    finally:
        server.stop()


def tls_url(server: RedisServer, options: str = "") -> str:
    assert server.tls is not None
    return f"rediss://127.0.0.1:{server.tls_port}/0?ssl_ca_certs={server.tls.ca}{options}"


class TestTls:
    def test_verified_connection(self, tls_server: RedisServer) -> None:
        """rediss:// with the CA's certificate verifies the server and works."""
        with Broker(store=tls_url(tls_server)) as broker, broker.open("m") as ref:
            ref[b"k"] = b"v"
            assert ref[b"k"] == b"v" and ref.version(b"k") > 0
        assert isinstance(broker.store, RedisStore)

    def test_it_is_tls(self, tls_server: RedisServer) -> None:
        """The URL's options reach the connection: the pool makes TLS connections."""
        store = open_store(tls_url(tls_server, "&ssl_cert_reqs=required"))
        assert isinstance(store, RedisStore)
        try:
            kwargs = store._pool.connection_kwargs
            assert kwargs["ssl_ca_certs"] == str(tls_server.tls.ca)  # type: ignore[union-attr]
            assert kwargs["ssl_cert_reqs"] == "required"
            assert store._pool.connection_class is redis.SSLConnection
        finally:
            store.close()

    def test_unknown_ca_is_refused(self, tls_server: RedisServer) -> None:
        """Without the CA the server's certificate does not verify: IO, saying so."""
        url = f"rediss://127.0.0.1:{tls_server.tls_port}/0"
        with (
            Broker(store=url) as broker,
            broker.open("m") as ref,
            pytest.raises(StoreError, match="certificate verify failed"),
        ):
            ref[b"k"] = b"v"

    def test_unverified_when_asked(self, tls_server: RedisServer) -> None:
        """ssl_cert_reqs=none connects without checking the certificate."""
        url = f"rediss://127.0.0.1:{tls_server.tls_port}/0?ssl_cert_reqs=none"
        with Broker(store=url) as broker, broker.open("m") as ref:
            ref[b"k"] = b"v"

    def test_client_certificate(self, tls_server: RedisServer) -> None:
        """ssl_certfile and ssl_keyfile present a client certificate."""
        tls = tls_server.tls
        assert tls is not None
        url = tls_url(tls_server, f"&ssl_certfile={tls.cert}&ssl_keyfile={tls.key}")
        with Broker(store=url) as broker, broker.open("m") as ref:
            ref[b"k"] = b"v"

    def test_manifest_certificate_beside_it(self, tls_server: RedisServer, tmp_path: Path) -> None:
        """A manifest names its CA file relative to itself."""
        tls = tls_server.tls
        assert tls is not None
        (tmp_path / "ca.pem").write_bytes(tls.ca.read_bytes())
        (tmp_path / "m.wat").write_text('(module (func (export "f") (result i32) (i32.const 7)))')
        url = f"rediss://127.0.0.1:{tls_server.tls_port}/0?ssl_ca_certs=ca.pem"
        (tmp_path / "app.toml").write_text(f'[store]\nurl = "{url}"\n[modules.m]\npath = "m.wat"\n')
        with Broker.from_manifest(tmp_path / "app.toml") as broker, broker.open("m") as ref:
            ref[b"k"] = b"v"
            assert broker.call("m.f") == 7
