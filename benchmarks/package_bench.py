"""What a generated system is made of, before and after the runtime became a library.

Builds examples/telemetry (generation only) with this checkout and with the generator of an
earlier commit (default 2ae1d5a, the last one that rendered the runtime into every system),
then counts the lines of Python in each generated package (system code and its tests) and runs
mypy on both, and mypy --strict on the runtime library. Writes results/package.json.

    python benchmarks/package_bench.py [--before COMMIT]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO, build_gen, machine, old_tree, write_results

EXAMPLE = REPO / "examples" / "telemetry"


def lines(folder: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in sorted(folder.rglob("*.py")))


def mypy_errors(arguments: list[str], cwd: Path) -> int:
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--no-incremental", *arguments],
        capture_output=True,
        text=True,
        cwd=cwd,
    )
    return sum(1 for line in run.stdout.splitlines() if ": error:" in line)


def measure(generator: Path, work: Path, name: str) -> dict[str, int]:
    project = work / name / "telemetry"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("generated", ".doit.db*"))
    src = build_gen(project, generator)
    return {
        "system_lines": lines(src / "telemetry"),
        "test_lines": lines(src / "tests"),
        "mypy_errors": mypy_errors(["--config-file", "pyproject.toml", "telemetry"], src),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", default="2ae1d5a", help="the commit to compare with (default 2ae1d5a)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "package.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autocoder-package-") as tmp:
        work = Path(tmp)
        before = measure(old_tree(work, args.before), work, "before")
        after = measure(REPO, work, "after")
    runtime = REPO / "runtime"
    results = {
        "machine": machine(),
        "example": "examples/telemetry",
        "before": {"commit": args.before, **before},
        "after": after,
        "runtime_library": {
            "lines": lines(runtime / "autocoder_runtime"),
            "mypy_strict_errors": mypy_errors(
                ["--config-file", "pyproject.toml", "autocoder_runtime"], runtime
            ),
        },
        "system_lines_ratio": round(after["system_lines"] / before["system_lines"], 3),
    }
    write_results(args.out, results)


if __name__ == "__main__":
    main()
