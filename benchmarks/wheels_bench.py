"""The wheels of a one-component edit (issue 13), before and after the split of deploy:wheels.

Before (`--before`, default main's merge base): one deploy:wheels task built the system's
wheel and the runtime's with `pip wheel` subprocesses (setuptools) on every generated-source
change. After (this tree): deploy:wheels builds the system's wheel in process (flit_core) and
deploy:runtime-wheel the runtime's, only when the runtime changes.

Three measurements on examples/orders, before and after alternating within one run:
  system_wheel       the system's wheel alone: pip wheel of the setuptools tree vs flit_core
  wheels_action      the deploy:wheels work of a component edit: both pip wheels and
                     constraints.txt (before) vs the new run_wheels (after)
  edit_build         `autocoder build P deploy` after a logic-only edit of one component, with
                     the old generator (PYTHONPATH) and with this one
Writes results/wheels.json with the load average.

    python benchmarks/wheels_bench.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from common import REPO, machine, old_tree, timed_build, write_results

from autocoder.deploy.wheels import build_system_wheel, build_wheel, constraints, runtime_source
from autocoder.tasks.deploy_tasks import run_wheels

EXAMPLE = "orders"


def copy_example(work: Path, name: str) -> Path:
    project = work / name
    shutil.copytree(
        REPO / "examples" / EXAMPLE,
        project,
        ignore=shutil.ignore_patterns("generated", ".doit*", "deployments", "dist"),
    )
    return project


def setuptools_tree(source: Path, work: Path) -> Path:
    """The generated source with the pyproject the old template rendered (setuptools)."""
    tree = work / "setuptools-src"
    shutil.copytree(source, tree)
    text = (tree / "pyproject.toml").read_text()
    text = re.sub(r"requires = \[\"flit_core[^\n]*\nbuild-backend = [^\n]*", OLD_BACKEND, text)
    text = re.sub(
        r"\[tool\.flit\.module\]\nname = \"(\w+)\"[^\n]*",
        r"[tool.setuptools]\npackages = ['\1', '\1.components']",
        text,
    )
    (tree / "pyproject.toml").write_text(text)
    return tree


OLD_BACKEND = 'requires = ["setuptools>=77"]\nbuild-backend = "setuptools.build_meta"'


def seconds(action: object) -> float:
    start = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - start


def edit(project: Path, threshold: int) -> None:
    """A logic-only change of big_orders: its threshold (a new value each time: no cache hit)."""
    arch = project / "architecture.yaml"
    arch.write_text(re.sub(r'total >= \d+"', f'total >= {threshold}"', arch.read_text()))


def timed_edit_build(project: Path, generator: Path | None) -> tuple[float, list[str]]:
    if generator is None:
        return timed_build(project, "deploy")
    return timed_build(project, "deploy", env={**os.environ, "PYTHONPATH": str(generator)})


def summary(values: list[float]) -> dict[str, object]:
    return {"median_s": round(statistics.median(values), 3), "runs_s": [round(v, 3) for v in values]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", default="HEAD~1", help="the commit before the split")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "wheels.json")
    args = parser.parse_args()
    load_start = os.getloadavg()
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="wheels-bench-") as tmp:
        work = Path(tmp)
        new = copy_example(work, "new")
        old = copy_example(work, "old")
        generator = old_tree(work, args.before)
        timed_build(new, "deploy")
        timed_edit_build(old, generator)
        source = new / "generated" / "src"
        old_source = setuptools_tree(source, work)
        out = work / "out"
        for _ in range(args.repeats):
            times.setdefault("system_wheel.before", []).append(seconds(lambda: build_wheel(old_source, out)))
            times.setdefault("system_wheel.after", []).append(
                seconds(lambda: build_system_wheel(source, out))
            )

            def both() -> None:
                build_wheel(old_source, out)
                build_wheel(runtime_source(), out)
                constraints()

            times.setdefault("wheels_action.before", []).append(seconds(both))
            times.setdefault("wheels_action.after", []).append(seconds(lambda: run_wheels(new)))
        ran: dict[str, list[str]] = {}
        for i in range(args.repeats):
            edit(old, 200 + i)
            elapsed, ran["before"] = timed_edit_build(old, generator)
            times.setdefault("edit_build.before", []).append(elapsed)
            edit(new, 200 + i)
            elapsed, ran["after"] = timed_edit_build(new, None)
            times.setdefault("edit_build.after", []).append(elapsed)
    results: dict[str, object] = {name: summary(values) for name, values in sorted(times.items())}
    for what in ("system_wheel", "wheels_action", "edit_build"):
        before = statistics.median(times[f"{what}.before"])
        after = statistics.median(times[f"{what}.after"])
        results[f"{what}.speedup"] = round(before / after, 1)
    results["edit_build.tasks_run"] = ran
    results["loadavg_start_end"] = [round(load_start[0], 2), round(os.getloadavg()[0], 2)]
    results["machine"] = machine()
    results["example"] = EXAMPLE
    write_results(args.out, results)


if __name__ == "__main__":
    main()
