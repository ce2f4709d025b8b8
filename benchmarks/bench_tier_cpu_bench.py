"""The bench tier's task-seconds and CPU at 100 components, an older Autocoder against this tree,
alternating (issue 13: 100 components from scratch under 15 s with -n 2).

Two measurements, each tree in turn (which goes first alternates by round), on the same machine:

- `tier`: a built project (copied), its bench reports deleted, then `autocoder build DIR bench
  -n 2 --continue --reporter json` with the run-cache off: every bench:<c> task runs, batched
  as in a build (validate/siblings.py), and nothing else does. From doit's JSON report the sum
  of the bench tasks' seconds; the CPU seconds of the whole run (every process it started,
  the forked children included); the wall time.
- `scratch`: a build from scratch of a fresh synthetic project (the SCOPE tasks, as
  full_build_bench.py runs them), the bench tasks' sum of seconds and the whole build's CPU.

The older tree is `git archive`d (common.old_tree) and put first on PYTHONPATH with its runtime;
each tree has its own copy of the project (its first, untimed run regenerates it: template
paths are in the gen tasks' file_dep), so that the timed runs run the bench tasks only.
The machine is shared: read the ratios of the medians, with the load averages recorded.

Usage: python benchmarks/bench_tier_cpu_bench.py PROJECT [--old 02e648d] [--new COMMIT] [--rounds 3]
       [--scratch-rounds 1] [--out benchmarks/results/bench_tier_cpu-100.json]
PROJECT: a project built with `autocoder build` (e.g. by benchmarks/full_build_bench.py's
synthetic system: `python -c "from autocoder.synthetic import write_synthetic; ..."`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from pathlib import Path

from common import json_build, old_tree, write_comparison
from full_build_bench import SCOPE
from full_build_bench import build as scratch_build


def tier(tree: Path | None, project: Path) -> dict[str, object]:
    """Every bench task of `project` once, with `tree`'s autocoder (None: this one)."""
    for report in (project / "generated" / "reports" / "bench").glob("*.json"):
        report.unlink()
    wall, cpu, report = json_build(project, tree, ["bench"], 2)
    ran = [t for t in report["tasks"] if t.get("elapsed") is not None]
    bench = [t for t in ran if t["name"].startswith("bench:")]
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "bench_tasks": len(bench),
        "bench_task_s": round(sum(t["elapsed"] for t in bench), 2),
        "other_tasks_run": sorted(t["name"] for t in ran if not t["name"].startswith("bench:")),
        "failed_tasks": sorted(t["name"] for t in report["tasks"] if t["result"] == "fail"),
        "load_1m": round(os.getloadavg()[0], 1),
    }


def _median(runs: list[dict[str, object]], key: str) -> float:
    return round(statistics.median(float(r[key]) for r in runs), 2)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("project", type=Path)
    parser.add_argument("--old", default="02e648d", help="the commit to compare with")
    parser.add_argument("--new", help="a commit to measure instead of this working tree")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scratch-rounds", type=int, default=1)
    parser.add_argument("--components", type=int, default=100, help="of the scratch builds")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "bench_tier_cpu-100.json"
    )
    args = parser.parse_args()
    loads = [round(os.getloadavg()[0], 1)]
    runs: dict[str, dict[str, list[dict[str, object]]]] = {
        "tier": {"old": [], "new": []},
        "scratch": {"old": [], "new": []},
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tree = old_tree(work, args.old)
        # a copy of the project for each tree: a tree's templates have their own absolute paths
        # in the gen tasks' file_dep, so one copy alternating between trees would regenerate
        projects = {name: work / f"project-{name}" for name in ("old", "new")}
        for project in projects.values():
            shutil.copytree(args.project.resolve(), project, symlinks=True)
        trees = [("old", tree), ("new", old_tree(work, args.new) if args.new else None)]
        for name, which in trees:  # untimed: each tree's fingerprints, caches and first imports
            tier(which, projects[name])
        for round_ in range(args.rounds):
            for name, which in trees if round_ % 2 == 0 else trees[::-1]:
                runs["tier"][name].append(tier(which, projects[name]))
                loads.append(round(os.getloadavg()[0], 1))
        for _, which in trees if args.scratch_rounds else []:  # each tree's mypy cache, untimed
            scratch_build(which, 3, work, SCOPE)
        for round_ in range(args.scratch_rounds):
            for name, which in trees if round_ % 2 == 0 else trees[::-1]:
                built = scratch_build(which, args.components, work, SCOPE)
                runs["scratch"][name].append(
                    {
                        "wall_s": built["wall_s"],
                        "cpu_s": built["cpu_s"],
                        "bench_task_s": built["sum_task_s"].get("bench"),
                        "sum_task_s": built["sum_task_s"],
                        "failed_tasks": built["failed_tasks"],
                        "load_1m": round(os.getloadavg()[0], 1),
                    }
                )
                loads.append(round(os.getloadavg()[0], 1))
    summary: dict[str, object] = {}
    for mode, pair in runs.items():
        if not pair["new"]:
            continue
        medians = {
            key: {side: _median(pair[side], key) for side in ("old", "new")}
            for key in ("bench_task_s", "cpu_s", "wall_s")
        }
        summary[mode] = {
            **{f"median_{key}": value for key, value in medians.items()},
            **{f"new_vs_old_{key}": round(v["new"] / v["old"], 3) for key, v in medians.items()},
        }
    write_comparison(
        args.out, args.old, loads, summary, runs, components=args.components, jobs=2, new_commit=args.new
    )


if __name__ == "__main__":
    main()
