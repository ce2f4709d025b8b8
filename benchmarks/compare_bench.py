"""Autocoder's incremental builds against a bare doit DAG of the same shape (issue: fast edits).

For each size (synthetic blueprints, autocoder/synthetic.py), in one temp project:
1. a full build (`doit` with Autocoder's dodo.py, every tier), then
2. Autocoder's task graph is exported (names, file_dep, targets, task_dep, as doit loaded it)
   into a "bare" dodo whose actions do nothing: the same task count and the same file
   dependencies, checked by the same doit, with its own dependency file;
3. alternating, median of --repeats: Autocoder's no-op build, the bare DAG's no-op build, and
   Autocoder's one-component edit (one transformer's expression is rewritten to an equal one,
   so its examples still pass; every round writes a text no earlier round wrote, so no round
   is answered by the run-cache, which lives in a fresh directory of its own).

The figures that survive a noisy machine are the ratios within one run:
- noop_vs_bare = Autocoder no-op / bare no-op (target <= 1.5);
- edit_vs_noop = Autocoder one-edit / Autocoder no-op (target <= 4).

Usage: python benchmarks/compare_bench.py [--sizes 100 500] [--repeats 5] [--out FILE]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import main

from autocoder.cli import DODO_TEXT
from autocoder.synthetic import write_synthetic

BARE_DODO = '''"""The bare DAG: Autocoder's tasks, file deps and targets, with actions that do nothing."""
import json

DOIT_CONFIG = {"backend": "sqlite3", "dep_file": ".bare.doit.db", "verbosity": 0}
_GRAPH = json.load(open("bare_graph.json"))


def _nothing():
    return True


def task_bare():
    for task in _GRAPH:
        yield {
            "name": task["name"],
            "actions": [_nothing],
            "file_dep": task["file_dep"],
            "targets": task["targets"],
            "task_dep": [f"bare:{dep}" for dep in task["task_dep"]],
        }
'''

EXPORT = """
import json, sys
from doit.loader import load_tasks
import dodo
tasks = load_tasks(vars(dodo), allow_delayed=False)
names = {t.name for t in tasks}
graph = [  # group tasks too (no actions of their own): other tasks depend on them (sign -> deploy)
    {"name": t.name.replace(":", "."), "file_dep": sorted(t.file_dep), "targets": list(t.targets),
     "task_dep": [d.replace(":", ".") for d in t.task_dep if d in names]}
    for t in tasks
]
json.dump(graph, open("bare_graph.json", "w"))
print(len(graph))
"""


ORIGINAL = "value * 1 + 0.5"  # trans_0's expression in the synthetic blueprint
# Equal to it for every input (so its examples still pass), each compiled to different code.
EQUAL = (
    "0.5 + value * 1",
    "value + 0.5",
    "0.5 + value",
    "1 * value + 0.5",
    "0.5 + 1 * value",
    "value * 1 + 0.25 + 0.25",
)


# The stores' commits skip fsync in every build here (SQLITE_SYNCHRONOUS=NORMAL): this
# benchmark compares the build's own overhead, and on a busy disk an fsync-bound store can miss
# its p95 budget at random, which would leave a failed task that every "no-op" re-runs.
THROWAWAY = {"SQLITE_SYNCHRONOUS": "NORMAL"}


def doit(project: Path, *args: str, allow_fail: bool = False) -> tuple[float, int]:
    """Wall seconds of `python -m doit ARGS` in `project`, and how many tasks it executed."""
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "doit", *args],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **THROWAWAY},
    )
    elapsed = time.perf_counter() - start
    if run.returncode != 0 and allow_fail:
        return elapsed, -1
    if run.returncode != 0:
        raise SystemExit(f"doit {args} failed in {project}:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}")
    return elapsed, sum(1 for line in run.stdout.splitlines() if line.startswith(".  "))


def measure(n: int, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as cache:
        os.environ["AUTOCODER_CACHE_DIR"] = cache  # nothing restored from earlier runs
        project = Path(tmp)
        load_start = os.getloadavg()[0]
        write_synthetic(project, n)
        (project / "dodo.py").write_text(DODO_TEXT)
        full_s, full_tasks = doit(project, "-n", str(os.cpu_count() or 1), "--continue", allow_fail=True)
        for _ in range(3):  # a benchmark tier over budget on a busy machine: measured again
            if full_tasks >= 0:
                break
            full_tasks = doit(project, "--continue", allow_fail=True)[1]
        if full_tasks < 0:
            doit(project)  # fails with doit's output
        exported = subprocess.run(
            [sys.executable, "-c", EXPORT], cwd=project, capture_output=True, text=True, check=True
        )
        (project / "bare_dodo.py").write_text(BARE_DODO)
        doit(project, "-f", "bare_dodo.py")  # the bare DAG's first run records its state
        arch = project / "architecture.yaml"
        original = arch.read_text()
        noop, bare, edit, edit_tasks = [], [], [], 0
        for r in range(repeats):
            noop.append(doit(project)[0])
            bare.append(doit(project, "-f", "bare_dodo.py")[0])
            arch.write_text(original.replace(ORIGINAL, EQUAL[r % len(EQUAL)]))
            seconds, edit_tasks = doit(project)
            edit.append(seconds)
            doit(project, "-f", "bare_dodo.py")  # the bare DAG takes the edited files in, unmeasured
        noop_s, bare_s, edit_s = (statistics.median(x) for x in (noop, bare, edit))
        return {
            "tasks": int(exported.stdout.strip()),
            # the machine's load over the run (2 cores: above 2 means other work competed), and
            # whether Python wrote bytecode (without it every process compiles Autocoder's modules)
            "load_average_1m": [round(load_start, 1), round(os.getloadavg()[0], 1)],
            "python_dont_write_bytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
            "full_build_s": round(full_s, 3),
            "full_build_tasks_executed": full_tasks,
            "noop_s_median": round(noop_s, 3),
            "bare_noop_s_median": round(bare_s, 3),
            "one_edit_s_median": round(edit_s, 3),
            "one_edit_tasks_executed": edit_tasks,
            "noop_vs_bare": round(noop_s / bare_s, 2),
            "edit_vs_noop": round(edit_s / noop_s, 2),
        }


if __name__ == "__main__":
    main(__doc__, measure, sizes=[100, 500], repeats=5, out="compare.json")
    print(json.dumps({"note": "ratios are the figures to compare; seconds depend on the machine's load"}))
