"""Where a build's time goes outside the tasks' own actions: doit's phases, timed in its process.

In an already built project, optionally after a one-component edit (`--edit`: trans_0's
expression rewritten to an equal one no earlier run wrote, as edit_overhead_bench.py does), a
child interpreter runs `doit` in process (DoitMain, the project's dodo.py) with wall-clock
timers around doit's phases (loading the dodo and the tasks, the up-to-date checks, executing
tasks, saving the state, the teardowns, the reporter's end) and around the run-cache's work in
each task (its key, the blueprint record, lookup, store), then reports them as JSON. The
parent measures the whole process and the part after doit returned (the interpreter's
teardown; the child keeps it, its reporter's early exit does not apply when doit runs in a
script). Run it twice after an edit to see a warm run.

Usage: python benchmarks/edit_phases.py PROJECT [--edit] [--out FILE]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import machine, write_results

TOTALS: dict[str, float] = {}
PER_TASK: dict[str, float] = {}
_DEPTH: dict[str, int] = {}


def timed(owner: Any, attr: str, label: str) -> None:
    """Wrap owner.attr to add its wall seconds to TOTALS[label] (outermost calls only)."""
    original = getattr(owner, attr)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        depth = _DEPTH.get(label, 0)
        _DEPTH[label] = depth + 1
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            _DEPTH[label] = depth
            if depth == 0:
                TOTALS[label] = TOTALS.get(label, 0.0) + time.perf_counter() - start

    setattr(owner, attr, wrapper)


def child(out: Path) -> None:
    started = time.perf_counter()
    import doit.cmd_base
    import doit.cmd_run
    import doit.control
    import doit.dependency
    import doit.runner
    from doit.doit_cmd import DoitMain

    import autocoder.runcache.cache as runcache
    import autocoder.runcache.tasks as cached
    import autocoder.tasks.reporter as reporter

    for method in ("setup", "load_tasks"):
        timed(doit.cmd_base.DodoTaskLoader, method, f"load:{method}")
    timed(doit.control.TaskControl, "__init__", "load:task_control")
    timed(doit.dependency.Dependency, "get_status", "run:up_to_date_checks")
    timed(doit.runner.Runner, "select_task", "run:select_task")
    timed(doit.runner.Runner, "execute_task", "run:execute_task")
    timed(doit.runner.Runner, "process_task_result", "run:save_success")
    timed(doit.dependency.Dependency, "close", "end:state_saved")
    timed(doit.runner.Runner, "teardown", "end:teardowns")
    timed(reporter.AutocoderReporter, "complete_run", "end:reporter")
    timed(cached, "run_original", "task:actions")
    for name in ("record_blueprint", "task_key", "task_fields"):
        timed(cached, name, f"runcache:{name}")
    timed(runcache.RunCache, "lookup", "runcache:lookup")
    timed(runcache.RunCache, "save", "runcache:save")
    run_cached = cached.run_cached

    def per_task(directory: Path, actions: list, task: Any) -> Any:
        start = time.perf_counter()
        try:
            return run_cached(directory, actions, task)
        finally:
            PER_TASK[task.name] = round(time.perf_counter() - start, 3)

    cached.run_cached = per_task  # wrap_task looks it up when the tasks are loaded
    imported = time.perf_counter() - started
    code = DoitMain(doit.cmd_base.DodoTaskLoader()).run([])  # its output: the parent drops it
    TOTALS["doit"] = time.perf_counter() - started - imported
    TOTALS["imports"] = imported
    result = {"exit_code": code, "modules": len(sys.modules), "ended_epoch": time.time()}
    result |= {"seconds": {k: round(v, 3) for k, v in sorted(TOTALS.items())}, "tasks_s": PER_TASK}
    out.write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("project", type=Path)
    parser.add_argument("--edit", action="store_true", help="a one-component edit first")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "edit_phases.json")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    from edit_overhead_bench import edit

    project = args.project.resolve()
    edited = edit(project / "architecture.yaml", time.time_ns() % 10**9) if args.edit else None
    load = round(os.getloadavg()[0], 1)
    report = project / ".edit_phases.json"
    start = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as installed
    command = [sys.executable, __file__, str(project), "--child", str(report)]
    subprocess.run(command, cwd=project, check=True, env=env, stdout=subprocess.DEVNULL)
    wall, ended = time.perf_counter() - start, time.time()
    found = json.loads(report.read_text())
    report.unlink()
    found["seconds"]["interpreter_teardown"] = round(ended - found.pop("ended_epoch"), 3)
    write_results(
        args.out,
        {
            "machine": machine(),
            "project": str(project),
            "edit": edited,
            "wall_s": round(wall, 3),
            "load": load,
            **found,
        },
    )


if __name__ == "__main__":
    main()
