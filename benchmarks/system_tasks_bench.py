"""The system-level validation tasks (`policy`, `report`) at scale: what one edit costs them.

For each size: a synthetic blueprint (autocoder/synthetic.py) is fully built with doit, then
each task's action is timed in this process, exactly as doit loaded it (its python-action and
arguments from the project's dodo.py), median of --repeats. With --project DIR an already built
project is timed instead of building one (e.g. to time an older checkout's actions on the same
files: `PYTHONPATH=<old tree> python benchmarks/system_tasks_bench.py --project DIR`).

Usage: python benchmarks/system_tasks_bench.py [--sizes 100 500] [--repeats 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, write_results

from autocoder.cli import DODO_TEXT
from autocoder.synthetic import write_synthetic

TASKS = ("policy", "report")


def time_actions(project: Path, repeats: int) -> dict[str, float]:
    """Median milliseconds of each task's action, run in process against `project`'s files (the
    task creators unwrapped: the run-cache in front of them would restore, not run)."""
    from autocoder.tasks import validate_tasks

    os.chdir(project)
    timings = {}
    for name in TASKS:
        function, args = getattr(validate_tasks, f"task_{name}")()["actions"][0]
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            failed = function(*args)
            seconds.append(time.perf_counter() - start)
            if failed:
                raise SystemExit(f"{name} failed in {project}: {failed}")
        timings[f"{name}_ms_median"] = round(statistics.median(seconds) * 1000, 1)
    return timings


def build(project: Path, n: int) -> float:
    write_synthetic(project, n)
    (project / "dodo.py").write_text(DODO_TEXT)
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "doit", "-n", str(os.cpu_count() or 1)],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        raise SystemExit(f"the build of {n} components failed:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--project", type=Path, help="time this built project instead of building")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "system_tasks.json")
    args = parser.parse_args()
    if args.project is not None:
        results = {"machine": machine(), "repeats": args.repeats, "project": str(args.project)}
        results.update(time_actions(args.project.resolve(), args.repeats))
        print(json.dumps(results, indent=2, sort_keys=True))
        return
    sizes = {}
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            build_s = build(Path(tmp), n)
            sizes[str(n)] = {"full_build_s": round(build_s, 1), **time_actions(Path(tmp), args.repeats)}
    write_results(args.out, {"machine": machine(), "repeats": args.repeats, "sizes": sizes})


if __name__ == "__main__":
    main()
