"""The code base type-checks and lints in CI: Autocoder with mypy, and the runtime library with
the strictest bar in the repository (ruff clean, formatted, mypy --strict: its own
pyproject.toml sets both)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

RUNTIME = REPO / "runtime"


def test_runtime_passes_mypy_strict() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", "autocoder_runtime"],
        capture_output=True,
        text=True,
        cwd=RUNTIME,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


def test_runtime_passes_ruff() -> None:
    from ruff.__main__ import find_ruff_bin

    ruff = str(find_ruff_bin())
    for args in (["check", "."], ["format", "--check", "."]):
        run = subprocess.run([ruff, *args], capture_output=True, text=True, cwd=RUNTIME, timeout=120)
        assert run.returncode == 0, run.stdout[-4000:]


def test_autocoder_passes_mypy() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "autocoder"], capture_output=True, text=True, cwd=REPO, timeout=600
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
