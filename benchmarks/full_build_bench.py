"""A full build from scratch, an older Autocoder against this tree, alternating (issue: fast edits).

For each round, for each mode, for each tree (this one, and --old, extracted by common.old_tree
with its own runtime first on the path): a fresh synthetic blueprint of --components
components, `autocoder build -n 2 --continue --reporter json` with the run-cache off (everything
really runs), and from doit's JSON report the wall time and the mean seconds of each task group
(test:<c>, bench:<c>, lint:<c>, gen:<c>, ...), plus the CPU seconds of the whole build (every
process it started). The trees take turns, so a busy machine slows both alike: compare them by
the ratio, not by the seconds; the CPU seconds divided by 2 are what the build would take on 2
idle cores.

Modes: `scope`, the tasks issue 13's target counts: the default build without deploy (check ir
gen lint typecheck test bench policy report, in the default build's order); `scope_report_last`,
the same tasks listed without typecheck (doit reaches it through report, last); `full`, the
default build. Before the rounds, each tree builds a 3-component project untimed, which
publishes its machine-wide mypy cache (validate/types.py; keyed by the tree's runtime): every
timed build is a machine's second project, not its first (AUTOCODER_MYPY_CACHE=off to measure
cold).
After each build, the warm worker and mypy daemon it started are stopped (common.stop_background):
left running, each warms up or idles beside the next builds, whichever tree they are.

Usage: python benchmarks/full_build_bench.py [--old COMMIT] [--components 100] [--rounds 2]
       [--modes scope scope_report_last full]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from common import json_build, old_tree, stop_background, write_comparison

from autocoder.synthetic import write_synthetic

# the default build's tasks in its order (autocoder.tasks.dodo), without deploy
SCOPE = ["check", "ir", "gen", "lint", "typecheck", "test", "bench", "policy", "report"]
# the same tasks as listed before typecheck was named (doit reaches it through report's file_dep);
# in both orders `-n 2` dispatched it after nearly every other task (results/typecheck_dag*.json)
REPORT_LAST = ["check", "ir", "gen", "lint", "test", "bench", "policy", "report"]
MODES = {"scope": SCOPE, "scope_report_last": REPORT_LAST, "full": []}


def build(tree: Path | None, components: int, workdir: Path, tasks: list[str]) -> dict:
    """One build from scratch with `tree`'s autocoder (None: this one): wall and per-group means."""
    project = Path(tempfile.mkdtemp(dir=workdir))
    write_synthetic(project, components)
    wall, cpu, report = json_build(project, tree, tasks, 2, mypy_daemon=True)
    stopped = stop_background(project)  # not to warm up during the next build, of either tree
    groups: dict[str, list[float]] = {}
    for task in report["tasks"]:
        name = task["name"]
        group = name if name in ("test:integration", "gen:runtime") else name.split(":")[0]
        if task.get("elapsed") is not None:
            groups.setdefault(group, []).append(task["elapsed"])
    failed = sorted(t["name"] for t in report["tasks"] if t["result"] == "fail")
    return {
        "wall_s": round(wall, 2),
        "helpers_stopped_after": stopped,
        "cpu_s": round(cpu, 1),
        "failed_tasks": failed,  # a bench over budget on a busy machine fails; its cost still counts
        "mean_task_s": {g: round(statistics.mean(v), 4) for g, v in sorted(groups.items())},
        "sum_task_s": {g: round(sum(v), 2) for g, v in sorted(groups.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--old", default="1f011e2", help="the commit to compare with")
    parser.add_argument("--components", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=["scope", "full"])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "full_build.json")
    args = parser.parse_args()
    runs: dict[str, dict[str, list[dict]]] = {mode: {"old": [], "new": []} for mode in args.modes}
    loads = [round(os.getloadavg()[0], 1)]
    with tempfile.TemporaryDirectory() as tmp:
        tree = old_tree(Path(tmp), args.old)
        for which in (tree, None):  # each tree's machine-wide mypy cache, published untimed
            build(which, 3, Path(tmp), SCOPE)
        for _ in range(args.rounds):
            for mode in args.modes:
                for name, which in (("old", tree), ("new", None)):
                    runs[mode][name].append(build(which, args.components, Path(tmp), MODES[mode]))
                    loads.append(round(os.getloadavg()[0], 1))
    summary = {}
    for mode, pair in runs.items():
        median = {k: statistics.median(r["wall_s"] for r in v) for k, v in pair.items()}
        cpu = {k: statistics.median(r["cpu_s"] for r in v) for k, v in pair.items()}
        summary[mode] = {
            "tasks": MODES[mode] or "default",
            "median_wall_s": median,
            "median_cpu_s": cpu,
            "idle_2_core_estimate_s": {k: round(v / 2, 1) for k, v in cpu.items()},
            "new_vs_old_wall": round(median["new"] / median["old"], 2),
            "new_vs_old_cpu": round(cpu["new"] / cpu["old"], 2),
        }
    write_comparison(args.out, args.old, loads, summary, runs, components=args.components, jobs=2)


if __name__ == "__main__":
    main()
