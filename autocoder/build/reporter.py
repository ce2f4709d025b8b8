"""doit's console reporter plus the validation summary table at the end of every build.

The table is read from the per-tier result files, so it shows after a no-op build and after a
failed one too (where the `report` task did not run).
"""

from __future__ import annotations

from pathlib import Path

from doit.reporter import ConsoleReporter

from autocoder.layout import GENERATED


class AutocoderReporter(ConsoleReporter):
    desc = "console output, then the validation summary table"

    # Outcome of the last run, for `autocoder build`'s exit code: doit says 2 when, under
    # --continue, tasks were skipped because a dependency failed; that is still "a tier
    # failed" (exit 1), unlike a real error in a task (exit 2).
    failures_only = True

    def __init__(self, outstream, options):  # noqa: ANN001 - doit's reporter signature
        super().__init__(outstream, options)
        AutocoderReporter.failures_only = True

    def add_failure(self, task, fail):  # noqa: ANN001
        from doit.exceptions import TaskFailed, UnmetDependency

        if not isinstance(fail, TaskFailed | UnmetDependency):
            AutocoderReporter.failures_only = False
        super().add_failure(task, fail)

    def complete_run(self) -> None:
        super().complete_run()
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
