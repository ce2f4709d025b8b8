"""Durability: accepted messages lost when a generated system is killed or stopped part-way.

tests/fixtures/durability (an ingress feeding a transformer rate-limited to 20 messages a
second, then a store keyed by a unique id) runs as a real process. Each run posts --count
events quickly (8 at a time), counts the 202s, waits --after seconds (a backlog of several
seconds of work remains), then either SIGKILLs the process ("kill") or SIGTERMs it with
DRAIN_TIMEOUT_S=1 ("term"); then it reads the inbox left in the database, starts the system
again on the same data, waits until the inbox is empty and stops it cleanly. Per run:
lost = |accepted - stored - dead-lettered| (must be 0), and for "term" whether the log's
`"undrained": N` equals the rows really left in the inbox. On SQLite (a file under DATA_DIR)
and on PostgreSQL (a server started here, a fresh database per run).

The same scenario is tests/test_durability.py's (tests/live.py), once each there.

Usage: python benchmarks/durability_bench.py [--runs 5] [--count 160] [--backends sqlite postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import machine, write_results

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
import live  # noqa: E402 - tests/live.py: the scenario, shared with the tests


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="runs of each kind (kill, term) per backend")
    parser.add_argument("--count", type=int, default=160)
    parser.add_argument(
        "--after", type=float, default=1.0, help="seconds between the last 202 and the signal"
    )
    parser.add_argument(
        "--backends", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"]
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "durability.json")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="durability-bench-"))
    runs: list[dict[str, Any]] = []
    try:
        sources = live.build_variants(workdir / "build", args.backends)
        with live.postgres() if "postgres" in args.backends else contextlib.nullcontext() as pg:
            for backend in args.backends:
                for n in range(args.runs):
                    for how in ("kill", "term"):
                        data = workdir / "runs" / f"{backend}-{how}-{n}"
                        data.mkdir(parents=True)
                        dsn = live.create_database(pg) if backend == "postgres" else None
                        target = live.Target(backend, data / "data", dsn)
                        outcome = live.interrupted(
                            sources[backend], target, how, args.count, data, args.after
                        )
                        outcome.pop("log")
                        if how == "term":
                            outcome["undrained_matches_inbox"] = (
                                outcome["undrained_logged"] == outcome["inbox_after_stop"]
                            )
                        runs.append(outcome)
                        print(
                            f"{backend:8} {how:4} run {n + 1}: accepted {outcome['accepted']}, "
                            f"left at stop {outcome['inbox_after_stop']}, lost {outcome['lost']}",
                            file=sys.stderr,
                        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    summary = {
        f"{backend}/{how}": {
            "runs": len(mine),
            "accepted": sum(r["accepted"] for r in mine),
            "left_in_inbox_at_stop": [r["inbox_after_stop"] for r in mine],
            "lost_per_run": [r["lost"] for r in mine],
            "lost_total": sum(r["lost"] for r in mine),
            **(
                {"undrained_matches_inbox": all(r["undrained_matches_inbox"] for r in mine)}
                if how == "term"
                else {}
            ),
        }
        for backend in args.backends
        for how in ("kill", "term")
        if (mine := [r for r in runs if r["backend"] == backend and r["how"] == how])
    }
    write_results(
        args.out,
        {"machine": machine(), "count": args.count, "after_s": args.after, "summary": summary, "runs": runs},
    )
    print(f"\n{'backend/how':15} {'runs':>5} {'accepted':>9} {'lost per run':>20} {'undrained = inbox':>18}")
    for name, row in summary.items():
        lost = ",".join(str(x) for x in row["lost_per_run"])
        match = str(row.get("undrained_matches_inbox", "-"))
        print(f"{name:15} {row['runs']:5} {row['accepted']:9} {lost:>20} {match:>18}")
    if any(row["lost_total"] for row in summary.values()):
        raise SystemExit("messages were lost")


if __name__ == "__main__":
    main()
