"""The shared test vectors (tests/vectors/) hold on the Python host, and are up to date.

The Node.js host runs the same files (hosts/node/test/vectors.test.js):
together the two runs keep the hosts from differing on any recorded step.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from vectors import VECTORS, files, load, run


def _scenarios() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vector_scenarios", VECTORS / "scenarios.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


scenarios = _scenarios()


def _unrecorded(step: dict[str, Any]) -> dict[str, Any]:
    """A step without what recording adds (results, trap, a read's bytes, stats)."""
    if "read" in step:
        return {"read": step["read"], "at": step["at"]}
    if "stats" in step:
        return {"stats": {}}
    return {k: v for k, v in step.items() if k not in ("results", "trap")}


@pytest.mark.parametrize("path", files(), ids=lambda p: p.stem)
class TestVector:
    """Every vector file."""

    def test_python_host_answers_as_recorded(self, path: Path) -> None:
        """Each step's results, bytes read and stats are the recorded ones."""
        vector = load(path)
        for i, (want, got) in enumerate(zip(vector["steps"], run(vector), strict=True)):
            assert got == want, f"{path.name} step {i}: recorded {want}, got {got}"

    def test_recorded_from_its_scenario(self, path: Path) -> None:
        """The file holds the steps scenarios.py makes now (re-record after editing one)."""
        made = scenarios.SCENARIOS[path.stem]().vector()
        vector = load(path)
        assert (vector["app"], vector["about"]) == (made["app"], made["about"])
        assert [_unrecorded(s) for s in vector["steps"]] == [_unrecorded(s) for s in made["steps"]]


def test_every_scenario_is_recorded() -> None:
    """Each scenario has its file, and each file its scenario."""
    assert sorted(scenarios.SCENARIOS) == [p.stem for p in files()]
