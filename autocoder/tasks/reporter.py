"""doit's console reporter plus the validation summary table at the end of every build.

The table is read from the per-tier result files of the tasks the run visited, so it shows after
a no-op build and after a failed one too (where the `report` task did not run), and never shows
the verdict of a tier this run did not visit.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import time
from pathlib import Path

from doit.reporter import ConsoleReporter

from autocoder.layout import CACHE, GENERATED
from autocoder.runcache.report import RunCacheReport

# how the `check` task's failure message starts (tasks._fail_or_none)
BLUEPRINT_ERRORS = "the blueprints do not compile"
CANNOT_WRITE = "cannot write "  # how tasks.lock.cannot_write's line starts

# Test hook: a build started with AUTOCODER_PAUSE_AT=<task name, or N for the Nth task to run>
# writes that task's name into the file named by AUTOCODER_PAUSE_READY when the task is about
# to run and then waits (at most PAUSE_S), so a test can kill the build at a known point instead
# of racing it. (doit's order among independent tasks varies from run to run, hence N.)
PAUSE_AT, PAUSE_READY, PAUSE_S = "AUTOCODER_PAUSE_AT", "AUTOCODER_PAUSE_READY", 120.0
# progress ("[done/total]") on the task lines: on a terminal, or when this is set to 1
PROGRESS = "AUTOCODER_PROGRESS"
# "0" keeps the interpreter's normal teardown at the end of a `doit` run (see exit_now)
HARD_EXIT = "AUTOCODER_HARD_EXIT"

# The collector's first threshold while doit runs the tasks (after it loaded them). The default
# (700) collects the youngest generation every 700 new container objects; a one-component edit
# at 500 components imports and builds hundreds of thousands of long-lived objects in doit's
# process (pytest and hypothesis for the component test, the run-cache's records, the results
# the warm worker sends back), so each of them was traversed again and again on its way to the
# oldest generation: ~0.45 s of collections per edit, against ~0.15 s with this one. Garbage
# cycles are still collected, 50,000 allocations later at most (a few MB); reference counting,
# which frees everything else, is unchanged. The previous thresholds are restored when the run
# ends (`autocoder build` and tests run doit inside a longer-lived process).
RUN_GC_THRESHOLD = 50_000


def _pause_if_asked(task_name: str, started: int) -> None:
    if os.environ.get(PAUSE_AT) not in (task_name, str(started)):
        return
    ready = os.environ.get(PAUSE_READY)
    if ready:  # whole or absent: the test reads it as soon as it exists
        Path(f"{ready}.tmp").write_text(task_name)
        os.replace(f"{ready}.tmp", ready)
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


TEST_GROUP = "test"  # its task_dep: every test task, the path tests among them (validate_tasks)


def _stop_path_server_early(tasks) -> None:  # noqa: ANN001 - doit's task dict
    """Once the `test` group is done, no path test of this run is left: its server is asked
    to stop now (shared_server.stop_early), while the tasks after the tests run, instead of
    in doit's teardowns after the last task. Found through the teardown the path tasks have."""
    from autocoder.tasks.validate_tasks import stop_shared_server  # the path tasks' teardown
    from autocoder.validate.shared_server import stop_early

    group = tasks.get(TEST_GROUP)
    for name in group.task_dep if group is not None else ():
        for action in getattr(tasks.get(name), "teardown", None) or ():
            if getattr(action, "py_callable", None) is stop_shared_server:
                with contextlib.suppress(OSError):  # then the teardown stops it, as before
                    stop_early(*action.args)
                return


def _lock_project() -> None:
    """One build at a time in this project (tasks.lock); a project that cannot hold the lock
    (read-only) stops the run with one line instead of a traceback."""
    from doit.exceptions import InvalidTask

    from autocoder.tasks.compile_tasks import output_problem
    from autocoder.tasks.lock import acquire, cannot_write

    here = Path.cwd()
    if output_problem(here) is not None:
        return  # generated/ leads out of the project: write nothing there; `check` says why
    try:
        acquire(here)
    except OSError as exc:
        raise InvalidTask(cannot_write(exc)) from None
    use_project_storage(here)


def use_project_storage(here: Path) -> None:
    """Tools that keep files where they run (hypothesis's .hypothesis) keep them under
    generated/ (set before any task runs, whichever reporter the build uses: what
    autocoder/hypothesis_cache.py shares between projects are found there)."""
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(here / CACHE / "hypothesis"))


