"""`wasi-map serve` as a real process on a free port: counts, bad requests, logs, graceful stop."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from serving import WASI_MAP, Served, counter_app


@pytest.fixture
def served(tmp_path: Path) -> Served:
    with Served(counter_app(tmp_path), "web.handle") as s:
        yield s  # type: ignore[misc]


class TestRequests:
    """Each request is one call of the export, with the request in a map."""

    def test_hits_are_counted_per_path(self, served: Served) -> None:
        """Three GETs of /a and one of /b: counts 1, 2, 3 and 1, from the shared named map."""
        bodies = [served.get(p) for p in ["/a", "/a", "/b", "/a"]]
        assert bodies == [(200, b"1"), (200, b"2"), (200, b"1"), (200, b"3")]

    def test_a_kept_alive_connection_serves_many(self, served: Served) -> None:
        """One HTTP/1.1 connection carries 20 requests in turn."""
        conn = served.connection()
        for i in range(1, 21):
            conn.request("GET", "/keep")
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, str(i).encode())
        conn.close()

    def test_method_body_query_and_headers_reach_the_guest(self, served: Served) -> None:
        """The guest echoes req:body, req:query and req:header:x-test into its response."""
        conn = served.connection()
        conn.request("POST", "/echo?q=1&r=2", body=b"hello", headers={"X-Test": "yes"})
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"hello")
        assert response.getheader("x-query") == "q=1&r=2"
        assert response.getheader("x-test") == "yes"
        assert response.getheader("content-type") == "text/plain; charset=utf-8"

    def test_a_malformed_request_is_400(self, served: Served) -> None:
        """A request line that is not METHOD TARGET HTTP/1.x gets 400, and the connection closes."""
        with socket.create_connection((served.host, served.port), timeout=10) as sock:
            sock.sendall(b"garbage\r\n\r\n")
            reply = sock.makefile("rb").read()
        assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert b"connection: close" in reply
        assert served.get("/a") == (200, b"1")  # the server carries on

    def test_a_body_over_the_limit_is_413(self, served: Served) -> None:
        """A Content-Length over 1 MiB is refused before the body is read."""
        with socket.create_connection((served.host, served.port), timeout=10) as sock:
            sock.sendall(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n")
            reply = sock.makefile("rb").read()
        assert reply.startswith(b"HTTP/1.1 413 ")

    def test_a_trap_is_500_and_the_module_serves_again(self, served: Served) -> None:
        """/trap: 500 (no guest detail sent); the module is loaded again, /a counts on."""
        assert served.get("/a") == (200, b"1")
        status, body = served.get("/trap")
        assert status == 500 and b"trapped" not in body
        assert served.get("/a") == (200, b"2")  # the named map outlived the module

    def test_what_the_guest_may_not_answer_is_500(self, served: Served) -> None:
        """A result that is no HTTP status, or a framing header, is replaced by a 500."""
        assert served.get("/bad-status")[0] == 500
        assert served.get("/bad-header")[0] == 500


class TestLog:
    """One JSON line per request on stderr."""

    def test_a_line_per_request(self, served: Served) -> None:
        """method, path, status, duration and module, in order of the requests; errors say why."""
        served.get("/a")
        served.get("/a?x=1", method="POST", body=b"z")
        served.get("/trap")
        with socket.create_connection((served.host, served.port), timeout=10) as sock:
            sock.sendall(b"nonsense\r\n")
            sock.makefile("rb").read()
        assert served.stop() == 0
        lines = served.requests()
        assert [(e["method"], e["path"], e["status"]) for e in lines] == [
            ("GET", "/a", 200),
            ("POST", "/a", 200),
            ("GET", "/trap", 500),
            ("nonsense", "-", 400),
        ]
        assert all(isinstance(e["ms"], float) and e["ms"] >= 0 for e in lines)
        assert [e["module"] for e in lines] == ["web", "web", "web", None]
        assert "guest trapped" in lines[2]["error"] and lines[2]["level"] == "error"
        assert "error" not in lines[0]


class TestStopping:
    """SIGTERM and SIGINT stop the server gracefully."""

    @pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
    def test_exit_0_when_idle(self, served: Served, sig: int) -> None:
        """With an idle kept-alive connection open, the server still stops at once, exit 0."""
        conn = served.connection()
        conn.request("GET", "/a")
        conn.getresponse().read()
        assert served.stop(sig, timeout=10) == 0
        assert served.log()[-1]["event"] == "stopped"
        conn.close()

    def test_a_request_in_flight_is_answered(self, served: Served) -> None:
        """SIGTERM while /slow runs (~0.5 s): the request gets its 200, then the exit is 0."""
        got: list[tuple[int, bytes]] = []
        client = threading.Thread(target=lambda: got.append(served.get("/slow")))
        client.start()
        time.sleep(0.15)  # the request reaches the guest, which spins for about 0.5 s
        served.proc.send_signal(signal.SIGTERM)
        client.join(30)
        assert got == [(200, b"1")]
        assert served.stop(None) == 0
        stopping = [e for e in served.log() if e["event"] == "stopping"]
        assert stopping[0]["connections"] == 1  # it was in flight when the signal came
        assert [e["path"] for e in served.requests()] == ["/slow"]

    def test_no_new_connections_after_the_signal(self, served: Served) -> None:
        """Once stopped, the port refuses connections."""
        assert served.stop() == 0
        with pytest.raises(OSError):
            socket.create_connection((served.host, served.port), timeout=5).close()


class TestBadInput:
    """A bad command line, manifest, target or address: one line, exit 2, before serving."""

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*WASI_MAP, "serve", *args], capture_output=True, text=True, timeout=60
        )

    def test_unknown_export(self, tmp_path: Path) -> None:
        done = self.run(str(counter_app(tmp_path)), "--call", "web.nope", "--port", "0")
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and "no exported function 'nope'" in done.stderr

    def test_unknown_module(self, tmp_path: Path) -> None:
        done = self.run(str(counter_app(tmp_path)), "--call", "nope.handle", "--port", "0")
        assert done.returncode == 2 and done.stderr.startswith("wasi-map: ")

    def test_an_export_not_declared_borrow(self, tmp_path: Path) -> None:
        """An export whose parameter is plain i32 is refused, saying the declaration to add."""
        app = counter_app(tmp_path, export='results = ["i32"]')
        done = self.run(str(app), "--call", "web.handle", "--port", "0")
        assert done.returncode == 2
        assert "web.handle is (i32) -> (i32); serve calls an export (borrow) -> i32" in done.stderr

    def test_a_port_in_use(self, tmp_path: Path) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = str(taken.getsockname()[1])
            done = self.run(str(counter_app(tmp_path)), "--call", "web.handle", "--port", port)
        assert done.returncode == 2
        assert (
            done.stderr == f"wasi-map: cannot listen on 127.0.0.1:{port}: address already in use\n"
        )

    def test_a_bad_manifest(self, tmp_path: Path) -> None:
        app = tmp_path / "app.toml"
        app.write_text("[modules.web\n")
        done = self.run(str(app), "--call", "web.handle", "--port", "0")
        assert done.returncode == 2 and str(app) in done.stderr and done.stderr.count("\n") == 1

    @pytest.mark.parametrize(
        ("words", "message"),
        [
            (["--call", "web.handle", "1", "--port", "0"], "takes no arguments"),
            (["--call", "web.handle", "--port", "70000"], "expected 0..65535"),
            (["--call", "webhandle", "--port", "0"], "expected MODULE.EXPORT"),
        ],
    )
    def test_a_bad_command_line(self, tmp_path: Path, words: list[str], message: str) -> None:
        done = self.run(str(counter_app(tmp_path)), *words)
        assert done.returncode == 2 and message in done.stderr
