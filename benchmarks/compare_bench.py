"""Autocoder's incremental builds against a bare doit DAG of the same shape (issue: fast edits).

For each size (synthetic blueprints, autocoder/synthetic.py), in one project:
1. a full build (`doit -n 2` with Autocoder's dodo.py, every tier); with --workdir the project
   is kept there, and a later run finds it built (its "full build" is then a quick catch-up);
2. Autocoder's task graph is exported (names, file_dep, targets, task_dep, as doit loaded it)
   into a "bare" dodo whose actions do nothing: the same task count and the same file
   dependencies, checked by the same doit, with its own dependency file;
3. alternating, median of --repeats: Autocoder's no-op build, the bare DAG's no-op build, and
   Autocoder's one-component edit (one transformer's expression is rewritten to an equal one,
   so its examples still pass; every round writes a text no earlier round wrote, so no round
   is answered by the run-cache, which lives in a fresh directory of its own).

Each build is measured as wall seconds and as CPU seconds (user + system of the doit process,
from getrusage): on a shared machine the wall clock counts the other processes' turns, CPU
seconds count this build's own work. The figures to compare are the ratios within one run:
- noop_vs_bare = Autocoder no-op / bare no-op (target <= 1.5);
- edit_vs_noop = Autocoder one-edit / Autocoder no-op (target <= 4).
Builds run with bytecode caching on (PYTHONDONTWRITEBYTECODE unset for them), as an installed
Autocoder runs: without it every build compiles Autocoder's modules from source, which the bare
DAG (doit only, installed with its bytecode) never pays.

With --task-list-only, nothing is built: only the CPU of loading each DAG's task list (importing
the dodo and doit's load_tasks, in fresh interpreters, alternating) into compare_task_list.json:
the part of a no-op that Autocoder's task generators decide, measured in seconds.

Usage: python benchmarks/compare_bench.py [--sizes 100 500] [--repeats 5] [--workdir DIR]
       [--task-list-only] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, write_results

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


# CPU seconds of loading a dodo's task list (importing it and doit's load_tasks), in a fresh
# interpreter as every doit run: the part of a no-op that Autocoder's task generators decide.
LOAD_CPU = """
import sys, time
sys.path.insert(0, ".")
start = time.process_time()
from doit.loader import load_tasks
module = __import__(sys.argv[1])
load_tasks(vars(module), allow_delayed=False)
print(time.process_time() - start)
"""


def load_cpu_s(project: Path, module: str) -> float:
    run = subprocess.run(
        [sys.executable, "-c", LOAD_CPU, module], cwd=project, capture_output=True, text=True, env=BUILD_ENV
    )
    if run.returncode != 0:
        raise SystemExit(f"loading {module} failed in {project}:\n{run.stderr[-2000:]}")
    return float(run.stdout.split()[-1])


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
BUILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | THROWAWAY


def doit(project: Path, *args: str, allow_fail: bool = False) -> tuple[float, float, int]:
    """Wall seconds and CPU seconds of `python -m doit ARGS` in `project`, and how many tasks it
    executed (-1 when it failed and allow_fail)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "doit", *args],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env=BUILD_ENV,
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if run.returncode != 0 and allow_fail:
        return elapsed, cpu, -1
    if run.returncode != 0:
        raise SystemExit(f"doit {args} failed in {project}:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}")
    return elapsed, cpu, sum(1 for line in run.stdout.splitlines() if line.startswith(".  "))


def full_build(project: Path, n: int) -> tuple[float, int]:
    """The synthetic project of `n` components, built (from scratch, or caught up when a kept
    project was built by an earlier run): wall seconds and tasks executed."""
    write_synthetic(project, n)  # also undoes the last run's edit
    (project / "dodo.py").write_text(DODO_TEXT)
    full_s, _, full_tasks = doit(project, "-n", str(os.cpu_count() or 1), "--continue", allow_fail=True)
    for _ in range(3):  # a benchmark tier over budget on a busy machine: measured again
        if full_tasks >= 0:
            break
        full_tasks = doit(project, "--continue", allow_fail=True)[2]
    if full_tasks < 0:
        doit(project)  # fails with doit's output
    return full_s, full_tasks


def load() -> float:
    return round(os.getloadavg()[0], 1)


def measure_task_list(n: int, repeats: int, workdir: Path) -> dict:
    """--task-list-only: the CPU of loading each DAG's task list, alternating, without building
    anything (doit loads the tasks from the blueprint alone): seconds of work, not an hour."""
    project = workdir / f"task-list-{n}"
    project.mkdir(parents=True, exist_ok=True)
    write_synthetic(project, n)
    (project / "dodo.py").write_text(DODO_TEXT)
    exported = subprocess.run(
        [sys.executable, "-c", EXPORT], cwd=project, capture_output=True, text=True, check=True, env=BUILD_ENV
    )
    (project / "bare_dodo.py").write_text(BARE_DODO)
    loads = [load()]
    loading: dict[str, list[float]] = {"noop": [], "bare": []}
    for _ in range(repeats):
        loading["noop"].append(load_cpu_s(project, "dodo"))
        loading["bare"].append(load_cpu_s(project, "bare_dodo"))
    loads.append(load())
    task_list = {k: statistics.median(v) for k, v in loading.items()}
    return {
        "tasks": int(exported.stdout.strip()),
        "repeats": repeats,
        "load_average_1m": {"min": min(loads), "max": max(loads)},
        "task_list_load_cpu_s_median": {k: round(v, 3) for k, v in task_list.items()},
        "task_list_noop_vs_bare": round(task_list["noop"] / task_list["bare"], 2),
    }


