"""What skipping pytest's built-in plugins that generated tests never use would save a test task.

In one process (after `preload`, as a build's worker): the component test files of a built
project PROJECT, each run as a test task runs it (`validate.testing.run_tests`: a forked pytest
session), alternating round by round between all built-in plugins and the candidate set
skipped with `-p no:<plugin>` (testing.UNUSED_PLUGINS, what the build skips). Per variant:
CPU seconds (this process and its children) and wall seconds per file, median over rounds, and
whether every file's verdict and test count were the same; then a session's fixed CPU cost
(a file of one trivial test, in this process) per variant.

Usage: python benchmarks/pytest_plugins_bench.py PROJECT [--files 20] [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from common import write_results


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("project", type=Path)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "pytest_plugins.json")
    args = parser.parse_args()
    from autocoder.validate import testing

    src = args.project / "generated" / "src"
    files = sorted(p.name for p in (src / "tests").glob("test_*.py") if p.name != "test_integration.py")
    files = files[: args.files]
    testing.preload(src)
    skipped = testing.UNUSED_PLUGINS
    variants = {"all_plugins": (), "trimmed": skipped}
    figures: dict[str, dict[str, list[float]]] = {v: {"cpu_s": [], "wall_s": []} for v in variants}
    verdicts: dict[str, set[tuple[str, bool, int]]] = {v: set() for v in variants}
    loads = [round(os.getloadavg()[0], 1)]
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.rounds):
            order = list(variants) if index % 2 == 0 else list(reversed(variants))
            for variant in order:
                testing.UNUSED_PLUGINS = variants[variant]
                cpu, wall = _cpu(), time.perf_counter()
                for name in files:
                    scratch = Path(tmp) / f"{variant}-{index}-{name}"
                    scratch.mkdir()
                    result = testing.run_tests(src, f"tests/{name}", scratch / "junit.xml", scratch)
                    verdicts[variant].add((name, result.ok, result.tests))
                figures[variant]["cpu_s"].append((_cpu() - cpu) / len(files))
                figures[variant]["wall_s"].append((time.perf_counter() - wall) / len(files))
                loads.append(round(os.getloadavg()[0], 1))
        fixed = _fixed_cost(testing, variants, Path(tmp), 2 * args.files)
    summary = {
        v: {k: round(statistics.median(values), 4) for k, values in f.items()} for v, f in figures.items()
    }
    document = {
        "fixed_session_cpu_ms_median": fixed,
        "files": len(files),
        "rounds": args.rounds,
        "skipped_plugins": list(skipped),
        "per_file_median": summary,
        "trimmed_vs_all_cpu": round(summary["trimmed"]["cpu_s"] / summary["all_plugins"]["cpu_s"], 3),
        "same_verdicts": verdicts["trimmed"] == verdicts["all_plugins"],
        "load_average_1m": loads,
        "runs": figures,
    }
    write_results(args.out, document)


def _fixed_cost(testing: Any, variants: dict[str, tuple[str, ...]], tmp: Path, repeats: int) -> dict:
    """A session's own CPU cost: pytest on a file of one trivial test, in this process (no
    fork), the variants alternating; median milliseconds per variant."""
    src = tmp / "fixed" / "src"
    (src / "tests").mkdir(parents=True)
    (src / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (src / "tests" / "test_trivial.py").write_text("def test_one():\n    assert True\n")
    times: dict[str, list[float]] = {v: [] for v in variants}
    for index in range(repeats):
        for variant in list(variants) if index % 2 == 0 else list(reversed(variants)):
            testing.UNUSED_PLUGINS = variants[variant]
            scratch = tmp / "fixed" / f"{variant}-{index}"
            start = time.process_time()
            result = testing.run_pytest(src, "tests/test_trivial.py", scratch / "junit.xml", scratch)
            times[variant].append(time.process_time() - start)
            if not result.ok:
                raise SystemExit(result.output[-2000:])
    return {v: round(statistics.median(t[2:]) * 1000, 1) for v, t in times.items()}


if __name__ == "__main__":
    main()
