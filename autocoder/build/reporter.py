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

    def complete_run(self) -> None:
        super().complete_run()
        from autocoder.validate.report import read_results, summary_table

        reports = Path.cwd() / GENERATED / "reports"
        if not reports.is_dir():
            return
        results = read_results(reports)
        results.pop("integration", None)
        policy = None
        if (reports / "policy.json").exists():
            import json

            policy = json.loads((reports / "policy.json").read_text())
        table = summary_table(results, policy)
        if table:
            self.outstream.write("\n" + table + "\n")
