"""Where a generated component test file's time goes, an older Autocoder against this tree
(issue 13, full builds: the cost of one property-test example).

For each tree (this one, and --old, extracted by common.old_tree with its own runtime first on
the path), in a child process of that tree, on the test files of a built project (--project,
its generated/src; the same files for both trees): after `preload`, as the build prepares its
test runs, and in that warm process,
- each --files file run as the build runs one (`validate.testing.run_pytest`), --repeats times:
  CPU seconds per run;
- per example of the file's first input port, CPU microseconds of: hypothesis drawing a message
  from the test's own strategy (40 examples of a test whose body does nothing, as the generated
  property tests are set), `run_once` of the component (the valid-output property's run) and,
  for a store, `stored` (the read-back property's run).
Rounds alternate the trees; the figures are medians over rounds. CPU time, which a busy machine
disturbs least; compare the trees by ratio.

Usage: python benchmarks/comptest_profile.py --project DIR [--files test_store_6.py test_trans_3.py]
       [--old e52890f] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import old_tree, tree_env, write_comparison

EXAMPLES = 40  # what the generated property tests draw (templates/tests/test_component.py.j2)


def _cpu_us(fn: object, count: int) -> float:
    start = time.process_time()
    for _ in range(count):
        fn()  # type: ignore[operator]
    return (time.process_time() - start) / count * 1e6


def measure(src: Path, files: list[str], repeats: int) -> dict:
    """In this process (the tree under test first on sys.path)."""
    from autocoder.validate.testing import preload, run_pytest

    preload(src)
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as tmp:
        for name in files:
            runs = []
            for index in range(repeats + 1):  # the first imports the component: not counted
                scratch = Path(tmp) / f"{name}-{index}"
                scratch.mkdir()
                start = time.process_time()
                result = run_pytest(src, f"tests/{name}", scratch / "junit.xml", scratch)
                if not result.ok:
                    raise SystemExit(f"{name} failed:\n{result.output[-3000:]}")
                runs.append(time.process_time() - start)
            parts = _parts(f"tests.{Path(name).stem}", Path(tmp) / f"{name}-parts")
            figures[name] = {"file_cpu_s": round(statistics.median(runs[1:]), 4), **parts}
    return figures


def _parts(test_module: str, scratch: Path) -> dict[str, float]:
    """CPU microseconds per example: drawing a message, and the component's runs."""
    import importlib

    from autocoder_runtime.component import Component
    from autocoder_runtime.kinds import Store
    from autocoder_runtime.testing import release_databases, run_once, stored
    from hypothesis import HealthCheck, given, settings

    from autocoder.validate.inprocess import environment
    from autocoder.validate.testing import THROWAWAY_DATABASES

    module = importlib.import_module(test_module)
    (cls,) = {  # the component the file tests: imported from the generated package
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, Component) and ".components." in value.__module__
    }
    strategy = sorted(key for key in vars(module) if key.startswith("MESSAGES_"))[0]
    port = strategy.removeprefix("MESSAGES_").lower()
    drawn: list[dict] = []

    @settings(
        max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
    )
    @given(message=getattr(module, strategy))
    def draw(message: dict) -> None:
        drawn.append(message)

    parts = {"draw_us": round(_cpu_us(draw, 5) / EXAMPLES, 1)}
    messages = drawn[:EXAMPLES]

    def runs_once() -> None:
        for message in messages:
            try:
                run_once(cls, port, message)
            except Exception:  # noqa: BLE001, S112 - a rejection costs a run as well
                continue

    def runs_stored() -> None:
        for message in messages:
            try:
                stored(cls, port, [message])
            except Exception:  # noqa: BLE001, S112 - a rejection costs a run as well
                continue

    helpers = {"run_once_us": runs_once, **({"stored_us": runs_stored} if issubclass(cls, Store) else {})}
    with environment(DATA_DIR=str(scratch), **THROWAWAY_DATABASES):
        for label, each in helpers.items():
            each()  # first use: the database and the system are made
            parts[label] = round(_cpu_us(each, 10) / len(messages), 1)
        release_databases()
    return parts


def _child(tree: Path | None, src: Path, files: list[str], repeats: int) -> dict:
    code = f"import sys, json; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
    code += "from comptest_profile import measure; from pathlib import Path; "
    code += f"print(json.dumps(measure(Path({str(src)!r}), {files!r}, {repeats})))"
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=src, env=tree_env(tree), capture_output=True, text=True
    )
    if run.returncode != 0:
        raise SystemExit(f"measuring failed:\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project", type=Path, required=True, help="a built project (not modified)")
    parser.add_argument("--files", nargs="+", default=["test_store_6.py", "test_trans_3.py"])
    parser.add_argument("--old", default="e52890f", help="the commit to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="runs of each file per round")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "comptest_profile.json"
    )
    args = parser.parse_args()
    src = args.project.resolve() / "generated" / "src"
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    loads = [round(os.getloadavg()[0], 1)]
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"old": old_tree(Path(tmp), args.old), "new": None}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                runs[name].append(_child(tree, src, args.files, args.repeats))
                loads.append(round(os.getloadavg()[0], 1))
    summary: dict[str, dict] = {}
    for name, rounds in runs.items():
        summary[name] = {
            file: {key: statistics.median(r[file][key] for r in rounds) for key in rounds[0][file]}
            for file in args.files
        }
    summary["new_vs_old"] = {
        file: {key: round(value / summary["old"][file][key], 2) for key, value in figures.items()}
        for file, figures in summary["new"].items()
    }
    write_comparison(args.out, args.old, loads, summary, runs, files=args.files, project=str(args.project))


if __name__ == "__main__":
    main()
