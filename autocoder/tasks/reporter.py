"""doit's console reporter plus the validation summary table at the end of every build.

The table is read from the per-tier result files, so it shows after a no-op build and after a
failed one too (where the `report` task did not run).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from doit.reporter import ConsoleReporter

from autocoder.layout import GENERATED

# how the `check` task's failure message starts (tasks._fail_or_none)
BLUEPRINT_ERRORS = "the blueprints do not compile"

# Test hook: a build started with AUTOCODER_PAUSE_AT=<task name, or N for the Nth task to run>
# writes that task's name into the file named by AUTOCODER_PAUSE_READY when the task is about
# to run and then waits (at most PAUSE_S), so a test can kill the build at a known point instead
# of racing it. (doit's order among independent tasks varies from run to run, hence N.)
PAUSE_AT, PAUSE_READY, PAUSE_S = "AUTOCODER_PAUSE_AT", "AUTOCODER_PAUSE_READY", 120.0
# progress ("[done/total]") on the task lines: on a terminal, or when this is set to 1
PROGRESS = "AUTOCODER_PROGRESS"


def _pause_if_asked(task_name: str, started: int) -> None:
    if os.environ.get(PAUSE_AT) not in (task_name, str(started)):
        return
    ready = os.environ.get(PAUSE_READY)
    if ready:
        Path(ready).write_text(task_name)
    time.sleep(PAUSE_S)


def _runnable(tasks, selected) -> set[str]:  # noqa: ANN001 - doit's task dict and names
    """Names of the tasks this run will visit (the selected ones and what they depend on) that
    have actions: the total of the progress count."""
    seen: set[str] = set()
    todo = [name for name in selected if name in tasks]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        task = tasks[name]
        todo.extend(n for n in (*task.task_dep, *task.setup_tasks) if n in tasks)
    return {n for n in seen if tasks[n].actions and not n.startswith("_")}


class AutocoderReporter(ConsoleReporter):
    desc = "console output, then the validation summary table"

    # Outcome of the last run, for `autocoder build`'s exit code: doit says 2 when, under
    # --continue, tasks were skipped because a dependency failed; that is still "a tier
    # failed" (exit 1), unlike a real error in a task (exit 2).
    failures_only = True
    # Whether `check` failed because the blueprints have errors (`autocoder build` exits 2).
    blueprint_failed = False
    failures: list[dict[str, object]]  # doit's: {"task": ..., "exception": ...}

    def __init__(self, outstream, options):  # noqa: ANN001 - doit's reporter signature
        super().__init__(outstream, options)
        AutocoderReporter.failures_only = True
        AutocoderReporter.blueprint_failed = False
        self._shown: list[object] = []
        self._total: set[str] = set()
        self._done: set[str] = set()
        self._started = 0
        stream = getattr(outstream, "isatty", None)
        self._progress = os.environ.get(PROGRESS) == "1" or bool(stream and stream())

    def initialize(self, tasks, selected_tasks):  # noqa: ANN001
        super().initialize(tasks, selected_tasks)
        self._total = _runnable(tasks, selected_tasks)

    def _count(self, task) -> str:  # noqa: ANN001
        """`[done/total] ` before a task's name when progress is shown (a task that runs counts
        as done when it starts: the line says which one is running)."""
        if not self._progress or task.name not in self._total:
            return ""
        self._done.add(task.name)
        return f"[{len(self._done)}/{len(self._total)}] "

    def execute_task(self, task):  # noqa: ANN001
        if task.actions and task.name[0] != "_":
            self.write(f".  {self._count(task)}{task.title()}\n")
            self._started += 1
            _pause_if_asked(task.name, self._started)

    def skip_uptodate(self, task):  # noqa: ANN001
        if task.name[0] != "_":
            self.write(f"-- {self._count(task)}{task.title()}\n")

    def add_failure(self, task, fail):  # noqa: ANN001
        from doit.exceptions import TaskFailed, UnmetDependency

        if not isinstance(fail, TaskFailed | UnmetDependency):
            AutocoderReporter.failures_only = False
        message = fail.get_msg() if isinstance(fail, TaskFailed) else ""
        if task.name == "check" and message.startswith(BLUEPRINT_ERRORS):
            # the diagnostics as `autocoder check` prints them (stderr, FILE:LINE:COL), without
            # doit's framing and without repeating the task's (empty) output at the end
            AutocoderReporter.blueprint_failed = True
            self.failures.append({"task": task, "exception": fail})
            self._shown.append(task)
            sys.stderr.write(message.split("\n", 1)[1].rstrip("\n") + "\n")
            return
        super().add_failure(task, fail)

    def complete_run(self) -> None:
        failures = self.failures
        self.failures = [f for f in failures if f["task"] not in self._shown]
        super().complete_run()
        self.failures = failures
        import json

        from autocoder.validate.report import read_results, summary_table

        reports = Path.cwd() / GENERATED / "reports"
        summary = reports / "summary.json"
        if not self.failures and summary.exists():
            # a green run: the report task's summary is current (one file, not one per task)
            data = json.loads(summary.read_text())
            results, policy, types = data["components"], data["policy"], data.get("typecheck")
        elif reports.is_dir():
            results = read_results(reports)
            results.pop("integration", None)
            policy_file = reports / "policy.json"
            policy = json.loads(policy_file.read_text()) if policy_file.exists() else None
            types_file = reports / "typecheck.json"
            types = json.loads(types_file.read_text()) if types_file.exists() else None
        else:
            return
        table = summary_table(results, policy, types)
        if table:
            self.outstream.write("\n" + table + "\n")