def measure(n: int, repeats: int, workdir: Path) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        os.environ["AUTOCODER_CACHE_DIR"] = cache  # nothing restored from earlier runs
        BUILD_ENV["AUTOCODER_CACHE_DIR"] = cache
        project = workdir / f"synthetic-{n}"
        project.mkdir(parents=True, exist_ok=True)
        kept = (project / ".doit.db").exists()
        loads = [load()]
        full_s, full_tasks = full_build(project, n)
        exported = subprocess.run(
            [sys.executable, "-c", EXPORT], cwd=project, capture_output=True, text=True, check=True
        )
        (project / "bare_dodo.py").write_text(BARE_DODO)
        doit(project, "-f", "bare_dodo.py")  # the bare DAG's first run records its state
        doit(project)  # the export's fingerprint files in place: the rounds start from a no-op
        arch = project / "architecture.yaml"
        original = arch.read_text()
        runs: dict[str, list[tuple[float, float, int]]] = {"noop": [], "bare": [], "edit": []}
        for r in range(repeats):
            runs["noop"].append(doit(project))
            runs["bare"].append(doit(project, "-f", "bare_dodo.py"))
            arch.write_text(original.replace(ORIGINAL, EQUAL[r % len(EQUAL)]))
            runs["edit"].append(doit(project))
            doit(project, "-f", "bare_dodo.py")  # the bare DAG takes the edited files in, unmeasured
            loads.append(load())
        arch.write_text(original)
        doit(project)  # back to the original blueprint, so that the task list is the measured one
        loading = {"noop": [], "bare": []}
        for _ in range(repeats):
            loading["noop"].append(load_cpu_s(project, "dodo"))
            loading["bare"].append(load_cpu_s(project, "bare_dodo"))
        task_list = {k: statistics.median(v) for k, v in loading.items()}
        wall = {k: statistics.median(x[0] for x in v) for k, v in runs.items()}
        cpu = {k: statistics.median(x[1] for x in v) for k, v in runs.items()}
        return {
            "tasks": int(exported.stdout.strip()),
            "repeats": repeats,
            "load_average_1m": {"min": min(loads), "max": max(loads), "per_round": loads},
            "project_kept_from_an_earlier_run": kept,
            "full_build_s": round(full_s, 3),
            "full_build_tasks_executed": full_tasks,
            "tasks_executed": {k: sorted({x[2] for x in v}) for k, v in runs.items()},
            "wall_s_median": {k: round(v, 3) for k, v in wall.items()},
            "cpu_s_median": {k: round(v, 3) for k, v in cpu.items()},
            "ratios_wall": {
                "noop_vs_bare": round(wall["noop"] / wall["bare"], 2),
                "edit_vs_noop": round(wall["edit"] / wall["noop"], 2),
            },
            "ratios_cpu": {
                "noop_vs_bare": round(cpu["noop"] / cpu["bare"], 2),
                "edit_vs_noop": round(cpu["edit"] / cpu["noop"], 2),
            },
            "task_list_load_cpu_s_median": {k: round(v, 3) for k, v in task_list.items()},
        }


EXPLAINED = {
    "tasks": "tasks in Autocoder's DAG as doit loads it (the bare DAG has the same)",
    "wall_s_median": "median wall seconds: noop = Autocoder no-op, bare = the bare DAG's no-op, "
    "edit = Autocoder after a one-component edit",
    "cpu_s_median": "median CPU seconds (user + system) of the same builds: on a busy machine, "
    "the build's own work",
    "ratios_wall / ratios_cpu": "noop_vs_bare (target <= 1.5), edit_vs_noop (target <= 4)",
    "tasks_executed": "tasks each kind of build ran (a no-op runs only the tasks that always run, "
    "sign and image, in both DAGs)",
    "task_list_load_cpu_s_median": "CPU seconds of importing the dodo and doit's load_tasks in a "
    "fresh interpreter (noop = Autocoder's dodo.py, bare = the bare DAG's), median of the repeats",
    "task_list_noop_vs_bare": "--task-list-only: Autocoder's task-list load CPU / the bare DAG's",
    "load_average_1m": "1-minute load average before the full build and after each round "
    "(2 cores: above 2, other processes competed for them)",
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--workdir", type=Path, help="keep the built projects here (a later run reuses them: no full build)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "compare.json")
    parser.add_argument(
        "--task-list-only",
        action="store_true",
        help="only the task lists' load CPU (no build; default output compare_task_list.json)",
    )
    args = parser.parse_args()
    if args.task_list_only and args.out.name == "compare.json":
        args.out = args.out.with_name("compare_task_list.json")
    measure_size = measure_task_list if args.task_list_only else measure
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir.resolve() if args.workdir else Path(tmp)
        sizes = {str(n): measure_size(n, args.repeats, workdir) for n in args.sizes}
    write_results(
        args.out,
        {
            "machine": machine(),
            "repeats": args.repeats,
            "bytecode_cache": True,
            "explained": EXPLAINED,
            "sizes": sizes,
        },
    )


if __name__ == "__main__":
    main()
