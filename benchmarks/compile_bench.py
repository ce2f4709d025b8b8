"""Benchmark of Stage 1C (issue: foundation).

Measures, on synthetic blueprints of 10, 100 and 500 components:
- compile time (parse + schema + semantic analysis + IR build), in process, median of 5,
  also as a ratio to the 10-component figure (ratios are what survive a noisy machine);
- a real `doit ir` build (the compile tasks) in a temp dir: the first run, then the second
  (no-op) run's executed task count and wall time (median of 5).

Usage: python benchmarks/compile_bench.py [--out benchmarks/results/compile.json]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, median_s, synthetic_bytes, write_results

from autocoder.cli import DODO_TEXT
from autocoder.compile import compile_sources
from autocoder.synthetic import write_synthetic

SIZES = (10, 100, 500)
REPEATS = 5


def compile_time(n: int) -> float:
    arch, deploy = synthetic_bytes(n)
    result = compile_sources(arch, deploy)
    assert result.ir is not None and not result.errors, result.diagnostics[:3]
    return median_s(lambda: compile_sources(arch, deploy), REPEATS)


def doit_run(project: Path) -> tuple[float, list[str]]:
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "doit", "ir"], cwd=project, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"doit failed in {project}:\n{run.stdout}\n{run.stderr}")
    return elapsed, [line[3:] for line in run.stdout.splitlines() if line.startswith(".  ")]


def doit_figures(n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        write_synthetic(project, n)
        (project / "dodo.py").write_text(DODO_TEXT)
        first_s, first_tasks = doit_run(project)
        noop = [doit_run(project) for _ in range(REPEATS)]
        return {
            "first_run_s": round(first_s, 4),
            "first_run_tasks_executed": len(first_tasks),
            "noop_run_tasks_executed": max(len(tasks) for _, tasks in noop),
            "noop_run_wall_s_median": round(statistics.median(s for s, _ in noop), 4),
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "compile.json")
    args = parser.parse_args()
    compile_s = {n: compile_time(n) for n in SIZES}
    results = {
        "machine": machine(),
        "compile": {
            str(n): {
                "median_s": round(compile_s[n], 5),
                "ratio_to_10": round(compile_s[n] / compile_s[10], 2),
            }
            for n in SIZES
        },
        "doit": {str(n): doit_figures(n) for n in SIZES},
    }
    write_results(args.out, results)


if __name__ == "__main__":
    main()
