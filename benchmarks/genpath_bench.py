"""The serial start of a build from scratch and the generation and system-test tasks, an older
Autocoder against this tree, alternating (issue 13: 100 components from scratch with -n 2).

For each round, for each tree (--old, extracted by common.old_tree, and this one): a fresh
synthetic blueprint of --components components, `autocoder build -n 2 --continue --reporter
json` of the tasks issue 13 counts (check ir gen lint typecheck test bench policy report), the
run-cache off. From doit's JSON report: the wall and CPU seconds of the whole build; when the
first component test started and when gen:runtime ended (seconds after the first task started:
every component test waits for gen:runtime); and the task sums of the groups this work touches
(gen:<component>, gen:runtime, test:path.<id>, test:integration). The trees take turns, so a busy
machine slows both alike: compare medians and ratios, with the load averages recorded.

Before the rounds each tree builds a small project untimed, which fills the machine-wide caches
a new project starts from (mypy's, hypothesis's Unicode table, the simplest messages): every
timed build is a machine's second project, not its first.

Usage: python benchmarks/genpath_bench.py [--old COMMIT] [--components 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import tempfile
from pathlib import Path

from common import json_build, old_tree, write_comparison

from autocoder.synthetic import write_synthetic

SCOPE = ["check", "ir", "gen", "lint", "typecheck", "test", "bench", "policy", "report"]


def _group(name: str) -> str:
    if name in ("test:integration", "gen:runtime"):
        return name
    if name.startswith("test:path."):
        return "test:path"
    return name.split(":")[0]


def _seconds(stamp: object) -> float:
    return datetime.datetime.fromisoformat(stamp).timestamp() if isinstance(stamp, str) else float(stamp)


def build(tree: Path | None, components: int, workdir: Path) -> dict:
    """One build from scratch with `tree`'s autocoder (None: this one)."""
    project = Path(tempfile.mkdtemp(dir=workdir))
    write_synthetic(project, components)
    wall, cpu, report = json_build(project, tree, SCOPE, 2, mypy_daemon=True)
    ran = [t for t in report["tasks"] if t.get("elapsed") is not None and t.get("started") is not None]
    first = min(_seconds(t["started"]) for t in ran)
    sums: dict[str, float] = {}
    for task in ran:
        group = _group(task["name"])
        sums[group] = sums.get(group, 0.0) + task["elapsed"]
    runtime = [t for t in ran if t["name"] == "gen:runtime"]
    tests = [
        _seconds(t["started"]) - first
        for t in ran
        if t["name"].startswith("test:") and _group(t["name"]) == "test"
    ]
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 1),
        "gen_runtime_end_s": round(_seconds(runtime[0]["started"]) + runtime[0]["elapsed"] - first, 2)
        if runtime
        else None,
        "first_component_test_s": round(min(tests), 2) if tests else None,
        "sum_task_s": {g: round(v, 2) for g, v in sorted(sums.items())},
        "failed_tasks": sorted(t["name"] for t in report["tasks"] if t["result"] == "fail"),
    }


def _median(runs: list[dict], key: str, group: str | None = None) -> float:
    values = [r["sum_task_s"].get(group, 0.0) if group else r[key] for r in runs]
    return round(statistics.median(values), 2)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--old", default="ef713f2", help="the commit to compare with")
    parser.add_argument("--components", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "genpath-100.json")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    loads = [round(os.getloadavg()[0], 1)]
    with tempfile.TemporaryDirectory() as tmp:
        tree = old_tree(Path(tmp), args.old)
        for which in (tree, None):  # the machine-wide caches, filled untimed
            build(which, 5, Path(tmp))
        for _ in range(args.rounds):
            for name, which in (("old", tree), ("new", None)):
                runs[name].append(build(which, args.components, Path(tmp)))
                loads.append(round(os.getloadavg()[0], 1))
                print(name, runs[name][-1], flush=True)
    keys = ["wall_s", "cpu_s", "gen_runtime_end_s", "first_component_test_s"]
    groups = ["gen", "gen:runtime", "test:path", "test:integration"]
    summary = {
        name: {
            **{f"median_{k}": _median(r, k) for k in keys},
            **{f"median_sum_{g}_s": _median(r, "", g) for g in groups},
        }
        for name, r in runs.items()
    }
    summary["new_vs_old"] = {
        k: round(summary["new"][k] / summary["old"][k], 2) for k in summary["new"] if summary["old"][k]
    }
    write_comparison(args.out, args.old, loads, summary, runs, components=args.components, jobs=2)


if __name__ == "__main__":
    main()
