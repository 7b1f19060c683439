"""A how-to page run as written: its files, its build commands, its sessions.

The page's files (a bold path, then a fenced block) are written into a
temporary folder beside a link to guests/; then every `$ command` of its
console blocks runs there with bash, in page order, and its output
(stdout, then stderr) must be the lines the page shows under it.  In an
expected line, `...` stands for any text (hex offsets, absolute paths);
`$ echo $?` shows the exit status of the command before it.  Used by
tests/tools/test_docs_guest_*.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from language_builds import guest_build
from paths import ROOT

COMPILERS = {"clang", "clang++", "/usr/bin/rustc"}
FILE = re.compile(r"^\*\*([\w./-]+)\*\*\n\n```\w*\n(.*?)```", re.M | re.S)
CONSOLE = re.compile(r"^```console\n(.*?)```", re.M | re.S)


@dataclass(frozen=True)
class Step:
    """One `$ command` of the page and the output it shows."""

    command: str
    expected: list[str]


def page_files(page: Path) -> dict[str, str]:
    """path -> content of every file the page shows."""
    return dict(FILE.findall(page.read_text()))


def session(page: Path) -> list[Step]:
    """Every command of the page's console blocks, in order, with its output."""
    steps: list[Step] = []
    for block in CONSOLE.findall(page.read_text()):
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


def workdir(page: Path, tmp_path: Path) -> Path:
    """The page's files beside a link to guests/, and `wasi-map` / `python` on PATH."""
    (tmp_path / "guests").symlink_to(ROOT / "guests")
    for name, text in page_files(page).items():
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


def run_session(page: Path, tmp_path: Path) -> None:
    """Each command prints what the page shows; `echo $?` the status before it."""
    where = workdir(page, tmp_path)
    env = {**os.environ, "PATH": f"{where / '.bin'}{os.pathsep}{os.environ['PATH']}"}
    # A compiler runs without a preloaded sanitizer runtime (rustc fails under it).
    bare = {k: v for k, v in env.items() if k not in guest_build.SANITIZER_VARS}
    status = 0
    for step in session(page):
        if step.command == "echo $?":
            assert step.expected == [str(status)], "the exit status before `echo $?`"
            continue
        compiler = step.command.split()[0] in COMPILERS
        done = subprocess.run(
            ["bash", "-c", step.command],
            cwd=where,
            env=bare if compiler else env,
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
