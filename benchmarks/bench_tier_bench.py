"""The bench tier before and after its sequential rule, alternating, on one synthetic system.

The before is validate/bench.py as of --old (2,000 messages after a 200-message warm-up, the best
of 5 rounds' p95 against the limit); the after is this tree's (a sequential test on order
statistics: 200 messages when the case is clear, up to 2,000; a load correction). Both run as
the bench:<c> task runs them: in a child forked from this process, on the same generated
project (`autocoder build DIR gen` of a --components synthetic system). For each component the
two take turns (which goes first alternates), so the machine's load slows both alike: read the
ratio. Records per bench the seconds, the messages timed, the verdict, the p95s, and the load
average before and after.

`--hogs N` runs N busy-loop processes meanwhile: the load under which the tier's verdicts
flapped, to count the failures of components that are well within their budgets.

Usage: python benchmarks/bench_tier_bench.py [--components 100] [--old e7342bf] [--hogs 0]
       [--out benchmarks/results/bench_tier.json]
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import ModuleType

from common import REPO, build_gen, machine, write_results

from autocoder.codegen.strategies import simplest_message
from autocoder.ir.models import load_slice
from autocoder.synthetic import write_synthetic
from autocoder.tasks.gen_tasks import GENERATED, SAMPLES, SRC
from autocoder.validate import bench as new
from autocoder.validate.inprocess import scratch_directory

HOG = "import time\nend = time.monotonic() + 900\nwhile time.monotonic() < end:\n    pass\n"  # ends by itself


def old_bench(commit: str, workdir: Path) -> ModuleType:
    """validate/bench.py at `commit`, imported as a module of its own (it imports only modules
    whose interfaces it shares with this tree)."""
    source = subprocess.run(
        ["git", "show", f"{commit}:autocoder/validate/bench.py"], cwd=REPO, capture_output=True, check=True
    ).stdout
    path = workdir / "bench_old.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("bench_old", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one(module: ModuleType, project: Path, name: str) -> dict:
    """One bench:<name> as its task runs it, with `module`'s rule: seconds and what it found."""
    slice_ = load_slice(project / GENERATED / "ir" / f"{name}.json")
    simplest = functools.partial(simplest_message, cache=project / SAMPLES)
    start = time.perf_counter()
    with scratch_directory(f"autocoder-bench-{name}-") as scratch:
        result = module.bench_isolated(project / SRC, slice_, scratch, simplest)
    return {
        "seconds": round(time.perf_counter() - start, 4),
        "iterations": result["iterations"],
        "ok": result["ok"],
        "p95_ms": result["p95_ms"],
        "wall_p95_ms": result.get("wall_p95_ms", result.get("p95_all_rounds_ms")),
        "decision": result.get("decision", "best round's p95"),
        "limit_ms": result["limit_ms"],
    }


def summary(runs: list[dict]) -> dict:
    return {
        "benches": len(runs),
        "mean_seconds": round(statistics.mean(r["seconds"] for r in runs), 4),
        "median_seconds": round(statistics.median(r["seconds"] for r in runs), 4),
        "sum_seconds": round(sum(r["seconds"] for r in runs), 2),
        "mean_iterations": round(statistics.mean(r["iterations"] for r in runs), 1),
        "failed": sorted(r["component"] for r in runs if not r["ok"]),
        # the flaps under load: a sample p95 of the wall times (all rounds) over the limit
        "wall_p95_over_limit": sorted(r["component"] for r in runs if r["wall_p95_ms"] > r["limit_ms"]),
        "decisions": dict(sorted(Counter(r["decision"] for r in runs).items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--components", type=int, default=100)
    parser.add_argument("--old", default="e7342bf", help="the commit whose bench tier to compare with")
    parser.add_argument(
        "--hogs", type=int, default=0, help="busy-loop processes meanwhile (the load it flapped under)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_tier.json")
    args = parser.parse_args()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    loads = [round(os.getloadavg()[0], 1)]
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        write_synthetic(project, args.components)
        build_gen(project)
        old = old_bench(args.old, Path(tmp))
        names = sorted(p.stem for p in (project / GENERATED / "ir").glob("*.json") if p.stem != "ir.v1")
        sys.path.insert(0, str(project / SRC))
        one(new, project, names[0])  # first imports of the generated package, out of the timing
        runs: dict[str, list[dict]] = {"old": [], "new": []}
        hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(args.hogs)]
        try:
            for i, name in enumerate(names):
                order = [("old", old), ("new", new)] if i % 2 == 0 else [("new", new), ("old", old)]
                for label, module in order:
                    runs[label].append({"component": name, **one(module, project, name)})
            loads.append(round(os.getloadavg()[0], 1))
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
    results = {
        "machine": machine(),
        "components": args.components,
        "old": args.old,
        "new": f"{head.stdout.strip()} (working tree)",
        "hogs": args.hogs,
        "load_average_1m": loads,
        "summary": {label: summary(r) for label, r in runs.items()},
        "new_vs_old_seconds": round(
            sum(r["seconds"] for r in runs["new"]) / sum(r["seconds"] for r in runs["old"]), 3
        ),
        "rule": {k: v for k, v in vars(new).items() if k in ("QUANTILE", "CONFIDENCE", "LOOKS")},
        "runs": runs,
    }
    write_results(args.out, results)


if __name__ == "__main__":
    main()
