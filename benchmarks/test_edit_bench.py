"""One component test task's edit build, an older Autocoder against this tree, alternating
edit by edit (issue 13: an edit costs at most 4x the no-op; a clean-up of the test tier's
batching, validate/batch.py and validate/siblings.py, must not cost an edit anything).

A synthetic project of --components components is built once with this tree (the scope tasks
of full_build_bench), copied once per tree, and every test task run once on each copy
untimed (the validation fingerprint differs between the trees: every test task re-runs).
Then --edits times, the trees taking turns (which goes first alternates): one component's
module touched (a comment appended) and `autocoder build` of its test task alone, as an edit
runs it (a task with no pending sibling runs alone). Per edit: wall seconds, CPU seconds of
the build and everything it started, the test task's seconds (doit's JSON report).
test_batch_bench.py has one such edit a round, after a whole test tier's run; this one has
many, for a steadier median of a cost of a few milliseconds.

Usage: python benchmarks/test_edit_bench.py [--old COMMIT] [--components 100] [--edits 8]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path

from common import stop_background, write_comparison
from test_batch_bench import _run, built_project


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--old", default="60f27c7", help="the commit to compare with")
    parser.add_argument("--components", type=int, default=100)
    parser.add_argument("--edits", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "test_edit.json")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    loads = [round(os.getloadavg()[0], 1)]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        tree, built, components = built_project(workdir, args.old, args.components)
        edited = components[len(components) // 2]
        trees = (("old", tree), ("new", None))
        for name, which in trees:
            shutil.copytree(built, workdir / name, symlinks=True)
            _run(workdir / name, which, [f"test:{c}" for c in components], 2)  # untimed
            stop_background(workdir / name)
        for index in range(args.edits):
            for name, which in trees if index % 2 == 0 else trees[::-1]:
                module = next((workdir / name / "generated" / "src").glob(f"*/components/{edited}.py"))
                module.write_text(module.read_text() + f"# edit {index}\n")
                runs[name].append(_run(workdir / name, which, [f"test:{edited}"], 1))
                loads.append(round(os.getloadavg()[0], 1))
        for name, _ in trees:
            stop_background(workdir / name)
    wall = {k: statistics.median(r["wall_s"] for r in v) for k, v in runs.items()}
    cpu = {k: statistics.median(r["cpu_s"] for r in v) for k, v in runs.items()}
    summary = {
        "median_wall_s": wall,
        "median_cpu_s": cpu,
        "new_vs_old_wall": round(wall["new"] / wall["old"], 2),
        "new_vs_old_cpu": round(cpu["new"] / cpu["old"], 2),
    }
    write_comparison(args.out, args.old, loads, summary, runs, components=args.components, edits=args.edits)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
