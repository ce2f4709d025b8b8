"""One-component edits at scale, two Autocoder versions side by side (A/B, alternating).

Each version builds its own copy of the same built synthetic project (doit's state and the
stage fingerprints depend on Autocoder's code, so one project cannot serve both): A runs with
`--a-src` first on PYTHONPATH (e.g. `git archive <commit>` unpacked, with templates/, rules/
and schemas/ moved into autocoder/ as in a wheel: the code before a change), B with `--b-src`
likewise or the installed Autocoder. Round by round, in alternating order, each version runs a
no-op `doit` and then a one-component edit (trans_0's expression rewritten to an equal one whose
text no earlier round wrote, so the run-cache, in a fresh directory per version, never answers
it). Each build is measured as wall seconds and CPU seconds (user + system of the doit process
and its children, from getrusage), with the 1-minute load average before every round.

Bring both copies up to date with their version's code first (`doit -n 2` in each, with the
same environment as here: SQLITE_SYNCHRONOUS=NORMAL, bytecode caching on, the cache directory
this script uses), or pass --catch-up to let the script do it.

Usage: python benchmarks/edit_overhead_bench.py --a PROJECT_A --a-src DIR --b PROJECT_B
       [--b-src DIR] [--rounds 5] [--catch-up] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import machine, write_results

EXPRESSION = re.compile(r"(?m)^(\s+score: )(.+)$")  # trans_0's is the first `score:` with a value


def edit(arch: Path, n: int) -> str:
    """trans_0's expression, rewritten to one equal to it for every input, with `n` in its text."""
    text = arch.read_text()
    match = next(m for m in EXPRESSION.finditer(text) if "value" in m.group(2))
    new = f"value * 1 + 0.5 + 0 * {n}"
    arch.write_text(text[: match.start(2)] + new + text[match.end(2) :])
    return new


def environment(src: Path | None, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    env |= {"SQLITE_SYNCHRONOUS": "NORMAL", "AUTOCODER_CACHE_DIR": str(cache)}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return env


def doit(project: Path, env: dict[str, str], *args: str) -> dict[str, float | int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "doit", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode != 0:
        raise SystemExit(f"doit {args} failed in {project}:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}")
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 3),
        "tasks": sum(1 for line in run.stdout.splitlines() if line.startswith(".  ")),
    }


def median(runs: list[dict[str, float | int]], key: str) -> float:
    return round(statistics.median(float(r[key]) for r in runs), 3)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--a", type=Path, required=True, help="built project copy for version A")
    parser.add_argument("--a-src", type=Path, required=True, help="version A's source tree (has autocoder/)")
    parser.add_argument("--b", type=Path, required=True, help="built project copy for version B")
    parser.add_argument(
        "--b-src", type=Path, help="version B's source tree (default: the installed Autocoder)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--catch-up", action="store_true", help="`doit -n 2` in both copies first")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "editoverhead-500.json"
    )
    args = parser.parse_args()
    versions = {
        "A": (args.a.resolve(), environment(args.a_src.resolve(), args.a.resolve().parent / "cache-A")),
        "B": (
            args.b.resolve(),
            environment(args.b_src.resolve() if args.b_src else None, args.b.resolve().parent / "cache-B"),
        ),
    }
    if args.catch_up:
        for project, env in versions.values():
            subprocess.run(
                [sys.executable, "-m", "doit", "-n", "2", "--continue"], cwd=project, env=env, check=False
            )
    for project, env in versions.values():
        doit(project, env)  # the rounds start from a no-op
    runs: dict[str, dict[str, list[dict[str, float | int]]]] = {v: {"noop": [], "edit": []} for v in versions}
    loads = []
    seed = time.time_ns() % 10**9
    for r in range(args.rounds):
        loads.append(round(os.getloadavg()[0], 1))
        for name in ("A", "B") if r % 2 == 0 else ("B", "A"):
            project, env = versions[name]
            runs[name]["noop"].append(doit(project, env))
            edit(project / "architecture.yaml", seed + r)
            runs[name]["edit"].append(doit(project, env))
    loads.append(round(os.getloadavg()[0], 1))
    summary = {}
    for name, kinds in runs.items():
        wall = {kind: median(r, "wall_s") for kind, r in kinds.items()}
        cpu = {kind: median(r, "cpu_s") for kind, r in kinds.items()}
        summary[name] = {
            "wall_s_median": wall,
            "cpu_s_median": cpu,
            "edit_vs_noop_wall": round(wall["edit"] / wall["noop"], 2),
            "edit_vs_noop_cpu": round(cpu["edit"] / cpu["noop"], 2),
            "tasks_executed": {kind: sorted({int(x["tasks"]) for x in r}) for kind, r in kinds.items()},
        }
    write_results(
        args.out,
        {
            "machine": machine(),
            "a_src": str(args.a_src),
            "b_src": str(args.b_src or "installed"),
            "rounds": args.rounds,
            "load_average_1m": {"min": min(loads), "max": max(loads), "per_round": loads},
            "summary": summary,
            "b_vs_a": {
                kind: {
                    "wall": round(
                        summary["B"]["wall_s_median"][kind] / summary["A"]["wall_s_median"][kind], 2
                    ),
                    "cpu": round(summary["B"]["cpu_s_median"][kind] / summary["A"]["cpu_s_median"][kind], 2),
                }
                for kind in ("noop", "edit")
            },
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
