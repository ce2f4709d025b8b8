"""Where a lint:<c> and a bench:<c> task of a build from scratch spend their time (issue 13, item 4).

Runs in one process, as a doit worker of `doit -n 2` does: the first lint and bench task pay
the imports, the next ones only their own work. For COUNT components of a built project it
times each phase of run_lint (IR slice, ruff check, ruff format, bandit, AST policy, writing
the reports) and of run_bench (slice, the parent's preparation, the forked child: import of
the component, warm-up, measured messages), and writes the medians of the steady-state tasks
and the first task's cost to benchmarks/results/benchlint-profile.json.

    python benchmarks/benchlint_profile.py PROJECT [--count 12] [--out FILE]

PROJECT: a project built with `autocoder build` (its generated/ present).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _timed(times: dict[str, float], key: str, function: Any, *args: Any) -> Any:
    start = time.perf_counter()
    result = function(*args)
    times[key] = times.get(key, 0.0) + time.perf_counter() - start
    return result


def lint_phases(directory: Path, name: str) -> dict[str, float]:
    """run_lint's steps, each timed (the same calls, in the same order)."""
    from autocoder.codegen.paths import module_path, test_path
    from autocoder.ir.models import load_slice
    from autocoder.layout import GENERATED
    from autocoder.tasks.gen_tasks import SRC
    from autocoder.validate import lint

    times: dict[str, float] = {}
    start = time.perf_counter()
    slice_ = _timed(times, "load_slice", load_slice, directory / GENERATED / "ir" / f"{name}.json")
    src = directory / SRC
    files = [module_path(slice_.system, name), test_path(name)]
    _timed(times, "ruff_check_and_format", lint.ruff_findings, src, files)
    _timed(times, "bandit", lint.bandit_findings, src, files)
    _timed(times, "ast_policy", lint.policy_findings, src, *files, slice_.security_policy)
    times["task_total_phases"] = time.perf_counter() - start
    return times


def ruff_split(directory: Path, name: str) -> dict[str, float]:
    """ruff check and ruff format alone (each a process start of the native binary)."""
    import subprocess

    from autocoder.codegen.paths import module_path, test_path
    from autocoder.tasks.gen_tasks import SRC
    from autocoder.tools import ruff_binary

    src = directory / SRC
    system = json.loads((directory / "generated" / "ir" / f"{name}.json").read_text())["system"]
    files = [module_path(system, name), test_path(name)]
    config = ["--config", str(src / "pyproject.toml")]
    out = {}
    for key, argv in (
        ("ruff_check", [ruff_binary(), "check", "--no-cache", "--output-format", "json", "--exit-zero"]),
        ("ruff_format", [ruff_binary(), "format", "--no-cache", "--check"]),
        ("ruff_version_only", [ruff_binary(), "--version"]),
    ):
        start = time.perf_counter()
        subprocess.run(
            [
                *argv,
                *(config if key != "ruff_version_only" else []),
                *(files if key != "ruff_version_only" else []),
            ],
            cwd=src,
            capture_output=True,
            check=False,
        )  # noqa: S603
        out[key] = time.perf_counter() - start
    return out


def bench_phases(directory: Path, name: str) -> dict[str, Any]:
    """run_bench's total, and inside the child the share of the measured messages."""
    from autocoder.tasks.validate_tasks import run_bench

    start = time.perf_counter()
    failure = run_bench(directory, name)
    total = time.perf_counter() - start
    result = json.loads((directory / "generated" / "reports" / "bench" / f"{name}.json").read_text())
    return {
        "task_total": total,
        "failed": failure is not None,
        "iterations": result["iterations"],
        "warmup": result["warmup"],
        "kind": result["kind"],
        "measured_s_at_wall_p50": (result["iterations"] + result["warmup"]) * result["wall_p50_ms"] / 1000,
    }


