"""The system-level tasks of a one-component edit, in a warm process: what `check`, `ir`,
`report` and `deploy:wheels` cost after their imports (issue 13).

An already built synthetic project (benchmarks/edit_profile.py's kind; build it first) is copied
once per tree. In one interpreter per tree and round, after importing what the actions import,
trans_0's expression is rewritten to an equal one (edit_profile's edit) --edits times; each time
the `check` and `ir` actions run as doit calls them (compiling once for both), then `report` and
`deploy:wheels`, each timed. With --old COMMIT, that commit's actions (common.old_tree) run on
their own copy, alternating rounds with this tree's; the result holds both and the ratios.

Usage: python benchmarks/edit_tasks_bench.py PROJECT [--old COMMIT] [--rounds 3] [--edits 4] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, old_tree, tree_env, write_results

STEPS = ("check", "ir", "report", "wheels")


def measure(project: Path, edits: int) -> dict[str, list[float]]:
    """Seconds of each step per edit, in this process (imports paid before the first edit)."""
    from edit_profile import edit

    from autocoder.tasks import compile_tasks, deploy_tasks, validate_tasks

    os.chdir(project)
    report, report_args = validate_tasks.task_report()["actions"][0]
    actions = {
        "check": lambda: compile_tasks.run_check(project, False),
        "ir": lambda: compile_tasks.run_ir(project, False),
        "report": lambda: report(*report_args),
        "wheels": lambda: deploy_tasks.run_wheels(project),
    }
    edit(project / "architecture.yaml")  # a first edit and run pays every import
    compile_tasks._COMPILED.clear()
    for action in actions.values():
        action()
    seconds: dict[str, list[float]] = {step: [] for step in STEPS}
    for _ in range(edits):
        edit(project / "architecture.yaml")
        compile_tasks._COMPILED.clear()
        for step, action in actions.items():
            start = time.perf_counter()
            failed = action()
            seconds[step].append(time.perf_counter() - start)
            if failed:
                raise SystemExit(f"{step} failed in {project}: {failed}")
    return seconds


def one_round(project: Path, tree: Path | None, edits: int) -> dict[str, list[float]]:
    """measure() in a fresh interpreter with `tree`'s autocoder (None: this one)."""
    code = (
        f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "from edit_tasks_bench import measure; "
        f"print(json.dumps(measure(__import__('pathlib').Path({str(project)!r}), {edits})))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        env={**tree_env(tree), "AUTOCODER_MYPY_DAEMON": "off"},
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        raise SystemExit(f"round failed:\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("project", type=Path)
    parser.add_argument("--old", help="a commit to compare with, alternating")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--edits", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "edit_tasks.json")
    args = parser.parse_args()
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="edit-tasks-") as tmp:
        sides: dict[str, tuple[Path, Path | None]] = {}
        ignore = shutil.ignore_patterns("dmypy", "__pycache__")
        new = Path(tmp) / "new" / args.project.name
        shutil.copytree(args.project, new, symlinks=True, ignore=ignore)
        sides["new"] = (new, None)
        if args.old:
            old = Path(tmp) / "old" / args.project.name
            shutil.copytree(args.project, old, symlinks=True, ignore=ignore)
            sides["old"] = (old, old_tree(Path(tmp), args.old))
        seconds: dict[str, dict[str, list[float]]] = {side: {s: [] for s in STEPS} for side in sides}
        for _ in range(args.rounds):
            for side, (project, tree) in sides.items():
                for step, values in one_round(project, tree, args.edits).items():
                    seconds[side][step].extend(values)
            load.append(os.getloadavg()[0])
    medians = {
        side: {f"{s}_ms_median": round(statistics.median(v) * 1000, 1) for s, v in steps.items()}
        for side, steps in seconds.items()
    }
    for steps in medians.values():
        steps["check_plus_ir_ms_median"] = round(steps["check_ms_median"] + steps["ir_ms_median"], 1)
    result: dict[str, object] = {
        "machine": machine(),
        "project": args.project.name,
        "rounds": args.rounds,
        "edits_per_round": args.edits,
        "load_average_1m": [round(x, 1) for x in load],
        "warm_ms": medians,
    }
    if args.old:
        result["old"] = args.old
        result["new_over_old"] = {
            k: round(medians["new"][k] / medians["old"][k], 3) for k in medians["new"] if medians["old"][k]
        }
    write_results(args.out, result)


if __name__ == "__main__":
    main()
