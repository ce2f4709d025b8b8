"""A full build from scratch, an older Autocoder against this tree, alternating (issue: fast edits).

For each round, for each tree (this one, and --old, extracted by common.old_tree): a fresh
synthetic blueprint of --components components, `autocoder build -n 2 --continue --reporter json` with
the run-cache off (everything really runs), and from doit's JSON report the wall time and the
mean seconds of each task group (test:<c>, bench:<c>, lint:<c>, gen:<c>, ...). The trees take
turns, so a busy machine slows both alike: compare them by the ratio, not by the seconds.

Usage: python benchmarks/full_build_bench.py [--old COMMIT] [--components 100] [--rounds 2]
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

from autocoder.synthetic import write_synthetic


def build(tree: Path | None, components: int, workdir: Path) -> dict:
    """One build from scratch with `tree`'s autocoder (None: this one): wall and per-group means."""
    project = Path(tempfile.mkdtemp(dir=workdir))
    write_synthetic(project, components)
    env = {**os.environ, "AUTOCODER_CACHE": "off"}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    start = time.perf_counter()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "autocoder.cli",
            "build",
            str(project),
            "-n",
            "2",
            "--continue",
            "--reporter",
            "json",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if "{" not in run.stdout:
        raise SystemExit(f"build in {project} printed no report:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    report, _ = json.JSONDecoder().raw_decode(run.stdout[run.stdout.index("{") :])
    groups: dict[str, list[float]] = {}
    for task in report["tasks"]:
        name = task["name"]
        group = name if name in ("test:integration", "gen:runtime") else name.split(":")[0]
        if task.get("elapsed") is not None:
            groups.setdefault(group, []).append(task["elapsed"])
    failed = sorted(t["name"] for t in report["tasks"] if t["result"] == "fail")
    return {
        "wall_s": round(wall, 2),
        "failed_tasks": failed,  # a bench over budget on a busy machine fails; its cost still counts
        "mean_task_s": {g: round(statistics.mean(v), 4) for g, v in sorted(groups.items())},
        "sum_task_s": {g: round(sum(v), 2) for g, v in sorted(groups.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--old", default="7e16725", help="the commit to compare with")
    parser.add_argument("--components", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "full_build.json")
    args = parser.parse_args()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tree = old_tree(Path(tmp), args.old)
        for _ in range(args.rounds):
            runs["old"].append(build(tree, args.components, Path(tmp)))
            runs["new"].append(build(None, args.components, Path(tmp)))
    old_wall = statistics.median(r["wall_s"] for r in runs["old"])
    new_wall = statistics.median(r["wall_s"] for r in runs["new"])
    write_results(
        args.out,
        {
            "machine": machine(),
            "components": args.components,
            "jobs": 2,
            "old": args.old,
            "new": f"{head.stdout.strip()} (working tree)",
            "load_average_1m": [round(load_start, 1), round(os.getloadavg()[0], 1)],
            "runs": runs,
            "median_wall_s": {"old": old_wall, "new": new_wall},
            "new_vs_old": round(new_wall / old_wall, 2),
        },
    )


if __name__ == "__main__":
    main()