def batch_of_8(directory: Path, names: list[str]) -> dict[str, Any]:
    """ruff+bandit and the bench of these components: one run each against one run over all
    (validate/siblings.py's batches), median of 3 alternating rounds."""
    from autocoder.codegen.paths import module_path, test_path
    from autocoder.codegen.strategies import simplest_message
    from autocoder.ir.models import load_slice
    from autocoder.tasks.gen_tasks import SAMPLES, SRC
    from autocoder.validate.bench import bench_batch, bench_isolated
    from autocoder.validate.inprocess import scratch_directory
    from autocoder.validate.lint import tool_findings, tool_findings_split

    src = directory / SRC
    slices = [load_slice(directory / "generated" / "ir" / f"{n}.json") for n in names]
    files = {n: [module_path(s.system, n), test_path(n)] for n, s in zip(names, slices, strict=True)}
    simplest = functools.partial(simplest_message, cache=directory / SAMPLES)
    rows: dict[str, list[float]] = {"lint_each": [], "lint_batch": [], "bench_each": [], "bench_batch": []}
    for _ in range(3):
        start = time.perf_counter()
        for n in names:
            tool_findings(src, files[n])
        rows["lint_each"].append(time.perf_counter() - start)
        start = time.perf_counter()
        tool_findings_split(src, files)
        rows["lint_batch"].append(time.perf_counter() - start)
        with scratch_directory("benchlint-profile-") as scratch:
            start = time.perf_counter()
            for s in slices:
                bench_isolated(src, s, scratch / s.component.name, simplest)
            rows["bench_each"].append(time.perf_counter() - start)
            start = time.perf_counter()
            bench_batch(src, slices, scratch / "batch", simplest)
            rows["bench_batch"].append(time.perf_counter() - start)
    medians = {k: round(statistics.median(v), 4) for k, v in rows.items()}
    return {
        "components": names,
        "seconds_median_of_3": medians,
        "lint_batch_over_each": round(medians["lint_batch"] / medians["lint_each"], 3),
        "bench_batch_over_each": round(medians["bench_batch"] / medians["bench_each"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("project", type=Path)
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/benchlint-profile.json"))
    args = parser.parse_args()
    out = args.out.resolve()
    directory = args.project.resolve()
    os.chdir(directory)
    names = sorted(
        p.stem
        for p in (directory / "generated" / "ir").glob("*.json")
        if p.stem not in ("ir.v1", "ir.deploy")
    )
    names = [n for n in names if (directory / "generated" / "reports" / "lint" / f"{n}.json").exists()]
    picked = names[: args.count]
    from autocoder.tasks.validate_tasks import run_lint

    start = time.perf_counter()
    run_lint(directory, picked[0])
    first_lint = time.perf_counter() - start
    lint_steady = []
    for name in picked[1:]:
        start = time.perf_counter()
        run_lint(directory, name)
        lint_steady.append(time.perf_counter() - start)
    phases = [lint_phases(directory, n) for n in picked[1:]]
    ruff = [ruff_split(directory, n) for n in picked[1:]]
    first = bench_phases(directory, picked[0])
    bench = [bench_phases(directory, n) for n in picked[1:]]

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return round(statistics.median(r[key] for r in rows), 4)

    report = {
        "project": directory.name,
        "components_profiled": picked,
        "load_average": os.getloadavg(),
        "lint": {
            "first_task_s": round(first_lint, 4),
            "steady_task_s_median": round(statistics.median(lint_steady), 4),
            "phases_s_median": {k: med(phases, k) for k in phases[0]},
            "ruff_processes_s_median": {k: med(ruff, k) for k in ruff[0]},
        },
        "bench": {
            "first_task_s": round(first["task_total"], 4),
            "steady_task_s_median": med(bench, "task_total"),
            "per_kind": {
                kind: {
                    "task_s_median": med([b for b in bench if b["kind"] == kind], "task_total"),
                    "messages_median": med([b for b in bench if b["kind"] == kind], "iterations"),
                    "warmup": med([b for b in bench if b["kind"] == kind], "warmup"),
                    "timed_messages_s_median": med(
                        [b for b in bench if b["kind"] == kind], "measured_s_at_wall_p50"
                    ),
                }
                for kind in sorted({b["kind"] for b in bench})
            },
        },
    }
    report["batch_of_8"] = batch_of_8(directory, picked[1:9])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
