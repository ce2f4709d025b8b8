"""The gen tasks of a build from scratch and of one edit: an older Autocoder against this tree,
alternating in one run (issue 13, item 4; codegen/batching.py batches them in this tree).

A synthetic project of --components components is built up to `ir` once (check, ir: the same
code in both trees). Each round, each tree gets a fresh copy of it and runs
`autocoder build -n 2 --reporter json gen` with the run-cache off: every gen:<c> task and
gen:runtime run, nothing else. Recorded per run: wall seconds, CPU seconds of the build and what
it started, the sum of the gen:<c> tasks' seconds (doit's JSON report) and gen:runtime's. Then,
in that copy, --edits edits of trans_0's expression (edit_profile.py `edit`: an equal one, a
different text each time), each built with `autocoder build --reporter json check ir gen` in
one process, as an edit is: the seconds of its one gen task (gen:trans_0). The trees take turns
(AB, BA, ...), so a busy machine slows both alike: compare the ratios (medians).

Before the rounds, each tree generates a 3-component project untimed: every timed build is the
machine's second project (this tree keeps hypothesis's Unicode table per machine:
autocoder/hypothesis_cache.py).

Both trees must generate the same bytes: every file under generated/src after the build from
scratch and after the edits (`identical_from_scratch`, `identical_after_edits`).

Usage: python benchmarks/gen_batch_bench.py [--old COMMIT] [--components 100] [--rounds 3]
       [--edits 3]
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
from edit_profile import edit

from autocoder.synthetic import write_synthetic


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _env(tree: Path | None) -> dict[str, str]:
    """No warm worker or mypy daemon left behind by the benchmark's projects."""
    return {**tree_env(tree), "AUTOCODER_WARM_WORKER": "off", "AUTOCODER_MYPY_DAEMON": "off"}


def _build(tree: Path | None, project: Path, *args: str) -> tuple[float, float, dict[str, float]]:
    """Wall and CPU seconds of `autocoder build PROJECT ARGS --reporter json`, and the seconds
    of each task it executed."""
    cpu = _cpu_of_children()
    start = time.perf_counter()
    build = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), *args, "--reporter", "json"],
        cwd=project,
        env=_env(tree),
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    cpu = _cpu_of_children() - cpu
    if build.returncode != 0:
        raise SystemExit(f"build {args} failed in {project}:\n{build.stdout[-3000:]}\n{build.stderr[-2000:]}")
    report, _ = json.JSONDecoder().raw_decode(build.stdout[build.stdout.index("{") :])
    tasks = {t["name"]: t["elapsed"] for t in report["tasks"] if t.get("elapsed") is not None}
    return wall, cpu, tasks


def _sources(project: Path) -> dict[str, bytes]:
    src = project / "generated" / "src"
    return {str(p.relative_to(src)): p.read_bytes() for p in sorted(src.rglob("*")) if p.is_file()}


def run(tree: Path | None, base: Path, workdir: Path, edits: int) -> tuple[dict, dict, dict]:
    """The build from scratch and the edits of a fresh copy of `base` with `tree`'s autocoder
    (None: this tree): their figures and the generated files after each."""
    project = Path(tempfile.mkdtemp(dir=workdir)) / "project"
    shutil.copytree(base, project, symlinks=True)
    wall, cpu, tasks = _build(tree, project, "-n", "2", "gen")
    components = [name for name in tasks if name.startswith("gen:") and name != "gen:runtime"]
    scratch = _sources(project)
    edit_s = []
    for _ in range(edits):
        edit(project / "architecture.yaml")
        _, _, edited = _build(tree, project, "check", "ir", "gen")
        ran = sorted(name for name in edited if name.startswith("gen:"))
        if ran != ["gen:trans_0"]:
            raise SystemExit(f"the edit ran {ran}, not gen:trans_0 alone")
        edit_s.append(round(edited["gen:trans_0"], 4))
    figures = {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "gen_components_sum_s": round(sum(tasks[name] for name in components), 3),
        "gen_runtime_s": round(tasks["gen:runtime"], 3),
        "gen_components": len(components),
        "edit_gen_s": edit_s,
        "edit_gen_median_s": statistics.median(edit_s),
        "load_1m": round(os.getloadavg()[0], 2),
    }
    after = _sources(project)
    shutil.rmtree(project.parent)
    return figures, scratch, after


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--old", default="02e648d", help="the commit to compare against")
    parser.add_argument("--components", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--edits", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gen_batch-100.json")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="gen-batch-"))
    old = old_tree(workdir, args.old)
    base = workdir / "base"
    base.mkdir()
    write_synthetic(base, args.components)
    _build(None, base, "check", "ir")
    trees = {"old": old, "new": None}
    for tree in trees.values():  # untimed: every timed build is the machine's second project
        warm = workdir / f"warm-{id(tree)}"
        warm.mkdir()
        write_synthetic(warm, 3)
        _build(tree, warm, "gen")
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    loads = []
    identical_scratch, identical_edits = True, True
    for round_ in range(args.rounds):
        order = ["old", "new"] if round_ % 2 == 0 else ["new", "old"]
        seen = {}
        for name in order:
            figures, scratch, after = run(trees[name], base, workdir, args.edits)
            runs[name].append(figures)
            loads.append(figures["load_1m"])
            seen[name] = (scratch, after)
            print(name, figures, flush=True)
        identical_scratch = identical_scratch and seen["old"][0] == seen["new"][0]
        identical_edits = identical_edits and seen["old"][1] == seen["new"][1]
    summary: dict[str, object] = {}
    for key in ("wall_s", "cpu_s", "gen_components_sum_s", "gen_runtime_s", "edit_gen_median_s"):
        old_median = statistics.median(r[key] for r in runs["old"])
        new_median = statistics.median(r[key] for r in runs["new"])
        ratio = round(new_median / old_median, 3)
        summary[key] = {"old": old_median, "new": new_median, "new_over_old": ratio}
    summary["identical_from_scratch"] = identical_scratch
    summary["identical_after_edits"] = identical_edits
    sizes = {"components": args.components, "rounds": args.rounds, "edits": args.edits}
    write_comparison(args.out, args.old, loads, summary, runs, **sizes)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
