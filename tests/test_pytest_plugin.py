"""The pytest plugin (broker/pytest_plugin.py): a fixture that fails tests which leave maps behind.

Each test writes a small test file and runs pytest on it with `pytester`;
the plugin comes from wasi-map's `pytest11` entry point, as for any user.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

APPS = Path(__file__).parent / "apps"
LEAKY = APPS / "leaky" / "app.toml"
GUESTS = Path(__file__).parent / "guests"
# The inner pytest runs in this process: it must leave faulthandler alone.
# Its faulthandler plugin would, on exit, put back the SIGILL/SIGSEGV handlers
# of before wasmtime installed its own, and the next guest trap in this
# session would kill the process ("Illegal instruction").
QUIET = ("-p", "no:faulthandler", "-p", "no:cacheprovider")


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    """Run `source` as a test file (apps and guests available as LEAKY and GUESTS)."""
    header = f"from pathlib import Path\nLEAKY = {str(LEAKY)!r}\nGUESTS = Path({str(GUESTS)!r})\n"
    pytester.makepyfile(**{"test_user": header + source})
    return pytester.runpytest(*QUIET, *args)


class TestInstalled:
    """The plugin reaches users through the entry point."""

    def test_entry_point(self) -> None:
        """The installed wasi-map declares the pytest11 entry point broker.pytest_plugin.

        Every wasi-map distribution on the path is looked at, as pytest does
        (a stale egg-info in the source tree can shadow the installed one)."""
        points = {
            (ep.name, ep.value)
            for dist in importlib.metadata.distributions()
            if dist.metadata["Name"] == "wasi-map"
            for ep in dist.entry_points
            if ep.group == "pytest11"
        }
        assert points == {("wasi_map", "broker.pytest_plugin")}

    def test_loaded_without_conftest(self, pytester: pytest.Pytester) -> None:
        """A test file with no conftest and no -p gets the plugin and its fixture."""
        result = run(
            pytester,
            "def test_plugin(request, wasi_map_broker):\n"
            "    assert request.config.pluginmanager.get_plugin('wasi_map') is not None\n"
            "    assert wasi_map_broker.tracer is not None\n",
        )
        result.assert_outcomes(passed=1)

    def test_marker_registered(self, pytester: pytest.Pytester) -> None:
        """The wasi_map_app marker is registered: --strict-markers accepts it."""
        result = run(
            pytester,
            "import pytest\n"
            "@pytest.mark.wasi_map_app(LEAKY)\n"
            "def test_marked(wasi_map_broker):\n"
            "    assert wasi_map_broker.modules() == ['b', 'a']\n",
            "--strict-markers",
        )
        result.assert_outcomes(passed=1)
        markers = pytester.runpytest(*QUIET, "--markers")
        markers.stdout.fnmatch_lines(["@pytest.mark.wasi_map_app(path):*"])


class TestFixture:
    """wasi_map_broker: a traced Broker, checked for leaks at teardown."""

    def test_clean_test_passes(self, pytester: pytest.Pytester) -> None:
        """Maps closed, and a cycle left for the collector: the test passes."""
        result = run(
            pytester,
            "def test_clean(wasi_map_broker):\n"
            "    with wasi_map_broker.new_map() as m:\n"
            "        m[b'k'] = b'v'\n"
            "    a, b = wasi_map_broker.new_map(), wasi_map_broker.new_map()\n"
            "    a.set_map(b'next', b)\n"
            "    b.set_map(b'next', a)\n"
            "    a.close()\n"
            "    b.close()\n"
            "    wasi_map_broker.open('config')[b'k'] = b'named maps stay'\n",
        )
        result.assert_outcomes(passed=1)

    def test_host_leak_fails_with_report(self, pytester: pytest.Pytester) -> None:
        """A MapRef kept in a module-level dict fails the test; the report names the dict."""
        result = run(
            pytester,
            "CACHE = {}\n"
            "def test_leaks(wasi_map_broker):\n"
            "    CACHE['users'] = wasi_map_broker.new_map()\n"
            "    CACHE['users'][b'k'] = b'v'\n",
        )
        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(
            [
                "*ERROR at teardown of test_leaks*",
                "wasi-map: the test left maps behind",
                "1 map(s) still alive that are not named maps; 0 borrow(s) not released; "
                "0 map(s) reclaimed, 0 by the cycle collector",
                "map 1 (1 entry)",
                "  held by host handle 2097152, kept alive by test_user.CACHE*users*",
                "  history:",
                "    #1 new           host h2097152",
            ]
        )

    def test_app_leaks_fail_with_report(self, pytester: pytest.Pytester) -> None:
        """The leaky app's known leaks and open borrow fail a marked test, with the report."""
        result = run(
            pytester,
            "import pytest\n"
            "@pytest.mark.wasi_map_app(LEAKY)\n"
            "def test_app(wasi_map_broker):\n"
            "    assert wasi_map_broker.call('a.main') == 0\n",
        )
        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(
            [
                "wasi-map: the test left maps behind",
                "3 map(s) still alive that are not named maps; 1 borrow(s) not released; "
                "1 map(s) reclaimed, 2 by the cycle collector",
                "map 1 (1 entry)",
                "  held by b handle 2097152",
                "    #4 move          a h2097152 -> b h2097152   in a.main > b.take",
                "map 6 (1 entry)",
                "  referenced by map 5 under key 'child'",
                "map 7 (0 entries)",
                "  held by b handle 2097154",
                "borrow not released: map 2 lent by a handle 4194304 to b (handle 2097153) "
                "in b.peek; the broker ended it",
            ]
        )

    def test_unreleased_borrow_alone_fails(self, pytester: pytest.Pytester) -> None:
        """No map left, but a borrow the callee did not close: the test fails."""
        result = run(
            pytester,
            "from broker import Borrow\n"
            "def test_borrow(wasi_map_broker):\n"
            "    b = wasi_map_broker\n"
            "    b.load('callee', GUESTS / 'xmod_callee.wat',\n"
            "           exports={'poke': {'params': ['borrow']}})\n"
            "    b.load('caller', GUESTS / 'xmod_caller.wat')\n"
            "    with b.new_map() as m:\n"
            "        assert b.call('callee.poke', Borrow(m)) == 0\n",
        )
        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(
            [
                "0 map(s) still alive that are not named maps; 1 borrow(s) not released; "
                "1 map(s) reclaimed, 0 by the cycle collector",
                "borrow not released: map 1 lent by host handle 2097152 to callee "
                "(handle 2097152) in callee.poke; the broker ended it",
            ]
        )

    def test_marked_app_without_leaks(self, pytester: pytest.Pytester) -> None:
        """Unloading the careless module before the end cleans up b's maps; map 6 still leaks."""
        result = run(
            pytester,
            "import pytest\n"
            "@pytest.mark.wasi_map_app(LEAKY)\n"
            "def test_app(wasi_map_broker):\n"
            "    wasi_map_broker.call('a.main')\n"
            "    wasi_map_broker.unload('b')\n",
        )
        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(["1 map(s) still alive*", "map 6 (1 entry)"])
        result.stdout.no_fnmatch_line("map 1 *")

    def test_broker_closed_after_the_test(self, pytester: pytest.Pytester) -> None:
        """The fixture closes its broker; every test gets a fresh one."""
        result = run(
            pytester,
            "SEEN = []\n"
            "def test_first(wasi_map_broker):\n"
            "    SEEN.append(wasi_map_broker)\n"
            "    wasi_map_broker.new_map().close()\n"
            "def test_second(wasi_map_broker):\n"
            "    assert SEEN[0].closed and wasi_map_broker is not SEEN[0]\n"
            "    assert wasi_map_broker.stats()['maps'] == 0\n",
        )
        result.assert_outcomes(passed=2)

    def test_failing_test_still_reports_leaks(self, pytester: pytest.Pytester) -> None:
        """A test that fails and leaks shows both its failure and the leak report."""
        result = run(
            pytester,
            "CACHE = []\n"
            "def test_both(wasi_map_broker):\n"
            "    CACHE.append(wasi_map_broker.new_map())\n"
            "    assert False, 'the test itself failed'\n",
        )
        result.assert_outcomes(failed=1, errors=1)
        result.stdout.fnmatch_lines(["*the test itself failed*", "*left maps behind*"])
