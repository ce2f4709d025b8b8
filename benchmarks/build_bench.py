"""Benchmark of the incremental build through Stage 2 (issue: offline code generation).

For synthetic blueprints of 10, 100 and 500 components, in fresh temp directories, with the
real `autocoder build DIR gen` (doit, the stages through code generation) as a subprocess:
- full build from scratch, no-op build, and a one-component change (one transformer's logic):
  wall time, median of 5, and the tasks each executed;
- the one-component change must execute only that component's tasks plus the system-level ones.

Usage: python benchmarks/build_bench.py [--sizes 10 100 500] [--repeats 5] [--out FILE]
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from common import main, timed_build

from autocoder.synthetic import write_synthetic


def measure(n: int, repeats: int) -> dict:
    full, noop, change = [], [], []
    tasks: dict[str, list[str]] = {}
    for r in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp)
            write_synthetic(project, n)
            seconds, ran = timed_build(project, "gen")
            full.append(seconds)
            tasks["full"] = ran
            seconds, ran = timed_build(project, "gen")
            noop.append(seconds)
            tasks["noop"] = ran
            arch = project / "architecture.yaml"
            arch.write_text(arch.read_text().replace("value * 1 + 0.5", f"value * 1 + 0.{r + 6}"))
            seconds, ran = timed_build(project, "gen")
            change.append(seconds)
            tasks["change"] = ran
    return {
        "full_build_s_median": round(statistics.median(full), 3),
        "noop_build_s_median": round(statistics.median(noop), 3),
        "one_change_build_s_median": round(statistics.median(change), 3),
        "full_build_tasks": len(tasks["full"]),
        "noop_build_tasks": len(tasks["noop"]),
        "one_change_tasks": tasks["change"],
    }


if __name__ == "__main__":
    main(__doc__, measure, sizes=[10, 100, 500], repeats=5, out="build.json")
