"""Where one component edit's time goes: per-task seconds from doit's JSON reporter.

In an already built synthetic project (autocoder/synthetic.py; build it first with `doit -n 2`),
trans_0's expression is rewritten to an equal one (a different one each run, cycling), `doit`
runs once with `--reporter json`, and the tasks it executed are written with their seconds,
plus the wall time and the load average.

With --runs N, N edits in a row, each its own build, the first --warmup of them reported but
left out of the summary (after a change of Autocoder's files the first edit runs `check` in
process and starts the project's warm worker): per run its figures, and the median and range
of `check` + `ir` and of the wall over the others.

Usage: python benchmarks/edit_profile.py PROJECT [--runs 1] [--warmup 0] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import machine, write_results

EQUAL = ("value * 1 + 0.5", "0.5 + value * 1", "value + 0.5", "0.5 + value", "1 * value + 0.5")
EXPRESSION = re.compile(r"(?m)^(\s+score: )(.+)$")  # trans_0's is the first `score:` with a value


def edit(arch: Path) -> tuple[str, str]:
    text = arch.read_text()
    match = next(m for m in EXPRESSION.finditer(text) if "value" in m.group(2))
    old = match.group(2).strip()
    new = EQUAL[(EQUAL.index(old) + 1) % len(EQUAL)] if old in EQUAL else EQUAL[0]
    arch.write_text(text[: match.start(2)] + new + text[match.end(2) :])
    return old, new


def profile(project: Path) -> dict:
    load_start = os.getloadavg()[0]
    old, new = edit(project / "architecture.yaml")
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "doit", "--reporter", "json"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SQLITE_SYNCHRONOUS": "NORMAL"},
    )
    wall = time.perf_counter() - start
    report = json.loads(run.stdout[run.stdout.index("{") :])
    tasks = {
        t["name"]: round(t["elapsed"], 3)
        for t in report["tasks"]
        if t.get("result") == "success" and t.get("elapsed") is not None and t["elapsed"] > 0.001
    }
    return {
        "project": project.name,
        "edit": [old, new],
        "exit_code": run.returncode,
        "wall_s": round(wall, 3),
        "load_average_1m": [round(load_start, 1), round(os.getloadavg()[0], 1)],
        "python_dont_write_bytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
        "tasks_s": tasks,
    }


def summary(runs: list[dict]) -> dict:
    """Median and range of `check` + `ir` and of the wall over `runs`."""
    check_ir = [r["tasks_s"].get("check", 0) + r["tasks_s"].get("ir", 0) for r in runs]
    walls = [r["wall_s"] for r in runs]
    return {
        "check_plus_ir_s": {
            "median": round(statistics.median(check_ir), 3),
            "min": round(min(check_ir), 3),
            "max": round(max(check_ir), 3),
        },
        "wall_s": {"median": round(statistics.median(walls), 3), "min": min(walls), "max": max(walls)},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("project", type=Path)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "edit_profile.json")
    args = parser.parse_args()
    runs = [profile(args.project.resolve()) for _ in range(args.runs)]
    if args.runs == 1:
        result = {"machine": machine(), **runs[0]}
    else:
        result = {"machine": machine(), "runs": runs, "warmup": args.warmup, **summary(runs[args.warmup :])}
    write_results(args.out, result)  # and prints it
