"""What a build tells its user: progress, a summary that is not stale, one clear line for a
project it cannot write, and one build at a time per project."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLE


def autocoder(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autocoder.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


@pytest.fixture
def orders(tmp_path) -> Path:
    project = tmp_path / "orders"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("generated", ".doit.db*"))
    return project


def test_progress_counts_tasks_done_out_of_the_total_and_names_the_running_one(orders):
    first = autocoder("build", ".", "gen", cwd=orders, env={"AUTOCODER_PROGRESS": "1"})
    assert first.returncode == 0, first.stdout + first.stderr
    lines = [line for line in first.stdout.splitlines() if line.startswith(".  ")]
    counts = [re.match(r"\.  \[(\d+)/(\d+)\] (\S+)$", line) for line in lines]
    assert all(counts), lines
    assert [(int(m[1]), int(m[2])) for m in counts] == [(i, 8) for i in range(1, 9)]
    assert [m[3] for m in counts][:2] == ["check", "ir"] and "gen:pricer" in {m[3] for m in counts}
    again = autocoder("build", ".", "gen:pricer", cwd=orders, env={"AUTOCODER_PROGRESS": "1"})
    assert again.stdout.splitlines() == ["-- [1/3] check", "-- [2/3] ir", "-- [3/3] gen:pricer"]
    plain = autocoder("build", ".", "gen:pricer", cwd=orders)  # a pipe, not a terminal: no counts
    assert plain.stdout.splitlines() == ["-- check", "-- ir", "-- gen:pricer"]
