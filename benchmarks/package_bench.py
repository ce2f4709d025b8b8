"""What a generated system is made of, before and after the runtime became a library.

Builds examples/telemetry (generation only) with this checkout and with the generator of an
earlier commit (default 2ae1d5a, the last one that rendered the runtime into every system),
then counts the lines of Python in each generated package (system code and its tests) and runs
mypy on both, and mypy --strict on the runtime library. Writes results/package.json.

    python benchmarks/package_bench.py [--before COMMIT]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import machine, write_results

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "telemetry"


def build(generator: Path, project: Path) -> None:
    """`autocoder build PROJECT gen` with the autocoder package found under `generator`."""
    env = {**os.environ, "PYTHONPATH": str(generator)}
    run = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), "gen"],
        capture_output=True,
        text=True,
        cwd=project,
        env=env,
    )
    if run.returncode != 0:
        raise SystemExit(f"build with {generator} failed:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}")


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
    build(generator, project)
    src = project / "generated" / "src"
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
        old = work / "old-generator"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(old), args.before],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        for data in ("templates", "rules", "schemas"):  # where an installed autocoder has them
            (old / "autocoder" / data).symlink_to(old / data)
        try:
            before = measure(old, work, "before")
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(old)], cwd=REPO, check=False, capture_output=True
            )
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
