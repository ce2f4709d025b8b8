"""doit's console reporter plus the validation summary table at the end of every build.

The table is read from the per-tier result files, so it shows after a no-op build and after a
failed one too (where the `report` task did not run).
"""

from __future__ import annotations

import sys
from pathlib import Path

from doit.reporter import ConsoleReporter

from autocoder.layout import GENERATED
from autocoder.runcache.report import RunCacheReport

# how the `check` task's failure message starts (tasks._fail_or_none)
BLUEPRINT_ERRORS = "the blueprints do not compile"


class AutocoderReporter(RunCacheReport, ConsoleReporter):
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
        self.write_runcache_summary()
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
