"""CPU per message through the generated system's kernel path, per component kind, an older
Autocoder runtime against this tree, alternating (issue 13: the bench tier times 250 messages
per component through this path, and it is the product's throughput).

For each kind of the synthetic system (autocoder/synthetic.py: api_endpoint, transformer,
filter, store, sink), a few of a built 100-component project's generated components are imported
as the bench tier imports them (validate/bench.py: `Session`'s harness, its `_step`: the same
message through the same path, each tree's own). In a child process per tree and round:

- `kernel_us`: CPU microseconds (process_time: every thread, so the database writer's commit
  is in) per message, over MESSAGES messages after the bench tier's warm-up;
- `bench_ms`: CPU milliseconds of `Session.bench` of the component as the bench tier runs it
  (import, harness, warm-up, the sequential rule's messages, statistics), the components of
  each kind in one session as a batch runs them.

The older tree is `git archive`d (common.old_tree) and put first on PYTHONPATH with its runtime;
both sides import the same generated sources. Which tree goes first alternates by round; the
summary is per kind the median over rounds of each side and the ratio new/old.

Usage: python benchmarks/kernel_bench.py PROJECT [--old 4e0e687] [--rounds 5] [--messages 2000]
       [--per-kind 3] [--out benchmarks/results/kernel-s11.json]
PROJECT: a project built with `autocoder build` (generated/ present), e.g. a synthetic one:
`python -c "from autocoder.synthetic import write_synthetic; from pathlib import Path;
write_synthetic(Path('/tmp/x/p'), 100)"` then `autocoder build /tmp/x/p -n 2`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import old_tree, tree_env, write_comparison

KINDS = ("api_endpoint", "transformer", "filter", "store", "sink")


def child(project: Path, messages: int, per_kind: int) -> dict[str, dict[str, list[float]]]:
    """In the measured tree's process: per kind, each chosen component's CPU per message and
    CPU of its bench run."""
    import asyncio
    import functools
    import gc
    import importlib
    import time

    from autocoder_runtime.capabilities import TokenBucket
    from autocoder_runtime.testing import harness

    from autocoder.codegen.strategies import simplest_message
    from autocoder.ir.models import load_slice
    from autocoder.tasks.gen_tasks import SAMPLES, SRC
    from autocoder.validate import bench
    from autocoder.validate.inprocess import environment, importable, scratch_directory

    src = project / SRC
    simplest = functools.partial(simplest_message, cache=project / SAMPLES)
    chosen: dict[str, list[Any]] = {kind: [] for kind in KINDS}
    for path in sorted((project / "generated" / "ir").glob("*.json")):
        if path.stem in ("ir.v1", "ir.deploy"):
            continue
        slice_ = load_slice(path)
        found = chosen.get(slice_.component.kind)
        if found is not None and len(found) < per_kind:
            found.append(slice_)
    bench._prepare(src, next(s for s in chosen.values() if s)[0])

    async def per_message(cls: Any, slice_: Any) -> float:
        async with harness(cls) as component:
            component.bucket = TokenBucket(10**9, 10**9)
            step, distinct = bench._step(component, slice_.component, slice_, simplest)
            for _ in range(max(bench.WARMUP_MIN, bench.WARMUP_PASSES * distinct)):
                await step()
            start = time.process_time()
            for _ in range(messages):
                await step()
            return (time.process_time() - start) / messages * 1e6

    results: dict[str, dict[str, list[float]]] = {}
    with scratch_directory("kernel-bench-") as scratch:
        importable(src)
        for kind, slices in chosen.items():
            kernel: list[float] = []
            runs: list[float] = []
            session = bench.Session(scratch / kind / "bench", fresh_heap=True)
            try:
                for slice_ in slices:
                    start = time.process_time()
                    session.bench(src, slice_, simplest)
                    runs.append((time.process_time() - start) * 1e3)
            finally:
                session.close()
            runner = asyncio.Runner()
            try:
                for slice_ in slices:
                    module = importlib.import_module(f"{slice_.system}.components.{slice_.component.name}")
                    gc.collect()
                    with environment(DATA_DIR=str(scratch / kind / "kernel")):
                        kernel.append(runner.run(per_message(module.COMPONENT, slice_)))
            finally:
                runner.close()
                from autocoder_runtime.testing import release_databases

                release_databases()
            results[kind] = {"kernel_us": kernel, "bench_ms": runs}
    return results


def run_child(tree: Path | None, project: Path, messages: int, per_kind: int) -> dict[str, Any]:
    env = tree_env(tree)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            str(project),
            "--messages",
            str(messages),
            "--per-kind",
            str(per_kind),
        ],
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the child failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per kind and figure: each side's median over rounds (of each round's per-component
    median), and new/old."""
    summary: dict[str, Any] = {}
    for kind in KINDS:
        entry: dict[str, Any] = {}
        for figure in ("kernel_us", "bench_ms"):
            sides = {
                side: round(statistics.median(statistics.median(r[kind][figure]) for r in found), 2)
                for side, found in runs.items()
                if found and found[0].get(kind, {}).get(figure)
            }
            if len(sides) == 2:
                sides["ratio"] = round(sides["new"] / sides["old"], 3)
            entry[figure] = sides
        summary[kind] = entry
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("project", type=Path)
    parser.add_argument("--old", default="4e0e687", help="the commit to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--per-kind", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "kernel-s11.json")
    args = parser.parse_args()
    project = args.project.resolve()
    if args.child:
        print(json.dumps(child(project, args.messages, args.per_kind)))
        return
    loads = [round(os.getloadavg()[0], 1)]
    runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory() as tmp:
        old = old_tree(Path(tmp), args.old)
        for round_ in range(args.rounds):
            order = [("old", old), ("new", None)]
            for side, tree in order if round_ % 2 == 0 else order[::-1]:
                runs[side].append(run_child(tree, project, args.messages, args.per_kind))
            loads.append(round(os.getloadavg()[0], 1))
            print(f"round {round_ + 1}: {json.dumps(summarise(runs))}", file=sys.stderr)
    write_comparison(
        args.out.resolve(),
        args.old,
        loads,
        summarise(runs),
        runs,
        project_components=len(list((project / "generated" / "ir").glob("*.json"))) - 2,
        messages=args.messages,
        per_kind=args.per_kind,
    )


if __name__ == "__main__":
    main()