class AutocoderReporter(RunCacheReport, ConsoleReporter):
    desc = "console output, then the validation summary table"

    # Outcome of the last run, for `autocoder build`'s exit code: doit says 2 when, under
    # --continue, tasks were skipped because a dependency failed; that is still "a tier
    # failed" (exit 1), unlike a real error in a task (exit 2).
    failures_only = True
    # Whether `check` failed because the blueprints have errors (`autocoder build` exits 2).
    blueprint_failed = False
    failures: list[dict[str, object]]  # doit's: {"task": ..., "exception": ...}
    _gc_threshold: tuple[int, ...] | None
    _tasks: dict[str, object]

    def __init__(self, outstream, options):  # noqa: ANN001 - doit's reporter signature
        super().__init__(outstream, options)
        AutocoderReporter.failures_only = True
        AutocoderReporter.blueprint_failed = False
        self._result = 0  # doit's exit code for this run, as its runner computes it
        self._shown: list[object] = []
        self._total: set[str] = set()
        self._visited: set[str] = set()  # tasks that ran or were up to date, in this run
        self._started = 0
        stream = getattr(outstream, "isatty", None)
        self._progress = os.environ.get(PROGRESS) == "1" or bool(stream and stream())
        self._gc_threshold = None  # the collector's thresholds before the run, restored after it
        self._tasks = {}  # doit's task dict, from initialize

    def initialize(self, tasks, selected_tasks):  # noqa: ANN001
        super().initialize(tasks, selected_tasks)
        self._tasks = tasks
        self._total = _runnable(tasks, selected_tasks)
        _lock_project()
        self._gc_threshold = gc.get_threshold()
        gc.set_threshold(max(RUN_GC_THRESHOLD, self._gc_threshold[0]), *self._gc_threshold[1:])

    def _count(self, task) -> str:  # noqa: ANN001
        """`[done/total] ` before a task's name when progress is shown (a task that runs counts
        as done when it starts: the line says which one is running)."""
        self._visited.add(task.name)
        if not self._progress or task.name not in self._total:
            return ""
        return f"[{len(self._visited & self._total)}/{len(self._total)}] "

    def execute_task(self, task):  # noqa: ANN001
        if task.actions and task.name[0] != "_":
            self.write(f".  {self._count(task)}{task.title()}\n")
            self.write_reasons(task)
            self._started += 1
            _pause_if_asked(task.name, self._started)

    def skip_uptodate(self, task):  # noqa: ANN001
        if task.name[0] != "_":
            self.write(f"-- {self._count(task)}{task.title()}\n")

    def add_success(self, task):  # noqa: ANN001
        super().add_success(task)
        if task.name == TEST_GROUP:
            _stop_path_server_early(self._tasks)

    def runtime_error(self, msg):  # noqa: ANN001
        self._result = 2  # doit's runner: ERROR
        if msg.startswith(CANNOT_WRITE):  # the project cannot be written: one line, no banner
            sys.stderr.write(f"autocoder: {msg}\n")
            AutocoderReporter.failures_only = False
            return
        super().runtime_error(msg)

    def add_failure(self, task, fail):  # noqa: ANN001
        from doit.exceptions import TaskFailed, UnmetDependency

        if not isinstance(fail, TaskFailed | UnmetDependency):
            AutocoderReporter.failures_only = False
        # doit's runner: FAILURE (1) for failed tasks unless any error (2) happened
        self._result = 1 if isinstance(fail, TaskFailed) and self._result != 2 else 2
        if task.name == TEST_GROUP:  # a test failed (doit --continue): the others are done too
            _stop_path_server_early(self._tasks)
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
        if self._gc_threshold is not None:
            gc.set_threshold(*self._gc_threshold)
            self._gc_threshold = None
        failures = self.failures
        self.failures = [f for f in failures if f["task"] not in self._shown]
        super().complete_run()
        self.failures = failures
        self.write_runcache_summary()
        table = self._table()
        if table:
            self.outstream.write("\n" + table + "\n")
        if exit_now_allowed("doit"):
            exit_now(self._result, self.outstream)

    def _table(self) -> str:
        """The validation results of the tasks this run visited (ran, or found up to date):
        result files of tiers it did not visit may describe code generated since, so a
        `doit gen` after an edit shows no table rather than an old verdict as current.

        Every build shows it, a no-op too: what the table needs of each result file is kept
        in a FileCache (generated/.cache/summary-table.json) and a file is read again only when
        its stat changed, so a no-op costs a stat per file, not a JSON parse."""
        import json

        from autocoder.validate.merge import FileCache
        from autocoder.validate.report import TIERS, summary_table

        reports = Path.cwd() / GENERATED / "reports"
        if not reports.is_dir():
            return ""
        cache = FileCache(Path.cwd() / TABLE_CACHE)
        results: dict[str, dict[str, object]] = {}
        for tier in TIERS:
            folder = f"{reports}/{tier}"
            for name in sorted(n[:-5] for n in _listing(folder) if n.endswith(".json")):
                if name == "integration" or f"{tier}:{name}" not in self._visited:
                    continue
                found = cache.get(f"{folder}/{name}.json", table_fields)
                if found is not None:
                    results.setdefault(name, {})[tier] = found
        with contextlib.suppress(OSError):  # a cache: failing to write it costs only time
            cache.save()
        system = {}
        for task, file in (("policy", "policy.json"), ("typecheck", "typecheck.json")):
            path = reports / file
            system[task] = json.loads(path.read_text()) if task in self._visited and path.exists() else None
        return summary_table(results, system["policy"], system["typecheck"], restored=self.restored_tasks())


