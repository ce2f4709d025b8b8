"""Benchmark of the validation stage (issue: validation and hardening).

On synthetic blueprints of 10 and 100 components, with the real `autocoder build`:
- full build from scratch (generation and every validation tier), wall time, median of 3,
  with `-n 1` and `-n 2`;
- re-validation after a one-component change (its logic and its example), median of 3, and
  the tasks it ran;
- per-tier cost per component: each tier re-run alone (`forget` then build only that tier),
  divided by the number of components;
- at 500 components (one full build with -n 2): the no-op build of every task, median of 5.

Usage: python benchmarks/validate_bench.py [--sizes 10 100] [--repeats 3] [--out FILE]
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from common import main, timed_build

from autocoder.synthetic import write_synthetic


def change_one(project: Path, step: int) -> None:
    """Change trans_0's logic and, to keep its example true, its expected output."""
    arch = project / "architecture.yaml"
    text = arch.read_text()
    offset = 0.5 + (step + 1) / 100
    logic, example = f"value * 1 + {offset}\n", f"score: {2.0 + offset}\n"
    changed = text.replace("value * 1 + 0.5\n", logic).replace("score: 2.5\n", example)
    if logic not in changed or example not in changed:
        raise SystemExit("the synthetic blueprint no longer has the expected trans_0")
    arch.write_text(changed)


def measure(n: int, repeats: int) -> dict:
    figures: dict = {"full_n1_s": [], "full_n2_s": [], "one_change_s": []}
    tiers: dict[str, list[float]] = {"lint": [], "test": [], "bench": []}
    ran: list[str] = []
    for r in range(repeats):
        for jobs in ("1", "2"):
            with tempfile.TemporaryDirectory() as tmp:
                project = Path(tmp)
                write_synthetic(project, n)
                seconds, _ = timed_build(project, "-n", jobs)
                figures[f"full_n{jobs}_s"].append(seconds)
                if jobs == "1":
                    change_one(project, r)
                    seconds, ran = timed_build(project)
                    figures["one_change_s"].append(seconds)
                    for tier in tiers:
                        timed_build(project, "forget", tier)
                        seconds, _ = timed_build(project, tier)
                        tiers[tier].append(seconds / n)
    result = {key: round(statistics.median(values), 3) for key, values in figures.items()}
    result["one_change_tasks"] = ran
    result["per_component_s"] = {tier: round(statistics.median(v), 4) for tier, v in tiers.items()}
    result["speedup_n2"] = round(result["full_n1_s"] / result["full_n2_s"], 2)
    return result


def noop_all_tasks(n: int, repeats: int = 5) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        write_synthetic(project, n)
        full, ran = timed_build(project, "-n", "2")
        runs = [timed_build(project) for _ in range(repeats)]
    return {
        "components": n,
        "full_n2_s": round(full, 1),
        "tasks": len(ran),
        "noop_s_median": round(statistics.median(s for s, _ in runs), 3),
        "noop_tasks_executed": max(len(r) for _, r in runs),
    }


def measure_all(n: int, repeats: int) -> dict:
    return noop_all_tasks(n) if n >= 500 else measure(n, repeats)


if __name__ == "__main__":
    main(__doc__, measure_all, sizes=[10, 100, 500], repeats=3, out="validate.json")
