"""The pytest plugin (broker/pytest_plugin.py): a fixture that fails tests which leave maps behind.

Each test writes a small test file and runs pytest on it with `pytester`;
the plugin comes from wasi-map's `pytest11` entry point, as for any user.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from paths import APPS, GUESTS

pytest_plugins = ["pytester"]

LEAKY = APPS / "leaky" / "app.toml"
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
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "*_ test_leaks _*",
                "wasi-map: the test left 1 map behind",
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
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "wasi-map: the test left 3 maps and 1 unreleased borrow behind",
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
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "wasi-map: the test left 1 unreleased borrow behind",
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
        result.assert_outcomes(failed=1)
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
        """A test that fails and leaks: one failure, its own, with the leak report beside it."""
        result = run(
            pytester,
            "CACHE = []\n"
            "def test_both(wasi_map_broker):\n"
            "    CACHE.append(wasi_map_broker.new_map())\n"
            "    assert False, 'the test itself failed'\n",
        )
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "*AssertionError: the test itself failed*",
                "*- Captured wasi-map leaks call -*",
                "wasi-map: the test left 1 map behind",
                "map 1 (0 entries)",
                "*short test summary info*",
                "FAILED test_user.py::test_both - AssertionError: the test itself failed*",
            ]
        )

    def test_summary_line_says_what_leaked(self, pytester: pytest.Pytester) -> None:
        """The short summary names the test and the count, as a failed test of its own."""
        result = run(
            pytester,
            "KEEP = {}\n"
            "def test_two(wasi_map_broker):\n"
            "    KEEP['a'] = wasi_map_broker.new_map()\n"
            "    KEEP['b'] = wasi_map_broker.new_map()\n",
            "-ra",
        )
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            ["FAILED test_user.py::test_two - Failed: wasi-map: the test left 2 maps behind"]
        )
        assert "error" not in result.parseoutcomes()

    def test_broker_closed_by_the_test_is_not_checked(self, pytester: pytest.Pytester) -> None:
        """A test that closes the broker itself passes: closing released everything."""
        result = run(
            pytester,
            "def test_closes(wasi_map_broker):\n"
            "    wasi_map_broker.new_map()\n"
            "    wasi_map_broker.close()\n",
        )
        result.assert_outcomes(passed=1)


class TestFixturesOnTop:
    """Fixtures built on wasi_map_broker may hold maps until their teardown."""

    FIXTURE = (
        "import pytest\n"
        "@pytest.fixture\n"
        "def users(wasi_map_broker):\n"
        "    m = wasi_map_broker.new_map()\n"
        "    yield m\n"
        "    {teardown}\n"
    )

    def test_map_released_at_fixture_teardown_passes(self, pytester: pytest.Pytester) -> None:
        """A map the fixture closes in its teardown is no leak: the check waits for it."""
        result = run(
            pytester,
            self.FIXTURE.format(teardown="m.close()")
            + "def test_uses(users):\n    users[b'k'] = b'v'\n",
        )
        result.assert_outcomes(passed=1)

    def test_map_kept_past_teardown_is_an_error(self, pytester: pytest.Pytester) -> None:
        """A fixture that never releases its map: the leak is reported at teardown."""
        result = run(
            pytester,
            self.FIXTURE.format(teardown="KEEP['users'] = m")
            + "KEEP = {}\ndef test_uses(users):\n    users[b'k'] = b'v'\n",
        )
        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(
            ["*ERROR at teardown of test_uses*", "wasi-map: the test left 1 map behind"]
        )


class TestMarker:
    """@pytest.mark.wasi_map_app(path): the app a test's broker loads."""

    def test_relative_path_is_from_the_test_file(self, pytester: pytest.Pytester) -> None:
        """A relative manifest path is found beside the test file, whatever the cwd."""
        suite = pytester.mkdir("suite")
        shutil.copytree(LEAKY.parent, suite / "apps" / "leaky")
        (suite / "test_app.py").write_text(
            "import pytest\n"
            "@pytest.mark.wasi_map_app('apps/leaky/app.toml')\n"
            "def test_app(wasi_map_broker):\n"
            "    assert wasi_map_broker.modules() == ['b', 'a']\n"
            "    wasi_map_broker.unload('b')\n"
        )
        elsewhere = pytester.mkdir("elsewhere")
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(elsewhere)
            result = pytester.runpytest(*QUIET, str(suite / "test_app.py"))
        result.assert_outcomes(passed=1)

    def test_marker_without_a_path_is_a_usage_error(self, pytester: pytest.Pytester) -> None:
        """The marker with no argument: a one-line error naming the file and the problem."""
        result = run(
            pytester,
            "import pytest\n@pytest.mark.wasi_map_app\ndef test_app(wasi_map_broker):\n    pass\n",
        )
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            ["*test_user.py: @pytest.mark.wasi_map_app takes one argument, the app manifest's*"]
        )


class TestLight:
    """The plugin is loaded into every pytest session of the environment: it must be cheap."""

    def test_session_without_the_fixture_loads_no_core(self, tmp_path: Path) -> None:
        """A pytest session that does not use the fixture never imports wasmtime or the C core.

        Run in a fresh interpreter (this one has both loaded), in a directory
        with no conftest, so only the entry point brings the plugin in."""
        (tmp_path / "test_light.py").write_text(
            "import sys\n"
            "def test_light(request):\n"
            "    assert request.config.pluginmanager.get_plugin('wasi_map') is not None\n"
            "    heavy = ('wasmtime', 'broker._wm', 'broker._native', 'broker.host')\n"
            "    print('LOADED', sorted(m for m in heavy if m in sys.modules))\n"
        )
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-s", *QUIET, "test_light.py"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert "LOADED []" in out.stdout, out.stdout
