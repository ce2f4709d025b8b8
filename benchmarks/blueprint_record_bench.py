"""What `check`'s run-cache wrapper pays to let `autocoder explain` name changed blueprint keys.

Before: run_cached digested every blueprint key at each `check` (runcache.explain.
blueprint_digests: a YAML load of both files, a json.dumps + sha256 per key). After: it hashes
each file's bytes and keeps a content-addressed copy (runcache.explain.record_blueprint); the
per-key digests are computed by `autocoder explain` only (recorded_changes, also timed here).

The blueprint files of PROJECT (read only), or a synthetic blueprint of --components
components, are written to a temporary folder; each round makes
the one-component edit edit_overhead_bench.py makes (trans_0's expression, with a value no
round wrote before, so a new copy is written and older ones pruned, as after a real edit), then
times, in alternating order, the before and after work of one `check`, the after work again
with unchanged bytes, and explain's diff. Medians and the 1-minute load average are written.

Usage: python benchmarks/blueprint_record_bench.py [PROJECT | --components N] [--rounds N] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import machine, write_results

from autocoder.runcache.explain import blueprint_digests, record_blueprint, recorded_changes
from autocoder.synthetic import write_synthetic

EXPRESSION = re.compile(r"(?m)^(\s+score: )(.+)$")  # trans_0's is the first `score:` with a value


def edit(arch: Path, n: int) -> None:
    text = arch.read_text()
    match = next(m for m in EXPRESSION.finditer(text) if "value" in m.group(2))
    arch.write_text(text[: match.start(2)] + f"value * 1 + 0.5 + 0 * {n}" + text[match.end(2) :])


def seconds(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def one_round(project: Path, n: int) -> dict:
    record = record_blueprint(project)  # what the previous `check` recorded
    edit(project / "architecture.yaml", n)
    timings: dict[str, float] = {}
    order = ("before", "after") if n % 2 else ("after", "before")
    for which in order:
        if which == "before":
            timings["before_blueprint_digests_s"], _ = seconds(blueprint_digests, project)
        else:
            timings["after_record_new_bytes_s"], _ = seconds(record_blueprint, project)
            timings["after_record_same_bytes_s"], _ = seconds(record_blueprint, project)
    timings["explain_recorded_changes_s"], changes = seconds(recorded_changes, project, record)
    if [key for key, _ in changes] != ["architecture.yaml: components[trans_0].logic"]:
        raise SystemExit(f"unexpected changes: {changes}")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("project", type=Path, nargs="?", help="a project whose blueprint to use")
    parser.add_argument("--components", type=int, default=500, help="else a synthetic blueprint's size")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "blueprint_record.json"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        if args.project is None:
            write_synthetic(project, args.components)
        else:
            for name in ("architecture.yaml", "deployment.yaml"):
                shutil.copyfile(args.project / name, project / name)
        load = [round(os.getloadavg()[0], 1)]
        one_round(project, 0)  # warm-up: imports, first copy
        rounds = [one_round(project, n) for n in range(1, args.rounds + 1)]
        load.append(round(os.getloadavg()[0], 1))
        copies = len(list((project / "generated" / ".cache" / "blueprint").iterdir()))
        blueprint_bytes = (project / "architecture.yaml").stat().st_size
    medians = {k: round(statistics.median(r[k] for r in rounds), 4) for k in rounds[0]}
    write_results(
        args.out,
        {
            "project": args.project.name if args.project else f"synthetic {args.components}",
            "architecture_yaml_bytes": blueprint_bytes,
            "rounds": args.rounds,
            "median_s": medians,
            "speedup_x": round(
                medians["before_blueprint_digests_s"] / medians["after_record_new_bytes_s"], 1
            ),
            "copies_kept_after_all_rounds": copies,
            "load_average_1m": load,
            "machine": machine(),
        },
    )


if __name__ == "__main__":
    main()
