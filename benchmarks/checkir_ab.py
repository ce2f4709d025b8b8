"""`check` + `ir` task seconds in a one-component edit: an older commit (A) against this tree (B).

Two already built copies of a synthetic project (one built with each code; benchmarks/
edit_profile.py says how an edit is made) are edited in turn, A then B, for --rounds rounds
(round 0 of each only warms its worker up and is not counted); A's `doit` imports Autocoder
from the older commit's files (`git archive`, first on PYTHONPATH). Writes each run's figures,
the medians, their ratio and the load average.

Usage: python benchmarks/checkir_ab.py --old COMMIT --a PROJECT_A --b PROJECT_B [--rounds 4] [--out F]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

from common import machine, write_results
from common import medians as median_of
from edit_profile import profile

REPO = Path(__file__).resolve().parent.parent


def old_tree(commit: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit, "autocoder"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run(project: Path, pythonpath: str | None) -> dict:
    saved = os.environ.get("PYTHONPATH")
    if pythonpath is not None:
        os.environ["PYTHONPATH"] = pythonpath
    try:
        figures = profile(project)
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    tasks = figures["tasks_s"]
    check, ir = tasks.get("check", 0.0), tasks.get("ir", 0.0)
    return {
        "check_s": check,
        "ir_s": ir,
        "check_ir_s": round(check + ir, 3),
        "wall_s": figures["wall_s"],
        "load_average_1m": figures["load_average_1m"],
        "exit_code": figures["exit_code"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--old", required=True)
    parser.add_argument("--a", type=Path, required=True)
    parser.add_argument("--b", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "checkir.json")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"A": [], "B": []}
    with tempfile.TemporaryDirectory() as folder:
        old = str(old_tree(args.old, Path(folder)))
        for round_ in range(args.rounds):
            for name, project, path in (("A", args.a, old), ("B", args.b, None)):
                figures = run(project.resolve(), path)
                if round_:
                    runs[name].append(figures)
    medians = median_of(runs, ("check_s", "ir_s", "check_ir_s", "wall_s"))
    write_results(
        args.out,
        {
            "machine": machine(),
            "old": args.old,
            "A": "old commit",
            "B": "this tree",
            "runs": runs,
            "median": medians,
            "check_ir_ratio_b_over_a": round(medians["B"]["check_ir_s"] / medians["A"]["check_ir_s"], 3),
        },
    )


if __name__ == "__main__":
    main()
