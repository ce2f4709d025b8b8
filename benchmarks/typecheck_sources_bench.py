"""What `typecheck` spends besides mypy: listing and stat-ing the generated sources twice a check
(autocoder/validate/types.py: retime_same_second_edits before it, _record_sources after it).

In a built project, an older types.py (`--old FILE`, e.g. from `git show COMMIT:autocoder/validate/types.py`)
and this tree's run both steps on the same files, alternating, median of --rounds; the record
file they write is the same (checked).

Usage: python benchmarks/typecheck_sources_bench.py PROJECT --old FILE [--rounds 9] [--out FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
from pathlib import Path
from types import ModuleType

from common import machine, write_results

from autocoder.validate import types as new


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("old_types", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one(module: ModuleType, src: Path, paths: list[str], cache: Path) -> tuple[float, bytes]:
    start = time.perf_counter()
    module.retime_same_second_edits(src, paths, cache)
    module._record_sources(src, paths, cache)
    return time.perf_counter() - start, (cache / new.SOURCES_FILE).read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("project", type=Path)
    parser.add_argument("--old", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "typecheck_sources.json"
    )
    args = parser.parse_args()
    src = args.project.resolve() / "generated" / "src"
    system = next(
        p.name for p in src.iterdir() if p.is_dir() and p.name != "tests" and (p / "__init__.py").exists()
    )
    paths, cache = [system, "tests"], args.project.resolve() / "generated" / ".cache" / "mypy"
    old = load(args.old)
    times: dict[str, list[float]] = {"old": [], "new": []}
    loads = [round(os.getloadavg()[0], 1)]
    for r in range(args.rounds):
        for name in ("old", "new") if r % 2 == 0 else ("new", "old"):
            seconds, record = one(old if name == "old" else new, src, paths, cache)
            times[name].append(seconds)
            if name == "old":
                expected = record
            elif record != expected:
                raise SystemExit("the two versions recorded different sources")
    loads.append(round(os.getloadavg()[0], 1))
    medians = {k: round(statistics.median(v), 4) for k, v in times.items()}
    write_results(
        args.out,
        {
            "machine": machine(),
            "project": str(args.project),
            "sources": len(new._sources(src, paths)),
            "rounds": args.rounds,
            "load_average_1m": loads,
            "seconds_median": medians,
            "new_vs_old": round(medians["new"] / medians["old"], 2),
            "seconds": {k: [round(x, 4) for x in v] for k, v in times.items()},
        },
    )


if __name__ == "__main__":
    main()
