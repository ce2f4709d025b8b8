"""The `ir` action after a one-component edit, with and without reusing ir.v1.json's unchanged
parts (ir/write.py, _encode_ir), alternating in one warm process on a copy of a built project;
plus write_ir alone and the projections alone (compile_tasks.write_projections).

Usage: python benchmarks/ir_parts_bench.py PROJECT [--edits 40] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from common import machine, write_results
from edit_profile import edit

MODES = ("run_ir", "run_ir_without_part_reuse", "write_ir_only", "projections_only")


def measure(project: Path, edits: int) -> dict[str, float]:
    from autocoder.ir import write
    from autocoder.tasks import compile_tasks

    reuse = write._previous_parts
    seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
    os.chdir(project)
    for i in range(edits + len(MODES)):
        mode = MODES[i % len(MODES)]
        write._previous_parts = reuse if mode != "run_ir_without_part_reuse" else (lambda _f, _e: {})
        edit(project / "architecture.yaml")
        compile_tasks._COMPILED.clear()
        compile_tasks.run_check(project, False)
        result = compile_tasks.compile_cached(project, False)
        start = time.perf_counter()
        if mode == "write_ir_only":
            write.write_ir(project / "generated", result.ir, result.slices, root=project)  # type: ignore[arg-type]
        elif mode == "projections_only":
            compile_tasks.write_projections(project)
        else:
            compile_tasks.run_ir(project, False)
        if i >= len(MODES):  # the first round of each mode warms up
            seconds[mode].append(time.perf_counter() - start)
    write._previous_parts = reuse
    return {f"{mode}_ms_median": round(statistics.median(v) * 1000, 1) for mode, v in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("project", type=Path)
    parser.add_argument("--edits", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ir_parts.json")
    args = parser.parse_args()
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="ir-parts-") as tmp:
        project = Path(tmp) / args.project.name
        shutil.copytree(args.project, project, symlinks=True, ignore=shutil.ignore_patterns("dmypy"))
        medians = measure(project, args.edits)
        load.append(os.getloadavg()[0])
    ratio = medians["run_ir_ms_median"] / medians["run_ir_without_part_reuse_ms_median"]
    write_results(
        args.out,
        {
            "machine": machine(),
            "project": args.project.name,
            "edits": args.edits,
            "load_average_1m": [round(x, 1) for x in load],
            "warm_ms": medians,
            "run_ir_with_over_without_part_reuse": round(ratio, 3),
        },
    )


if __name__ == "__main__":
    main()
