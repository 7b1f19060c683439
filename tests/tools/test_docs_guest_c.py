"""docs/guest-c.md runs as written: its files, its clang commands, its wasi-map sessions.

The page's files (a bold path, then a fenced block) are written into a
temporary folder beside a link to guests/; then every `$ command` of its
console blocks runs there with bash, in page order, and its output
(stdout, then stderr) must be the lines the page shows under it.  In an
expected line, `...` stands for any text (hex offsets, absolute paths);
`$ echo $?` shows the exit status of the command before it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from paths import ROOT

PAGE = ROOT / "docs" / "guest-c.md"
FILE = re.compile(r"^\*\*([\w./-]+)\*\*\n\n```\w*\n(.*?)```", re.M | re.S)
CONSOLE = re.compile(r"^```console\n(.*?)```", re.M | re.S)


@dataclass(frozen=True)
class Step:
    """One `$ command` of the page and the output it shows."""

    command: str
    expected: list[str]


def page_files() -> dict[str, str]:
    """path -> content of every file the page shows."""
    return dict(FILE.findall(PAGE.read_text()))


def session() -> list[Step]:
    """Every command of the page's console blocks, in order, with its output."""
    steps: list[Step] = []
    for block in CONSOLE.findall(PAGE.read_text()):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            assert lines[i].startswith("$ "), f"console line is not a command: {lines[i]}"
            command = lines[i][2:]
            while command.endswith("\\"):
                i += 1
                command += "\n" + lines[i]
            i += 1
            expected = []
            while i < len(lines) and not lines[i].startswith("$ "):
                expected.append(lines[i])
                i += 1
            steps.append(Step(command, expected))
    return steps


def matches(expected: list[str], output: str) -> bool:
    """The output, line by line, is what the page shows (`...`: any text)."""
    got = output.rstrip().splitlines()
    want = "\n".join(expected).rstrip().splitlines()
    if len(got) != len(want):
        return False
    for line, pattern in zip(got, want, strict=True):
        regex = ".*".join(re.escape(part) for part in pattern.rstrip().split("..."))
        if not re.fullmatch(regex, line.rstrip()):
            return False
    return True


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The page's files beside a link to guests/, and `wasi-map` / `python` on PATH."""
    (tmp_path / "guests").symlink_to(ROOT / "guests")
    for name, text in page_files().items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    bin_dir = tmp_path / ".bin"
    bin_dir.mkdir()
    shims = {"wasi-map": "-m broker.cli", "python": ""}  # this Python, as the page's commands
    for name, args in shims.items():
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" {args} "$@"\n')
        shim.chmod(0o755)
    return tmp_path


class TestPage:
    """What the page is made of."""

    def test_files(self) -> None:
        """The page shows the guest, its manifests, and the Python that drives it."""
        assert sorted(page_files()) == [
            "tally/app.toml",
            "tally/bad.c",
            "tally/leaky.c",
            "tally/leaky.toml",
            "tally/nogrant.toml",
            "tally/size.py",
            "tally/tally.c",
            "tally/why.py",
        ]
        assert '#include "wasi_map.h"' in page_files()["tally/tally.c"]

    def test_the_build_command_comes_first(self) -> None:
        """The first command is the clang command line for the minimal guest."""
        first = session()[0].command
        assert first.startswith("clang --target=wasm32-wasi ")
        assert first.endswith("-I guests/include -o tally/tally.wasm tally/tally.c")
        commands = "\n".join(step.command for step in session())
        for debugging in ("wasi-map check", "--trace", "wasi-map leaks"):
            assert debugging in commands

    def test_matches(self) -> None:
        """`...` stands for any text within a line; line counts must agree."""
        assert matches(["    0: ... - check"], "    0:     0xda - check\n")
        assert not matches(["a"], "a\nb")
        assert not matches(["a ... c"], "a b d")


@pytest.mark.skipif(shutil.which("clang") is None, reason="no clang to build the guest")
class TestSession:
    """Every command on the page, run in order."""

    def test_every_command(self, workdir: Path) -> None:
        """Each command prints what the page shows; `echo $?` the status before it."""
        env = {**os.environ, "PATH": f"{workdir / '.bin'}{os.pathsep}{os.environ['PATH']}"}
        status = 0
        for step in session():
            if step.command == "echo $?":
                assert step.expected == [str(status)], "the exit status before `echo $?`"
                continue
            done = subprocess.run(
                ["bash", "-c", step.command],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            status = done.returncode
            output = done.stdout + done.stderr
            assert matches(step.expected, output), (
                f"$ {step.command}\nexit {status}\n--- the page shows:\n"
                + "\n".join(step.expected)
                + f"\n--- it printed:\n{output}"
            )
            if not step.expected:  # a build: silent, and it worked
                assert status == 0, step.command