TABLE_CACHE = f"{CACHE}/summary-table.json"
# what validate.report.summary_table reads of a tier's result (its cell, lint's suppressions)
TABLE_KEYS = ("ok", "failing", "suppressed", "tests", "failures", "errors", "p95_ms", "budget_p95_ms")


def table_fields(raw: bytes) -> dict[str, object]:
    """The part of a result file the summary table shows (ValueError: not a result file)."""
    import json

    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("not a result file")
    fields = {key: data[key] for key in TABLE_KEYS if key in data}
    findings = data.get("findings")
    if isinstance(findings, list):
        fields["findings"] = [
            {"rule": f.get("rule"), "suppressed_by": f["suppressed_by"]}
            for f in findings
            if isinstance(f, dict) and f.get("suppressed_by")
        ]
    return fields


def _listing(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


# ------------------------------------------------------------------ the end of a `doit` run
# When doit's runner calls complete_run, the run is over: its dependency DB is saved and closed
# and the teardowns ran; what is left in `doit`'s process is returning the exit code. Python's
# own teardown then frees every module and object one by one: the task graph of a 500-component
# project, and after an edit also pytest, hypothesis, mypy's API and the compiler, imported by
# the tasks that ran in this process (~800 modules). That took 0.2 s of a no-op and 0.6 s of a
# one-component edit at 500 components. So, as mypy does at the end of its own runs, the process
# exits here: the streams flushed and the atexit handlers run (logging, multiprocessing, temp
# directories), then os._exit with the code doit would have returned.


ENTRY_MODULES = {"doit": "doit.__main__", "autocoder": "autocoder.cli"}


def exit_now_allowed(program: str) -> bool:
    """Only at the end of `program`'s own command line run (`doit`, or `autocoder build` once
    it is done: not a test running either in its process, nor `doit auto`/`strace`, which go on
    after a run), with no exception in flight, no profiler or tracer (coverage, cProfile) that
    reports at exit, and no thread the interpreter would wait for."""
    import threading

    if os.environ.get(HARD_EXIT, "1").lower() in ("0", "off", "false", "no"):
        return False
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    ours = getattr(spec, "name", None) == ENTRY_MODULES[program] or Path(sys.argv[0]).name == program
    if not ours or {"auto", "strace"} & set(sys.argv[1:]) or sys.exc_info()[0] is not None:
        return False
    if sys.gettrace() is not None or sys.getprofile() is not None:
        return False
    main = threading.main_thread()
    return not any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate())


def exit_now(code: int, outstream=None) -> None:  # noqa: ANN001 - doit's output stream
    import atexit

    for stream in (s for s in (outstream, sys.stdout, sys.stderr) if s is not None):
        with contextlib.suppress(Exception):  # a closed pipe: nothing more can reach it anyway
            stream.flush()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
