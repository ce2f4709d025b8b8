"""`check` + `ir` after a one-component edit: two Autocoder versions side by side, alternating.

Each side is an interpreter with its Autocoder installed and a synthetic project already built
by that version (autocoder/synthetic.py; a version's own fingerprints would otherwise rebuild
the other's project). Each round, on each side in turn: trans_0's expression is rewritten to an
equal one that no earlier round wrote (`value * 1 + 0.5 + 0 * N`, so its examples still pass
and the run-cache, off here anyway, could answer nothing), then `doit --reporter json check ir`
runs in one process, as an edit build does, and the two tasks' seconds are read from doit's
reporter. The environment is the same for every round of a side, so a warm worker started by
one round (tasks/warm_compile.py) has the key of the next; the first --warmup rounds (a worker
starting) are run but not counted.

Reported: per side, the medians of check, ir and check + ir, every round with the load average
before and after it, and the ratio after / before of the check + ir medians. Also, after each
round, the seconds of one `runcache.explain.blueprint_digests` of the project in this process:
the run-cache's wrapper of every task computes it before the task's actions when the task
depends on architecture.yaml (`check` and `ir` both do), so it is part of both tasks' times.

Each side may also set environment variables of its own (--before-env, --after-env
KEY=VALUE): with one Autocoder on both sides, AUTOCODER_COMPILE_MEMO=off on one compares
`check` with and without the per-component compile memo (analysis/memo.py) in one project
(the variable is no part of the warm worker's key: both sides use the same worker).

Usage: python benchmarks/checkwarm_bench.py --before PYTHON PROJECT --after PYTHON PROJECT
       [--before-env KEY=VALUE ...] [--after-env KEY=VALUE ...] [--rounds 5] [--warmup 2]
       [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import time
from pathlib import Path

from common import machine, write_results

from autocoder.runcache.explain import blueprint_digests

EXPRESSION = re.compile(r"(?m)^(\s+score: )(.+)$")  # trans_0's is the first `score:` with a value
ENV = {"AUTOCODER_CACHE": "off", "SQLITE_SYNCHRONOUS": "NORMAL"}


def edit(arch: Path, n: int) -> None:
    text = arch.read_text()
    match = next(m for m in EXPRESSION.finditer(text) if "value" in m.group(2))
    arch.write_text(text[: match.start(2)] + f"value * 1 + 0.5 + 0 * {n}" + text[match.end(2) :])


def one_round(python: str, project: Path, n: int, env: dict[str, str]) -> dict:
    edit(project / "architecture.yaml", n)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    run = subprocess.run(
        [python, "-m", "doit", "--reporter", "json", "check", "ir"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **ENV, **env},
    )
    wall = time.perf_counter() - start
    report = json.loads(run.stdout[run.stdout.index("{") :])
    tasks = {t["name"]: t["elapsed"] for t in report["tasks"] if t.get("result") == "success"}
    if run.returncode != 0 or set(tasks) != {"check", "ir"}:
        raise SystemExit(f"{project}: check and ir did not both run and pass:\n{run.stdout}\n{run.stderr}")
    start = time.perf_counter()
    blueprint_digests(project)
    digests = time.perf_counter() - start
    return {
        "runcache_blueprint_digests_s": round(digests, 3),
        "check_s": round(tasks["check"], 3),
        "ir_s": round(tasks["ir"], 3),
        "check_ir_s": round(tasks["check"] + tasks["ir"], 3),
        "wall_s": round(wall, 3),
        "load_average_1m": [round(load, 1), round(os.getloadavg()[0], 1)],
    }


def medians(rounds: list[dict]) -> dict:
    keys = ("check_s", "ir_s", "check_ir_s", "runcache_blueprint_digests_s")
    return {k: round(statistics.median(r[k] for r in rounds), 3) for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", nargs=2, metavar=("PYTHON", "PROJECT"), required=True)
    parser.add_argument("--after", nargs=2, metavar=("PYTHON", "PROJECT"), required=True)
    parser.add_argument("--before-env", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--after-env", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    default = Path(__file__).parent / "results" / "checkwarm-500.json"
    parser.add_argument("--out", type=Path, default=default)
    args = parser.parse_args()
    sides = {"before": args.before, "after": args.after}
    envs = {
        side: dict(item.split("=", 1) for item in items)
        for side, items in (("before", args.before_env), ("after", args.after_env))
    }
    rounds: dict[str, list[dict]] = {side: [] for side in sides}
    base = int(time.time())  # texts no earlier run of this script wrote either
    for i in range(args.warmup + args.rounds):
        for j, (side, (python, project)) in enumerate(sides.items()):
            # a text of its own per side too: the two sides may share one project
            result = one_round(python, Path(project).resolve(), base * 1000 + i * 10 + j, envs[side])
            if i >= args.warmup:
                rounds[side].append(result)
    summary = {side: medians(r) for side, r in rounds.items()}
    ratio = summary["after"]["check_ir_s"] / summary["before"]["check_ir_s"]
    write_results(
        args.out,
        {
            "machine": machine(),
            "sides": {
                side: {"python": p, "project": Path(d).name, "env": envs[side]}
                for side, (p, d) in sides.items()
            },
            "warmup_rounds": args.warmup,
            "median": summary,
            "after_vs_before_check_ir": round(ratio, 3),
            "rounds": rounds,
        },
    )


if __name__ == "__main__":
    main()
