"""Where the bench tier's CPU goes in a build of a 100-component project (issue 13, item 4).

For a built project, in this process (as a doit worker runs the tier) and in the children it
forks, CPU seconds (all threads) of:
- `messages`: the warm-up and timed messages themselves, through the kernel path (each
  `step` of validate/bench.py wrapped in process_time; the wrapper's own two calls included);
- `child_total`: everything the children do (`_bench_each` over batches of 8 components, in
  this process: import of the component, session, database, load correction, statistics);
- `empty_fork`: a child forked to do nothing (the fork and the child's exit);
- `parent_per_task`: one doit worker's side of each `bench:<c>` task (run_bench: records,
  claims, hashes of inputs, the result file), over every task of the project, second pass.
Writes benchmarks/results/bench_tier_profile-100.json.

Usage: python benchmarks/bench_tier_profile.py PROJECT [--out FILE]
PROJECT: a project built with `autocoder build` (its generated/ present); its bench reports
are rewritten.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import statistics
import time
from pathlib import Path
from typing import Any

from common import machine, write_results


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def child_work(directory: Path, names: list[str]) -> dict[str, float]:
    """CPU of the children's work over `names` in batches of 8, and of its messages alone."""
    from autocoder.codegen.strategies import simplest_message
    from autocoder.ir.models import load_slice
    from autocoder.tasks.gen_tasks import SAMPLES, SRC
    from autocoder.validate import bench
    from autocoder.validate.inprocess import scratch_directory

    slices = [load_slice(directory / "generated" / "ir" / f"{n}.json") for n in names]
    simplest = functools.partial(simplest_message, cache=directory / SAMPLES)
    src = directory / SRC
    bench._prepare(src, slices[0])
    spent = [0.0]
    original = bench._step

    def timed_step(*args: Any) -> tuple[Any, int]:
        step, distinct = original(*args)

        async def timed() -> None:
            start = time.process_time()
            await step()
            spent[0] += time.process_time() - start

        return timed, distinct

    with scratch_directory("bench-profile-") as scratch:
        bench._bench_each(src, slices[:1], scratch / "first", simplest)  # the first imports
        bench._step = timed_step
        try:
            start = _cpu(resource.RUSAGE_SELF)
            for i in range(0, len(slices), 8):
                bench._bench_each(src, slices[i : i + 8], scratch / str(i), simplest)
            total = _cpu(resource.RUSAGE_SELF) - start
        finally:
            bench._step = original
    return {"child_total_s": round(total, 3), "messages_s": round(spent[0], 3)}


def empty_fork() -> float:
    from autocoder.validate.isolated import run_forked

    costs = []
    for _ in range(5):
        start = _cpu(resource.RUSAGE_CHILDREN)
        run_forked(len, ((),), 60)
        costs.append(_cpu(resource.RUSAGE_CHILDREN) - start)
    return round(statistics.median(costs), 4)


def parent_side(directory: Path) -> dict[str, float]:
    """Every bench task of the project in task order, twice; the second pass's CPU here and in
    the children."""
    from autocoder.tasks import validate_tasks

    for _ in range(2):
        tasks = list(validate_tasks.task_bench())
        group = tasks[0]["actions"][0][1][2]
        for report in (directory / "generated" / "reports" / "bench").glob("*.json"):
            report.unlink()
        own, children = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
        failed = [t["name"] for t in tasks if validate_tasks.run_bench(directory, t["name"], group)]
        own, children = _cpu(resource.RUSAGE_SELF) - own, _cpu(resource.RUSAGE_CHILDREN) - children
    return {
        "tasks": len(tasks),
        "failed": len(failed),
        "parent_s": round(own, 3),
        "parent_per_task_ms": round(own / len(tasks) * 1000, 2),
        "children_s": round(children, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("project", type=Path)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "bench_tier_profile-100.json"
    )
    args = parser.parse_args()
    out = args.out.resolve()
    directory = args.project.resolve()
    os.chdir(directory)  # the task creators find the project in the working directory
    ir = directory / "generated" / "ir"
    names = sorted(p.stem for p in ir.glob("*.json") if p.stem not in ("ir.v1", "ir.deploy"))
    loads = [round(os.getloadavg()[0], 1)]
    child = child_work(directory, names)
    loads.append(round(os.getloadavg()[0], 1))
    results = {
        "machine": machine(),
        "components": len(names),
        "child": {
            **child,
            "messages_share": round(child["messages_s"] / child["child_total_s"], 3),
            "per_component_ms": round(child["child_total_s"] / len(names) * 1000, 2),
        },
        "empty_fork_s": empty_fork(),
        "tasks": parent_side(directory),
        "load_average_1m": [*loads, round(os.getloadavg()[0], 1)],
    }
    write_results(out, results)


if __name__ == "__main__":
    main()
