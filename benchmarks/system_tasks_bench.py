"""The system-level validation tasks (`policy`, `report`) at scale: what one edit costs them.

For each size: a synthetic blueprint (autocoder/synthetic.py) is fully built with doit, then
each task's action is timed in this process, exactly as doit loaded it (its python-action and
arguments as the task creators declare them), median of --repeats. With --project DIR an
already built project is timed instead of building one; with --old COMMIT as well, that commit's
actions (common.old_tree) are timed on the same files, alternating with this tree's, and the
result holds both ("before", "after").

Usage: python benchmarks/system_tasks_bench.py [--sizes 100 500] [--repeats 5] [--out FILE]
       python benchmarks/system_tasks_bench.py --project DIR [--old COMMIT] [--repeats 5]
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

from common import REPO, machine, old_tree, write_results

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


def _timed_in_subprocess(project: Path, tree: str) -> dict[str, float]:
    """time_actions with the autocoder package of `tree`, in a fresh interpreter, median of 3."""
    run = subprocess.run(
        [sys.executable, __file__, "--project", str(project), "--repeats", "3", "--out", os.devnull],
        env={**os.environ, "PYTHONPATH": tree},
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        raise SystemExit(f"timing with {tree} failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    start = run.stdout.index("{")
    data = json.loads(run.stdout[start:])
    return {k: v for k, v in data.items() if k.endswith("_ms_median")}


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
    parser.add_argument("--old", help="with --project: also time this commit's actions, alternating")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "system_tasks.json")
    args = parser.parse_args()
    if args.project is not None:
        project = args.project.resolve()
        results: dict = {"machine": machine(), "repeats": args.repeats, "project": str(project)}
        if args.old is None:
            results.update(time_actions(project, args.repeats))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                tree = old_tree(Path(tmp), args.old)
                runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
                for _ in range(args.repeats):  # alternating, one timing of each per round
                    for label, path in (("before", str(tree)), ("after", str(REPO))):
                        runs[label].append(_timed_in_subprocess(project, path))
            for label, timings in runs.items():
                results[label] = {k: statistics.median(t[k] for t in timings) for k in timings[0]}
            results["old_commit"] = args.old
        write_results(args.out, results)
        return
    sizes = {}
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            build_s = build(Path(tmp), n)
            sizes[str(n)] = {"full_build_s": round(build_s, 1), **time_actions(Path(tmp), args.repeats)}
    write_results(args.out, {"machine": machine(), "repeats": args.repeats, "sizes": sizes})


if __name__ == "__main__":
    main()
