"""The path-test tier of a build from scratch, an older Autocoder against this tree, alternating
(issue 13, item 4: 100 components from scratch under 15 s with -n 2).

For each round and each tree (this one, and --old, extracted by common.old_tree with its own
runtime): a fresh synthetic blueprint of --components components, `autocoder build -n 2
--continue --reporter json` of the tasks issue 13's target counts (check ir gen lint typecheck
test bench policy report) with the run-cache off, and from doit's JSON report: the sum of the
`test:path.*` tasks' seconds (what the path tier costs the build's two workers), the slowest
one (the first: it waits for the shared server's start), how many there were, the smoke test
`test:integration`'s seconds, and the build's wall and CPU seconds (every process it started,
the servers too). The trees take turns, so a busy machine slows both alike: compare ratios.
The load average is recorded with each build.

Usage: python benchmarks/path_scratch_bench.py [--old COMMIT] [--components 100] [--rounds 3]
       [--out F]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import machine, old_tree, reported_build, tree_env, write_results
from common import medians as median_of
from full_build_bench import SCOPE

from autocoder.synthetic import write_synthetic

KEYS = ("path_sum_s", "path_max_s", "path_sum_but_max_s", "integration_s", "wall_s", "cpu_s")


def build(tree: Path | None, components: int, workdir: Path) -> dict[str, Any]:
    """One build from scratch with `tree`'s autocoder (None: this one): its path tier's figures."""
    project = Path(tempfile.mkdtemp(dir=workdir))
    write_synthetic(project, components)
    command = ["-n", "2", "--continue", *SCOPE]
    report, wall, cpu = reported_build(project, tree_env(tree), command)  # run-cache off
    done = [t for t in report["tasks"] if t.get("elapsed") is not None]
    paths = [t["elapsed"] for t in done if t["name"].startswith("test:path.")]
    integration = [t["elapsed"] for t in done if t["name"] == "test:integration"]
    failed = sorted(t["name"] for t in report["tasks"] if t["result"] == "fail")
    return {
        "path_tasks": len(paths),
        "path_sum_s": round(sum(paths), 3),
        "path_max_s": round(max(paths, default=0.0), 3),
        "path_sum_but_max_s": round(sum(paths) - max(paths, default=0.0), 3),
        "path_failed": [name for name in failed if name.startswith("test:path.")],
        "failed_tasks": len(failed),  # a bench over budget on a busy machine fails; it still ran
        "integration_s": round(sum(integration), 3),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 1),
        "load_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--old", default="02e648d")
    parser.add_argument("--components", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "path_scratch-100.json"
    )
    args = parser.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
    loads = [round(os.getloadavg()[0], 2)]
    with tempfile.TemporaryDirectory(prefix="path-scratch-") as work:
        trees = {"old": old_tree(Path(work), args.old), "new": None}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                runs[name].append(build(tree, args.components, Path(work)))
                print(name, runs[name][-1], file=sys.stderr, flush=True)
    loads.append(round(os.getloadavg()[0], 2))
    medians = median_of(runs, KEYS, 3)
    write_results(
        args.out,
        {
            "components": args.components,
            "old": args.old,
            "rounds": args.rounds,
            "load_average_1m": loads,
            "machine": machine(),
            "runs": runs,
            "medians": medians,
            "ratio_new_over_old": {
                key: round(medians["new"][key] / medians["old"][key], 3) if medians["old"][key] else None
                for key in KEYS
            },
        },
    )


if __name__ == "__main__":
    main()
