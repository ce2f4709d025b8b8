"""What the benchmark scripts share: timing a real build, and the machine they ran on."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


def timed_build(project: Path, *args: str) -> tuple[float, list[str]]:
    """`autocoder build PROJECT ARGS` as a subprocess: wall seconds and the tasks it executed."""
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), *args],
        capture_output=True,
        text=True,
        cwd=project,
    )
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"build {args} failed in {project}:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}")
    return elapsed, [line[3:] for line in run.stdout.splitlines() if line.startswith(".  ")]


def machine() -> dict[str, object]:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


def write_results(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(json.dumps(results, indent=2, sort_keys=True))
