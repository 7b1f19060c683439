"""The example apps run and compute what a plain Python version computes."""

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from paths import ROOT

from broker import Broker

WORDFREQ = ROOT / "examples" / "wordfreq"


def wordfreq_in_python() -> tuple[int, int, int]:
    """The same job in Python, on the text embedded in the guest."""
    wat = (WORDFREQ / "wordfreq.wat").read_text()
    raw = re.search(r'\(data \(i32\.const 4096\) "(.*?)"\)', wat, re.DOTALL).group(1)
    text = re.sub(r"\\([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), raw)
    counts = Counter(w.lower() for w in re.findall("[A-Za-z]+", text))
    return len(counts), sum(counts.values()), max(counts.values())


class TestWordfreq:
    def test_cli_output_matches_python(self) -> None:
        """`wasi-map run` prints distinct, total and highest count as Python computes them."""
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "broker.cli",
                "run",
                str(WORDFREQ / "app.toml"),
                "--call",
                "wordfreq.main",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert tuple(int(x) for x in out.split()) == wordfreq_in_python()

    def test_second_module_reads_the_named_map_read_only(self) -> None:
        """The audit module sees the same map and cannot write it (ACCES)."""
        with Broker.from_manifest(WORDFREQ / "app.toml") as b:
            distinct, _, _ = b.call("wordfreq.main")
            assert b.call("audit.distinct") == distinct
            assert b.call("audit.try_write") == 4
            assert b.stats() == {"maps": 0, "named": 1, "handles": {"wordfreq": 0, "audit": 0}}


class TestReadme:
    def test_readme_guest_and_app_run(self, tmp_path: Path) -> None:
        """The guest and manifest shown in the README run as the README says."""
        readme = (ROOT / "README.md").read_text()
        (tmp_path / "counter.wat").write_text(
            re.search(r"```wat\n(.*?)```", readme, re.DOTALL).group(1)
        )
        (tmp_path / "app.toml").write_text(
            re.search(r"```toml\n(.*?)```", readme, re.DOTALL).group(1)
        )
        with Broker.from_manifest(tmp_path / "app.toml") as b:
            assert [b.call("counter.hit") for _ in range(3)] == [1, 2, 3]
            assert b.stats()["handles"] == {"counter": 0}
