"""The lint and bench tiers of a build from scratch: an older Autocoder against this tree,
alternating in one run (issue 13, item 4; validate/siblings.py batches them in this tree).

A synthetic project of --components components is built up to `gen` once (check, ir, gen: the
same code in both trees). Each round, each tree gets a fresh copy of it and runs
`autocoder build -n 2 --continue --reporter json lint bench` with the run-cache off: every
lint:<c> and bench:<c> task runs, nothing else. Recorded per run: wall seconds, CPU seconds of
the build and what it started, the sum of the lint and of the bench tasks' seconds (doit's
JSON report), the failed tasks and the 1-minute load average. The trees take turns (AB, BA,
...), so a busy machine slows both alike: compare the ratios.

Both trees must give the same results: every lint report and SARIF file byte for byte
(`lint_identical`), and the same fields and dead letters in every bench result; the bench
verdicts that differ are listed (`bench_verdicts_differing`: on a loaded machine a component's
p95 now and then goes over its limit in either tree, the known noise of the tier).

`--new COMMIT` runs that commit, extracted as the old one is, instead of this tree: a control
run of one commit against itself (old extracted, new this tree) gave the extracted side up to
1.3x the CPU seconds, so compare two extracted trees when a few percent matter.

Usage: python benchmarks/benchlint_bench.py [--old COMMIT] [--new COMMIT] [--components 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import old_tree, tree_env, write_comparison

from autocoder.synthetic import write_synthetic

REPORTS = Path("generated") / "reports"


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(tree: Path | None, base: Path, workdir: Path) -> tuple[dict, Path]:
    """lint and bench of a fresh copy of `base` with `tree`'s autocoder (None: this tree)."""
    project = Path(tempfile.mkdtemp(dir=workdir)) / "project"
    shutil.copytree(base, project, symlinks=True)
    cpu = _cpu_of_children()
    start = time.perf_counter()
    build = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), "-n", "2", "--continue"]
        + ["--reporter", "json", "lint", "bench"],
        cwd=project,
        env=tree_env(tree),
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    cpu = _cpu_of_children() - cpu
    report, _ = json.JSONDecoder().raw_decode(build.stdout[build.stdout.index("{") :])
    sums = {"lint": 0.0, "bench": 0.0}
    counts = {"lint": 0, "bench": 0}
    for task in report["tasks"]:
        group = task["name"].split(":")[0]
        if group in sums and task.get("elapsed") is not None:
            sums[group] += task["elapsed"]
            counts[group] += 1
    failed = sorted(t["name"] for t in report["tasks"] if t["result"] == "fail")
    figures = {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "lint_sum_s": round(sums["lint"], 2),
        "bench_sum_s": round(sums["bench"], 2),
        "tasks": counts,
        "failed": failed,
        "load_1m": round(os.getloadavg()[0], 2),
    }
    return figures, project


def results_of(project: Path) -> dict[str, object]:
    """What both trees must agree on: lint reports and SARIF bytes, bench verdicts."""
    lint = {
        f"{kind}/{p.name}": p.read_bytes().decode()
        for kind in ("lint", "sarif")
        for p in sorted((project / REPORTS / kind).iterdir())
    }
    bench = {}
    for path in sorted((project / REPORTS / "bench").iterdir()):
        data = json.loads(path.read_text())
        bench[path.stem] = {"ok": data["ok"], "dead_letters": data["dead_letters"], "fields": sorted(data)}
    return {"lint": lint, "bench": bench}


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--old", default="e52890f", help="the commit to compare against")
    parser.add_argument("--new", help="a commit to run instead of this tree (extracted like --old)")
    parser.add_argument("--components", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "benchlint-100.json")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="benchlint-"))
    old = old_tree(workdir, args.old)
    base = workdir / "base"
    base.mkdir()
    write_synthetic(base, args.components)
    gen = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(base), "check", "ir", "gen"],
        cwd=base,
        env=tree_env(None),
        capture_output=True,
        text=True,
    )
    if gen.returncode != 0:
        raise SystemExit(f"gen failed:\n{gen.stdout[-3000:]}\n{gen.stderr[-2000:]}")
    trees = {"old": old, "new": old_tree(workdir, args.new) if args.new else None}
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    loads = []
    lint_identical, bench_shape, differing = True, True, []
    for round_ in range(args.rounds):
        order = ["old", "new"] if round_ % 2 == 0 else ["new", "old"]
        seen = {}
        for name in order:
            figures, project = run(trees[name], base, workdir)
            runs[name].append(figures)
            loads.append(figures["load_1m"])
            seen[name] = results_of(project)
            shutil.rmtree(project.parent)
            print(name, figures, flush=True)
        lint_identical = lint_identical and seen["old"]["lint"] == seen["new"]["lint"]
        old_bench, new_bench = seen["old"]["bench"], seen["new"]["bench"]
        bench_shape = bench_shape and old_bench.keys() == new_bench.keys()
        for name in sorted(old_bench.keys() & new_bench.keys()):
            old_one, new_one = old_bench[name], new_bench[name]
            if old_one["fields"] != new_one["fields"] or old_one["dead_letters"] != new_one["dead_letters"]:
                bench_shape = False
            if old_one["ok"] != new_one["ok"]:
                differing.append({"round": round_ + 1, "component": name, "old_ok": old_one["ok"]})
    summary = {}
    for key in ("wall_s", "cpu_s", "lint_sum_s", "bench_sum_s"):
        old_median = statistics.median(r[key] for r in runs["old"])
        new_median = statistics.median(r[key] for r in runs["new"])
        ratio = round(new_median / old_median, 3)
        summary[key] = {"old": old_median, "new": new_median, "new_over_old": ratio}
    summary["lint_identical"] = lint_identical
    summary["bench_same_fields_and_dead_letters"] = bench_shape
    summary["bench_verdicts_differing"] = differing
    write_comparison(
        args.out,
        args.old,
        loads,
        summary,
        runs,
        components=args.components,
        rounds=args.rounds,
        new_tree=args.new or "this tree",
    )
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
