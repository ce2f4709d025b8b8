"""The component test tasks of a build, an older Autocoder against this tree, alternating
(issue 13, full builds: batching the test tier, validate/batch.py).

A synthetic project of --components components is built once with this tree (the scope tasks
of full_build_bench). Then, round after round and tree after tree, on a fresh copy of it:
- `all`: every component's test result and JUnit file deleted, and `autocoder build -n 2
  test:<c>...` for every component (what a build from scratch runs of the test tier);
- `edit`: one component's module touched (a comment appended), and `autocoder build` of its
  test task alone (what an edit runs: with batching, a task with no pending sibling runs alone),
  --edits times in a row (more of them: a steadier median of an edit's cost of a few ms).
Per run: wall seconds, CPU seconds of the build and everything it started, the sum of the test
tasks' seconds (doit's JSON report) and how many tasks failed (none should). The validation
fingerprint differs between the trees, which re-runs every test task in both alike.

Usage: python benchmarks/test_batch_bench.py [--old COMMIT] [--components 100] [--rounds 2] [--edits 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path

from common import json_build, old_tree, stop_background, write_comparison
from full_build_bench import SCOPE, build


def _run(project: Path, tree: Path | None, tasks: list[str], jobs: int) -> dict:
    wall, cpu, report = json_build(project, tree, tasks, jobs)
    tests = [t for t in report["tasks"] if t["name"].startswith("test:") and t.get("elapsed") is not None]
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "test_tasks_run": len(tests),
        "sum_test_task_s": round(sum(t["elapsed"] for t in tests), 2),
        "failed_tasks": sorted(t["name"] for t in report["tasks"] if t["result"] == "fail"),
    }


def built_project(workdir: Path, old: str, components: int) -> tuple[Path, Path, list[str]]:
    """The `old` tree (common.old_tree), a synthetic project of `components` components built
    with this tree (the scope tasks) in `workdir`, and its components in their order."""
    tree = old_tree(workdir, old)
    build(None, components, workdir, SCOPE)
    built = next(p for p in workdir.iterdir() if p.is_dir() and p.name.startswith("tmp"))
    names = sorted(p.stem for p in (built / "generated" / "reports" / "test").glob("*.json"))
    return tree, built, [c for c in names if c != "integration" and not c.startswith("path.")]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--old", default="1d47efd", help="the commit to compare with")
    parser.add_argument("--components", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--edits", type=int, default=1, help="edits a round, after the whole tier's run")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "test_batch.json")
    args = parser.parse_args()
    runs: dict[str, dict[str, list[dict]]] = {mode: {"old": [], "new": []} for mode in ("all", "edit")}
    loads = [round(os.getloadavg()[0], 1)]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        tree, built, components = built_project(workdir, args.old, args.components)
        edited = components[len(components) // 2]
        for index in range(args.rounds):
            pairs = (("old", tree), ("new", None))
            for name, which in pairs if index % 2 == 0 else pairs[::-1]:
                project = workdir / f"{name}-{index}"
                shutil.copytree(built, project, symlinks=True)
                for folder in ("test", "junit"):
                    shutil.rmtree(project / "generated" / "reports" / folder)
                runs["all"][name].append(_run(project, which, [f"test:{c}" for c in components], 2))
                loads.append(round(os.getloadavg()[0], 1))
                module = next((project / "generated" / "src").glob(f"*/components/{edited}.py"))
                for edit in range(args.edits):
                    module.write_text(module.read_text() + f"# edit {edit}\n")
                    runs["edit"][name].append(_run(project, which, [f"test:{edited}"], 1))
                    loads.append(round(os.getloadavg()[0], 1))
                stop_background(project)  # its warm worker: not to idle beside the next builds
                shutil.rmtree(project)
    summary = {}
    for mode, pair in runs.items():
        wall = {k: statistics.median(r["wall_s"] for r in v) for k, v in pair.items()}
        cpu = {k: statistics.median(r["cpu_s"] for r in v) for k, v in pair.items()}
        summary[mode] = {
            "median_wall_s": wall,
            "median_cpu_s": cpu,
            "new_vs_old_wall": round(wall["new"] / wall["old"], 2),
            "new_vs_old_cpu": round(cpu["new"] / cpu["old"], 2),
        }
    write_comparison(
        args.out, args.old, loads, summary, runs, components=args.components, jobs=2, edits=args.edits
    )
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
