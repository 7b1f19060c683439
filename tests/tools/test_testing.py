"""broker.testing: the checks the pytest fixture makes, for any test runner."""

from __future__ import annotations

import pytest

from broker import Broker, testing


class TestAssertNoLeaks:
    def test_a_clean_broker_passes(self) -> None:
        with Broker(trace=True) as b:
            with b.new_map() as m:
                m[b"k"] = b"v"
            testing.assert_no_leaks(b)

    def test_a_map_kept_alive_fails_with_the_report(self) -> None:
        """A map the test still holds is a leak; the message says how many and who holds it."""
        with Broker(trace=True) as b:
            kept = b.new_map()
            with pytest.raises(AssertionError) as info:
                testing.assert_no_leaks(b)
            text = str(info.value)
            assert text.startswith("wasi-map: the test left 1 map behind\n")
            assert "held by host handle" in text
            kept.close()
            testing.assert_no_leaks(b)

    def test_a_cycle_is_collected_first(self) -> None:
        """Two maps that only hold each other are not a leak: the collector runs first."""
        with Broker(trace=True) as b:
            a, c = b.new_map(), b.new_map()
            a.set_map(b"c", c)
            c.set_map(b"a", a)
            a.close()
            c.close()
            testing.assert_no_leaks(b)

    def test_a_closed_broker_has_nothing_to_check(self) -> None:
        b = Broker()
        b.new_map()
        b.close()
        testing.assert_no_leaks(b)


class TestCheckRefcounts:
    def test_counts_agree_after_real_work(self) -> None:
        with Broker() as b:
            a, c = b.new_map(), b.new_map()
            a.set_map(b"c", c)
            clone = c.clone()
            testing.check_refcounts(b)
            c.close()
            del a[b"c"]
            testing.check_refcounts(b)
            clone.close()
            a.close()
            testing.check_refcounts(b)

    def test_a_disagreement_is_an_assertion(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """What a count the core got wrong reads like (the core is made to report two)."""
        with Broker() as b:
            monkeypatch.setattr(b._native, "check", lambda: 2)
            with pytest.raises(AssertionError, match="2 maps whose reference count disagrees"):
                testing.check_refcounts(b)


class TestCoreCounters:
    def test_counters_follow_the_maps(self) -> None:
        with Broker() as b:
            before = testing.core_counters(b)
            assert before["maps"] == 0 and before["unreleased_borrows"] == 0
            m = b.new_map()
            m[b"k"] = b"v"
            during = testing.core_counters(b)
            assert (during["maps"], during["entries"]) == (1, 1)
            m.close()
            after = testing.core_counters(b)
            assert after["maps"] == 0 and after["reclaimed"] == before["reclaimed"] + 1
