"""A test-tier pytest session at different depths of the caller's stack, with and without
`stackroom.with_room` (autocoder/stackroom.py): page faults and CPU seconds.

In a forked child (as the build runs the tier), after `validate.testing.preload` of a built
project: --batches sessions of 8 of its generated test files, called --depths frames below the
child's entry, directly or through `with_room`. Rounds alternate the two; the figures are
medians over rounds, CPU seconds of the child (user and system) and its minor page faults.
Page faults are counted by the kernel, not timed; compare the CPU seconds by ratio.

Usage: python benchmarks/stackroom_bench.py --project DIR [--depths 0 20 40 60] [--rounds 3]
DIR: a project built with `autocoder build` (its generated/src is used; nothing is written
outside a temporary folder).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import machine, write_results

from autocoder.stackroom import with_room
from autocoder.validate import testing

FILES_PER_SESSION = 8


def _at_depth(depth: int, function: Callable[[], None]) -> None:
    if depth == 0:
        function()
    else:
        _at_depth(depth - 1, function)


def _child(work: Callable[[], None], depth: int, room: bool) -> tuple[float, int]:
    """CPU seconds and minor page faults of a forked child running `work` at `depth`."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            _at_depth(depth, (lambda: with_room(work)) if room else work)
        finally:
            os._exit(0)
    _, _, usage = os.wait4(pid, 0)
    return usage.ru_utime + usage.ru_stime, usage.ru_minflt


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--depths", type=int, nargs="+", default=[0, 20, 40, 60])
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "stackroom.json")
    args = parser.parse_args()
    src = args.project.resolve() / "generated" / "src"
    files = [f"tests/{p.name}" for p in sorted((src / "tests").glob("test_*.py"))]
    files = files[: FILES_PER_SESSION * args.batches]
    scratch = Path(tempfile.mkdtemp(prefix="stackroom-"))
    testing.preload(src)
    gc.freeze()

    def work() -> None:
        for start in range(0, len(files), FILES_PER_SESSION):
            testing.run_pytest_batch(src, files[start : start + FILES_PER_SESSION], scratch)

    runs: dict[str, list[tuple[float, int]]] = {}
    loads = []
    for _ in range(args.rounds):
        for depth in args.depths:
            for room in (False, True):
                runs.setdefault(f"{depth}:{'room' if room else 'direct'}", []).append(
                    _child(work, depth, room)
                )
        loads.append(round(os.getloadavg()[0], 1))
        time.sleep(0.1)
    summary = {}
    for key, samples in runs.items():
        summary[key] = {
            "cpu_s_median": round(statistics.median(cpu for cpu, _ in samples), 3),
            "page_faults_median": statistics.median(faults for _, faults in samples),
        }
    write_results(
        args.out,
        {
            "machine": machine(),
            "files": len(files),
            "files_per_session": FILES_PER_SESSION,
            "rounds": args.rounds,
            "load_average_1m": loads,
            "depth:mode": summary,
        },
    )


if __name__ == "__main__":
    main()
