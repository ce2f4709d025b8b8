"""What the benchmark scripts share: timing a real build, and the machine they ran on."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
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


def main(doc: str, measure: Callable[[int, int], dict], sizes: list[int], repeats: int, out: str) -> None:
    """The command line every size-sweeping benchmark shares: --sizes, --repeats, --out."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=sizes)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / out)
    args = parser.parse_args()
    results = {
        "machine": machine(),
        "repeats": args.repeats,
        "sizes": {str(n): measure(n, args.repeats) for n in args.sizes},
    }
    write_results(args.out, results)
