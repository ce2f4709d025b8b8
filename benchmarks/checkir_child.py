"""The warm worker's `check` child after a one-component edit: an older commit (A) against this
tree (B), in CPU seconds as well as wall seconds (on a loaded machine the wall clock mostly
counts the other processes' turns; CPU seconds count the child's own work).

Each variant runs in a fresh interpreter (A's with the older commit's `autocoder` first on
PYTHONPATH, `git archive`) which does what the warm worker does before it serves
(warm_compile.warm_up, then gc.freeze), then, per edit (benchmarks/edit_profile.py's), forks a
child that runs warm_compile.check_child, as the worker's children do. A and B alternate for
--rounds rounds; each project is a built copy of its own.

Usage: python benchmarks/checkir_child.py --old COMMIT --a PROJECT_A --b PROJECT_B [--rounds 3]
       [--edits 4] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from checkir_ab import old_tree
from common import machine, write_results
from common import medians as median_of

HERE = Path(__file__).resolve().parent

CHILD = """
import gc, json, os, sys, time
from pathlib import Path
sys.path.insert(0, {here!r})
from edit_profile import edit
from autocoder.tasks import warm_compile
project = Path({project!r})
warm_compile.warm_up(project)
gc.collect()
gc.freeze()
for _ in range({edits}):
    edit(project / "architecture.yaml")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        wall, cpu = time.perf_counter(), time.process_time()
        outcome, planned = warm_compile.check_child(project, False)
        figures = {{
            "wall_s": round(time.perf_counter() - wall, 4),
            "cpu_s": round(time.process_time() - cpu, 4),
            "passed": outcome.failure is None and planned is not None,
        }}
        os.write(write, json.dumps(figures).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    print(os.read(read, 4096).decode(), flush=True)
"""


def run(project: Path, edits: int, pythonpath: str | None) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    code = CHILD.format(here=str(HERE), project=str(project), edits=edits)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True, check=True
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--old", required=True)
    parser.add_argument("--a", type=Path, required=True)
    parser.add_argument("--b", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--edits", type=int, default=4)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "checkir-child.json")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"A": [], "B": []}
    loads = [round(os.getloadavg()[0], 1)]
    with tempfile.TemporaryDirectory() as folder:
        old = str(old_tree(args.old, Path(folder)))
        for _ in range(args.rounds):
            runs["A"] += run(args.a.resolve(), args.edits, old)
            runs["B"] += run(args.b.resolve(), args.edits, None)
            loads.append(round(os.getloadavg()[0], 1))
    medians = median_of(runs, ("cpu_s", "wall_s"))
    write_results(
        args.out,
        {
            "machine": machine(),
            "old": args.old,
            "A": "old commit",
            "B": "this tree",
            "load_average_1m": loads,
            "all_passed": all(r["passed"] for rs in runs.values() for r in rs),
            "median": medians,
            "cpu_ratio_b_over_a": round(medians["B"]["cpu_s"] / medians["A"]["cpu_s"], 3),
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
