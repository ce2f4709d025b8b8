"""A one-component edit with per-path integration tests (this tree) against the one
whole-system integration test of an older commit, side by side in one run.

For each size, the same synthetic blueprint (autocoder/synthetic.py) in two projects, each
fully built (`doit -n 2`) by its own generator: `--old COMMIT` (common.old_tree) and this
tree. Then, alternating, --repeats rounds of the same one-component edit (trans_0's expression
rewritten to an equal one, undone the next round) in the old project, then in the new one,
each a `doit --continue` run with doit's JSON reporter (bench tasks that a loaded machine
fails re-run in every build, on both sides alike; a failed test task stops the benchmark),
measuring:
- the wall seconds of the build and the tasks it executed;
- the integration part: the old commit's `test:integration`, or this tree's `test:path.*`
  tasks plus `test:integration` if it ran (the shared server's start is inside the first path
  test; its stop is in the teardown, counted in the wall seconds).
The figures to quote are the ratios new/old of the medians (the machine's load moves seconds).

Usage: python benchmarks/paths_bench.py --old COMMIT [--sizes 100 500] [--repeats 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, old_tree, write_results

from autocoder.cli import DODO_TEXT
from autocoder.synthetic import write_synthetic

EDIT = ("value * 1 + 0.5", "0.5 + value * 1")  # trans_0's expression, and an equal one


def doit(project: Path, tree: Path | None, *args: str) -> tuple[float, list[dict]]:
    """Wall seconds of `python -m doit ARGS` in `project` (autocoder from `tree` when given),
    and the tasks it executed (doit's JSON reporter: name, elapsed)."""
    env = {**os.environ, "AUTOCODER_CACHE": "off"}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "doit", "--reporter", "json", "--continue", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    try:
        tasks = json.loads(run.stdout)["tasks"]
    except ValueError:
        raise SystemExit(
            f"doit {args} failed in {project}:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}"
        ) from None
    failed = [t["name"] for t in tasks if t["result"] == "fail"]
    if run.returncode not in (0, 1, 2) or [t for t in failed if t.startswith("test:")]:
        raise SystemExit(f"doit {args} failed in {project}: {failed}\n{run.stderr[-2000:]}")
    # a loaded machine fails bench tasks (p95 over budget; doit says 1, or 2 when `report`, which
    # needs them, is skipped): they re-run, on both sides alike
    return elapsed, [t for t in tasks if t["result"] in ("success", "fail") and t["elapsed"] is not None]


def integration_s(tasks: list[dict]) -> float:
    return sum(
        t["elapsed"] for t in tasks if t["name"] == "test:integration" or t["name"].startswith("test:path.")
    )


def measure(n: int, repeats: int, old: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        projects = {"old": Path(tmp, "old"), "new": Path(tmp, "new")}
        trees = {"old": old, "new": None}
        full = {}
        for side, project in projects.items():
            project.mkdir()
            write_synthetic(project, n)
            (project / "dodo.py").write_text(DODO_TEXT)
            full[side] = round(doit(project, trees[side], "-n", "2")[0], 1)
        original = (projects["new"] / "architecture.yaml").read_text()
        wall: dict[str, list[float]] = {"old": [], "new": []}
        part: dict[str, list[float]] = {"old": [], "new": []}
        ran: dict[str, list[str]] = {}
        for r in range(repeats):
            changed = original if r % 2 else original.replace(*EDIT)
            for side, project in projects.items():
                (project / "architecture.yaml").write_text(changed)
                seconds, tasks = doit(project, trees[side])
                wall[side].append(seconds)
                part[side].append(integration_s(tasks))
                ran[side] = sorted(t["name"] for t in tasks)
        medians = {
            side: {
                "full_build_s": full[side],
                "one_edit_s_median": round(statistics.median(wall[side]), 3),
                "integration_s_median": round(statistics.median(part[side]), 3),
                "one_edit_tasks": ran[side],
            }
            for side in projects
        }
        return {
            **medians,
            "edit_new_vs_old": round(
                medians["new"]["one_edit_s_median"] / medians["old"]["one_edit_s_median"], 2
            ),
            "integration_new_vs_old": round(
                medians["new"]["integration_s_median"] / medians["old"]["integration_s_median"], 2
            ),
        }


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--old", required=True, help="the commit to compare with (before per-path tests)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "paths.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        tree = old_tree(Path(work), args.old)
        results = {
            "machine": machine(),
            "old": args.old,
            "repeats": args.repeats,
            "sizes": {str(n): measure(n, args.repeats, tree) for n in args.sizes},
            "note": "ratios are the figures to compare; seconds depend on the machine's load",
        }
    write_results(args.out, results)


if __name__ == "__main__":
    cli()
