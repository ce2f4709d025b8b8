"""Two Autocoder versions' one-component edit, alternating, per task (edit_profile.py each round).

Each side is an interpreter with its Autocoder installed and a synthetic project already built
by that version (a version's own fingerprints would otherwise rebuild the other's project).
Rounds alternate before/after so that both see the same machine load; each round has an empty
run-cache of its own (edit_profile cycles through 5 texts: a cache would answer the repeats).
Reported: the medians of the wall time, of the build's CPU seconds and of each task's seconds,
and every round with its load average.

Usage: python benchmarks/edit_ab.py --before PYTHON PROJECT --after PYTHON PROJECT
       [--rounds 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import tempfile
from pathlib import Path

from common import machine, write_results

PROFILE = Path(__file__).parent / "edit_profile.py"


def one_round(python: str, project: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="edit-ab-") as tmp:
        out = Path(tmp) / "profile.json"
        env = {**os.environ, "AUTOCODER_CACHE_DIR": str(Path(tmp) / "cache")}  # nothing restored
        command = [python, str(PROFILE), str(project), "--out", str(out)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(command, check=True, capture_output=True, env=env)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        found = json.loads(out.read_text())
    # the build's own work: doit, its workers and everything they waited for (the edit itself
    # and edit_profile's start are the same small cost on both sides)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {**found, "cpu_s": round(cpu, 3)}


def medians(rounds: list[dict]) -> dict:
    tasks = sorted({name for r in rounds for name in r["tasks_s"]})
    return {
        "wall_s": round(statistics.median(r["wall_s"] for r in rounds), 3),
        "cpu_s": round(statistics.median(r["cpu_s"] for r in rounds), 3),
        "tasks_s": {
            name: round(statistics.median(r["tasks_s"].get(name, 0.0) for r in rounds), 3) for name in tasks
        },
    }


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--before", nargs=2, metavar=("PYTHON", "PROJECT"), required=True)
    parser.add_argument("--after", nargs=2, metavar=("PYTHON", "PROJECT"), required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "edit_ab.json")
    args = parser.parse_args()
    sides = {"before": args.before, "after": args.after}
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    for _ in range(args.rounds):
        for side, (python, project) in sides.items():
            found = one_round(python, Path(project).resolve())
            runs[side].append(found)
            print(side, found["wall_s"], found["cpu_s"], found["load_average_1m"], flush=True)
    result = {
        "machine": machine(),
        "rounds": args.rounds,
        "sides": {side: {"python": py, "project": Path(p).name} for side, (py, p) in sides.items()},
        "median": {side: medians(rounds) for side, rounds in runs.items()},
        "runs": runs,
    }
    write_results(args.out, result)


if __name__ == "__main__":
    main()
